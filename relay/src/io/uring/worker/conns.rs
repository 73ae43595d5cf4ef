//! Connection life of a uring worker: accept, hand-over in and out,
//! outgoing connects, close (flushing or not), expiry, and the rule that a
//! descriptor is closed only after its operations' last CQEs.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::time::{Duration, Instant};

use bytes::Bytes;
use io_uring::{opcode, squeue, types};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::super::ops::Op;
use super::Worker;
use crate::fanout::{ConnId, LegId};
use crate::io::command::Command;
use crate::io::tls::{self, TlsConn, TlsConnError};

/// A TLS connection failed: one line with the peer, then it closes alone.
pub(super) fn tls_failed(id: ConnId, fd: &OwnedFd, e: &TlsConnError) {
    let peer = socket2::SockRef::from(fd)
        .peer_addr()
        .ok()
        .and_then(|a| a.as_socket());
    tracing::warn!(conn = id.0, peer = ?peer, error = %e, "TLS connection failed; closed");
}

/// Where a connection is in its life.
#[derive(Debug)]
pub(super) enum Phase {
    /// An outgoing connect for `leg` is in flight.
    Connecting { leg: LegId },
    /// Bound or binding; read and written.
    Open,
    /// Closing: queued output is written until `deadline`; once `shut`,
    /// the peer's bytes are discarded until its EOF or `deadline`.
    Closing { deadline: Instant, shut: bool },
    /// Going to another worker once its operations are done; what it
    /// received meanwhile is appended to `data`.
    HandingOver { worker: u8, data: Vec<Bytes> },
    /// The engine is done with it; closed once its operations are done.
    Dying,
}

/// A socket and its driver state.
#[derive(Debug)]
pub(super) struct Conn {
    pub(super) fd: OwnedFd,
    pub(super) phase: Phase,
    /// The receive in flight (multishot or not).
    pub(super) recv: Option<u64>,
    pub(super) recv_cancelled: bool,
    /// The send whose result is awaited (at most one per connection).
    pub(super) send: Option<u64>,
    /// `Worker::turn` when `send` was queued: the next `io_uring_enter`
    /// submits it.
    pub(super) send_turn: u64,
    /// The connect in flight.
    pub(super) connect: Option<u64>,
    /// Operations that use `fd` and have not had their last CQE.
    pub(super) ops: u32,
    /// Received and not yet given to the engine (it could not read).
    pub(super) pending: VecDeque<Bytes>,
    /// The peer's EOF (or a receive error) was seen.
    pub(super) eof: bool,
    /// The last send was short: the socket buffer is full, so the next
    /// send waits for room before trying (no attempt bound to fail).
    pub(super) full: bool,
    /// TLS between the socket and the engine (`msrps:` legs): `pending`
    /// then holds ciphertext.
    pub(super) tls: Option<Box<TlsConn>>,
}

impl Conn {
    fn new(fd: OwnedFd, phase: Phase) -> Conn {
        Conn {
            fd,
            phase,
            recv: None,
            recv_cancelled: false,
            send: None,
            send_turn: 0,
            connect: None,
            ops: 0,
            pending: VecDeque::new(),
            eof: false,
            full: false,
            tls: None,
        }
    }

    /// What the engine gets of received bytes: themselves, or on a TLS
    /// connection the plaintext they complete (a `close_notify` counts as
    /// the peer's EOF).
    pub(super) fn plaintext(&mut self, data: Bytes) -> Result<Bytes, TlsConnError> {
        match &mut self.tls {
            None => Ok(data),
            Some(t) => {
                let r = t.receive(&data)?;
                self.eof |= r.closed;
                Ok(r.data)
            }
        }
    }

    pub(super) fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Closing { deadline, .. } => Some(deadline),
            _ => None,
        }
    }

    pub(super) fn raw(&self) -> types::Fd {
        types::Fd(self.fd.as_raw_fd())
    }
}

impl Worker {
    fn add_conn(&mut self, fd: OwnedFd, phase: Phase) -> ConnId {
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        self.conns.insert(id, Conn::new(fd, phase));
        self.active.insert(id);
        id
    }

    pub(super) fn on_accept(&mut self, ud: u64, tls: bool, res: i32, flags: u32, now: Instant) {
        let which = usize::from(tls);
        if !io_uring::cqueue::more(flags) {
            self.ops.remove(ud);
            self.acceptors[which].op = None;
        }
        if res >= 0 {
            // SAFETY: the kernel created this descriptor for this accept and
            // gave it to nobody else.
            let fd = unsafe { OwnedFd::from_raw_fd(res) };
            if self.shutdown.is_none() {
                self.accepted(fd, tls, now);
            }
        } else if res != -libc::ECANCELED {
            // EMFILE and the like: retry a little later rather than spin.
            tracing::warn!(error = %std::io::Error::from_raw_os_error(-res), "accept");
            self.acceptors[which].retry = Some(now + Duration::from_millis(100));
        }
        let a = &mut self.acceptors[which];
        if a.op.is_none() {
            if self.shutdown.is_some() {
                // The listener's last operation is done: close it.
                a.listener = None;
            } else if a.retry.is_none() {
                self.arm_accept(tls);
            }
        }
    }

