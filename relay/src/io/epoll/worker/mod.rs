//! One epoll worker: its engine, poller, listener, connections and the
//! loop that feeds them to each other. See the module docs of
//! [`super`] for the rules it keeps.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};

use super::conn::{Conn, Phase, READS_PER_TURN, Read1, WRITES_PER_TURN, Write1};
use super::conn::{discard, read_once, write_once};
use crate::fanout::{ConnId, Engine, Event, Output, SessionId};
use crate::io::command::{Command, WorkerLink, end_all, forward_event, next_command};
use crate::io::counters::Counters;
use crate::io::deadlines::Timed;
use crate::io::setup::SockOpts;
use crate::io::tls::{TlsConnError, TlsContext};

mod conns;

/// The waker's token; the listener's is [`LISTENER`], connections count
/// up from [`FIRST_CONN`] and are never reused.
pub(super) const WAKER: Token = Token(0);
pub(super) const LISTENER: Token = Token(1);
pub(super) const LISTENER_TLS: Token = Token(2);
pub(super) const FIRST_CONN: u64 = 3;
/// After our FIN, how long a closing connection waits for the peer's.
pub(super) const LINGER: Duration = Duration::from_secs(2);

/// A worker thread's state. Owned by its thread; nothing in it is shared
/// but the command channels and the event sender.
#[derive(Debug)]
pub(super) struct Worker {
    index: usize,
    poll: Poll,
    engine: Engine,
    listener: Option<TcpListener>,
    /// The TLS listener and the context of its connections.
    tls_listener: Option<TcpListener>,
    tls: Option<TlsContext>,
    rx: Receiver<Command>,
    links: Arc<[WorkerLink]>,
    events: Sender<Event>,
    opts: SockOpts,
    conns: HashMap<ConnId, Conn>,
    next_conn: u64,
    /// Connections that may have unread bytes (edge-triggered readiness
    /// not yet consumed down to `WouldBlock`).
    ready: HashSet<ConnId>,
    /// Connections to write this turn: what a read, a readiness event, a
    /// close or a write cut short touched (the engine names the rest,
    /// [`Engine::take_ready`]).
    active: HashSet<ConnId>,
    /// Connections with a deadline (connecting, closing).
    timed: Timed,
    /// The write pass's list, kept for its allocation.
    ids: Vec<ConnId>,
    /// Live sessions, to end them all on shutdown.
    sessions: HashSet<SessionId>,
    buf: BytesMut,
    /// A turn left work undone: poll without blocking.
    more: bool,
    shutdown: Option<Instant>,
    counters: Arc<Counters>,
}

