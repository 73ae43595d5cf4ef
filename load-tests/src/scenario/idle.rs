//! `idle`: many accepted, bound, idle legs; the relay's resident memory
//! per leg (`VmRSS` before and after). With `--tls`, the same over TLS on
//! a relay of its own, beside the plain figure.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use msrp_relay::msrp::{Decoder, Event, Limits};
use rustls::ClientConfig;
use serde_json::json;

use super::Env;
use crate::cli::IdleArgs;
use crate::control::{answer_sdp, offer_sdp, relay_endpoint};
use crate::error::{Context, LoadError, Result};
use crate::peer::Endpoint;
use crate::report::{Compare, Report};
use crate::stats::{histogram, record};
use crate::sys::rss_kib;
use crate::wire::{self, Wire};

/// Connects (with `tls`, makes the handshake), writes a bodiless SEND
/// and reads until its response; returns the open connection.
pub fn bind_blocking(
    addr: SocketAddr,
    ep: &mut Endpoint,
    tls: Option<&Arc<ClientConfig>>,
    wait: Duration,
) -> Result<Wire> {
    let mut s = wire::connect(addr, tls, (Some(4096), Some(4096)), wait)?;
    let (tid, frame) = ep.bind_frame();
    s.write_all(&frame).context(|| "idle: bind".into())?;
    s.socket()
        .set_read_timeout(Some(wait))
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

/// Sessions offered and answered over the control socket, not connected.
#[derive(Debug)]
pub struct Plan {
    /// Each leg: the relay's address for it and the peer's endpoint.
    pub work: Vec<(SocketAddr, Endpoint)>,
    /// The sessions' call-ids.
    pub calls: Vec<String>,
}

/// Offers and answers `sessions` chat sessions of `devices` devices each
/// (paths with `scheme`); every device leg and the sender's leg to connect.
pub fn plan(env: &Env, tag: &str, sessions: usize, devices: usize, scheme: &str) -> Result<Plan> {
    let mut p = Plan {
        work: Vec::new(),
        calls: Vec::new(),
    };
    for s in 0..sessions {
        let call = format!("{tag}-{s}");
        let sender_path = format!("{scheme}://127.0.0.1:9/{tag}s{s};tcp");
        let mut legs = Vec::new();
        for j in 0..devices {
            let r = env.ctl.ok(json!({"command": "offer", "call-id": call, "from-tag": "f", "via-branch": format!("b{j}"), "kind": "chat", "sdp": offer_sdp(&sender_path, None)}))?;
            legs.push(relay_endpoint(r["sdp"].as_str().unwrap_or_default())?);
        }
        for (j, (relay_uri, addr)) in legs.into_iter().enumerate() {
            let path = format!("{scheme}://127.0.0.1:9/{tag}s{s}d{j};tcp");
            let r = env.ctl.ok(json!({"command": "answer", "call-id": call, "from-tag": "f", "via-branch": format!("b{j}"), "to-tag": format!("t{j}"), "sdp": answer_sdp(&path, false)}))?;
            if r["forward"] == true {
                let (uri, saddr) = relay_endpoint(r["sdp"].as_str().unwrap_or_default())?;
                p.work
                    .push((saddr, Endpoint::new(&format!("i{s}s"), &sender_path, &uri)));
            }
            p.work
                .push((addr, Endpoint::new(&format!("i{s}d{j}"), &path, &relay_uri)));
        }
        p.calls.push(call);
    }
    Ok(p)
}

/// Connects and binds every leg of `work`, `threads` at a time; returns
/// the open connections and each leg's time from connect to its `200`.
pub fn connect_all(
    work: Vec<(SocketAddr, Endpoint)>,
    threads: usize,
    tls: Option<&Arc<ClientConfig>>,
    wait: Duration,
    pb: &indicatif::ProgressBar,
) -> Result<(Vec<Wire>, Histogram<u64>)> {
    let chunk = work.len().div_ceil(threads.max(1)).max(1);
    let mut parts = Vec::new();
    let mut it = work.into_iter().peekable();
    while it.peek().is_some() {
        parts.push(it.by_ref().take(chunk).collect::<Vec<_>>());
    }
    let mut handles = Vec::new();
    for part in parts {
        let (pb, tls) = (pb.clone(), tls.cloned());
        handles.push(
            std::thread::Builder::new()
                .name("connector".into())
                .spawn(move || -> Result<(Vec<Wire>, Histogram<u64>)> {
                    let mut out = Vec::with_capacity(part.len());
                    let mut h = histogram();
                    for (addr, mut ep) in part {
                        let t = Instant::now();
                        out.push(bind_blocking(addr, &mut ep, tls.as_ref(), wait)?);
                        record(&mut h, t.elapsed());
                        pb.inc(1);
                    }
                    Ok((out, h))
                })
                .context(|| "spawn a connector".into())?,
        );
    }
    let (mut streams, mut all) = (Vec::new(), histogram());
    for h in handles {
        let (s, hist) = h
            .join()
            .map_err(|_| LoadError::Msrp("a connector panicked".into()))??;
        streams.extend(s);
        let _ = all.add(&hist);
    }
    Ok((streams, all))
}

/// Deletes the sessions, closes the connections and waits (bounded) for
/// the relay to end the sessions; forgets the events.
pub fn teardown(env: &Env, calls: &[String], streams: Vec<Wire>) {
    for call in calls {
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

/// A progress bar counting legs.
pub fn leg_bar(len: usize, msg: &str) -> indicatif::ProgressBar {
    let pb = super::bar(len as u64, msg);
    pb.set_style(
        indicatif::ProgressStyle::with_template("{msg:>24} [{bar:40}] {pos}/{len}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    pb
}

/// One run over one transport on a relay of its own; returns RSS per leg.
fn measure(a: &IdleArgs, rep: &mut Report, run: usize, tls: bool) -> Result<(String, f64)> {
    // A fresh spawned relay per run: memory the previous run freed
    // would otherwise be reused and hide what a leg costs.
    let opts = crate::cli::TlsArgs {
        tls,
        ..a.tls.clone()
    };
    let env = Env::open_tls(&a.common, "", &opts)?;
    let pid = env.pid.ok_or_else(|| {
        LoadError::Relay("the relay's pid is unknown: cannot read its memory".into())
    })?;
    let per = a.devices + 1;
    let sessions = a.legs.div_ceil(per).max(1);
    std::thread::sleep(Duration::from_millis(300));
    let before =
        rss_kib(pid).ok_or_else(|| LoadError::Relay("cannot read the relay's VmRSS".into()))?;
    let t0 = Instant::now();
    let tag = format!("idle{run}{}", if tls { "t" } else { "" });
    let p = plan(&env, &tag, sessions, a.devices, env.scheme())?;
    let pb = leg_bar(p.work.len(), &format!("run {} legs", run + 1));
    let (streams, _) = connect_all(p.work, a.threads, env.tls.as_ref(), env.timeout, &pb)?;
    pb.finish_and_clear();
    let setup_s = t0.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(1));
    let after =
        rss_kib(pid).ok_or_else(|| LoadError::Relay("cannot read the relay's VmRSS".into()))?;
    let stats = env.ctl.ok(json!({"command": "statistics"}))?;
    let legs = streams.len();
    let case = format!("{legs} legs{}", if tls { " tls" } else { "" });
    let per_leg = (after.saturating_sub(before)) as f64 / legs.max(1) as f64;
    let mut push = |metric: &str, unit: &str, v: f64| {
        rep.row(&case, metric, unit, Compare::None).relay.push(v);
    };
    push("relay RSS before", "MiB", before as f64 / 1024.0);
    push("relay RSS with the legs", "MiB", after as f64 / 1024.0);
    push("RSS per accepted leg", "KiB", per_leg);
    push(
        "legs the relay counts",
        "",
        stats["legs"].as_f64().unwrap_or(0.0),
    );
    push("set-up time", "s", setup_s);
    // Tear down. A spawned relay is simply stopped (each run has its
    // own); a running one gets every session deleted and drained.
    if !env.target.spawned() {
        teardown(&env, &p.calls, streams);
    }
    Ok((case, per_leg))
}

/// The `idle` scenario.
pub fn run(a: &IdleArgs) -> Result<Report> {
    let mut rep = Report::new("idle", a.common.runs as usize);
    for run in 0..a.common.runs as usize {
        let (_, plain) = measure(a, &mut rep, run, false)?;
        if a.tls.tls {
            let (case, tls) = measure(a, &mut rep, run, true)?;
            super::versus::ratio(&mut rep, &case, "RSS per leg", Some(tls), Some(plain));
            rep.row(&case, "TLS extra RSS per leg", "KiB", Compare::None)
                .relay
                .push(tls - plain);
        }
    }
    rep.notes.push(format!(
        "{} devices + 1 sender per session, every leg answered, connected and bound (bodiless SEND), then idle; per leg = (VmRSS after − before) / legs",
        a.devices
    ));
    if a.tls.tls {
        super::versus::note(
            &mut rep,
            "every leg of the `tls` case over TLS, on a relay of its own started after the plain case's",
        );
    }
    Ok(rep)
}
