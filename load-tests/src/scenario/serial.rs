//! `chat --serial`: S senders, each sending `--messages` chat messages one
//! at a time with `Success-Report: yes`, waiting for the message's success
//! REPORT before the next (issue 17: such a sender stalled when a REPORT
//! was lost, or waited for the engine's 250 ms tick). Devices answer each
//! SEND `200` and then, in a write of their own, its REPORT — the way the
//! third-party clients seen in the field do.
//!
//! Measured: send → REPORT latency at the sender (p50, p99), serial
//! messages per second per session, REPORTs that never came (the session
//! stops at the first, after `--timeout`), and through the relay the
//! REPORTs beyond one per message (CPM-MLD-024). The direct baseline: each
//! sender writes to its M devices itself and counts the first REPORT.

use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use hdrhistogram::Histogram;
use msrp_relay::msrp::{Flag, Method, RequestHead};
use serde_json::json;

use super::Env;
use super::fanout::Mode;
use crate::cli::{Baseline, ChatArgs};
use crate::control::{answer_sdp, offer_sdp, relay_endpoint};
use crate::error::{Context, LoadError, Result};
use crate::net::connect;
use crate::peer::{Conn, Endpoint, Handler, ReadOpts, SharedWriter, is_content};
use crate::report::{Compare, Report};
use crate::stats::{Percentiles, histogram, record};
use crate::sync::lock;

const OPTS: ReadOpts = ReadOpts {
    buf: 64 << 10,
    rate: None,
};

/// A device: a success REPORT for each whole message that asks for one,
/// after the read's `200`s, in its own write.
#[derive(Debug)]
struct Device {
    ep: Endpoint,
    cur: Option<(bytes::Bytes, bytes::Bytes, u64)>,
    due: Vec<(bytes::Bytes, bytes::Bytes, u64)>,
}

impl Handler for Device {
    fn request(&mut self, h: &RequestHead, _now: Instant) {
        self.cur = (is_content(h) && h.wants_success_report())
            .then(|| {
                let mid = h.message_id.clone()?;
                let total = h.byte_range.and_then(|r| r.total.or(r.end))?;
                Some((h.from_path.first().raw().clone(), mid, total))
            })
            .flatten();
    }

    fn end(&mut self, flag: Flag, _now: Instant, _out: &mut BytesMut) {
        if let Some(c) = self.cur.take()
            && flag == Flag::Complete
        {
            self.due.push(c);
        }
    }

    fn after_write(&mut self, out: &mut BytesMut) {
        for (to, mid, len) in self.due.drain(..) {
            self.ep.success_report(out, &to, &mid, len);
        }
    }
}

/// A sender's reader: each REPORT's message number goes to the send loop.
#[derive(Debug)]
struct Sender {
    tx: mpsc::Sender<u64>,
}

impl Handler for Sender {
    fn request(&mut self, h: &RequestHead, _now: Instant) {
        if h.method != Method::Report || h.status.as_ref().is_none_or(|s| s.code.0 != 200) {
            return;
        }
        let n = h.message_id.as_deref().and_then(|m| {
            std::str::from_utf8(m)
                .ok()?
                .strip_prefix("ser-")?
                .parse()
                .ok()
        });
        if let Some(n) = n {
            let _ = self.tx.send(n);
        }
    }
}

/// One session: where the sender writes, its readers, the REPORTs.
struct Session {
    outs: Vec<(SharedWriter, Endpoint)>,
    reports: mpsc::Receiver<u64>,
    conns: (Vec<Conn<Sender>>, Vec<Conn<Device>>),
    call: Option<String>,
}

fn device(
    name: &str,
    stream: impl Into<crate::wire::Wire>,
    ep: &mut Endpoint,
    bind: bool,
    env: &Env,
) -> Result<Conn<Device>> {
    let h = Device {
        ep: Endpoint::new(&format!("r{name}"), &ep.local_uri, &ep.remote_uri),
        cur: None,
        due: Vec::new(),
    };
    Conn::start(name, stream, ep, h, OPTS, bind, env.timeout)
}

