//! A chat run's sessions: through the relay (offer, answer, one sender
//! and M devices bound), or a baseline (straight to each device, or
//! through the minimal TCP fan-out).

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::time::{Duration, Instant};

use serde_json::json;

use super::readers::{ChatDevice, ChatSender, Sent};
use crate::cli::ChatArgs;
use crate::control::{answer_sdp, offer_sdp, relay_endpoint};
use crate::error::{Context, LoadError, Result};
use crate::net::connect;
use crate::peer::{Conn, Endpoint, ReadOpts, SharedWriter};
use crate::scenario::Env;
use crate::scenario::fanout::Mode;
use crate::scenario::tcpfan::TcpFanout;
use crate::stats::histogram;
use crate::wire;

pub(super) struct Session {
    pub(super) sent: Sent,
    pub(super) counts: Arc<Vec<AtomicU32>>,
    pub(super) notified: Arc<AtomicU64>,
    pub(super) received: Arc<AtomicU64>,
    /// (writer, endpoint) per sender connection: one through a relay, M
    /// direct.
    pub(super) outs: Vec<(SharedWriter, Endpoint)>,
    pub(super) senders: Vec<Conn<ChatSender>>,
    pub(super) devices: Vec<Conn<ChatDevice>>,
    pub(super) call: Option<String>,
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

pub(super) fn setup_relay(
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

pub(super) fn setup_baseline(
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
