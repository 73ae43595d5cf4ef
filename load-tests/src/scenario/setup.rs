//! `setup`: offer → answer → delete cycles on one control connection,
//! pipelined. Phase 1 runs as fast as the relay answers (with a bound on
//! requests in flight) and gives cycles per second; phase 2 runs at a set
//! rate (default half of phase 1's) and gives each command's latency.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Deserialize;
use serde_json::json;

use super::Env;
use crate::cli::SetupArgs;
use crate::control::{answer_sdp, offer_sdp};
use crate::error::{Context, LoadError, Result};
use crate::rate::Schedule;
use crate::report::{Compare, Report};
use crate::stats::{Percentiles, histogram, record};
use crate::sync::lock;

#[derive(Deserialize)]
struct Reply {
    id: Option<u64>,
    result: String,
    #[serde(rename = "error-reason")]
    error: Option<String>,
}

/// One phase's outcome.
#[derive(Debug)]
pub struct Phase {
    /// Cycles completed per second (successful replies / commands per
    /// cycle, over last reply − first request).
    pub cycles_per_s: f64,
    /// Every command's latency (request written → reply read).
    pub latency: Histogram<u64>,
    /// Error replies.
    pub errors: u64,
    /// The first error reply.
    pub first_error: Option<String>,
    /// Requests sent again for want of a reply (ng over UDP only).
    pub retransmits: u64,
}

/// Cycles per second over `took`. Only successful replies count: an
/// error reply (e.g. `limit reached`) is fast and would flatter the rate.
pub fn cycles_per_s(total: u64, errors: u64, per: u64, took: Duration) -> f64 {
    let secs = took.as_secs_f64();
    if secs > 0.0 {
        total.saturating_sub(errors) as f64 / per as f64 / secs
    } else {
        0.0
    }
}

/// Replies counted by a reader thread, waited for by the writer.
#[derive(Debug, Default)]
pub struct Done {
    n: Mutex<u64>,
    cv: Condvar,
}

impl Done {
    /// Sets the count to `got` and wakes the writer (only on a change).
    pub fn publish(&self, got: u64) {
        let mut g = lock(&self.n);
        if *g != got {
            *g = got;
            self.cv.notify_all();
        }
    }

    /// The replies counted so far.
    pub fn get(&self) -> u64 {
        *lock(&self.n)
    }

