//! Cycles on the control socket: each cycle's JSON request lines written
//! pipelined on one connection, a reader thread timing every reply.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Deserialize;

use super::phase::{Done, Phase, cycles_per_s};
use crate::control::{answer_sdp, offer_sdp};
use crate::error::{Context, LoadError, Result};
use crate::rate::Schedule;
use crate::scenario::Env;
use crate::stats::{histogram, record};

#[derive(Deserialize)]
struct Reply {
    id: Option<u64>,
    result: String,
    #[serde(rename = "error-reason")]
    error: Option<String>,
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
