//! `chat`: S senders each send CPIM messages at a rate to their M devices;
//! latency from send to each device and, with IMDN, to the sender's one
//! delivery notification (the relay sends exactly one of the M devices'
//! notifications on).

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use hdrhistogram::Histogram;
use msrp_relay::msrp::{Flag, RequestHead};
use serde_json::json;

use super::Env;
use super::fanout::Mode;
use super::tcpfan::TcpFanout;
use crate::cli::{Baseline, ChatArgs};
use crate::control::{answer_sdp, offer_sdp, relay_endpoint};
use crate::error::{Context, LoadError, Result};
use crate::net::connect;
use crate::peer::{Conn, Endpoint, Handler, ReadOpts, SharedWriter, is_content};
use crate::rate::Schedule;
use crate::report::{Compare, Report};
use crate::stats::{Percentiles, histogram, record};
use crate::sync::lock;
use crate::sys::CpuMeter;
use crate::wire;

/// The CPIM message `n` of session `s` with `size` bytes of text.
pub fn cpim(s: usize, n: u64, size: usize, imdn: bool) -> Vec<u8> {
    let mut v = format!(
        "From: <sip:alice@example.com>\r\nTo: <sip:bob@example.com>\r\nNS: imdn <urn:ietf:params:imdn>\r\nimdn.Message-ID: {s}-{n}\r\nDateTime: 2024-01-01T00:00:00Z\r\n{}\r\nContent-Type: text/plain\r\n\r\n",
        if imdn { "imdn.Disposition-Notification: positive-delivery\r\n" } else { "" }
    )
    .into_bytes();
    v.resize(v.len() + size, b'x');
    v
}

/// The `delivered` notification device `j` sends for message `s-n`.
pub fn delivered(s: usize, j: usize, n: u64) -> String {
    format!(
        "From: <sip:bob@example.com>\r\nTo: <sip:alice@example.com>\r\nNS: imdn <urn:ietf:params:imdn>\r\nimdn.Message-ID: dlv-{j}-{n}\r\nDateTime: 2024-01-01T00:00:00Z\r\n\r\nContent-Type: message/imdn+xml\r\nContent-Disposition: notification\r\n\r\n<imdn xmlns=\"urn:ietf:params:xml:ns:imdn\"><message-id>{s}-{n}</message-id><datetime>2024-01-01T00:00:00Z</datetime><delivery-notification><status><delivered/></status></delivery-notification></imdn>"
    )
}

/// The message number in an IMDN body's `<message-id>s-n</message-id>`.
pub fn imdn_target(body: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<message-id>")? + "<message-id>".len();
    let end = start + text[start..].find("</message-id>")?;
    text[start..end].rsplit('-').next()?.parse().ok()
}

/// Send times: nanoseconds from the base, plus one (0: not sent).
type Sent = Arc<Vec<AtomicU64>>;

fn since(sent: &Sent, n: u64, base: Instant, now: Instant) -> Option<Duration> {
    let v = sent.get(usize::try_from(n).ok()?)?.load(Ordering::Acquire);
    (v != 0).then(|| now.saturating_duration_since(base + Duration::from_nanos(v - 1)))
}

/// A device: records each message's latency, answers with a `delivered`
/// IMDN when asked.
#[derive(Debug)]
pub struct ChatDevice {
    s: usize,
    j: usize,
    sent: Sent,
    base: Instant,
    imdn: bool,
    ep: Endpoint,
    cur: Option<u64>,
    /// Latency from send to this device.
    pub hist: Histogram<u64>,
    received: Arc<AtomicU64>,
}

impl Handler for ChatDevice {
    fn request(&mut self, h: &RequestHead, _now: Instant) {
        self.cur = is_content(h)
            .then(|| {
                h.message_id.as_deref().and_then(|m| {
                    std::str::from_utf8(m)
                        .ok()?
                        .strip_prefix("chat-")?
                        .parse()
                        .ok()
                })
            })
            .flatten();
    }