    /// Waits until at least `need` replies were counted, for at most
    /// `timeout`; `Err` with the count reached when it runs out.
    pub fn wait_for(&self, need: u64, timeout: Duration) -> std::result::Result<(), u64> {
        let mut g = lock(&self.n);
        let deadline = Instant::now() + timeout;
        while *g < need {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(*g);
            }
            g = self
                .cv
                .wait_timeout(g, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        Ok(())
    }
}

/// The request lines of cycle `i` (`per` = 3: offer, answer, delete; 4:
/// the device's BYE, a delete of its branch, before the session's).
pub fn cycle_lines(out: &mut Vec<u8>, tag: &str, i: u64, per: u64, offer: &str, answer: &str) {
    let id = per * i;
    let _ = write!(
        out,
        "{{\"id\":{id},\"command\":\"offer\",\"call-id\":\"{tag}-{i}\",\"from-tag\":\"f\",\"via-branch\":\"b\",\"kind\":\"chat\",\"sdp\":{offer}}}\n\
         {{\"id\":{},\"command\":\"answer\",\"call-id\":\"{tag}-{i}\",\"from-tag\":\"f\",\"via-branch\":\"b\",\"to-tag\":\"t\",\"sdp\":{answer}}}\n",
        id + 1
    );
    if per == 4 {
        let _ = writeln!(
            out,
            "{{\"id\":{},\"command\":\"delete\",\"call-id\":\"{tag}-{i}\",\"from-tag\":\"f\",\"via-branch\":\"b\"}}",
            id + 2
        );
    }
    let _ = writeln!(
        out,
        "{{\"id\":{},\"command\":\"delete\",\"call-id\":\"{tag}-{i}\",\"from-tag\":\"f\"}}",
        id + per - 1
    );
}

/// Runs `cycles` cycles; `rate` cycles per second, or as fast as the relay
/// answers with at most `window` requests in flight.
pub fn phase(
    env: &Env,
    tag: &str,
    cycles: u64,
    per: u64,
    window: u64,
    rate: Option<f64>,
) -> Result<Phase> {
    let s = UnixStream::connect(&env.target.socket).context(|| "setup: connect".into())?;
    let r = s.try_clone().context(|| "setup: clone".into())?;
    let offer = serde_json::to_string(&offer_sdp("msrp://127.0.0.1:9/setup;tcp", None))
        .map_err(|e| LoadError::Output(e.to_string()))?;
    let answer = serde_json::to_string(&answer_sdp("msrp://127.0.0.1:9/setupdev;tcp", false))
        .map_err(|e| LoadError::Output(e.to_string()))?;
    let total = per * cycles;
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..total).map(|_| AtomicU64::new(0)).collect());
    let done = Arc::new(Done::default());
    let base = Instant::now();
    let (sent2, done2) = (sent.clone(), done.clone());
    let reader = std::thread::Builder::new()
        .name("setup-reader".into())
        .spawn(move || -> (Histogram<u64>, u64, Option<String>, Instant) {
            let mut h = histogram();
            let (mut errors, mut first) = (0u64, None);
            let mut rd = BufReader::with_capacity(256 << 10, r);
            let mut line = Vec::new();
            let mut got = 0u64;
            let mut last = Instant::now();
            // The writer learns the count once per read of the socket, not
            // per reply: a wake per reply costs this tool a futex call
            // each, on the same two cores as the relay.
            let publish = |got: u64| done2.publish(got);
            while got < total {
                if rd.buffer().is_empty() {
                    publish(got);
                }
                line.clear();
                if !matches!(rd.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                    break;
                }
                let now = Instant::now();
                let Ok(rep) = serde_json::from_slice::<Reply>(&line) else {
                    continue;
                };
                let Some(id) = rep.id else {
                    errors += 1;
                    continue;
                };
                if let Some(v) = usize::try_from(id)
                    .ok()
                    .and_then(|i| sent2.get(i))
                    .map(|a| a.load(Ordering::Acquire))
                    .filter(|v| *v != 0)
                {
                    record(
                        &mut h,
                        now.saturating_duration_since(base + Duration::from_nanos(v - 1)),
                    );
                }
                if rep.result != "ok" {
                    errors += 1;
                    first.get_or_insert_with(|| rep.error.unwrap_or_default());
                }
                got += 1;
                last = now;
            }
            publish(got);
            (h, errors, first, last)
        })
        .context(|| "setup: spawn reader".into())?;
    let mut w = s;
    let mut buf = Vec::with_capacity(64 << 10);
    let start = Instant::now();
    let sched = rate.map(|r| Schedule::new(start, r));
    let window = window.max(per);
    for i in 0..cycles {
        if let Some(sc) = &sched {
            let wait = sc.wait(i, Instant::now());
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
        }
        // Window: wait for replies before this cycle's three requests.
        let need = (per * i + per).saturating_sub(window);
        if done.get() < need {
            if !buf.is_empty() {
                w.write_all(&buf).context(|| "setup: write".into())?;
                buf.clear();
            }
            done.wait_for(need, env.timeout)
                .map_err(|got| LoadError::Timeout(format!("setup: replies stopped at {got}")))?;
        }
        let ns = u64::try_from(Instant::now().saturating_duration_since(base).as_nanos())
            .unwrap_or(u64::MAX - 1);
        for k in 0..per {
            if let Some(a) = usize::try_from(per * i + k).ok().and_then(|j| sent.get(j)) {
                a.store(ns + 1, Ordering::Release);
            }
        }
        cycle_lines(&mut buf, tag, i, per, &offer, &answer);
        if sched.is_some() || buf.len() >= 16 << 10 {
            w.write_all(&buf).context(|| "setup: write".into())?;
            buf.clear();
        }
    }
    if !buf.is_empty() {
        w.write_all(&buf).context(|| "setup: write".into())?;
    }
    let (latency, errors, first_error, last) = reader
        .join()
        .map_err(|_| LoadError::Control("setup reader panicked".into()))?;
    let got = done.get();
    if got < total {
        return Err(LoadError::Control(format!(
            "setup: the relay closed after {got} of {total} replies"
        )));
    }
    Ok(Phase {
        cycles_per_s: cycles_per_s(total, errors, per, last.saturating_duration_since(start)),
        latency,
        errors,
        first_error,
        retransmits: 0,
    })
}

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
        (Some(_), _) => super::setup_ng::PER,
        (None, true) => 4,
        (None, false) => 3,
    };
    let run_phase = |tag: &str, rate: Option<f64>| match ng {
        Some(addr) => super::setup_ng::phase(addr, env.timeout, tag, a.cycles, a.window, rate),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycle_lines_are_three_json_requests() {
        let mut out = Vec::new();
        cycle_lines(&mut out, "t", 5, 3, "\"o\"", "\"a\"");
        let lines: Vec<serde_json::Value> = out
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["id"], 15);
        assert_eq!(lines[1]["command"], "answer");
        assert_eq!(lines[2]["id"], 17);
        assert_eq!(lines[2]["call-id"], "t-5");
        out.clear();
        cycle_lines(&mut out, "t", 5, 4, "\"o\"", "\"a\"");
        let lines: Vec<serde_json::Value> = out
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[2]["via-branch"], "b");
        assert_eq!(lines[3]["id"], 23);
        assert!(lines[3].get("via-branch").is_none());
    }
}
