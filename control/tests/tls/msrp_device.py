#!/usr/bin/env python3
"""A third-party MSRP device over TLS for the end-to-end tests: Python's
own ssl module (OpenSSL), not rustls, connects to the relay's TLS port,
verifies its certificate against the test CA for the IP in the URI, binds
its leg with a bodiless SEND (RFC 4975 5.4), answers 200 to every SEND
and prints the SHA-256 and length of the first complete message, then
closes.

usage: msrp_device.py HOST PORT CAFILE RELAY_URI OWN_URI
"""
import hashlib
import re
import socket
import ssl
import sys

host, port, cafile, relay_uri, own_uri = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=cafile)
ctx.minimum_version = ssl.TLSVersion.TLSv1_2
raw = socket.create_connection((host, int(port)), timeout=60)
tls = ctx.wrap_socket(raw, server_hostname=host)
print("tls", tls.version(), flush=True)
tls.sendall(
    ("MSRP bind1 SEND\r\nTo-Path: %s\r\nFrom-Path: %s\r\nMessage-ID: bindpy1\r\n"
     "Byte-Range: 1-0/0\r\n-------bind1$\r\n" % (relay_uri, own_uri)).encode())

buf = b""
body = {}
HEAD = re.compile(rb"MSRP ([A-Za-z0-9.+%=-]+) ([A-Z]+|\d{3})[^\r\n]*\r\n")


def need(n):
    global buf
    while len(buf) < n:
        got = tls.recv(65536)
        if not got:
            sys.exit("relay closed the connection")
        buf += got


while True:
    need(1)
    while b"\r\n\r\n" not in buf and b"\r\n-------" not in buf:
        got = tls.recv(65536)
        if not got:
            sys.exit("relay closed the connection")
        buf += got
    m = HEAD.match(buf)
    if not m:
        sys.exit("bad start line: %r" % buf[:80])
    tid, method = m.group(1), m.group(2)
    end_line = b"\r\n-------" + tid
    head_end = buf.find(b"\r\n\r\n")
    bodiless = buf.find(end_line)
    if head_end < 0 or (0 <= bodiless < head_end):
        # No body: the end-line follows the headers.
        headers, rest = buf[:bodiless], buf[bodiless + 2:]
        payload = b""
    else:
        headers, rest = buf[:head_end], buf[head_end + 4:]
        while True:
            i = rest.find(end_line)
            if i >= 0 and len(rest) >= i + len(end_line) + 3:
                break
            got = tls.recv(65536)
            if not got:
                sys.exit("relay closed the connection")
            rest += got
        payload, rest = rest[:i], rest[i + 2:]
    # rest starts with the end-line: 7 dashes, tid, flag, CRLF.
    flag = rest[7 + len(tid):8 + len(tid)]
    buf = rest[7 + len(tid) + 3:]
    hdr = dict(
        (k.strip().lower(), v.strip())
        for k, _, v in (l.partition(b":") for l in headers.split(b"\r\n")[1:]))
    if method != b"SEND":
        continue
    mid = hdr.get(b"message-id", b"")
    body.setdefault(mid, bytearray()).extend(payload)
    if hdr.get(b"failure-report", b"yes") != b"no":
        tls.sendall(b"MSRP %s 200 OK\r\nTo-Path: %s\r\nFrom-Path: %s\r\n-------%s$\r\n" % (
            tid, hdr[b"from-path"].split()[-1], own_uri.encode(), tid))
    if flag == b"$" and payload:
        data = bytes(body[mid])
        print("sha256", hashlib.sha256(data).hexdigest(), len(data), flush=True)
        tls.close()
        break
