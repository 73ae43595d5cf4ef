//! `deliver`: a file delivered from the content store (PF-DEFER, issue 12)
//! against the same file delivered live, side by side in each run.
//!
//! Each run is one file transfer to two devices of one user on a relay
//! with a local-disk `[store]`: one device answers and gets the file live
//! (the sender → relay → device path, with the store recording beside it:
//! the *baseline*); the other never answers, so the item is stored for it.
//! Then `deliver` sets up a session toward the absent device whose sender
//! is the store, and the device reads the file from it (the *relay* value).
//! Both are timed from the first byte sent (the sender's first chunk; the
//! `deliver` command) to the device's last byte, both devices check every
//! byte (SHA-256).

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::Env;
use super::fanout::{FileSink, Progress};
use crate::cli::{DeliverArgs, Verify};
use crate::control::{answer_sdp, offer_sdp, relay_endpoint};
use crate::error::{Context, LoadError, Result};
use crate::peer::{AckHandler, Acks, Conn, Endpoint, ReadOpts, make_file, send_file};
use crate::report::{Compare, Report};
use crate::stats::{fmt_size, gb_per_s};
use crate::wire;

const FROM_TAG: &str = "dl";

/// One run's two timings.
struct Run {
    live: Duration,
    stored: Duration,
}

/// A device that reads `file` from `addr` and says when it has all of it.
fn device(
    env: &Env,
    name: &str,
    path: &str,
    relay: &(String, std::net::SocketAddr),
    file: &Bytes,
    base: Instant,
) -> Result<(Conn<FileSink>, Arc<Progress>)> {
    let progress = Arc::new(Progress::default());
    let stream = wire::connect(relay.1, None, (None, None), env.timeout)?;
    let mut ep = Endpoint::new(name, path, &relay.0);
    let sink = FileSink::new(Verify::Sha256, file.clone(), progress.clone(), base);
    let conn = Conn::start(
        name,
        stream,
        &mut ep,
        sink,
        ReadOpts::default(),
        true,
        env.timeout,
    )?;
    Ok((conn, progress))
}

