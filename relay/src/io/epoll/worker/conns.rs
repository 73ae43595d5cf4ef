//! Connection life of a worker: accept, hand-over in, outgoing connects,
//! readiness, expiry, close and hand-over out.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::Interest;
use mio::Token;
use mio::net::TcpStream;

use super::super::conn::{Conn, Phase};
use super::Worker;
use crate::fanout::{ConnId, LegId};
use crate::io::command::Command;
use crate::io::tls::{self, TlsConn};

impl Worker {
    pub(super) fn add_conn(
        &mut self,
        mut stream: TcpStream,
        phase: Phase,
        tls: Option<Box<TlsConn>>,
    ) -> Option<ConnId> {
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut stream, Token(id.0 as usize), interest)
        {
            tracing::warn!(error = %e, "register connection");
            return None;
        }
        let c = Conn::new(stream, phase, tls);
        if c.deadline().is_some() {
            self.timed.insert(id);
        }
        self.conns.insert(id, c);
        self.ready.insert(id);
        Some(id)
    }

    /// Deregisters and drops a connection; the engine is told it closed.
    pub(super) fn drop_conn(&mut self, id: ConnId, now: Instant) {
        self.ready.remove(&id);
        self.active.remove(&id);
        self.timed.remove(&id);
        if let Some(mut c) = self.conns.remove(&id) {
            let _ = self.poll.registry().deregister(&mut c.stream);
            tracing::debug!(conn = id.0, "connection closed");
            if let Phase::Connecting { leg, .. } = c.phase {
                self.engine.handle_connect_failed(leg, now);
                return;
            }
        }
        self.engine.handle_closed(id, now);
    }

    /// Accepts what the plain (or, `tls`, the TLS) listener has queued.
    pub(super) fn accept(&mut self, tls: bool, now: Instant) {
        loop {
            let l = if tls {
                &self.tls_listener
            } else {
                &self.listener
            };
            let Some(l) = l else { return };
            self.counters.syscall();
            match l.accept() {
                Ok((stream, peer)) => {
                    let state = match tls::accepted(self.tls.as_ref(), tls) {
                        Ok(t) => t,
                        Err(e) => {
                            super::tls_failed(ConnId(0), Some(peer), &e);
                            continue;
                        }
                    };
                    let Some(id) = self.add_conn(stream, Phase::Open, state) else {
                        continue;
                    };
                    if let Some(c) = self.conns.get(&id) {
                        self.opts.apply(&c.stream, id);
                    }
                    tracing::debug!(conn = id.0, %peer, tls, "accepted");
                    let transport = self.conns.get(&id).map(|c| tls::transport_of(&c.tls));
                    self.engine
                        .handle_accepted_over(id, transport.unwrap_or_default(), now);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE and the like: the pending connection stays
                    // queued; retry on the next turn rather than spin.
                    tracing::warn!(error = %e, "accept");
                    return;
                }
            }
        }
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
        let Some(id) = self.add_conn(TcpStream::from_std(stream), Phase::Open, tls) else {
            return;
        };
        tracing::debug!(conn = id.0, "handed over");
        self.engine.handle_handover_over(id, transport, data, now);
    }

    pub(super) fn on_ready(&mut self, id: ConnId, writable: bool, now: Instant) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        match c.phase {
            Phase::Connecting { leg, .. } => {
                if writable {
                    self.connect_done(id, leg, now);
                }
            }
            Phase::Open | Phase::Closing { .. } => {
                if writable {
                    c.write_blocked = false;
                }
                self.ready.insert(id);
            }
        }
    }

    pub(super) fn connect(
        &mut self,
        leg: LegId,
        addr: SocketAddr,
        tls: Option<String>,
        now: Instant,
    ) {
        let deadline = now + self.engine.config().leg_timeout;
        let state = match tls::connecting(self.tls.as_ref(), tls) {
            Ok(t) => t,
            Err(e) => {
                super::tls_failed(ConnId(0), Some(addr), &e);
                return self.engine.handle_connect_failed(leg, now);
            }
        };
        match TcpStream::connect(addr) {
            Ok(s) => {
                if self
                    .add_conn(s, Phase::Connecting { leg, deadline }, state)
                    .is_none()
                {
                    self.engine.handle_connect_failed(leg, now);
                }
            }
            Err(e) => {
                tracing::info!(%addr, error = %e, "connect failed");
                self.engine.handle_connect_failed(leg, now);
            }
        }
    }

    /// An outgoing connection became writable: connected, or failed.
    pub(super) fn connect_done(&mut self, id: ConnId, leg: LegId, now: Instant) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let failed = !matches!(c.stream.take_error(), Ok(None));
        match c.stream.peer_addr() {
            Err(e) if !failed && e.kind() == std::io::ErrorKind::NotConnected => return,
            Ok(_) if !failed => {}
            _ => {
                tracing::info!(conn = id.0, "connect failed");
                return self.drop_conn(id, now);
            }
        }
        // A leg the engine gave up on meanwhile (timeout, removal) is not
        // revived: `handle_connected` answers with `Output::Close`.
        c.phase = Phase::Open;
        self.timed.remove(&id);
        self.opts.apply(&c.stream, id);
        tracing::debug!(conn = id.0, "connected");
        self.ready.insert(id);
        self.engine.handle_connected(id, leg, now);
    }

    pub(super) fn expire(&mut self, now: Instant) {
        let due = self.timed.due(&self.conns, Conn::deadline, now);
        for id in due {
            self.drop_conn(id, now);
        }
    }

    pub(super) fn close(&mut self, id: ConnId, flush: bool, now: Instant) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if flush && c.phase == Phase::Open {
            let deadline = now
                + self
                    .engine
                    .config()
                    .leg_timeout
                    .min(Duration::from_secs(10));
            c.phase = Phase::Closing {
                deadline,
                shut: false,
            };
            self.timed.insert(id);
            // Written (and then shut) in this turn's write pass.
            self.active.insert(id);
            self.more = true;
        } else if !flush {
            self.drop_conn(id, now);
        }
    }

    pub(super) fn handover(&mut self, id: ConnId, worker: u8, data: Vec<Bytes>) {
        self.ready.remove(&id);
        self.active.remove(&id);
        self.timed.remove(&id);
        let Some(mut c) = self.conns.remove(&id) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut c.stream);
        let Some(link) = self.links.get(usize::from(worker)) else {
            // A session id naming a worker this relay does not have: no
            // such session. The engine gave the connection up, so it can
            // only be closed (see the ignored bind test).
            tracing::debug!(conn = id.0, worker, "handover to a missing worker: closed");
            return;
        };
        tracing::debug!(conn = id.0, worker, "handing over");
        let stream = std::net::TcpStream::from(c.stream);
        let tls = c.tls;
        if link.send(Command::Handover { stream, data, tls }).is_err() {
            tracing::debug!(conn = id.0, worker, "handover target gone: closed");
        }
    }
}
