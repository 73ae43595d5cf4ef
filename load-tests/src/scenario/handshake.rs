//! `handshake`: how many new legs per second the relay sets up — connect,
//! TLS handshake, bodiless SEND, its `200` — over TLS and, in the same
//! run on the same relay, over plain TCP. The sessions are offered and
//! answered first (not timed); then `--threads` connectors each set up
//! one leg at a time as fast as the relay answers. A spawned relay runs
//! one worker unless `--workers` says otherwise, so the figure is one
//! worker's.

use std::time::Instant;

use super::Env;
use super::idle::{connect_all, leg_bar, plan, teardown};
use crate::cli::HandshakeArgs;
use crate::error::{LoadError, Result};
use crate::report::{Compare, Report};
use crate::stats::Percentiles;
use crate::sys::CpuMeter;
use crate::wire::Wire;

/// One phase's figures.
#[derive(Debug, Clone)]
struct Phase {
    case: String,
    legs_per_s: f64,
    relay_us_per_leg: Option<f64>,
}

fn phase(
    env: &Env,
    a: &HandshakeArgs,
    rep: &mut Report,
    tag: &str,
    tls: bool,
    suite: &mut Option<String>,
) -> Result<Phase> {
    let sessions = a.legs.div_ceil(a.devices + 1).max(1);
    let scheme = crate::tls::scheme(tls);
    let p = plan(env, tag, sessions, a.devices, scheme)?;
    let legs = p.work.len();
    let pb = leg_bar(legs, &format!("{tag} {scheme} legs"));
    let relay_cpu = env.pid.map(CpuMeter::start);
    let tool_cpu = CpuMeter::start(std::process::id());
    let t0 = Instant::now();
    let cfg = if tls { env.tls.as_ref() } else { None };
    let (streams, hist) = connect_all(p.work, a.threads, cfg, env.timeout, &pb)?;
    let took = t0.elapsed().as_secs_f64();
    let relay_s = relay_cpu.and_then(|m| m.seconds());
    let relay_cores = relay_cpu.and_then(|m| m.cores());
    let tool_cores = tool_cpu.cores();
    pb.finish_and_clear();
    if let Some(Wire::Tls(s)) = streams.first() {
        suite.get_or_insert_with(|| s.describe());
    }
    let case = format!("{legs} legs{}", if tls { " tls" } else { "" });
    let ph = Phase {
        case: case.clone(),
        legs_per_s: if took > 0.0 { legs as f64 / took } else { 0.0 },
        relay_us_per_leg: relay_s.map(|s| s * 1e6 / legs.max(1) as f64),
    };
    let lat = Percentiles::of(&hist);
    let mut push = |metric: &str, unit: &str, v: Option<f64>| {
        if let Some(v) = v {
            rep.row(&case, metric, unit, Compare::None).relay.push(v);
        }
    };
    push("new legs per second", "/s", Some(ph.legs_per_s));
    push("relay CPU per new leg", "µs", ph.relay_us_per_leg);
    push(
        "legs/s one busy core would set up",
        "/s",
        ph.relay_us_per_leg.filter(|u| *u > 0.0).map(|u| 1e6 / u),
    );
    push("relay CPU", "cores", relay_cores);
    push("load tool CPU", "cores", tool_cores);
    push("leg set-up p50", "µs", Some(lat.p50_us));
    push("leg set-up p99", "µs", Some(lat.p99_us));
    teardown(env, &p.calls, streams);
    Ok(ph)
}

/// The `handshake` scenario.
pub fn run(a: &HandshakeArgs) -> Result<Report> {
    if a.legs == 0 || a.threads == 0 {
        return Err(LoadError::Args("legs and threads must be > 0".into()));
    }
    let mut common = a.common.clone();
    if common.control.is_none() && common.workers == 0 {
        common.workers = 1;
    }
    let tls = crate::cli::TlsArgs {
        tls: true,
        tls_ca: a.tls_ca.clone(),
        tls_kx: a.tls_kx,
    };
    let env = Env::open_tls(&common, "", &tls)?;
    let mut rep = Report::new("handshake", a.common.runs as usize);
    let mut suite = None;
    for run in 0..a.common.runs as usize {
        let t = phase(&env, a, &mut rep, &format!("h{run}t"), true, &mut suite)?;
        let p = phase(&env, a, &mut rep, &format!("h{run}p"), false, &mut suite)?;
        let case = t.case;
        super::versus::ratio(
            &mut rep,
            &case,
            "new legs per second",
            Some(t.legs_per_s),
            Some(p.legs_per_s),
        );
        super::versus::ratio(
            &mut rep,
            &case,
            "relay CPU per new leg",
            t.relay_us_per_leg,
            p.relay_us_per_leg,
        );
    }
    rep.notes.push(format!(
        "{} connectors, each: TCP connect, TLS handshake (tls case), bodiless SEND, wait for its 200, next leg; legs stay open until the phase ends; relay workers: {}",
        a.threads,
        if common.workers == 0 { "one per core".to_owned() } else { common.workers.to_string() },
    ));
    super::versus::note(
        &mut rep,
        &format!(
            "the `tls` case's legs over TLS ({}), then the same number over plain TCP on the same relay",
            suite.as_deref().unwrap_or("?")
        ),
    );
    Ok(rep)
}
