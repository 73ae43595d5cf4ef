//! The ng sockets: one UDP socket served by one thread (a datagram is a
//! message), and a TCP listener with a thread per connection (bounded).
//!
//! Every message goes through [`Handler::handle`]: the cookie is split
//! off, the reply cache consulted, the body decoded and the command
//! executed under the table's lock ([`Gate`]). What cannot be answered
//! (no cookie) is dropped and logged; everything else gets a reply.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::bencode::{self, Value};
use super::cache::{Lookup, ReplyCache};
use super::wire;
use super::{NgConfig, NgError, commands, convert};
use crate::server::Gate;
use crate::table::ConnId;

/// The control "connection" every ng request comes from: ng has no
/// connections, so its sessions are never orphaned by one closing (they
/// end by `delete`, the sender's MSRP connection closing, or shutdown).
pub const NG_CONN: ConnId = ConnId(u64::MAX);

/// How often a blocked UDP read looks at the stop flag.
const POLL: Duration = Duration::from_millis(500);

/// The UDP socket's receive buffer asked for. The kernel's default
/// (`net.core.rmem_default`, 208 KiB on most distributions) holds about
/// 150 offers; a front end that forwards a burst of calls (Kamailio's
/// children each send one request and wait, but there are many children)
/// would lose datagrams to it and wait for the module's retransmission
/// (1 s by default). The kernel caps the value at `net.core.rmem_max`;
/// the size granted is logged.
const UDP_RECV_BUFFER: usize = 4 << 20;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Turns ng messages into reply messages.
#[derive(Debug)]
pub struct Handler {
    gate: Gate,
    cache: Mutex<ReplyCache>,
    cfg: NgConfig,
}

impl Handler {
    /// A handler over this table.
    pub fn new(gate: Gate, cfg: NgConfig) -> Handler {
        Handler {
            gate,
            cache: Mutex::new(ReplyCache::new(cfg.cache_entries, cfg.cache_ttl)),
            cfg,
        }
    }

    /// The reply to one whole message from `peer` (`len` is its length
    /// as received, more than `msg.len()` when it was cut at the bound);
    /// `None`: dropped (logged).
    pub fn handle(&self, msg: &[u8], len: usize, peer: &str) -> Option<Vec<u8>> {
        let max = self.cfg.max_message_bytes;
        let (cookie, body) = match wire::split(msg) {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(peer, error = %e, bytes = len, "ng message dropped");
                return None;
            }
        };
        if len > max {
            let why = wire::WireError::TooLong { len, max };
            tracing::warn!(peer, error = %why, "ng message refused");
            return Some(wire::reply(cookie, &convert::error(why.to_string())));
        }
        match lock(&self.cache).begin(cookie, body, Instant::now()) {
            Lookup::Fresh => {}
            Lookup::Replay(r) => {
                tracing::debug!(peer, "ng retransmission answered from the cache");
                return Some(r.to_vec());
            }
            Lookup::InProgress => {
                tracing::debug!(peer, "ng retransmission of a request in progress dropped");
                return None;
            }
            Lookup::Conflict => {
                let cookie_text = String::from_utf8_lossy(cookie);
                tracing::warn!(peer, cookie = %cookie_text, "ng cookie reused with a different body");
                return Some(wire::reply(
                    cookie,
                    &convert::error("cookie already used for a different request"),
                ));
            }
        }
        let reply = match bencode::decode(body, self.cfg.limits) {
            Ok(v) => self.execute(&v, peer),
            Err(e) => {
                tracing::warn!(peer, error = %e, "ng message is not bencode");
                convert::error(format!("malformed message: {e}"))
            }
        };
        let out: Arc<[u8]> = Arc::from(wire::reply(cookie, &reply));
        lock(&self.cache).finish(cookie, out.clone());
        Some(out.to_vec())
    }

    fn execute(&self, v: &Value, peer: &str) -> Value {
        let began = std::time::Instant::now();
        let (reply, command) = self.gate.run(|core, now| {
            let ex = commands::execute(core, NG_CONN, v, now);
            tracing::debug!(peer, command = %ex.command, "ng command");
            ((ex.reply, ex.command), ex.events)
        });
        let ok = reply.get("result").and_then(Value::as_str) != Some("error");
        self.gate
            .metrics()
            .command(metric_name(&command), ok, began.elapsed());
        reply
    }
}

/// The metrics label of an ng command: `ng-<command>` for the commands the
/// relay serves, `ng-other` for anything else (labels stay a bounded set).
fn metric_name(command: &str) -> &'static str {
    match command {
        "ping" => "ng-ping",
        "offer" => "ng-offer",
        "answer" => "ng-answer",
        "delete" => "ng-delete",
        "query" => "ng-query",
        "list" => "ng-list",
        "statistics" => "ng-statistics",
        _ => "ng-other",
    }
}

/// The running listener. Dropping it stops it.
#[derive(Debug)]
pub struct NgListener {
    udp: Option<SocketAddr>,
    tcp: Option<SocketAddr>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    conns: Arc<Mutex<HashMap<u64, TcpStream>>>,
}