    fn end(&mut self, flag: Flag, now: Instant, out: &mut BytesMut) {
        let Some(n) = self.cur.take() else { return };
        if flag != Flag::Complete {
            return;
        }
        if let Some(d) = since(&self.sent, n, self.base, now) {
            record(&mut self.hist, d);
        }
        self.received.fetch_add(1, Ordering::Relaxed);
        if self.imdn {
            let body = delivered(self.s, self.j, n);
            let mid = format!("dlv-{}-{n}", self.j);
            self.ep
                .message(out, mid.as_bytes(), b"message/cpim", body.as_bytes());
        }
    }
}

/// A sender's reader: the first delivery notification of each message.
#[derive(Debug)]
pub struct ChatSender {
    sent: Sent,
    base: Instant,
    counts: Arc<Vec<AtomicU32>>,
    in_msg: bool,
    body: Vec<u8>,
    /// Latency from send to the first delivery notification.
    pub hist: Histogram<u64>,
    notified: Arc<AtomicU64>,
    errors: u64,
}

impl Handler for ChatSender {
    fn request(&mut self, h: &RequestHead, _now: Instant) {
        self.in_msg = is_content(h);
        self.body.clear();
    }

    fn body(&mut self, b: &Bytes) {
        if self.in_msg && self.body.len() < 8192 {
            self.body.extend_from_slice(b);
        }
    }

