//! One chat run: its sessions set up, every sender at its rate, then
//! what arrived counted (lost messages, missing and duplicate
//! notifications) and every latency merged.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use hdrhistogram::Histogram;
use serde_json::json;

use super::messages::cpim;
use super::readers::Sent;
use super::setup::{setup_baseline, setup_relay};
use crate::cli::ChatArgs;
use crate::error::{Context, LoadError, Result};
use crate::peer::{Endpoint, SharedWriter};
use crate::rate::Schedule;
use crate::scenario::Env;
use crate::scenario::fanout::Mode;
use crate::stats::histogram;
use crate::sync::lock;
use crate::sys::CpuMeter;

/// One run's outcome.
#[derive(Debug)]
pub struct ChatRun {
    /// Where the messages went.
    pub mode: Mode,
    /// Send → device latency, every device merged.
    pub device: Histogram<u64>,
    /// Send → first delivery notification.
    pub notify: Histogram<u64>,
    /// Messages sent per session.
    pub messages: u64,
    /// Messages the devices did not get.
    pub lost: u64,
    /// Notifications beyond the first per message.
    pub duplicates: u64,
    /// Messages without any notification (IMDN on).
    pub unnotified: u64,
    /// Cores the relay used.
    pub relay_cores: Option<f64>,
    /// Cores this tool used.
    pub tool_cores: Option<f64>,
}

/// Runs one chat load in `mode` (through the relay: over TLS with `tls`).
pub fn run_once(mode: Mode, tls: bool, env: &Env, a: &ChatArgs, tag: &str) -> Result<ChatRun> {
    let imdn = a.imdn == "on";
    let n = ((a.rate * a.duration).ceil() as u64).max(1);
    let base = Instant::now();
    let mut sessions = match mode {
        Mode::Relay => setup_relay(env, tls, a, base, imdn, n, tag)?,
        m => setup_baseline(m, a, base, imdn, n, env.timeout)?,
    };
    let relay_cpu = (mode == Mode::Relay)
        .then_some(env.pid)
        .flatten()
        .map(CpuMeter::start);
    let tool_cpu = CpuMeter::start(std::process::id());
    let size = usize::try_from(a.size).map_err(|_| LoadError::Args("size too large".into()))?;
    let start = Instant::now() + Duration::from_millis(20);
    let mut threads = Vec::new();
    for (s, sess) in sessions.iter_mut().enumerate() {
        let outs = std::mem::take(&mut sess.outs);
        let sent = sess.sent.clone();
        let rate = a.rate;
        threads.push(
            std::thread::Builder::new()
                .name(format!("chat-send-{s}"))
                .spawn(move || {
                    send_loop(
                        s,
                        outs,
                        &sent,
                        base,
                        Schedule::new(start, rate),
                        n,
                        size,
                        imdn,
                    )
                })
                .context(|| "spawn a chat sender".into())?,
        );
    }
    for t in threads {
        t.join()
            .map_err(|_| LoadError::Msrp("a chat sender panicked".into()))??;
    }
    // Everything sent: wait for the stragglers (bounded).
    let want_rx = n * a.devices as u64;
    let deadline = Instant::now() + Duration::from_secs(10).min(env.timeout);
    while Instant::now() < deadline {
        let rx_ok = sessions
            .iter()
            .all(|s| s.received.load(Ordering::Relaxed) >= want_rx);
        let nt_ok = !imdn
            || sessions
                .iter()
                .all(|s| s.notified.load(Ordering::Relaxed) >= n);
        if rx_ok && nt_ok {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // Duplicates arrive after the first: give them a moment.
    std::thread::sleep(Duration::from_millis(100));
    let relay_cores = relay_cpu.and_then(|m| m.cores());
    let tool_cores = tool_cpu.cores();
    let mut run = ChatRun {
        mode,
        device: histogram(),
        notify: histogram(),
        messages: n,
        lost: 0,
        duplicates: 0,
        unnotified: 0,
        relay_cores,
        tool_cores,
    };
    for sess in sessions {
        if let Some(call) = &sess.call {
            let _ = env
                .ctl
                .call(json!({"command": "delete", "call-id": call, "from-tag": "chat"}));
        }
        run.lost += want_rx.saturating_sub(sess.received.load(Ordering::Relaxed));
        for c in sess.counts.iter() {
            match c.load(Ordering::Relaxed) {
                0 if imdn => run.unnotified += 1,
                0 => {}
                k => run.duplicates += u64::from(k - 1),
            }
        }
        for d in sess.devices {
            d.shutdown();
            let (h, _) = d.join()?;
            let _ = run.device.add(&h.hist);
        }
        for s in sess.senders {
            s.shutdown();
            let (h, _) = s.join()?;
            let _ = run.notify.add(&h.hist);
        }
    }
    // The direct baseline has M notifications per message by design.
    if mode != Mode::Relay {
        run.duplicates = 0;
    }
    Ok(run)
}

#[allow(clippy::too_many_arguments)]
fn send_loop(
    s: usize,
    mut outs: Vec<(SharedWriter, Endpoint)>,
    sent: &Sent,
    base: Instant,
    sched: Schedule,
    n: u64,
    size: usize,
    imdn: bool,
) -> Result<()> {
    let mut buf = BytesMut::with_capacity(1024 + size);
    for i in 0..n {
        let wait = sched.wait(i, Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        let body = cpim(s, i, size, imdn);
        // Message-IDs have at least 4 characters (RFC 4975 §9).
        let mid = format!("chat-{i}");
        let now = Instant::now();
        let ns =
            u64::try_from(now.saturating_duration_since(base).as_nanos()).unwrap_or(u64::MAX - 1);
        if let Some(slot) = usize::try_from(i).ok().and_then(|i| sent.get(i)) {
            slot.store(ns + 1, Ordering::Release);
        }
        for (w, ep) in &mut outs {
            buf.clear();
            ep.message(&mut buf, mid.as_bytes(), b"message/cpim", &body);
            std::io::Write::write_all(&mut *lock(w), &buf)
                .context(|| "chat sender write".into())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod wire_tests {
    use super::*;
    use msrp_relay::msrp::{Decoder, Event, Limits};

    /// Every message id the sender uses is valid MSRP (≥ 4 characters).
    #[test]
    fn many_messages_decode() {
        let mut ep = Endpoint::new(
            "c0s0",
            "msrp://127.0.0.1:9/a;tcp",
            "msrp://127.0.0.1:9/b;tcp",
        );
        let mut wire = BytesMut::new();
        for i in 0..500u64 {
            ep.message(
                &mut wire,
                format!("chat-{i}").as_bytes(),
                b"message/cpim",
                &cpim(0, i, 200, false),
            );
        }
        let mut dec = Decoder::new(Limits::default());
        dec.feed(wire.freeze());
        let mut ends = 0;
        let mut errs = Vec::new();
        loop {
            match dec.poll() {
                Ok(None) => break,
                Ok(Some(Event::End(_))) => ends += 1,
                Ok(Some(_)) => {}
                Err(e) => errs.push(e.to_string()),
            }
        }
        assert_eq!((ends, errs.len()), (500, 0), "{errs:?}");
    }
}
