#!/usr/bin/env bash
# Installs Kamailio (Debian's `kamailio` package: tm, sl, rr, registrar,
# usrloc, textops, siputils, rtpengine) for control/tests/e2e_kamailio.rs.
# Idempotent: does nothing when a `kamailio` binary is already there.
# The tests run their own kamailio in the foreground on 127.0.0.1; the
# package's system service is stopped and disabled so that it holds no port.
set -euo pipefail

if command -v kamailio >/dev/null 2>&1; then
    echo "kamailio already installed: $(command -v kamailio)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

# Keep the postinst from starting the service where invoke-rc.d honours
# policy-rc.d (containers without systemd).
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi

$SUDO apt-get update
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends kamailio

# Where systemd runs, make sure no system kamailio holds 5060.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $SUDO systemctl stop kamailio.service 2>/dev/null || true
    $SUDO systemctl disable kamailio.service 2>/dev/null || true
fi

command -v kamailio >/dev/null
kamailio -v | head -n 1
