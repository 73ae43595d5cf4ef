//! OPS-SERVICE (issue 13): the systemd unit in `docs/deploy/` passes
//! `systemd-analyze verify` (with `ExecStart` pointed at the binary this
//! build made), and keeps the settings the relay depends on: `Type=notify`
//! (the relay sends READY/RELOADING/STOPPING), `ExecReload` by SIGHUP, a
//! stop timeout longer than the default drain.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

const UNIT: &str = include_str!("../../docs/deploy/msrp-relay.service");

#[test]
fn ops_service_unit_keeps_notify_reload_and_drain_settings() {
    for line in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "KillSignal=SIGTERM",
        "NoNewPrivileges=yes",
    ] {
        assert!(UNIT.lines().any(|l| l == line), "unit lacks {line}");
    }
    // systemd must not SIGKILL the relay while it drains: the stop timeout
    // is longer than the default drain and the cut's grace after it.
    let stop_s: u64 = UNIT
        .lines()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .expect("TimeoutStopSec")
        .parse()
        .unwrap();
    let drain = std::time::Duration::from_millis(
        msrp_control::config::Timeouts::default().shutdown_drain_ms,
    ) + msrp_control::daemon::BYE_GRACE;
    assert!(
        std::time::Duration::from_secs(stop_s) > drain,
        "TimeoutStopSec={stop_s} is not longer than the drain ({drain:?})"
    );
}

#[test]
fn ops_service_unit_passes_systemd_analyze_verify() {
    let Ok(out) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("skipped: no systemd-analyze on this machine");
        return;
    };
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("msrp-relay.service");
    let text = UNIT.replace(
        "/usr/local/bin/msrp-relay",
        env!("CARGO_BIN_EXE_msrp-relay"),
    );
    std::fs::write(&unit, text).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
}