    fn accepted(&mut self, fd: OwnedFd, tls: bool, now: Instant) {
        let state = match tls::accepted(self.tls.as_ref(), tls) {
            Ok(t) => t,
            Err(e) => return tls_failed(ConnId(0), &fd, &e),
        };
        let transport = tls::transport_of(&state);
        let id = self.add_conn(fd, Phase::Open);
        if let Some(c) = self.conns.get_mut(&id) {
            c.tls = state;
            self.p.opts.apply(&c.fd, id);
        }
        tracing::debug!(conn = id.0, tls, "accepted");
        self.p.engine.handle_accepted_over(id, transport, now);
    }

    /// A connection handed over by another worker.
    pub(super) fn adopt(
        &mut self,
        stream: std::net::TcpStream,
        data: Vec<Bytes>,
        tls: Option<Box<TlsConn>>,
        now: Instant,
    ) {
        if self.shutdown.is_some() {
            return;
        }
        let transport = tls::transport_of(&tls);
        let id = self.add_conn(OwnedFd::from(stream), Phase::Open);
        if let Some(c) = self.conns.get_mut(&id) {
            c.tls = tls;
        }
        tracing::debug!(conn = id.0, "handed over");
        self.p.engine.handle_handover_over(id, transport, data, now);
    }

    pub(super) fn connect(
        &mut self,
        leg: LegId,
        addr: SocketAddr,
        tls: Option<String>,
        now: Instant,
    ) {
        let state = match tls::connecting(self.tls.as_ref(), tls) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(peer = %addr, error = %e, "TLS connection failed; closed");
                return self.p.engine.handle_connect_failed(leg, now);
            }
        };
        let sock = match Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)) {
            Ok(s) => s,
            Err(e) => {
                tracing::info!(%addr, error = %e, "socket for connect");
                return self.p.engine.handle_connect_failed(leg, now);
            }
        };
        let id = self.add_conn(OwnedFd::from(sock), Phase::Connecting { leg });
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        c.tls = state;
        self.p.opts.apply(&c.fd, id);
        let fd = c.raw();
        let sa = Box::new(SockAddr::from(addr));
        let ts = Box::new(types::Timespec::from(self.p.engine.config().leg_timeout));
        let connect = opcode::Connect::new(fd, sa.as_ptr().cast(), sa.len())
            .build()
            .flags(squeue::Flags::IO_LINK);
        let timeout = opcode::LinkTimeout::new(&*ts).build();
        // SAFETY: the address and the timespec are heap allocations moved
        // into the two ops (their contents do not move) and freed only on
        // each op's CQE; the socket is owned by `Conn` `id`, closed only
        // when its `ops` count (incremented below) is back to zero.
        let (a, b) = unsafe {
            self.submit_linked(
                Op::Connect {
                    conn: id,
                    _addr: sa,
                },
                connect,
                Op::ConnectTimeout { _ts: ts },
                timeout,
            )
        };
        match (a, self.conns.get_mut(&id)) {
            (Some(ud), Some(c)) => {
                c.connect = Some(ud);
                c.ops += 1;
                let _ = b;
            }
            _ => {
                self.conns.remove(&id);
                self.p.engine.handle_connect_failed(leg, now);
            }
        }
    }

    pub(super) fn on_connect(&mut self, id: ConnId, res: i32, now: Instant) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        c.connect = None;
        c.ops = c.ops.saturating_sub(1);
        let Phase::Connecting { leg } = c.phase else {
            return self.settle(id);
        };
        if res < 0 {
            let e = std::io::Error::from_raw_os_error(-res);
            tracing::info!(conn = id.0, error = %e, "connect failed");
            return self.drop_conn(id, now);
        }
        // A leg the engine gave up on meanwhile (timeout, removal) is not
        // revived: `handle_connected` answers with `Output::Close`.
        c.phase = Phase::Open;
        tracing::debug!(conn = id.0, "connected");
        self.p.engine.handle_connected(id, leg, now);
    }

    pub(super) fn expire(&mut self, now: Instant) {
        let due = self.closing.due(&self.conns, Conn::deadline, now);
        for id in due {
            self.drop_conn(id, now);
        }
        for tls in [false, true] {
            let a = &mut self.acceptors[usize::from(tls)];
            if a.retry.is_some_and(|t| t <= now) {
                a.retry = None;
                self.arm_accept(tls);
            }
        }
    }

    pub(super) fn close(&mut self, id: ConnId, flush: bool, now: Instant) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if flush && matches!(c.phase, Phase::Open) {
            let limit = self
                .p
                .engine
                .config()
                .leg_timeout
                .min(Duration::from_secs(10));
            c.phase = Phase::Closing {
                deadline: now + limit,
                shut: false,
            };
            self.closing.insert(id);
            self.active.insert(id);
        } else if !flush {
            self.drop_conn(id, now);
        }
    }

    /// The connection is finished for the engine (peer gone, broken, or
    /// closed by the engine): its operations are cancelled, the engine is
    /// told, and the descriptor closes once the last CQE arrived.
    pub(super) fn drop_conn(&mut self, id: ConnId, now: Instant) {
        let Some(c) = self.conns.get_mut(&id) else {
            return self.p.engine.handle_closed(id, now);
        };
        let was = std::mem::replace(&mut c.phase, Phase::Dying);
        c.pending.clear();
        match was {
            Phase::Dying => return,
            Phase::HandingOver { .. } => {
                c.phase = was;
                return;
            }
            Phase::Connecting { leg } => self.p.engine.handle_connect_failed(leg, now),
            Phase::Open | Phase::Closing { .. } => self.p.engine.handle_closed(id, now),
        }
        tracing::debug!(conn = id.0, "connection closed");
        self.cancel_ops(id);
        self.settle(id);
    }

    /// Cancels the connection's receive, send and connect in flight.
    fn cancel_ops(&mut self, id: ConnId) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let recv = c.recv.filter(|_| !c.recv_cancelled);
        c.recv_cancelled = true;
        let targets = [recv, c.send, c.connect];
        for t in targets.into_iter().flatten() {
            self.cancel(t);
        }
    }

    pub(super) fn handover(&mut self, id: ConnId, worker: u8, data: Vec<Bytes>, now: Instant) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let mut data = data;
        let pending: Vec<Bytes> = c.pending.drain(..).collect();
        for d in pending {
            // Received but not fed: ciphertext on a TLS connection, which
            // the new owner gets as plaintext.
            match c.plaintext(d) {
                Ok(p) => data.push(p),
                Err(e) => {
                    tls_failed(id, &c.fd, &e);
                    c.phase = Phase::Open;
                    return self.drop_conn(id, now);
                }
            }
        }
        c.phase = Phase::HandingOver { worker, data };
        self.cancel_ops(id);
        self.settle(id);
    }

    /// One of the connection's operations had its last CQE.
    pub(super) fn op_done(&mut self, id: ConnId) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.ops = c.ops.saturating_sub(1);
        }
        self.settle(id);
    }

    /// A dying or departing connection with no operation left is closed
    /// (through the ring) or sent to its new worker.
    pub(super) fn settle(&mut self, id: ConnId) {
        let done = self.conns.get(&id).is_some_and(|c| {
            c.ops == 0 && matches!(c.phase, Phase::Dying | Phase::HandingOver { .. })
        });
        if !done {
            return;
        }
        let Some(c) = self.conns.remove(&id) else {
            return;
        };
        if let Phase::HandingOver { worker, data } = c.phase {
            let Some(link) = self.p.links.get(usize::from(worker)) else {
                // A session id naming a worker this relay does not have:
                // the engine gave the connection up, so it only closes.
                tracing::debug!(conn = id.0, worker, "handover to a missing worker: closed");
                return;
            };
            tracing::debug!(conn = id.0, worker, "handing over");
            let stream = std::net::TcpStream::from(c.fd);
            let tls = c.tls;
            if link.send(Command::Handover { stream, data, tls }).is_err() {
                tracing::debug!(conn = id.0, worker, "handover target gone: closed");
            }
            return;
        }
        let raw = c.fd.into_raw_fd();
        let entry = opcode::Close::new(types::Fd(raw)).build();
        // SAFETY: no pointers; the descriptor's ownership passes to this
        // close (`into_raw_fd`), and no operation uses it (`ops == 0`).
        if unsafe { self.submit(Op::Close, entry) }.is_none() {
            // SAFETY: the close could not be queued: we still own `raw`.
            drop(unsafe { OwnedFd::from_raw_fd(raw) });
        }
    }

    /// Queues two linked SQEs back to back (a link spans one submission).
    ///
    /// # Safety
    /// As for [`Worker::submit`], for both.
    pub(super) unsafe fn submit_linked(
        &mut self,
        a: Op,
        ea: squeue::Entry,
        b: Op,
        eb: squeue::Entry,
    ) -> (Option<u64>, Option<u64>) {
        let (ua, ub) = (self.ops.insert(a), self.ops.insert(b));
        let entries = [ea.user_data(ua), eb.user_data(ub)];
        for _ in 0..4 {
            // SAFETY: the caller's contract; both ops live in their slots.
            if unsafe { self.ring.submission().push_multiple(&entries) }.is_ok() {
                return (Some(ua), Some(ub));
            }
            self.p.counters.submitted(self.ring.submission().len());
            self.p.counters.syscall();
            if let Err(e) = self.ring.submit() {
                tracing::warn!(error = %e, "io_uring submit");
            }
        }
        self.ops.remove(ua);
        self.ops.remove(ub);
        (None, None)
    }
}
