//! `--tls` end to end: each scenario run small against a spawned relay
//! with a `[tls]` listener and the tool's throw-away CA; the TLS case and
//! its plain twin both complete byte-exact (or without loss), and the
//! TLS / plain rows are there. Never timings.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{row_in, run};

const BOUND: Duration = Duration::from_secs(180);

fn report(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn fanout_over_tls_beside_plain_with_late_and_slow_devices() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("fanout.json");
    run(
        &[
            "fanout",
            "--tls",
            "-m",
            "3",
            "--size",
            "1M",
            "--late",
            "1",
            "--slow",
            "1",
            "--slow-rate",
            "8M",
            "--no-slow-reference",
            "--timeout",
            "60",
            "--json",
            json.to_str().unwrap(),
        ],
        BOUND,
    );
    let rep = report(&json);
    let case = "1x3 1 slow 1 late";
    for c in [case.to_owned(), format!("{case} tls")] {
        assert!(row_in(&rep, &c, "aggregate to devices")["relay-median"].as_f64() > Some(0.0));
        assert!(
            row_in(&rep, &c, "relay CPU per GB delivered")["relay-median"].as_f64() > Some(0.0)
        );
    }
    let tls = format!("{case} tls");
    assert!(row_in(&rep, &tls, "aggregate to devices, TLS / plain")["relay-median"].is_f64());
    let run = &rep["detail"]["cases"][0]["tls"];
    assert_eq!(run["tls"], true);
    let devices = run["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 3);
    for d in devices {
        assert_eq!(d["exact"], true, "{d}");
        assert_eq!(d["leg_done_reason"], "drained", "{d}");
    }
}

#[test]
fn chat_and_serial_chat_over_tls_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("chat.json");
    run(
        &[
            "chat",
            "--tls",
            "-m",
            "3",
            "--rate",
            "200",
            "--duration",
            "1",
            "--timeout",
            "60",
            "--json",
            json.to_str().unwrap(),
        ],
        BOUND,
    );
    let rep = report(&json);
    for case in ["1x3", "1x3 tls"] {
        assert_eq!(row_in(&rep, case, "messages lost")["relay"][0], 0.0);
        assert_eq!(
            row_in(&rep, case, "messages without notification")["relay"][0],
            0.0
        );
        assert_eq!(
            row_in(&rep, case, "duplicate notifications")["relay"][0],
            0.0
        );
    }
    assert!(row_in(&rep, "1x3 tls", "send → device p99, TLS − plain")["relay"][0].is_f64());

    let json = dir.path().join("serial.json");
    run(
        &[
            "chat",
            "--serial",
            "--tls",
            "-m",
            "2",
            "--messages",
            "50",
            "--json",
            json.to_str().unwrap(),
        ],
        BOUND,
    );
    let rep = report(&json);
    assert_eq!(row_in(&rep, "1x2 tls", "REPORTs missing")["relay"][0], 0.0);
}

#[test]
fn idle_and_handshake_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("idle.json");
    run(
        &[
            "idle",
            "--tls",
            "--legs",
            "100",
            "--json",
            json.to_str().unwrap(),
        ],
        BOUND,
    );
    let rep = report(&json);
    for case in ["100 legs", "100 legs tls"] {
        assert_eq!(
            row_in(&rep, case, "legs the relay counts")["relay"][0],
            100.0
        );
    }
    assert!(row_in(&rep, "100 legs tls", "TLS extra RSS per leg")["relay"][0].is_f64());

    let json = dir.path().join("handshake.json");
    run(
        &[
            "handshake",
            "--legs",
            "100",
            "--json",
            json.to_str().unwrap(),
        ],
        BOUND,
    );
    let rep = report(&json);
    for case in ["100 legs", "100 legs tls"] {
        assert!(row_in(&rep, case, "new legs per second")["relay"][0].as_f64() > Some(0.0));
    }
    assert!(row_in(&rep, "100 legs tls", "new legs per second, TLS / plain")["relay"][0].is_f64());
}