impl NgListener {
    /// Binds what `cfg` asks for and starts serving.
    pub fn start(cfg: NgConfig, gate: Gate) -> Result<NgListener, NgError> {
        let handler = Arc::new(Handler::new(gate, cfg.clone()));
        let mut l = NgListener {
            udp: None,
            tcp: None,
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
            conns: Arc::default(),
        };
        let bind = |addr: SocketAddr| move |source| NgError::Bind { addr, source };
        if let Some(addr) = cfg.listen_udp {
            let sock = UdpSocket::bind(addr).map_err(bind(addr))?;
            sock.set_read_timeout(Some(POLL)).map_err(bind(addr))?;
            let sref = socket2::SockRef::from(&sock);
            if let Err(e) = sref.set_recv_buffer_size(UDP_RECV_BUFFER) {
                tracing::warn!(error = %e, "ng udp: SO_RCVBUF not set");
            }
            tracing::debug!(
                granted = sref.recv_buffer_size().unwrap_or(0),
                asked = UDP_RECV_BUFFER,
                "ng udp receive buffer"
            );
            l.udp = Some(sock.local_addr().map_err(bind(addr))?);
            let (h, stop) = (handler.clone(), l.stop.clone());
            l.spawn("ng-udp", move || udp_loop(&sock, &h, &stop))?;
        }
        if let Some(addr) = cfg.listen_tcp {
            let listener = TcpListener::bind(addr).map_err(bind(addr))?;
            l.tcp = Some(listener.local_addr().map_err(bind(addr))?);
            let (h, stop, conns) = (handler, l.stop.clone(), l.conns.clone());
            let max = cfg.max_tcp_connections;
            l.spawn("ng-tcp", move || {
                accept_loop(&listener, &h, &stop, &conns, max)
            })?;
        }
        tracing::info!(udp = ?l.udp, tcp = ?l.tcp, "ng listener ready");
        Ok(l)
    }

    fn spawn(&mut self, name: &str, f: impl FnOnce() + Send + 'static) -> Result<(), NgError> {
        let t = std::thread::Builder::new()
            .name(name.into())
            .spawn(f)
            .map_err(NgError::Thread)?;
        self.threads.push(t);
        Ok(())
    }

    /// The bound UDP address.
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp
    }

    /// The bound TCP address.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp
    }

    /// Stops serving: the sockets close, TCP connections are shut down.
    pub fn stop(&mut self) {
        if self.stop.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake the blocking reads.
        if let Some(a) = self.udp
            && let Ok(s) = UdpSocket::bind(SocketAddr::new(a.ip(), 0))
        {
            let _ = s.send_to(b"", a);
        }
        if let Some(a) = self.tcp {
            let _ = TcpStream::connect(a);
        }
        for (_, c) in lock(&self.conns).drain() {
            let _ = c.shutdown(Shutdown::Both);
        }
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                tracing::error!("ng listener thread panicked");
            }
        }
    }
}

impl Drop for NgListener {
    fn drop(&mut self) {
        self.stop();
    }
}

fn udp_loop(sock: &UdpSocket, h: &Handler, stop: &AtomicBool) {
    let max = h.cfg.max_message_bytes;
    // One byte more than the bound tells an over-long datagram apart.
    let mut buf = vec![0u8; max + 1];
    while !stop.load(Ordering::SeqCst) {
        let (n, peer) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "ng UDP receive failed");
                continue;
            }
        };
        if stop.load(Ordering::SeqCst) {
            return;
        }
        // recv_from cuts a datagram at the buffer: n == max + 1 means at
        // least that many.
        if let Some(reply) = h.handle(&buf[..n.min(max)], n, &peer.to_string())
            && let Err(e) = sock.send_to(&reply, peer)
        {
            tracing::warn!(%peer, error = %e, "ng UDP reply not sent");
        }
    }
}

fn accept_loop(
    listener: &TcpListener,
    h: &Arc<Handler>,
    stop: &Arc<AtomicBool>,
    conns: &Arc<Mutex<HashMap<u64, TcpStream>>>,
    max: usize,
) {
    let active = Arc::new(AtomicUsize::new(0));
    let next = AtomicU64::new(1);
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "ng TCP accept failed");
                continue;
            }
        };
        let peer = stream
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        if active.load(Ordering::SeqCst) >= max {
            tracing::warn!(%peer, max, "ng TCP connection refused: limit reached");
            let _ = stream.shutdown(Shutdown::Both);
            continue;
        }
        let id = next.fetch_add(1, Ordering::Relaxed);
        if let Ok(c) = stream.try_clone() {
            lock(conns).insert(id, c);
        }
        active.fetch_add(1, Ordering::SeqCst);
        let (h, conns2, active2) = (h.clone(), conns.clone(), active.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("ng-tcp{id}"))
            .spawn(move || {
                serve_tcp(stream, &h, &peer);
                lock(&conns2).remove(&id);
                active2.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start ng TCP connection thread");
            lock(conns).remove(&id);
            active.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn serve_tcp(mut stream: TcpStream, h: &Handler, peer: &str) {
    let max = h.cfg.max_message_bytes;
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::debug!(peer, error = %e, "ng TCP read failed");
                return;
            }
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut out = Vec::new();
        loop {
            match wire::cut(&buf, max, h.cfg.limits) {
                Ok(None) => break,
                Ok(Some(cut)) => {
                    buf.drain(..cut.consumed);
                    if let Some(r) = h.handle(&cut.message, cut.message.len(), peer) {
                        out.extend(wire::frame(cut.framing, &r));
                    }
                }
                Err(e) => {
                    tracing::warn!(peer, error = %e, "ng TCP stream unusable; closing");
                    if let Some(c) = &e.cookie {
                        let reply = wire::reply(c, &convert::error(e.error.clone()));
                        out.extend(wire::frame(e.framing, &reply));
                    }
                    let _ = stream.write_all(&out);
                    let _ = stream.shutdown(Shutdown::Both);
                    return;
                }
            }
        }
        if !out.is_empty() && stream.write_all(&out).is_err() {
            return;
        }
    }
}
