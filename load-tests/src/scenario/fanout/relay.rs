//! One fan-out run through the relay: the front end offers every
//! device's branch, the on-time devices answer and connect, the senders
//! send, the late devices join at their point, and every device is told
//! to hang up.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::params::{Mode, Params, Role};
use super::report::{RunResult, finish};
use super::setup::{Dev, FROM_TAG, Sess, answer, connect_device, device_result, spawn_sender};
use super::verify::Progress;
use crate::control::{offer_sdp, relay_endpoint};
use crate::error::{LoadError, Result};
use crate::peer::Endpoint;
use crate::scenario::Env;
use crate::sys::CpuMeter;
use crate::wire;

/// Called about every 50 ms with each session's devices' counters.
pub type Observer<'a> = &'a mut dyn FnMut(&[Vec<Arc<Progress>>]);

/// Runs one fan-out through the relay.
pub fn run_relay(
    env: &Env,
    p: &Params,
    file: &Bytes,
    tag: &str,
    observe: Observer<'_>,
) -> Result<RunResult> {
    p.check()?;
    let size = file.len() as u64;
    let digest = hex::encode(Sha256::digest(file));
    let base = Instant::now();
    let scheme = crate::tls::scheme(p.tls.is_some());
    let mut sessions = Vec::new();
    let mut sender_targets = Vec::new();
    for s in 0..p.sessions {
        let call = format!("{tag}-{s}");
        let sender_path = format!("{scheme}://127.0.0.1:9/{tag}snd{s};tcp");
        let mut devs = Vec::new();
        for j in 0..p.devices {
            let branch = format!("b{j}");
            let r = env.ctl.ok(json!({"command": "offer", "call-id": call, "from-tag": FROM_TAG, "via-branch": branch,
                "kind": "file-transfer", "sdp": offer_sdp(&sender_path, Some(size))}))?;
            let (relay_uri, addr) = relay_endpoint(r["sdp"].as_str().unwrap_or_default())?;
            devs.push(Dev {
                name: p.name(s, j),
                branch,
                path: format!("{scheme}://127.0.0.1:9/{tag}s{s}d{j};tcp"),
                relay_uri,
                addr,
                role: p.role(j),
                progress: Arc::default(),
                conn: None,
                accepted: None,
            });
        }
        sessions.push(Sess {
            call,
            devs,
            sent: Arc::default(),
            sender: None,
            sender_done: None,
            sender_conn: None,
            late_done: p.late == 0,
            deleted: false,
        });
        sender_targets.push(sender_path);
    }
    // On-time devices answer and connect; the first answer is forwarded.
    let mut sender_ends = Vec::new();
    for sess in &mut sessions {
        let mut fwd = None;
        for d in sess.devs.iter_mut().filter(|d| d.role != Role::Late) {
            let r = answer(env, &sess.call, d)?;
            if r["forward"] == true {
                fwd = Some(relay_endpoint(r["sdp"].as_str().unwrap_or_default())?);
            }
            connect_device(env, p, file, base, d)?;
            d.accepted = Some(Duration::ZERO);
        }
        sender_ends.push(fwd.ok_or_else(|| {
            LoadError::Control(format!("{}: no answer was forwarded", sess.call))
        })?);
    }
    let relay_cpu = env.pid.map(CpuMeter::start);
    let tool_cpu = CpuMeter::start(std::process::id());
    let t0 = Instant::now();
    for ((sess, (relay_uri, addr)), local) in
        sessions.iter_mut().zip(&sender_ends).zip(&sender_targets)
    {
        let stream = wire::connect(*addr, p.tls.as_ref(), (None, None), env.timeout)?;
        let ep = Endpoint::new(&format!("{}snd", sess.call), local, relay_uri);
        sess.sender = Some(spawn_sender(
            sess.call.clone(),
            stream,
            ep,
            p,
            file,
            sess.sent.clone(),
            t0,
            env.timeout,
            false,
        )?);
    }
    let late_bytes = (p.late_at * size as f64) as u64;
    let mut last_change = (Instant::now(), 0u64);
    let mut last_tick = Instant::now();
    let mut failure: Option<LoadError> = None;
    loop {
        let mut all_done = true;
        for sess in &mut sessions {
            if !sess.late_done && sess.sent.load(Ordering::Relaxed) >= late_bytes {
                for d in sess.devs.iter_mut().filter(|d| d.role == Role::Late) {
                    answer(env, &sess.call, d)?;
                    connect_device(env, p, file, base, d)?;
                    d.accepted = Some(t0.elapsed());
                }
                sess.late_done = true;
            }
            if sess.sender.as_ref().is_some_and(JoinHandle::is_finished)
                && let Some(h) = sess.sender.take()
            {
                {
                    match h.join() {
                        Ok(Ok((took, conn))) => {
                            sess.sender_done = Some(took);
                            sess.sender_conn = Some(conn);
                        }
                        Ok(Err(e)) => failure = Some(e),
                        Err(_) => {
                            failure = Some(LoadError::Msrp("a sender thread panicked".into()))
                        }
                    }
                }
            }
            if sess.sender_done.is_some() && sess.late_done && !sess.deleted {
                env.ctl
                    .ok(json!({"command": "delete", "call-id": sess.call, "from-tag": FROM_TAG}))?;
                sess.deleted = true;
            }
            let devices_done = sess.devs.iter().all(|d| d.progress.done().is_some());
            all_done &= sess.deleted && devices_done;
        }
        if failure.is_some() || all_done {
            break;
        }
        if env.ctl.events.closed() {
            failure = Some(LoadError::Relay(format!(
                "the relay closed the control connection mid-run: {}",
                summary(&sessions)
            )));
            break;
        }
        let total: u64 = sessions
            .iter()
            .flat_map(|s| &s.devs)
            .map(|d| d.progress.bytes.load(Ordering::Relaxed))
            .sum::<u64>()
            + sessions
                .iter()
                .map(|s| s.sent.load(Ordering::Relaxed))
                .sum::<u64>();
        if total != last_change.1 {
            last_change = (Instant::now(), total);
        } else if last_change.0.elapsed() > env.timeout {
            failure = Some(LoadError::Timeout(format!(
                "no progress for {:?}: {}",
                env.timeout,
                summary(&sessions)
            )));
            break;
        }
        if last_tick.elapsed() >= Duration::from_millis(50) {
            let view: Vec<Vec<Arc<Progress>>> = sessions
                .iter()
                .map(|s| s.devs.iter().map(|d| d.progress.clone()).collect())
                .collect();
            observe(&view);
            last_tick = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(if p.devices * p.sessions > 100 {
            10
        } else {
            2
        }));
    }
    let relay_cores = relay_cpu.and_then(|m| m.cores());
    let relay_cpu_s = relay_cpu.and_then(|m| m.seconds());
    let tool_cores = tool_cpu.cores();
    let view: Vec<Vec<Arc<Progress>>> = sessions
        .iter()
        .map(|s| s.devs.iter().map(|d| d.progress.clone()).collect())
        .collect();
    observe(&view);
    if let Some(e) = failure {
        return Err(e);
    }
    // Every device is told to hang up (leg-done), then the session ends.
    let want: usize = p.devices;
    let calls: Vec<String> = sessions.iter().map(|s| s.call.clone()).collect();
    let ok = env.ctl.events.wait(env.timeout, |ev| {
        calls.iter().all(|c| {
            crate::control::count(ev, "leg-done", c) + crate::control::count(ev, "leg-failed", c)
                >= want
        })
    });
    if !ok {
        return Err(LoadError::Timeout(format!(
            "leg-done for every device: {}",
            summary(&sessions)
        )));
    }
    let events = env.ctl.events.all();
    let mut results = Vec::new();
    for (s, sess) in sessions.iter_mut().enumerate() {
        for d in &mut sess.devs {
            let ev = events.iter().find(|(_, e)| {
                e["call-id"] == sess.call.as_str()
                    && e["via-branch"] == d.branch.as_str()
                    && (e["event"] == "leg-done" || e["event"] == "leg-failed")
            });
            let sink = d.close()?;
            results.push(device_result(
                s,
                d,
                sink.as_ref(),
                &digest,
                size,
                (base, t0),
                ev,
            ));
        }
        sess.sender_conn = None;
    }
    let sender_s: Vec<f64> = sessions
        .iter()
        .filter_map(|s| s.sender_done)
        .map(|d| d.as_secs_f64())
        .collect();
    let mut r = finish(Mode::Relay, results, sender_s, relay_cores, tool_cores);
    let delivered: u64 = r.devices.iter().map(|d| d.bytes).sum();
    r.relay_cpu_s_per_gb = relay_cpu_s
        .filter(|_| delivered > 0)
        .map(|c| c / (delivered as f64 / 1e9));
    r.tls = p.tls.is_some();
    Ok(r)
}

fn summary(sessions: &[Sess]) -> String {
    sessions
        .iter()
        .flat_map(|s| &s.devs)
        .map(|d| format!("{}={}", d.name, d.progress.bytes.load(Ordering::Relaxed)))
        .take(12)
        .collect::<Vec<_>>()
        .join(" ")
}