fn setup_relay(env: &Env, tls: bool, a: &ChatArgs, s: usize, tag: &str) -> Result<Session> {
    let (tx, reports) = mpsc::channel();
    let call = format!("{tag}-{s}");
    let scheme = crate::tls::scheme(tls);
    let cfg = env.tls.as_ref().filter(|_| tls);
    let dial = |addr| crate::wire::connect(addr, cfg, (None, None), env.timeout);
    let sender_path = format!("{scheme}://127.0.0.1:9/{tag}s{s};tcp");
    let mut legs = Vec::new();
    for j in 0..a.devices {
        let r = env.ctl.ok(json!({"command": "offer", "call-id": call, "from-tag": "serial", "via-branch": format!("b{j}"), "kind": "chat", "sdp": offer_sdp(&sender_path, None)}))?;
        legs.push(relay_endpoint(r["sdp"].as_str().unwrap_or_default())?);
    }
    let (mut fwd, mut devices) = (None, Vec::new());
    for (j, (relay_uri, addr)) in legs.iter().enumerate() {
        let path = format!("{scheme}://127.0.0.1:9/{tag}s{s}d{j};tcp");
        let r = env.ctl.ok(json!({"command": "answer", "call-id": call, "from-tag": "serial", "via-branch": format!("b{j}"), "to-tag": format!("t{j}"), "sdp": answer_sdp(&path, false)}))?;
        if r["forward"] == true {
            fwd = Some(relay_endpoint(r["sdp"].as_str().unwrap_or_default())?);
        }
        let mut ep = Endpoint::new(&format!("s{s}d{j}"), &path, relay_uri);
        let name = format!("s{s}d{j}");
        devices.push(device(&name, dial(*addr)?, &mut ep, true, env)?);
    }
    let (relay_uri, addr) =
        fwd.ok_or_else(|| LoadError::Control("no chat answer was forwarded".into()))?;
    let mut ep = Endpoint::new(&format!("s{s}"), &sender_path, &relay_uri);
    let conn = Conn::start(
        &format!("s{s}"),
        dial(addr)?,
        &mut ep,
        Sender { tx },
        OPTS,
        true,
        env.timeout,
    )?;
    Ok(Session {
        outs: vec![(conn.writer.clone(), ep)],
        reports,
        conns: (vec![conn], devices),
        call: Some(call),
    })
}

fn setup_direct(env: &Env, a: &ChatArgs, s: usize) -> Result<Session> {
    let (tx, reports) = mpsc::channel();
    let mut sess = Session {
        outs: Vec::new(),
        reports,
        conns: (Vec::new(), Vec::new()),
        call: None,
    };
    for j in 0..a.devices {
        let l = TcpListener::bind("127.0.0.1:0").context(|| "serial baseline: bind".into())?;
        let addr: SocketAddr = l
            .local_addr()
            .context(|| "serial baseline: address".into())?;
        let snd = connect(addr, None, None)?;
        let (dev, _) = l.accept().context(|| "serial baseline: accept".into())?;
        let _ = dev.set_nodelay(true);
        let dev_path = format!("msrp://127.0.0.1:{}/s{s}d{j};tcp", addr.port());
        let snd_path = format!("msrp://127.0.0.1:9/s{s}s{j};tcp");
        let mut dep = Endpoint::new(&format!("s{s}d{j}"), &dev_path, &snd_path);
        sess.conns
            .1
            .push(device(&format!("s{s}d{j}"), dev, &mut dep, false, env)?);
        let mut ep = Endpoint::new(&format!("s{s}s{j}"), &snd_path, &dev_path);
        let h = Sender { tx: tx.clone() };
        let conn = Conn::start(
            &format!("s{s}s{j}"),
            snd,
            &mut ep,
            h,
            OPTS,
            false,
            env.timeout,
        )?;
        sess.outs.push((conn.writer.clone(), ep));
        sess.conns.0.push(conn);
    }
    Ok(sess)
}

/// What one session's send loop saw.
struct Seen {
    hist: Histogram<u64>,
    elapsed: Duration,
    missing: u64,
    extra: u64,
}

/// Sends `n` messages one at a time, each after the previous one's REPORT.
fn send_loop(sess: &mut Session, n: u64, size: usize, wait: Duration) -> Result<Seen> {
    let body = vec![b'x'; size];
    let mut buf = BytesMut::with_capacity(512 + size);
    let mut seen = Seen {
        hist: histogram(),
        elapsed: Duration::ZERO,
        missing: 0,
        extra: 0,
    };
    let start = Instant::now();
    for i in 0..n {
        // Message-IDs have at least 4 characters (RFC 4975 §9).
        let mid = format!("ser-{i}");
        let t0 = Instant::now();
        for (w, ep) in &mut sess.outs {
            buf.clear();
            ep.reported_message(&mut buf, mid.as_bytes(), b"text/plain", &body);
            std::io::Write::write_all(&mut *lock(w), &buf)
                .context(|| "serial sender write".into())?;
        }
        let deadline = t0 + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match sess.reports.recv_timeout(left) {
                Ok(k) if k == i => {
                    record(&mut seen.hist, t0.elapsed());
                    break;
                }
                // Another device's REPORT of an earlier message.
                Ok(_) => seen.extra += 1,
                Err(_) => {
                    seen.missing = n - i;
                    seen.elapsed = start.elapsed();
                    return Ok(seen);
                }
            }
        }
    }
    seen.elapsed = start.elapsed();
    Ok(seen)
}