    fn end(&mut self, flag: Flag, now: Instant, _out: &mut BytesMut) {
        if !(self.in_msg && flag == Flag::Complete) {
            return;
        }
        self.in_msg = false;
        let Some(n) = imdn_target(&self.body) else {
            return;
        };
        let Some(c) = usize::try_from(n).ok().and_then(|i| self.counts.get(i)) else {
            return;
        };
        if c.fetch_add(1, Ordering::Relaxed) == 0 {
            if let Some(d) = since(&self.sent, n, self.base, now) {
                record(&mut self.hist, d);
            }
            self.notified.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn response(&mut self, _tid: &[u8], code: u16, _now: Instant) {
        if code != 200 {
            self.errors += 1;
        }
    }
}

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

struct Session {
    sent: Sent,
    counts: Arc<Vec<AtomicU32>>,
    notified: Arc<AtomicU64>,
    received: Arc<AtomicU64>,
    /// (writer, endpoint) per sender connection: one through a relay, M
    /// direct.
    outs: Vec<(SharedWriter, Endpoint)>,
    senders: Vec<Conn<ChatSender>>,
    devices: Vec<Conn<ChatDevice>>,
    call: Option<String>,
    _fan: Option<TcpFanout>,
}

fn device_handler(
    s: usize,
    j: usize,
    sess: &Session,
    base: Instant,
    imdn: bool,
    ep: &Endpoint,
) -> ChatDevice {
    ChatDevice {
        s,
        j,
        sent: sess.sent.clone(),
        base,
        imdn,
        ep: Endpoint::new(&format!("i{s}x{j}"), &ep.local_uri, &ep.remote_uri),
        cur: None,
        hist: histogram(),
        received: sess.received.clone(),
    }
}

fn sender_handler(sess: &Session, base: Instant) -> ChatSender {
    ChatSender {
        sent: sess.sent.clone(),
        base,
        counts: sess.counts.clone(),
        in_msg: false,
        body: Vec::new(),
        hist: histogram(),
        notified: sess.notified.clone(),
        errors: 0,
    }
}

const SMALL: ReadOpts = ReadOpts {
    buf: 64 << 10,
    rate: None,
};

fn new_session(n: u64) -> Session {
    Session {
        sent: Arc::new((0..n).map(|_| AtomicU64::new(0)).collect()),
        counts: Arc::new((0..n).map(|_| AtomicU32::new(0)).collect()),
        notified: Arc::default(),
        received: Arc::default(),
        outs: Vec::new(),
        senders: Vec::new(),
        devices: Vec::new(),
        call: None,
        _fan: None,
    }
}

fn setup_relay(
    env: &Env,
    tls: bool,
    a: &ChatArgs,
    base: Instant,
    imdn: bool,
    n: u64,
    tag: &str,
) -> Result<Vec<Session>> {
    let mut out = Vec::new();
    for s in 0..a.sessions {
        let mut sess = new_session(n);
        let call = format!("{tag}-{s}");
        let scheme = crate::tls::scheme(tls);
        let cfg = env.tls.as_ref().filter(|_| tls);
        let sender_path = format!("{scheme}://127.0.0.1:9/{tag}c{s};tcp");
        let mut legs = Vec::new();
        for j in 0..a.devices {
            let r = env.ctl.ok(json!({"command": "offer", "call-id": call, "from-tag": "chat", "via-branch": format!("b{j}"), "kind": "chat", "sdp": offer_sdp(&sender_path, None)}))?;
            legs.push(relay_endpoint(r["sdp"].as_str().unwrap_or_default())?);
        }
        let mut fwd = None;
        for (j, (relay_uri, addr)) in legs.iter().enumerate() {
            let path = format!("{scheme}://127.0.0.1:9/{tag}c{s}d{j};tcp");
            let r = env.ctl.ok(json!({"command": "answer", "call-id": call, "from-tag": "chat", "via-branch": format!("b{j}"), "to-tag": format!("t{j}"), "sdp": answer_sdp(&path, false)}))?;
            if r["forward"] == true {
                fwd = Some(relay_endpoint(r["sdp"].as_str().unwrap_or_default())?);
            }
            let mut ep = Endpoint::new(&format!("c{s}d{j}"), &path, relay_uri);
            let h = device_handler(s, j, &sess, base, imdn, &ep);
            sess.devices.push(Conn::start(
                &format!("c{s}d{j}"),
                wire::connect(*addr, cfg, (None, None), env.timeout)?,
                &mut ep,
                h,
                SMALL,
                true,
                env.timeout,
            )?);
        }
        let (relay_uri, addr) =
            fwd.ok_or_else(|| LoadError::Control("no chat answer was forwarded".into()))?;
        let mut ep = Endpoint::new(&format!("c{s}s"), &sender_path, &relay_uri);
        let h = sender_handler(&sess, base);
        let conn = Conn::start(
            &format!("c{s}s"),
            wire::connect(addr, cfg, (None, None), env.timeout)?,
            &mut ep,
            h,
            SMALL,
            true,
            env.timeout,
        )?;
        sess.outs.push((conn.writer.clone(), ep));
        sess.senders.push(conn);
        sess.call = Some(call);
        out.push(sess);
    }
    Ok(out)
}

fn setup_baseline(
    mode: Mode,
    a: &ChatArgs,
    base: Instant,
    imdn: bool,
    n: u64,
    timeout: Duration,
) -> Result<Vec<Session>> {
    let mut out = Vec::new();
    for s in 0..a.sessions {
        let mut sess = new_session(n);
        let mut listeners = Vec::new();
        for _ in 0..a.devices {
            let l = TcpListener::bind("127.0.0.1:0").context(|| "chat baseline: bind".into())?;
            let addr: SocketAddr = l.local_addr().context(|| "chat baseline: address".into())?;
            listeners.push((l, addr));
        }
        let fan = if mode == Mode::Tcp {
            Some(TcpFanout::start(
                &listeners.iter().map(|x| x.1).collect::<Vec<_>>(),
            )?)
        } else {
            None
        };
        for (j, (l, addr)) in listeners.iter().enumerate() {
            let dev_path = format!("msrp://127.0.0.1:{}/c{s}d{j};tcp", addr.port());
            let snd_path = format!("msrp://127.0.0.1:9/c{s}s{j};tcp");
            let snd_stream = if fan.is_none() {
                Some(connect(*addr, None, None)?)
            } else {
                None
            };
            let (dev_stream, _) = l.accept().context(|| "chat baseline: accept".into())?;
            let _ = dev_stream.set_nodelay(true);
            let mut ep = Endpoint::new(&format!("c{s}d{j}"), &dev_path, &snd_path);
            let h = device_handler(s, j, &sess, base, imdn, &ep);
            sess.devices.push(Conn::start(
                &format!("c{s}d{j}"),
                dev_stream,
                &mut ep,
                h,
                SMALL,
                false,
                timeout,
            )?);
            if let Some(st) = snd_stream {
                let mut ep = Endpoint::new(&format!("c{s}s{j}"), &snd_path, &dev_path);
                let h = sender_handler(&sess, base);
                let conn =
                    Conn::start(&format!("c{s}s{j}"), st, &mut ep, h, SMALL, false, timeout)?;
                sess.outs.push((conn.writer.clone(), ep));
                sess.senders.push(conn);
            }
        }
        if let Some(f) = &fan {
            let snd_path = format!("msrp://127.0.0.1:9/c{s}s;tcp");
            let mut ep = Endpoint::new(&format!("c{s}s"), &snd_path, "msrp://127.0.0.1:9/fan;tcp");
            let h = sender_handler(&sess, base);
            let conn = Conn::start(
                &format!("c{s}s"),
                connect(f.addr, None, None)?,
                &mut ep,
                h,
                SMALL,
                false,
                timeout,
            )?;
            sess.outs.push((conn.writer.clone(), ep));
            sess.senders.push(conn);
        }
        sess._fan = fan;
        out.push(sess);
    }
    Ok(out)
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

fn add(
    rep: &mut Report,
    case: &str,
    metric: &str,
    unit: &str,
    cmp: Compare,
    mode: Mode,
    v: Option<f64>,
) {
    let Some(v) = v else { return };
    let row = rep.row(case, metric, unit, cmp);
    match mode {
        Mode::Relay => row.relay.push(v),
        Mode::Direct => row.direct.push(v),
        Mode::Tcp => row.tcp.push(v),
    }
}

/// The `chat` scenario.
pub fn run(a: &ChatArgs) -> Result<Report> {
    if a.rate <= 0.0 || a.duration <= 0.0 || a.devices == 0 || a.sessions == 0 {
        return Err(LoadError::Args(
            "rate, duration, devices and sessions must be > 0".into(),
        ));
    }
    let env = Env::open_tls(&a.common, "", &a.tls)?;
    let imdn = a.imdn == "on";
    let mut rep = Report::new("chat", a.common.runs as usize);
    let case0 = format!("{}x{}", a.sessions, a.devices);
    let mut curves = Vec::new();
    for run in 0..a.common.runs as usize {
        let mut modes = vec![(Mode::Relay, false)];
        if env.tls.is_some() {
            modes.push((Mode::Relay, true));
        }
        modes.extend(a.common.baseline.iter().map(|b| match b {
            Baseline::Direct => (Mode::Direct, false),
            Baseline::Tcp => (Mode::Tcp, false),
        }));
        let mut plain = None;
        for (mode, tls) in modes {
            let sfx = if tls { " tls" } else { "" };
            let case = format!("{case0}{sfx}");
            let pb = indicatif::ProgressBar::new_spinner();
            pb.set_message(format!(
                "run {} {mode:?}{sfx}: {} msg/s for {} s",
                run + 1,
                a.rate,
                a.duration
            ));
            pb.enable_steady_tick(Duration::from_millis(200));
            let tag = format!("chat{run}{}", if tls { "t" } else { "" });
            let r = run_once(mode, tls, &env, a, &tag)?;
            pb.finish_and_clear();
            let d = Percentiles::of(&r.device);
            add(
                &mut rep,
                &case,
                "send → device p50",
                "µs",
                Compare::Difference,
                mode,
                Some(d.p50_us),
            );
            add(
                &mut rep,
                &case,
                "send → device p99",
                "µs",
                Compare::Difference,
                mode,
                Some(d.p99_us),
            );
            add(
                &mut rep,
                &case,
                "send → device p99.9",
                "µs",
                Compare::Difference,
                mode,
                Some(d.p999_us),
            );
            if imdn {
                let nt = Percentiles::of(&r.notify);
                add(
                    &mut rep,
                    &case,
                    "send → notification p50",
                    "µs",
                    Compare::Difference,
                    mode,
                    Some(nt.p50_us),
                );
                add(
                    &mut rep,
                    &case,
                    "send → notification p99",
                    "µs",
                    Compare::Difference,
                    mode,
                    Some(nt.p99_us),
                );
                add(
                    &mut rep,
                    &case,
                    "messages without notification",
                    "",
                    Compare::None,
                    mode,
                    Some(r.unnotified as f64),
                );
            }
            add(
                &mut rep,
                &case,
                "messages lost",
                "",
                Compare::None,
                mode,
                Some(r.lost as f64),
            );
            if mode == Mode::Relay && imdn {
                add(
                    &mut rep,
                    &case,
                    "duplicate notifications",
                    "",
                    Compare::None,
                    mode,
                    Some(r.duplicates as f64),
                );
            }
            add(
                &mut rep,
                &case,
                "relay CPU",
                "cores",
                Compare::None,
                mode,
                r.relay_cores,
            );
            add(
                &mut rep,
                &case,
                "load tool CPU",
                "cores",
                Compare::None,
                mode,
                r.tool_cores,
            );
            if mode == Mode::Relay {
                let me = (d.p50_us, d.p99_us, r.relay_cores);
                match plain {
                    None => plain = Some(me),
                    Some(pl) => super::versus::chat(&mut rep, &case, me, pl),
                }
            }
            if run + 1 == a.common.runs as usize {
                curves.push((
                    format!("{mode:?} device{sfx}").to_lowercase(),
                    Percentiles::curve(&r.device),
                    d,
                ));
                if imdn && mode == Mode::Relay {
                    curves.push((
                        format!("relay notification{sfx}"),
                        Percentiles::curve(&r.notify),
                        Percentiles::of(&r.notify),
                    ));
                }
            }
            std::thread::sleep(Duration::from_millis(200));
            env.ctl.events.clear();
        }
    }
    rep.notes.push(format!(
        "{} msg/s per session for {} s, {} B of text in CPIM, IMDN {}; latency from the sender's write to the device's decode of the end-line",
        a.rate, a.duration, a.size, a.imdn
    ));
    if env.tls.is_some() {
        super::versus::note(
            &mut rep,
            "the `tls` case is the case before it with the senders' and every device's leg over TLS, run right after it on the same relay",
        );
    }
    if a.common.baseline.contains(&Baseline::Direct) && imdn {
        rep.notes.push(
            "direct: the sender gets one notification per device and counts the first".into(),
        );
    }
    rep.detail = json!({"curves": curves.iter().map(|(n, c, p)| json!({"series": n, "points": c, "percentiles": p})).collect::<Vec<_>>()});
    if let Some(dir) = &a.common.plot {
        let series: Vec<(String, Vec<(f64, f64)>)> =
            curves.into_iter().map(|(n, c, _)| (n, c)).collect();
        crate::plot::latency(dir, "chat-latency", "chat latency percentiles", &series)?;
    }
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imdn_names_its_message() {
        assert_eq!(imdn_target(delivered(3, 1, 42).as_bytes()), Some(42));
        assert_eq!(imdn_target(b"no imdn here"), None);
        let m = cpim(0, 7, 200, true);
        assert!(m.ends_with(&[b'x'; 200]));
        assert!(String::from_utf8_lossy(&m).contains("imdn.Message-ID: 0-7"));
        assert!(!String::from_utf8_lossy(&cpim(0, 7, 1, false)).contains("Disposition"));
    }
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