impl Worker {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        index: usize,
        poll: Poll,
        mut listener: TcpListener,
        tls: Option<(TcpListener, TlsContext)>,
        engine: Engine,
        rx: Receiver<Command>,
        links: Arc<[WorkerLink]>,
        events: Sender<Event>,
        opts: SockOpts,
        counters: Arc<Counters>,
    ) -> std::io::Result<Worker> {
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let (tls_listener, tls) = match tls {
            Some((mut l, ctx)) => {
                poll.registry()
                    .register(&mut l, LISTENER_TLS, Interest::READABLE)?;
                (Some(l), Some(ctx))
            }
            None => (None, None),
        };
        Ok(Worker {
            index,
            poll,
            engine,
            listener: Some(listener),
            tls_listener,
            tls,
            rx,
            links,
            events,
            opts,
            conns: HashMap::new(),
            next_conn: FIRST_CONN,
            ready: HashSet::new(),
            active: HashSet::new(),
            timed: Timed::default(),
            ids: Vec::new(),
            sessions: HashSet::new(),
            buf: BytesMut::new(),
            more: false,
            shutdown: None,
            counters,
        })
    }

    /// The loop: poll, note readiness, run commands and timers, then read,
    /// act on outputs and write until nothing more can move.
    pub(super) fn run(mut self) {
        let _span = tracing::debug_span!("worker", index = self.index).entered();
        let mut events = Events::with_capacity(1024);
        let mut woke: Option<Instant> = None;
        loop {
            let now = Instant::now();
            if let Some(t) = woke.take() {
                self.counters.busy(now - t);
            }
            let timeout = self.timeout(now);
            self.counters.syscall();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                tracing::error!(error = %e, "poll failed; worker stops");
                break;
            }
            let now = Instant::now();
            woke = Some(now);
            for ev in events.iter() {
                match ev.token() {
                    WAKER => {}
                    LISTENER => self.accept(false, now),
                    LISTENER_TLS => self.accept(true, now),
                    Token(t) => {
                        let id = ConnId(t as u64);
                        self.on_ready(id, ev.is_writable() || ev.is_error(), now);
                    }
                }
            }
            self.commands(now);
            if self.engine.poll_timeout().is_some_and(|t| t <= now) {
                self.engine.handle_timeout(now);
            }
            self.expire(now);
            self.turn(now);
            if self.finished(now) {
                break;
            }
        }
        tracing::debug!(conns = self.conns.len(), "worker stops");
    }

    fn timeout(&self, now: Instant) -> Option<Duration> {
        if self.more || self.ready.iter().any(|&id| self.readable_now(id)) {
            return Some(Duration::ZERO);
        }
        let conn_deadlines = self.timed.next(&self.conns, Conn::deadline);
        self.engine
            .poll_timeout()
            .into_iter()
            .chain(conn_deadlines)
            .chain(self.shutdown)
            .min()
            .map(|t| t.saturating_duration_since(now))
    }

    fn readable_now(&self, id: ConnId) -> bool {
        match self.conns.get(&id).map(|c| c.phase) {
            Some(Phase::Open) => self.engine.can_read(id),
            Some(Phase::Closing { .. }) => true,
            _ => false,
        }
    }

    fn commands(&mut self, now: Instant) {
        loop {
            let closing = self.shutdown.is_some();
            let cmd = next_command(&self.rx, &mut self.engine, &mut self.sessions, closing, now);
            match cmd {
                Some(Command::Handover { stream, data, tls }) => self.adopt(stream, data, tls, now),
                Some(Command::Shutdown { deadline }) => self.begin_shutdown(deadline, now),
                Some(Command::Control(..)) | None => return,
            }
        }
    }

    // ----- the turn: read, outputs, write ---------------------------------

    /// Reads what is readable, then writes what was touched: the
    /// connections read (a TLS handshake answers from its read), those an
    /// event or a close named, and those the engine has new output for. A
    /// turn costs what is ready, not what is open.
    fn turn(&mut self, now: Instant) {
        self.more = false;
        self.outputs(now);
        let ready: Vec<ConnId> = self.ready.iter().copied().collect();
        for &id in &ready {
            self.read(id, now);
            self.outputs(now);
        }
        let mut ids = std::mem::take(&mut self.ids);
        ids.clear();
        ids.extend(ready);
        ids.extend(self.active.drain());
        self.engine.take_ready(&mut ids);
        ids.sort_unstable();
        ids.dedup();
        for &id in &ids {
            let writable = self
                .conns
                .get(&id)
                .is_some_and(|c| !c.write_blocked && !matches!(c.phase, Phase::Connecting { .. }));
            if writable {
                self.write(id, now);
            }
        }
        self.ids = ids;
        self.outputs(now);
        // Output queued by the writes themselves (a pump after a consume):
        // the next turn writes it without waiting.
        self.more |= self.engine.has_ready();
    }

    fn read(&mut self, id: ConnId, now: Instant) {
        for _ in 0..READS_PER_TURN {
            let Some(c) = self.conns.get_mut(&id) else {
                self.ready.remove(&id);
                return;
            };
            let got = match c.phase {
                Phase::Connecting { .. } => return,
                Phase::Closing { .. } => discard(&mut c.stream),
                Phase::Open if !self.engine.can_read(id) => return,
                Phase::Open => read_once(&mut c.stream, &mut self.buf),
            };
            self.counters.syscall();
            if let Read1::Data(_) = got {
                self.counters.receive(false);
            }
            let got = match (got, &mut c.tls) {
                (Read1::Data(cipher), Some(t)) if c.phase == Phase::Open => {
                    match t.receive(&cipher) {
                        Ok(r) if r.closed => Read1::Closed(None),
                        Ok(r) => Read1::Data(r.data),
                        Err(e) => {
                            tls_failed(id, c.stream.peer_addr().ok(), &e);
                            return self.drop_conn(id, now);
                        }
                    }
                }
                (got, _) => got,
            };
            match got {
                Read1::Data(data) if data.is_empty() => {}
                Read1::Data(data) => {
                    self.engine.handle_data(id, data, now);
                    // A handover or close must be seen before reading on.
                    self.outputs(now);
                }
                Read1::WouldBlock => {
                    self.ready.remove(&id);
                    return;
                }
                Read1::Closed(e) => {
                    tracing::debug!(conn = id.0, error = ?e, "peer closed");
                    return self.drop_conn(id, now);
                }
            }
        }
        self.more = true;
    }

    fn write(&mut self, id: ConnId, now: Instant) {
        for _ in 0..WRITES_PER_TURN {
            let Some(c) = self.conns.get_mut(&id) else {
                return;
            };
            let wrote = match &mut c.tls {
                Some(t) => {
                    let took = t.fill(self.engine.output(id));
                    if took > 0 {
                        self.engine.consume_output(id, took, now);
                    }
                    write_once(&mut c.stream, t.pending())
                }
                None => write_once(&mut c.stream, self.engine.output(id)),
            };
            if !matches!(wrote, Write1::Empty) {
                self.counters.syscall();
            }
            match wrote {
                Write1::Wrote(n) => match &mut c.tls {
                    Some(t) => t.consume(n),
                    None => self.engine.consume_output(id, n, now),
                },
                Write1::Empty => {
                    self.engine.set_write_blocked(id, false);
                    return self.flushed(id, now);
                }
                Write1::WouldBlock => {
                    c.write_blocked = true;
                    self.engine.set_write_blocked(id, true);
                    return;
                }
                Write1::Closed(e) => {
                    tracing::debug!(conn = id.0, error = %e, "write failed");
                    return self.drop_conn(id, now);
                }
            }
        }
        self.more = true;
        self.active.insert(id);
    }

    /// Nothing is queued for the connection: a closing one shuts down its
    /// write side and waits for the peer's EOF.
    fn flushed(&mut self, id: ConnId, now: Instant) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if let Phase::Closing { shut: false, .. } = c.phase {
            if c.tls.as_mut().is_some_and(|t| t.close_notify()) {
                // `close_notify` first: written in the next pass.
                self.more = true;
                self.active.insert(id);
                return;
            }
            let _ = c.stream.shutdown(std::net::Shutdown::Write);
            c.phase = Phase::Closing {
                deadline: now + LINGER,
                shut: true,
            };
            self.ready.insert(id);
        }
    }

    fn outputs(&mut self, now: Instant) {
        while let Some(o) = self.engine.poll_output() {
            match o {
                Output::Connect { leg, addr, tls } => self.connect(leg, addr, tls, now),
                Output::Close { conn, flush } => self.close(conn, flush, now),
                Output::Handover { conn, worker, data } => self.handover(conn, worker, data),
                Output::Event(e) => self.event(e),
            }
        }
    }

    fn event(&mut self, e: Event) {
        forward_event(&mut self.sessions, &self.events, e);
    }

    // ----- shutdown -------------------------------------------------------

    fn begin_shutdown(&mut self, deadline: Instant, now: Instant) {
        if self.shutdown.is_some() {
            return;
        }
        self.shutdown = Some(deadline);
        for mut l in [self.listener.take(), self.tls_listener.take()]
            .into_iter()
            .flatten()
        {
            let _ = self.poll.registry().deregister(&mut l);
        }
        end_all(&mut self.engine, &self.sessions, now);
    }

    /// Shutting down and either past the deadline or drained: no session
    /// left and nothing queued on any connection.
    fn finished(&self, now: Instant) -> bool {
        let Some(deadline) = self.shutdown else {
            return false;
        };
        now >= deadline
            || self.sessions.is_empty()
                && self.conns.iter().all(|(&id, c)| {
                    matches!(c.phase, Phase::Closing { shut: true, .. })
                        || !self.engine.has_output(id)
                })
    }
}

/// A TLS connection failed: one line with the peer, then it closes alone.
pub(super) fn tls_failed(id: ConnId, peer: Option<std::net::SocketAddr>, e: &TlsConnError) {
    tracing::warn!(conn = id.0, peer = ?peer, error = %e, "TLS connection failed; closed");
}