/// Waits for `p` to have the whole file; the time from its base.
fn done(env: &Env, p: &Progress, what: &str) -> Result<Duration> {
    let deadline = Instant::now() + env.timeout;
    loop {
        if let Some(d) = p.done() {
            return Ok(d);
        }
        if Instant::now() > deadline {
            return Err(LoadError::Timeout(format!(
                "{what}: not done in {:?}",
                env.timeout
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn check(conn: Conn<FileSink>, digest: &str, what: &str) -> Result<()> {
    conn.shutdown();
    let (sink, _) = conn.join()?;
    if sink.exact(digest) {
        Ok(())
    } else {
        Err(LoadError::Verify(format!(
            "{what}: the file is not byte-exact"
        )))
    }
}

fn one(env: &Env, a: &DeliverArgs, file: &Bytes, digest: &str, r: u32) -> Result<Run> {
    let call = format!("dl{r}");
    let absent = format!("absent-{r}");
    let sender_path = format!("msrp://127.0.0.1:9/dlsnd{r};tcp");
    let offer = offer_sdp(&sender_path, Some(file.len() as u64));
    let mut uris = Vec::new();
    for (b, inst) in [("on", format!("on-{r}")), ("off", absent.clone())] {
        let v = env.ctl.ok(
            json!({"command": "offer", "call-id": call, "from-tag": FROM_TAG,
            "via-branch": b, "kind": "file-transfer", "instance-id": inst, "sdp": offer}),
        )?;
        uris.push(relay_endpoint(v["sdp"].as_str().unwrap_or_default())?);
    }
    let on_path = format!("msrp://127.0.0.1:9/dlon{r};tcp");
    let v = env.ctl.ok(
        json!({"command": "answer", "call-id": call, "from-tag": FROM_TAG,
        "via-branch": "on", "to-tag": "on", "sdp": answer_sdp(&on_path, true)}),
    )?;
    let sender_end = relay_endpoint(v["sdp"].as_str().unwrap_or_default())?;
    let base = Instant::now();
    let (on, on_progress) = device(env, "on", &on_path, &uris[0], file, base)?;
    let acks = Arc::new(Acks::default());
    let mut ep = Endpoint::new("dlsnd", &sender_path, &sender_end.0);
    let stream = wire::connect(sender_end.1, None, (None, None), env.timeout)?;
    let sender = Conn::start(
        "dlsnd",
        stream,
        &mut ep,
        AckHandler(acks.clone()),
        ReadOpts::default(),
        false,
        env.timeout,
    )?;
    let t0 = Instant::now();
    send_file(
        &sender.writer,
        &mut ep,
        b"file-1",
        file,
        a.chunk as usize,
        a.window,
        &acks,
        &AtomicU64::new(0),
        env.timeout,
    )?;
    // The device's clock started before it connected; count from the
    // sender's first chunk.
    let live = done(env, &on_progress, "the live device")?
        .saturating_sub(t0.saturating_duration_since(base));
    check(on, digest, "the live device")?;
    env.ctl
        .ok(json!({"command": "delete", "call-id": call, "from-tag": FROM_TAG}))?;
    drop(sender);
    let mut item = None;
    let stored = env.ctl.events.wait(env.timeout, |ev| {
        item = ev
            .iter()
            .map(|(_, e)| e)
            .find(|e| e["event"] == "stored" && e["call-id"] == call.as_str())
            .and_then(|e| e["item"].as_str().map(str::to_owned));
        item.is_some()
    });
    let item = item.filter(|_| stored).ok_or_else(|| {
        LoadError::Relay(format!(
            "{call}: no `stored` event (is [store] configured?)"
        ))
    })?;

    let dcall = format!("dl{r}-store");
    let off_path = format!("msrp://127.0.0.1:9/dloff{r};tcp");
    let t1 = Instant::now();
    let v = env.ctl.ok(
        json!({"command": "deliver", "call-id": dcall, "from-tag": FROM_TAG,
        "via-branch": "again", "item": item, "device": absent}),
    )?;
    let off_end = relay_endpoint(v["sdp"].as_str().unwrap_or_default())?;
    env.ctl.ok(
        json!({"command": "answer", "call-id": dcall, "from-tag": FROM_TAG,
        "via-branch": "again", "to-tag": "off", "sdp": answer_sdp(&off_path, true)}),
    )?;
    let (off, off_progress) = device(env, "off", &off_path, &off_end, file, t1)?;
    let from_store = done(env, &off_progress, "the device served from the store")?;
    check(off, digest, "the device served from the store")?;
    // Its session ends once the store leaves and the device drained.
    let _ = env.ctl.events.wait(env.timeout, |ev| {
        ev.iter()
            .any(|(_, e)| e["event"] == "session-ended" && e["call-id"] == dcall.as_str())
    });
    env.ctl.events.clear();
    Ok(Run {
        live,
        stored: from_store,
    })
}

/// Runs the scenario; see the module docs.
pub fn run(a: &DeliverArgs) -> Result<Report> {
    let dir = tempfile::tempdir().context(|| "a temporary store directory".into())?;
    let store = dir.path().join("store");
    let env = Env::open_with(
        &a.common,
        &format!("[store]\npath = {:?}\n", store.display().to_string()),
    )?;
    let file = make_file(a.size as usize);
    let digest = hex::encode(Sha256::digest(&file));
    let mut rep = Report::new("deliver", a.common.runs as usize);
    let case = format!("1 file, {}", fmt_size(a.size));
    for r in 0..a.common.runs {
        let run = one(&env, a, &file, &digest, r)?;
        let row = rep.row(&case, "delivery to one device", "GB/s", Compare::Ratio);
        row.relay.push(gb_per_s(a.size, run.stored));
        row.direct.push(gb_per_s(a.size, run.live));
    }
    rep.notes.push(
        "relay = delivered from the store (local disk, `deliver`); direct = the same file \
         delivered live through the relay (sender → relay → device, recorded) in the same run; \
         both byte-exact (SHA-256)"
            .into(),
    );
    rep.detail = Value::Null;
    Ok(rep)
}
