//! The load tool end to end: each scenario run small with `--spawn` (the
//! tool starts the relay as its own child process), as a user would run
//! it. Only outcomes are checked (exit status, byte-exact devices, no
//! message lost), never timings.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{row, run};

#[test]
fn fanout_1_session_3_devices_with_baselines() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("fanout.json");
    let plots = dir.path().join("plots");
    let out = run(
        &[
            "fanout",
            "--spawn",
            "-m",
            "3",
            "--size",
            "1M",
            "--chunk",
            "64k",
            "--late",
            "1",
            "--slow",
            "1",
            "--slow-rate",
            "8M",
            "--baseline",
            "direct,tcp",
            "--timeout",
            "60",
            "--json",
            json.to_str().unwrap(),
            "--plot",
            plots.to_str().unwrap(),
        ],
        Duration::from_secs(120),
    );
    assert!(out.contains("aggregate to devices"), "{out}");
    let rep: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(rep["scenario"], "fanout");
    let agg = row(&rep, "aggregate to devices");
    assert!(agg["relay-median"].as_f64().unwrap() > 0.0);
    assert!(agg["direct-median"].as_f64().unwrap() > 0.0);
    assert!(agg["tcp-median"].as_f64().unwrap() > 0.0);
    // The detail lists every device of the relay run, all byte-exact,
    // each told to hang up after its last byte.
    let devices = rep["detail"]["cases"][0]["runs"][0]["devices"]
        .as_array()
        .unwrap();
    assert_eq!(devices.len(), 3);
    for d in devices {
        assert_eq!(d["exact"], true, "{d}");
        assert_eq!(d["bytes"], 1 << 20);
        assert_eq!(d["leg_done_reason"], "drained", "{d}");
    }
    assert!(plots.join("throughput.svg").exists());
}

#[test]
fn chat_1_session_3_devices_with_imdn() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("chat.json");
    run(
        &[
            "chat",
            "--spawn",
            "-m",
            "3",
            "--rate",
            "200",
            "--duration",
            "1",
            "--imdn",
            "on",
            "--baseline",
            "direct",
            "--timeout",
            "60",
            "--json",
            json.to_str().unwrap(),
        ],
        Duration::from_secs(120),
    );
    let rep: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(row(&rep, "messages lost")["relay"][0], 0.0);
    assert_eq!(row(&rep, "messages lost")["direct"][0], 0.0);
    assert_eq!(row(&rep, "messages without notification")["relay"][0], 0.0);
    // CPM-MLD-024: three devices' notifications reach the sender once.
    assert_eq!(row(&rep, "duplicate notifications")["relay"][0], 0.0);
    assert!(
        row(&rep, "send → device p99")["relay-median"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}

#[test]
fn demo_small_and_setup_and_idle() {
    let out = run(
        &["demo", "--size", "2M", "--slow-rate", "4M"],
        Duration::from_secs(120),
    );
    assert!(
        out.contains("every device got all 2097152 bytes, byte-exact"),
        "{out}"
    );
    assert_eq!(out.matches("leg-done ").count(), 3, "{out}");

    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("setup.json");
    run(
        &[
            "setup",
            "--cycles",
            "500",
            "--device-bye",
            "--json",
            json.to_str().unwrap(),
        ],
        Duration::from_secs(120),
    );
    let rep: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(row(&rep, "error replies")["relay"][0], 0.0);

    let json = dir.path().join("idle.json");
    run(
        &["idle", "--legs", "100", "--json", json.to_str().unwrap()],
        Duration::from_secs(120),
    );
    let rep: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(row(&rep, "legs the relay counts")["relay"][0], 100.0);
}
