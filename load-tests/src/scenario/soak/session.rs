//! One soak session: a file transfer or a chat, to three devices of one
//! user, one of them joining late or leaving part-way; what it verified.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use msrp_relay::msrp::{Flag, RequestHead};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::super::Env;
use super::super::chat::{cpim, delivered, imdn_target};
use super::super::fanout::{FileSink, Progress};
use crate::cli::Verify;
use crate::control::{answer_sdp, offer_sdp, relay_endpoint};
use crate::error::{LoadError, Result};
use crate::peer::{AckHandler, Acks, Conn, Endpoint, Handler, ReadOpts, is_content, send_file};
use crate::wire;

const FROM_TAG: &str = "soak";

/// What one session proved.
#[derive(Debug, Default, Clone, Copy)]
pub struct Outcome {
    /// Body bytes devices got and checked (SHA-256, or every message).
    pub bytes_verified: u64,
    /// Messages a device that stayed should have got and did not, or a
    /// file that was not byte-exact.
    pub lost: u64,
    /// Chat messages whose delivery notification reached the sender other
    /// than exactly once.
    pub notifications_wrong: u64,
    /// Chat messages sent.
    pub messages: u64,
}

type Relay = (String, std::net::SocketAddr);

fn offer(env: &Env, call: &str, kind: &str, sdp: &str) -> Result<Vec<Relay>> {
    (0..3)
        .map(|j| {
            let v = env.ctl.ok(
                json!({"command": "offer", "call-id": call, "from-tag": FROM_TAG,
                "via-branch": format!("b{j}"), "kind": kind, "sdp": sdp}),
            )?;
            relay_endpoint(v["sdp"].as_str().unwrap_or_default())
        })
        .collect()
}

fn answer(env: &Env, call: &str, j: usize, path: &str, file: bool) -> Result<Value> {
    env.ctl.ok(
        json!({"command": "answer", "call-id": call, "from-tag": FROM_TAG,
        "via-branch": format!("b{j}"), "to-tag": format!("t{j}"), "sdp": answer_sdp(path, file)}),
    )
}

fn connect<H: Handler + Send + 'static>(
    env: &Env,
    name: &str,
    path: &str,
    relay: &Relay,
    h: H,
    bind: bool,
) -> Result<(Conn<H>, Endpoint)> {
    let stream = wire::connect(relay.1, None, (None, None), env.timeout)?;
    let mut ep = Endpoint::new(name, path, &relay.0);
    let c = Conn::start(
        name,
        stream,
        &mut ep,
        h,
        ReadOpts::default(),
        bind,
        env.timeout,
    )?;
    Ok((c, ep))
}

