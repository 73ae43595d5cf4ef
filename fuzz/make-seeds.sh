#!/usr/bin/env bash
# Regenerates fuzz/seeds/ from the RFC fixtures (relay/tests/fixtures/rfc).
# For each fixture it writes:
#   <name>.msrp      the fixture as is (a raw input: default limits, cut
#                    into segments of the sizes in RAW_SIZES);
#   <name>.cut3      control byte 0x03 + three cut points + the fixture
#                    (default limits);
#   <name>.small     control byte 0x10 (small limits, no cuts) + the fixture.
# Seeds for the `uri` target are written by hand below.
set -euo pipefail
cd "$(dirname "$0")"
fx=../relay/tests/fixtures/rfc
out=seeds/decode
rm -rf "$out" seeds/uri
mkdir -p "$out" seeds/uri
for f in "$fx"/*.msrp; do
    n=$(basename "$f" .msrp)
    len=$(wc -c <"$f")
    cp "$f" "$out/$n.msrp"
    # cuts at len/3, len/2 and len-12 (inside the end-line), little-endian u16
    python3 - "$f" "$out/$n.cut3" "$len" <<'PY'
import struct, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
cuts = [n // 3, n // 2, max(n - 12, 0)]
with open(dst, "wb") as o:
    o.write(bytes([0x03]) + b"".join(struct.pack("<H", c) for c in cuts))
    o.write(open(src, "rb").read())
PY
    { printf '\x10'; cat "$f"; } >"$out/$n.small"
done
i=0
for s in \
    'msrp://alice.example.com:7777/iau39soe2843z;tcp' \
    'msrps://bob@[2001:db8::1]:2855/a+b=c/d;tcp;foo=bar' \
    'msrp://relay.example.net;tcp' \
    'msrp://a.example:1/x;tcp msrp://b.example:2/y;tcp' \
    'msrp://ho%73t:1/s;TCP' \
    '1-25/25' '26-*/*' '1-0/0' '000 200 OK' '000 413 Stop sending' \
    'partial' 'yes' 'a786hjs2'; do
    printf '%s' "$s" >"seeds/uri/seed$i"
    i=$((i + 1))
done
