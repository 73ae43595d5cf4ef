//! `fanout`: a file from each of S senders to M devices, through the
//! relay and, in the same run, through the baselines; every device's bytes
//! verified.
//!
//! This module runs the scenario case by case. `params`: a run's shape
//! and the devices' roles; `setup`: a run's devices and senders, how each
//! is connected and started; `relay` and `baseline`: one run through the
//! relay or a baseline; `verify`: the device's reader that checks every
//! byte; `report`: what a run yields, its rows and its plot.

mod baseline;
mod params;
mod relay;
mod report;
mod setup;
mod verify;

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::Env;
use crate::cli::{Baseline, FanoutArgs, Verify};
use crate::error::{LoadError, Result};
use crate::report::{Compare, Report};
use crate::stats::{fmt_size, median};

pub use baseline::run_baseline;
pub use params::{Mode, Params, Role};
pub use relay::{Observer, run_relay};
pub use report::{DeviceResult, RunResult};
pub use verify::{FileSink, Progress};

use report::{add_rows, plot, tls_ratios};
use verify::check_exact;

/// The `fanout` scenario.
pub fn run(a: &FanoutArgs) -> Result<Report> {
    let env = Env::open_tls(&a.common, "", &a.tls)?;
    let file = crate::peer::make_file(
        usize::try_from(a.size).map_err(|_| LoadError::Args("size too large".into()))?,
    );
    let digest = hex::encode(Sha256::digest(&file));
    let mut rep = Report::new("fanout", a.common.runs as usize);
    let mut detail = Vec::new();
    let mut plot_points: Vec<(Mode, usize, f64, Option<f64>)> = Vec::new();
    for run in 0..a.common.runs as usize {
        for &m in &a.devices {
            let p = Params {
                sessions: a.sessions,
                devices: m,
                size: a.size,
                chunk: a.chunk,
                window: a.window,
                slow: a.slow,
                slow_rate: a.slow_rate,
                late: a.late,
                late_at: a.late_at,
                verify: a.verify,
                read_buf: a.read_buf as usize,
                names: Vec::new(),
                tls: None,
            };
            p.check()?;
            let mut case = format!("{}x{}", a.sessions, m);
            if a.slow > 0 {
                case.push_str(&format!(" {} slow", a.slow));
            }
            if a.late > 0 {
                case.push_str(&format!(" {} late", a.late));
            }
            let label = format!("run {} {case}", run + 1);
            let r = relay_case(&env, &p, &file, &format!("r{run}m{m}"), &label)?;
            add_rows(&mut rep, &case, &r);
            plot_points.push((Mode::Relay, m, r.aggregate_gbps, r.median_gbps(Role::Fast)));
            // The same case with every relay leg over TLS, right after.
            let tls_run = match &env.tls {
                Some(cfg) => {
                    let pt = Params {
                        tls: Some(cfg.clone()),
                        ..p.clone()
                    };
                    let tcase = format!("{case} tls");
                    let label = format!("run {} {tcase}", run + 1);
                    let rt = relay_case(&env, &pt, &file, &format!("r{run}m{m}tls"), &label)?;
                    add_rows(&mut rep, &tcase, &rt);
                    tls_ratios(&mut rep, &tcase, &rt, &r);
                    Some(rt)
                }
                None => None,
            };
            let mut runs = vec![r];
            for b in &a.common.baseline {
                let mode = match b {
                    Baseline::Direct => Mode::Direct,
                    Baseline::Tcp => Mode::Tcp,
                };
                let r = run_baseline(mode, &p, &file, env.timeout)?;
                check_exact(&r)?;
                add_rows(&mut rep, &case, &r);
                plot_points.push((mode, m, r.aggregate_gbps, r.median_gbps(Role::Fast)));
                runs.push(r);
            }
            if a.slow > 0 && !a.no_slow_reference {
                let p0 = Params {
                    slow: 0,
                    ..p.clone()
                };
                let r0 = run_relay(&env, &p0, &file, &format!("r{run}m{m}ref"), &mut |_| {})?;
                check_exact(&r0)?;
                settle(&env);
                // The same fast devices (by index) with and without slow peers.
                let fast_idx: Vec<String> = runs[0]
                    .devices
                    .iter()
                    .filter(|d| d.role == Role::Fast)
                    .map(|d| d.name.clone())
                    .collect();
                let without: Vec<f64> = r0
                    .devices
                    .iter()
                    .filter(|d| fast_idx.contains(&d.name))
                    .map(|d| d.gbps)
                    .collect();
                if let (Some(w), Some(f)) = (median(&without), runs[0].median_gbps(Role::Fast)) {
                    rep.row(
                        &case,
                        "fast devices, no slow peers (median)",
                        "GB/s",
                        Compare::None,
                    )
                    .relay
                    .push(w);
                    rep.row(&case, "fast with slow / without", "×", Compare::None)
                        .relay
                        .push(f / w);
                }
            }
            if run + 1 == a.common.runs as usize {
                detail.push(json!({"case": case, "runs": runs, "tls": tls_run}));
            }
        }
    }
    rep.notes.push(format!(
        "file {} in {} chunks, window {}, every device verified byte-exact ({}); SHA-256 {}",
        fmt_size(a.size),
        fmt_size(a.chunk),
        a.window,
        match a.verify {
            Verify::Sha256 => "SHA-256 of what it received",
            Verify::Compare => "each byte compared with the file",
            Verify::None => "byte count only",
        },
        &digest[..16]
    ));
    if a.common.baseline.contains(&Baseline::Tcp) && (a.late > 0 || a.slow > 0) {
        rep.notes.push("tcp baseline: late devices get the stream from the start; a slow device slows every device (no per-leg backpressure)".into());
    }
    if env.tls.is_some() {
        super::versus::note(
            &mut rep,
            "a `tls` case is the case before it with the sender's and every device's leg over TLS, run right after it on the same relay",
        );
    }
    rep.detail = json!({"cases": detail});
    if let Some(dir) = &a.common.plot {
        plot(dir, &plot_points)?;
    }
    Ok(rep)
}

/// One relay run with a progress bar, checked byte-exact, then settled.
fn relay_case(env: &Env, p: &Params, file: &Bytes, tag: &str, label: &str) -> Result<RunResult> {
    let total = (p.sessions * p.devices) as u64 * p.size;
    let pb = super::bar(total, label);
    let r = run_relay(env, p, file, tag, &mut |v| {
        pb.set_position(
            v.iter()
                .flatten()
                .map(|d| d.bytes.load(Ordering::Relaxed))
                .sum(),
        );
    })?;
    pb.finish_and_clear();
    check_exact(&r)?;
    settle(env);
    Ok(r)
}

/// Lets the relay finish the sessions just run (their `session-ended`),
/// so that runs do not overlap; forgets the events.
fn settle(env: &Env) {
    let _ = env.ctl.events.wait(Duration::from_secs(10), |ev| {
        let ended: std::collections::HashSet<&str> = ev
            .iter()
            .filter(|(_, e)| e["event"] == "session-ended")
            .filter_map(|(_, e)| e["call-id"].as_str())
            .collect();
        let started: std::collections::HashSet<&str> = ev
            .iter()
            .filter_map(|(_, e)| e["call-id"].as_str())
            .collect();
        started.is_subset(&ended)
    });
    env.ctl.events.clear();
}