/// Polls `done` (the devices' own threads set what it reads) until it
/// holds or the bound passes.
fn until(env: &Env, what: &str, mut done: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + env.timeout;
    while !done() {
        if Instant::now() > deadline {
            return Err(LoadError::Timeout(what.to_owned()));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

/// A file transfer: device 0 on time, device 1 accepts once half is sent
/// (CPM-MLD-020: it still gets all of it), device 2 leaves at 30 %.
pub fn file_transfer(env: &Env, i: u64, file: &Bytes, digest: &str) -> Result<Outcome> {
    let call = format!("soak-ft-{i}");
    let size = file.len() as u64;
    let snd_path = format!("msrp://127.0.0.1:9/sks{i};tcp");
    let relays = offer(
        env,
        &call,
        "file-transfer",
        &offer_sdp(&snd_path, Some(size)),
    )?;
    let paths: Vec<String> = (0..3)
        .map(|j| format!("msrp://127.0.0.1:9/sk{i}d{j};tcp"))
        .collect();
    let r = answer(env, &call, 0, &paths[0], true)?;
    let sender_end = relay_endpoint(r["sdp"].as_str().unwrap_or_default())?;
    answer(env, &call, 2, &paths[2], true)?;
    let base = Instant::now();
    let sink = |p: &Arc<Progress>| FileSink::new(Verify::Sha256, file.clone(), p.clone(), base);
    let progress: Vec<Arc<Progress>> = (0..3).map(|_| Arc::default()).collect();
    let (d0, _) = connect(env, "d0", &paths[0], &relays[0], sink(&progress[0]), true)?;
    let (d2, _) = connect(env, "d2", &paths[2], &relays[2], sink(&progress[2]), true)?;
    let acks = Arc::new(Acks::default());
    let (sender, mut ep) = connect(
        env,
        "snd",
        &snd_path,
        &sender_end,
        AckHandler(acks.clone()),
        false,
    )?;
    let sent = Arc::new(AtomicU64::new(0));
    let (w, f, s2, stall) = (
        sender.writer.clone(),
        file.clone(),
        sent.clone(),
        env.timeout,
    );
    let sending = std::thread::Builder::new()
        .name("soak-send".into())
        .spawn(move || send_file(&w, &mut ep, b"file-1", &f, 16 << 10, 16, &acks, &s2, stall))
        .map_err(|e| LoadError::Msrp(format!("spawn a sender: {e}")))?;
    until(env, "half of the file sent", || {
        sent.load(Ordering::Relaxed) >= size / 2
    })?;
    answer(env, &call, 1, &paths[1], true)?;
    let (d1, _) = connect(env, "d1", &paths[1], &relays[1], sink(&progress[1]), true)?;
    until(env, "device 2 at 30 %", || {
        progress[2].bytes.load(Ordering::Relaxed) * 10 >= size * 3 || progress[2].done().is_some()
    })?;
    d2.shutdown();
    sending
        .join()
        .map_err(|_| LoadError::Msrp("a sender thread panicked".into()))??;
    until(env, "devices 0 and 1 complete", || {
        progress[0].done().is_some() && progress[1].done().is_some()
    })?;
    env.ctl
        .ok(json!({"command": "delete", "call-id": call, "from-tag": FROM_TAG}))?;
    let mut out = Outcome::default();
    for d in [d0, d1] {
        d.shutdown();
        let (s, _) = d.join()?;
        if s.exact(digest) {
            out.bytes_verified += size;
        } else {
            out.lost += 1;
        }
    }
    drop(sender);
    let _ = d2.join();
    Ok(out)
}

/// A chat device: checks each whole message against what the sender sent
/// (by its Message-ID `chat-<n>`); with `notify`, answers each with a
/// `delivered` IMDN.
struct ChatDevice {
    s: usize,
    j: usize,
    size: usize,
    notify: bool,
    ep: Endpoint,
    cur: Option<u64>,
    buf: Vec<u8>,
    got: Arc<AtomicU64>,
    verified: Arc<AtomicU64>,
    bad: Arc<AtomicU64>,
}

impl Handler for ChatDevice {
    fn request(&mut self, h: &RequestHead, _now: Instant) {
        self.cur = is_content(h)
            .then(|| {
                let id = std::str::from_utf8(h.message_id.as_deref()?).ok()?;
                id.strip_prefix("chat-")?.parse().ok()
            })
            .flatten();
        self.buf.clear();
    }

    fn body(&mut self, b: &Bytes) {
        if self.cur.is_some() && self.buf.len() <= self.size + 1024 {
            self.buf.extend_from_slice(b);
        }
    }

    fn end(&mut self, flag: Flag, _now: Instant, out: &mut BytesMut) {
        let Some(n) = self.cur.take().filter(|_| flag == Flag::Complete) else {
            return;
        };
        self.got.fetch_add(1, Ordering::Relaxed);
        if self.buf == cpim(self.s, n, self.size, true) {
            self.verified
                .fetch_add(self.buf.len() as u64, Ordering::Relaxed);
        } else {
            self.bad.fetch_add(1, Ordering::Relaxed);
        }
        if self.notify {
            let body = delivered(self.s, self.j, n);
            let mid = format!("dlv-{}-{n}", self.j);
            self.ep
                .message(out, mid.as_bytes(), b"message/cpim", body.as_bytes());
        }
    }
}

/// The chat sender: counts each message's delivery notifications.
struct ChatSender {
    counts: Arc<Vec<AtomicU32>>,
    content: bool,
    body: Vec<u8>,
}

impl Handler for ChatSender {
    fn request(&mut self, h: &RequestHead, _now: Instant) {
        self.content = is_content(h);
        self.body.clear();
    }

    fn body(&mut self, b: &Bytes) {
        if self.content && self.body.len() < 8192 {
            self.body.extend_from_slice(b);
        }
    }

    fn end(&mut self, flag: Flag, _now: Instant, _out: &mut BytesMut) {
        if let Some(c) = (self.content && flag == Flag::Complete)
            .then(|| imdn_target(&self.body))
            .flatten()
            .and_then(|n| self.counts.get(n as usize))
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A chat of `messages` messages asking for delivery notifications:
/// devices 0 and 1 notify each, device 2 leaves after half. The sender
/// must get exactly one notification per message (CPM-MLD-004/024).
pub fn chat(env: &Env, i: u64, messages: u64, size: usize) -> Result<Outcome> {
    let call = format!("soak-chat-{i}");
    let s = i as usize;
    let snd_path = format!("msrp://127.0.0.1:9/skc{i};tcp");
    let relays = offer(env, &call, "chat", &offer_sdp(&snd_path, None))?;
    let paths: Vec<String> = (0..3)
        .map(|j| format!("msrp://127.0.0.1:9/skc{i}d{j};tcp"))
        .collect();
    let got: Vec<Arc<AtomicU64>> = (0..3).map(|_| Arc::default()).collect();
    let verified = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(AtomicU64::new(0));
    let mut devs = Vec::new();
    let mut sender_end = None;
    for j in 0..3 {
        let r = answer(env, &call, j, &paths[j], false)?;
        if r["forward"] == true {
            sender_end = Some(relay_endpoint(r["sdp"].as_str().unwrap_or_default())?);
        }
        let mut ep = Endpoint::new(&format!("c{j}"), &paths[j], &relays[j].0);
        let h = ChatDevice {
            s,
            j,
            size,
            notify: j < 2,
            ep: Endpoint::new(&format!("n{j}"), &paths[j], &relays[j].0),
            cur: None,
            buf: Vec::new(),
            got: got[j].clone(),
            verified: verified.clone(),
            bad: bad.clone(),
        };
        let stream = wire::connect(relays[j].1, None, (None, None), env.timeout)?;
        devs.push(Conn::start(
            &format!("c{j}"),
            stream,
            &mut ep,
            h,
            ReadOpts::default(),
            true,
            env.timeout,
        )?);
    }
    let sender_end =
        sender_end.ok_or_else(|| LoadError::Control(format!("{call}: no answer forwarded")))?;
    let counts: Arc<Vec<AtomicU32>> = Arc::new((0..messages).map(|_| AtomicU32::new(0)).collect());
    let h = ChatSender {
        counts: counts.clone(),
        content: false,
        body: Vec::new(),
    };
    let (sender, mut ep) = connect(env, "cs", &snd_path, &sender_end, h, false)?;
    let mut left = None;
    for n in 0..messages {
        if n == messages / 2 {
            let d2 = devs.pop();
            if let Some(d) = &d2 {
                d.shutdown();
            }
            left = d2;
        }
        let mut b = BytesMut::new();
        let body = cpim(s, n, size, true);
        ep.message(
            &mut b,
            format!("chat-{n}").as_bytes(),
            b"message/cpim",
            &body,
        );
        sender.write(&b)?;
    }
    let stayed = |j: usize| got[j].load(Ordering::Relaxed) >= messages;
    let notified = || counts.iter().all(|c| c.load(Ordering::Relaxed) >= 1);
    let waited = until(env, "chat delivered and notified", || {
        stayed(0) && stayed(1) && notified()
    });
    env.ctl
        .ok(json!({"command": "delete", "call-id": call, "from-tag": FROM_TAG}))?;
    let mut out = Outcome {
        messages,
        ..Outcome::default()
    };
    if waited.is_err() {
        out.lost = (0..2)
            .map(|j| messages.saturating_sub(got[j].load(Ordering::Relaxed)))
            .sum();
    }
    out.lost += bad.load(Ordering::Relaxed);
    out.notifications_wrong = counts
        .iter()
        .filter(|c| c.load(Ordering::Relaxed) != 1)
        .count() as u64;
    out.bytes_verified = verified.load(Ordering::Relaxed);
    drop((devs, left, sender));
    Ok(out)
}

/// SHA-256 of the soak's file, lowercase hex.
pub fn digest(file: &Bytes) -> String {
    hex::encode(Sha256::digest(file))
}
