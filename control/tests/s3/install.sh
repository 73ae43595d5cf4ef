#!/usr/bin/env bash
# Installs moto's S3-compatible server (`moto_server`, from PyPI) for the
# S3 backend tests of the content store (control/tests/e2e_store.rs,
# control/src/store/tests.rs). Idempotent: does nothing when `moto_server`
# is already on PATH. The tests start their own server on 127.0.0.1.
set -euo pipefail

if command -v moto_server >/dev/null 2>&1; then
    echo "moto_server already installed: $(command -v moto_server)"
    exit 0
fi

python3 -m pip install --quiet --disable-pip-version-check 'moto[server]==5.2.6'
command -v moto_server >/dev/null || {
    echo "moto_server is not on PATH after pip install (pip's scripts dir: $(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'))" >&2
    exit 1
}
moto_server --version 2>/dev/null || true
