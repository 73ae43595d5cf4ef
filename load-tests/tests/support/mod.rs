//! Running the tool and reading its JSON report.
#![allow(dead_code)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Runs `msrp-load args…`, killing it after `bound`; returns stdout.
pub fn run(args: &[&str], bound: Duration) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_msrp-load"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + bound;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut out = String::new();
            std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
            assert!(
                status.success(),
                "msrp-load {args:?} failed ({status}); stdout:\n{out}"
            );
            return out;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("msrp-load {args:?} did not finish within {bound:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn row<'a>(report: &'a Value, metric: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["metric"] == metric)
        .unwrap_or_else(|| panic!("no row {metric:?} in {report:#}"))
}

/// The row (`case`, `metric`).
pub fn row_in<'a>(report: &'a Value, case: &str, metric: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["case"] == case && r["metric"] == metric)
        .unwrap_or_else(|| panic!("no row {case:?} {metric:?} in {report:#}"))
}