fn run_once(mode: Mode, tls: bool, env: &Env, a: &ChatArgs, tag: &str) -> Result<Vec<Seen>> {
    let size = usize::try_from(a.size).map_err(|_| LoadError::Args("size too large".into()))?;
    let mut sessions = (0..a.sessions)
        .map(|s| match mode {
            Mode::Relay => setup_relay(env, tls, a, s, tag),
            _ => setup_direct(env, a, s),
        })
        .collect::<Result<Vec<_>>>()?;
    let wait = env.timeout;
    let seen = std::thread::scope(|sc| {
        let hs: Vec<_> = sessions
            .iter_mut()
            .map(|sess| sc.spawn(move || send_loop(sess, a.messages, size, wait)))
            .collect();
        hs.into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| LoadError::Msrp("a serial sender panicked".into()))?
            })
            .collect::<Result<Vec<_>>>()
    })?;
    for mut sess in sessions {
        if let Some(call) = &sess.call {
            let _ = env
                .ctl
                .call(json!({"command": "delete", "call-id": call, "from-tag": "serial"}));
        }
        // REPORTs of the last message from other devices, already in.
        while sess.reports.try_recv().is_ok() {}
        for c in sess.conns.0.drain(..) {
            c.shutdown();
            c.join()?;
        }
        for c in sess.conns.1.drain(..) {
            c.shutdown();
            c.join()?;
        }
    }
    Ok(seen)
}

/// The `chat --serial` scenario.
pub fn run(a: &ChatArgs) -> Result<Report> {
    if a.messages == 0 || a.devices == 0 || a.sessions == 0 {
        return Err(LoadError::Args(
            "messages, devices and sessions must be > 0".into(),
        ));
    }
    let env = Env::open_tls(&a.common, "", &a.tls)?;
    let mut rep = Report::new("chat --serial", a.common.runs as usize);
    let case0 = format!("{}x{}", a.sessions, a.devices);
    for run in 0..a.common.runs as usize {
        let mut modes = vec![(Mode::Relay, false)];
        if env.tls.is_some() {
            modes.push((Mode::Relay, true));
        }
        if a.common.baseline.contains(&Baseline::Direct) {
            modes.push((Mode::Direct, false));
        }
        let mut plain = None;
        for (mode, tls) in modes {
            let sfx = if tls { " tls" } else { "" };
            let case = format!("{case0}{sfx}");
            let pb = indicatif::ProgressBar::new_spinner();
            pb.set_message(format!(
                "run {} {mode:?}{sfx}: {} serial messages",
                run + 1,
                a.messages
            ));
            pb.enable_steady_tick(Duration::from_millis(200));
            let tag = format!("serial{run}{}", if tls { "t" } else { "" });
            let seen = run_once(mode, tls, &env, a, &tag)?;
            pb.finish_and_clear();
            let mut hist = histogram();
            for s in &seen {
                let _ = hist.add(&s.hist);
            }
            let p = Percentiles::of(&hist);
            let secs = seen
                .iter()
                .map(|s| s.elapsed.as_secs_f64())
                .fold(0.0, f64::max);
            let done = seen.iter().map(|s| s.hist.len()).min().unwrap_or(0);
            let rate = done as f64 / secs.max(1e-9);
            let mut add = |metric: &str, unit: &str, cmp: Compare, v: f64| {
                let row = rep.row(&case, metric, unit, cmp);
                match mode {
                    Mode::Relay => row.relay.push(v),
                    _ => row.direct.push(v),
                }
            };
            add("send → REPORT p50", "µs", Compare::Difference, p.p50_us);
            add("send → REPORT p99", "µs", Compare::Difference, p.p99_us);
            add("serial messages per session", "msg/s", Compare::Ratio, rate);
            add(
                "REPORTs missing",
                "",
                Compare::None,
                seen.iter().map(|s| s.missing).sum::<u64>() as f64,
            );
            if mode == Mode::Relay {
                add(
                    "REPORTs beyond one per message",
                    "",
                    Compare::None,
                    seen.iter().map(|s| s.extra).sum::<u64>() as f64,
                );
                match plain {
                    None => plain = Some(rate),
                    Some(pl) => super::versus::ratio(
                        &mut rep,
                        &case,
                        "serial messages per session",
                        Some(rate),
                        Some(pl),
                    ),
                }
            }
        }
        env.ctl.events.clear();
    }
    rep.notes.push(format!(
        "{} messages per session of {} B text/plain, Success-Report: yes, each sent after the previous one's REPORT; devices answer 200, then the REPORT in a write of their own; latency from the sender's write to its decode of the REPORT",
        a.messages, a.size
    ));
    if env.tls.is_some() {
        super::versus::note(
            &mut rep,
            "the `tls` case is the case before it with every leg over TLS, run right after it on the same relay",
        );
    }
    if a.common.baseline.contains(&Baseline::Direct) {
        rep.notes.push(
            "direct: the sender writes to each device itself and counts the first REPORT".into(),
        );
    }
    Ok(rep)
}
