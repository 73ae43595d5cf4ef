//! `setup`: offer → answer → delete cycles on one control connection,
//! pipelined. Phase 1 runs as fast as the relay answers (with a bound on
//! requests in flight) and gives cycles per second; phase 2 runs at a set
//! rate (default half of phase 1's) and gives each command's latency.
//!
//! This module runs both phases and reports them. `json`: the cycles on
//! the control socket; [`ng`]: the same over the rtpengine ng protocol
//! (`--ng`); `phase`: what a phase yields, and the reply count both
//! wait on.

mod json;
pub mod ng;
mod phase;

use std::time::Duration;

use serde_json::json;

use super::Env;
use crate::cli::SetupArgs;
use crate::error::{LoadError, Result};
use crate::report::{Compare, Report};
use crate::stats::Percentiles;

pub use json::{cycle_lines, phase};
pub use phase::{Done, Phase, cycles_per_s};

/// The `setup` scenario.
pub fn run(a: &SetupArgs) -> Result<Report> {
    let env = if a.ng {
        Env::open_with(&a.common, "[ng]\nlisten-udp = \"127.0.0.1:0\"\n")?
    } else {
        Env::open(&a.common)?
    };
    let ng = match (a.ng, a.ng_addr.or(env.target.ng_udp)) {
        (false, _) => None,
        (true, Some(addr)) => Some(addr),
        (true, None) => {
            return Err(LoadError::Control(
                "setup --ng: no ng UDP address (a running relay needs --ng-addr)".into(),
            ));
        }
    };
    let mut rep = Report::new("setup", a.common.runs as usize);
    let mut curves = Vec::new();
    let per = match (ng, a.device_bye) {
        (Some(_), _) => ng::PER,
        (None, true) => 4,
        (None, false) => 3,
    };
    let run_phase = |tag: &str, rate: Option<f64>| match ng {
        Some(addr) => ng::phase(addr, env.timeout, tag, a.cycles, a.window, rate),
        None => phase(&env, tag, a.cycles, per, a.window, rate),
    };
    for run in 0..a.common.runs as usize {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.enable_steady_tick(Duration::from_millis(200));
        pb.set_message(format!(
            "run {}: {} cycles, window {}",
            run + 1,
            a.cycles,
            a.window
        ));
        let max = run_phase(&format!("s{run}max"), None)?;
        let rate = if a.rate > 0.0 {
            a.rate
        } else {
            (max.cycles_per_s / 2.0).max(1.0)
        };
        pb.set_message(format!("run {}: {rate:.0} cycles/s", run + 1));
        let paced = run_phase(&format!("s{run}paced"), Some(rate))?;
        pb.finish_and_clear();
        let pm = Percentiles::of(&max.latency);
        let pp = Percentiles::of(&paced.latency);
        let case = if ng.is_some() {
            "1 UDP socket (ng)"
        } else {
            "1 connection"
        };
        rep.row(
            case,
            &format!("cycles/s, window {}", a.window),
            "/s",
            Compare::None,
        )
        .relay
        .push(max.cycles_per_s);
        rep.row(case, "commands/s", "/s", Compare::None)
            .relay
            .push(max.cycles_per_s * per as f64);
        rep.row(case, "command p99 at max", "µs", Compare::None)
            .relay
            .push(pm.p99_us);
        rep.row(case, "paced rate", "/s", Compare::None)
            .relay
            .push(rate);
        rep.row(case, "command p50 paced", "µs", Compare::None)
            .relay
            .push(pp.p50_us);
        rep.row(case, "command p99 paced", "µs", Compare::None)
            .relay
            .push(pp.p99_us);
        rep.row(case, "command p99.9 paced", "µs", Compare::None)
            .relay
            .push(pp.p999_us);
        rep.row(case, "error replies", "", Compare::None)
            .relay
            .push((max.errors + paced.errors) as f64);
        if ng.is_some() {
            rep.row(case, "retransmitted requests", "", Compare::None)
                .relay
                .push((max.retransmits + paced.retransmits) as f64);
        }
        if let Some(e) = max.first_error.or(paced.first_error) {
            rep.notes.push(format!("first error reply: {e}"));
        }
        if run + 1 == a.common.runs as usize {
            curves.push(("at max".to_owned(), Percentiles::curve(&max.latency)));
            curves.push((
                format!("at {rate:.0} cycles/s"),
                Percentiles::curve(&paced.latency),
            ));
        }
    }
    // Sessions left behind by the cycles (they should all be gone).
    std::thread::sleep(Duration::from_millis(500));
    if let Ok(st) = env.ctl.ok(json!({"command": "statistics"})) {
        rep.notes.push(format!(
            "after the runs the relay holds {} sessions, {} legs",
            st["sessions"], st["legs"]
        ));
    }
    if ng.is_some() {
        rep.notes.push(format!(
            "a cycle = ng offer (branch b1) + offer (branch b2) + answer (b1) + delete (the sender's BYE), as Kamailio's rtpengine module sends them for a call forked to 2 devices; {} cycles per phase, one UDP socket; no MSRP connection is made",
            a.cycles
        ));
    } else {
        rep.notes.push(format!(
            "a cycle = offer (chat, 1 branch) + answer + {}delete, {} cycles per phase, one connection; no MSRP connection is made",
            if a.device_bye { "delete of the branch (the device's BYE) + " } else { "" },
            a.cycles
        ));
    }
    rep.detail = json!({"curves": curves.iter().map(|(n, c)| json!({"series": n, "points": c})).collect::<Vec<_>>()});
    if let Some(dir) = &a.common.plot {
        crate::plot::latency(dir, "setup-latency", "control command latency", &curves)?;
    }
    Ok(rep)
}
