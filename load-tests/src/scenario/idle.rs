//! `idle`: many accepted, bound, idle legs; the relay's resident memory
//! per leg (`VmRSS` before and after).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use msrp_relay::msrp::{Decoder, Event, Limits};
use serde_json::json;

use super::Env;
use crate::cli::IdleArgs;
use crate::control::{answer_sdp, offer_sdp, relay_endpoint};
use crate::error::{Context, LoadError, Result};
use crate::peer::{Endpoint, connect};
use crate::report::{Compare, Report};
use crate::sys::rss_kib;

/// Connects, writes a bodiless SEND and reads until its response; returns
/// the open connection.
pub fn bind_blocking(addr: SocketAddr, ep: &mut Endpoint, wait: Duration) -> Result<TcpStream> {
    let mut s = connect(addr, Some(4096), Some(4096))?;
    let (tid, frame) = ep.bind_frame();
    s.write_all(&frame).context(|| "idle: bind".into())?;
    s.set_read_timeout(Some(wait))
        .context(|| "idle: timeout".into())?;
    let mut dec = Decoder::new(Limits::default());
    let mut buf = [0u8; 2048];
    loop {
        let n = s
            .read(&mut buf)
            .context(|| "idle: read the bind response".into())?;
        if n == 0 {
            return Err(LoadError::Msrp(
                "idle: the relay closed a binding connection".into(),
            ));
        }
        dec.feed(Bytes::copy_from_slice(&buf[..n]));
        while let Ok(Some(ev)) = dec.poll() {
            if let Event::Response(r) = ev
                && r.tid.as_bytes() == tid.as_bytes()
            {
                return if r.code.0 == 200 {
                    Ok(s)
                } else {
                    Err(LoadError::Msrp(format!("idle: bind answered {}", r.code.0)))
                };
            }
        }
    }
}

/// The `idle` scenario.
pub fn run(a: &IdleArgs) -> Result<Report> {
    let per = a.devices + 1;
    let sessions = a.legs.div_ceil(per).max(1);
    let mut rep = Report::new("idle", a.common.runs as usize);
    for run in 0..a.common.runs as usize {
        // A fresh spawned relay per run: memory the previous run freed
        // would otherwise be reused and hide what a leg costs.
        let env = Env::open(&a.common)?;
        let pid = env.pid.ok_or_else(|| {
            LoadError::Relay("the relay's pid is unknown: cannot read its memory".into())
        })?;
        std::thread::sleep(Duration::from_millis(300));
        let before =
            rss_kib(pid).ok_or_else(|| LoadError::Relay("cannot read the relay's VmRSS".into()))?;
        let t0 = Instant::now();
        // Control: every session offered and answered.
        let mut work: Vec<(SocketAddr, Endpoint)> = Vec::new();
        let mut calls = Vec::new();
        for s in 0..sessions {
            let call = format!("idle{run}-{s}");
            let sender_path = format!("msrp://127.0.0.1:9/i{run}s{s};tcp");
            let mut legs = Vec::new();
            for j in 0..a.devices {
                let r = env.ctl.ok(json!({"command": "offer", "call-id": call, "from-tag": "f", "via-branch": format!("b{j}"), "kind": "chat", "sdp": offer_sdp(&sender_path, None)}))?;
                legs.push(relay_endpoint(r["sdp"].as_str().unwrap_or_default())?);
            }
            for (j, (relay_uri, addr)) in legs.into_iter().enumerate() {
                let path = format!("msrp://127.0.0.1:9/i{run}s{s}d{j};tcp");
                let r = env.ctl.ok(json!({"command": "answer", "call-id": call, "from-tag": "f", "via-branch": format!("b{j}"), "to-tag": format!("t{j}"), "sdp": answer_sdp(&path, false)}))?;
                if r["forward"] == true {
                    let (uri, saddr) = relay_endpoint(r["sdp"].as_str().unwrap_or_default())?;
                    work.push((saddr, Endpoint::new(&format!("i{s}s"), &sender_path, &uri)));
                }
                work.push((addr, Endpoint::new(&format!("i{s}d{j}"), &path, &relay_uri)));
            }
            calls.push(call);
        }
        // MSRP: every leg connected and bound, a few threads at a time.
        let pb = super::bar(work.len() as u64, &format!("run {} legs", run + 1));
        pb.set_style(
            indicatif::ProgressStyle::with_template("{msg:>24} [{bar:40}] {pos}/{len}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let threads = a.threads.max(1);
        let chunk = work.len().div_ceil(threads).max(1);
        let mut handles = Vec::new();
        let wait = env.timeout;
        for part in work.chunks(chunk) {
            let part: Vec<(SocketAddr, String, String, String)> = part
                .iter()
                .map(|(ad, ep)| {
                    (
                        *ad,
                        ep.local_uri.clone(),
                        ep.remote_uri.clone(),
                        ep.local_uri.clone(),
                    )
                })
                .collect();
            let pb = pb.clone();
            handles.push(std::thread::spawn(move || -> Result<Vec<TcpStream>> {
                let mut out = Vec::with_capacity(part.len());
                for (i, (addr, local, remote, _)) in part.into_iter().enumerate() {
                    let mut ep = Endpoint::new(&format!("i{i}"), &local, &remote);
                    out.push(bind_blocking(addr, &mut ep, wait)?);
                    pb.inc(1);
                }
                Ok(out)
            }));
        }
        let mut streams = Vec::new();
        for h in handles {
            streams.extend(
                h.join()
                    .map_err(|_| LoadError::Msrp("an idle connector panicked".into()))??,
            );
        }
        pb.finish_and_clear();
        let setup_s = t0.elapsed().as_secs_f64();
        std::thread::sleep(Duration::from_secs(1));
        let after =
            rss_kib(pid).ok_or_else(|| LoadError::Relay("cannot read the relay's VmRSS".into()))?;
        let stats = env.ctl.ok(json!({"command": "statistics"}))?;
        let legs = streams.len();
        let case = format!("{legs} legs");
        let per_leg = (after.saturating_sub(before)) as f64 / legs.max(1) as f64;
        rep.row(&case, "relay RSS before", "MiB", Compare::None)
            .relay
            .push(before as f64 / 1024.0);
        rep.row(&case, "relay RSS with the legs", "MiB", Compare::None)
            .relay
            .push(after as f64 / 1024.0);
        rep.row(&case, "RSS per accepted leg", "KiB", Compare::None)
            .relay
            .push(per_leg);
        rep.row(&case, "legs the relay counts", "", Compare::None)
            .relay
            .push(stats["legs"].as_f64().unwrap_or(0.0));
        rep.row(&case, "set-up time", "s", Compare::None)
            .relay
            .push(setup_s);
        // Tear down. A spawned relay is simply stopped (each run has its
        // own); a running one gets every session deleted and drained.
        if env.target.spawned() {
            continue;
        }
        for call in &calls {
            let _ = env
                .ctl
                .call(json!({"command": "delete", "call-id": call, "from-tag": "f"}));
        }
        drop(streams);
        let _ = env.ctl.events.wait(Duration::from_secs(30), |ev| {
            ev.iter()
                .filter(|(_, e)| e["event"] == "session-ended")
                .count()
                >= calls.len()
        });
        env.ctl.events.clear();
    }
    rep.notes.push(format!(
        "{} devices + 1 sender per session, every leg answered, connected and bound (bodiless SEND), then idle; per leg = (VmRSS after − before) / legs",
        a.devices
    ));
    Ok(rep)
}
