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

/// Runs `msrp-load ARGS… --json FILE` and returns the JSON report.
fn run_report(args: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let mut argv: Vec<&str> = args.split_whitespace().collect();
    argv.extend(["--json", json.to_str().unwrap()]);
    run(&argv, BOUND);
    serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap()
}

#[test]
fn fanout_over_tls_beside_plain_with_late_and_slow_devices() {
    let rep = run_report(
        "fanout --tls -m 3 --size 1M --late 1 --slow 1 --slow-rate 8M --no-slow-reference --timeout 60",
    );
    let case = "1x3 1 slow 1 late";
    for c in [case.to_owned(), format!("{case} tls")] {
        assert!(row_in(&rep, &c, "aggregate to devices")["relay-median"].as_f64() > Some(0.0));
        // CPU is read in clock ticks (10 ms): a 1 MiB plain run may use
        // less than one. The row must be there with a number.
        assert!(
            row_in(&rep, &c, "relay CPU per GB delivered")["relay-median"]
                .as_f64()
                .is_some_and(|v| v >= 0.0)
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
    let rep = run_report("chat --tls -m 3 --rate 200 --duration 1 --timeout 60");
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

    let rep = run_report("chat --serial --tls -m 2 --messages 50");
    assert_eq!(row_in(&rep, "1x2 tls", "REPORTs missing")["relay"][0], 0.0);
}

#[test]
fn idle_and_handshake_over_tls() {
    let rep = run_report("idle --tls --legs 100");
    for case in ["100 legs", "100 legs tls"] {
        assert_eq!(
            row_in(&rep, case, "legs the relay counts")["relay"][0],
            100.0
        );
    }
    assert!(row_in(&rep, "100 legs tls", "TLS extra RSS per leg")["relay"][0].is_f64());

    let rep = run_report("handshake --legs 100");
    for case in ["100 legs", "100 legs tls"] {
        assert!(row_in(&rep, case, "new legs per second")["relay"][0].as_f64() > Some(0.0));
    }
    assert!(row_in(&rep, "100 legs tls", "new legs per second, TLS / plain")["relay"][0].is_f64());
}
