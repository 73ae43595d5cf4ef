//! Connections: accepting, connecting, binding a connection to its leg by
//! its first request (MSRP-BIND), decoding what arrives and dispatching it
//! to the session, closing, and failing a leg.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use super::{Conn, Engine};
use crate::fanout::ids::ALNUM;
use crate::fanout::session::{Effects, UPSTREAM};
use crate::fanout::types::LegState;
use crate::fanout::types::*;
use crate::msrp::{Decoder, Disposition, Event as Wire, RequestHead, StatusCode, encode};

impl Engine {
    // ----- driver API: connections ----------------------------------------

    /// A plain-TCP connection was accepted; it binds by its first request.
    pub fn handle_accepted(&mut self, conn: ConnId, now: Instant) {
        self.handle_accepted_over(conn, Transport::Tcp, now);
    }

    /// A connection was accepted over `transport` (the driver runs TLS
    /// underneath for [`Transport::Tls`]); it binds by its first request.
    pub fn handle_accepted_over(&mut self, conn: ConnId, transport: Transport, now: Instant) {
        self.now = now;
        self.conns.insert(
            conn,
            Conn {
                decoder: Decoder::new(self.cfg.limits),
                leg: None,
                raw: Vec::new(),
                raw_len: 0,
                out: VecDeque::new(),
                opened: now,
                parked: None,
                transport,
            },
        );
    }

    /// A plain-TCP connection handed over by another worker, with what it
    /// read.
    pub fn handle_handover(&mut self, conn: ConnId, data: Vec<Bytes>, now: Instant) {
        self.handle_handover_over(conn, Transport::Tcp, data, now);
    }

    /// A connection over `transport` handed over by another worker, with
    /// what it read (plaintext: the driver decrypted it).
    pub fn handle_handover_over(
        &mut self,
        conn: ConnId,
        transport: Transport,
        data: Vec<Bytes>,
        now: Instant,
    ) {
        self.handle_accepted_over(conn, transport, now);
        for d in data {
            self.handle_data(conn, d, now);
        }
    }

    /// The relay's outgoing connection for `leg` is up (RFC 6135 active
    /// side). The relay speaks first: a bodiless SEND binds the connection
    /// at the peer (RFC 4975 §5.4).
    pub fn handle_connected(&mut self, conn: ConnId, leg: LegId, now: Instant) {
        let transport = self
            .sessions
            .get(&leg.session)
            .and_then(|s| s.leg(leg.index))
            .map_or(Transport::Tcp, |l| l.cold.transport);
        self.handle_accepted_over(conn, transport, now);
        let l = self
            .sessions
            .get_mut(&leg.session)
            .and_then(|s| s.leg_mut(leg.index))
            .filter(|l| l.state == LegState::Answered && l.conn.is_none());
        let Some(l) = l else {
            // The leg failed, was removed or got bound meanwhile.
            self.conns.remove(&conn);
            self.outputs.push_back(Output::Close { conn, flush: false });
            return;
        };
        let mid: [u8; 10] = match self.ids.bytes() {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "no Message-ID for the binding SEND");
                self.conns.remove(&conn);
                self.outputs.push_back(Output::Close { conn, flush: false });
                return self.fail_leg(leg, FailReason::ConnectFailed);
            }
        };
        // A fresh leg, nothing in flight: its first id is always there.
        if let Some(tid) = l.next_tid() {
            l.push_inflight(None);
            let (to, from) = (l.cold.to_path.clone(), l.cold.local_uri.clone());
            let mid: Vec<u8> = mid.iter().map(|b| ALNUM[*b as usize % 62]).collect();
            l.push_encoded(|b| {
                encode::SendHead {
                    tid: &tid,
                    to_path: &to,
                    from_path: &from,
                    message_id: &mid,
                    byte_range: None,
                    success_report: None,
                    failure_report: None,
                    content_type: None,
                    extra: &[],
                }
                .encode(b);
                encode::end_line(b, &tid, crate::msrp::Flag::Complete, false);
            });
        }
        self.bind(conn, leg, now);
    }

    /// The outgoing connection for `leg` could not be made.
    pub fn handle_connect_failed(&mut self, leg: LegId, now: Instant) {
        self.now = now;
        self.fail_leg(leg, FailReason::ConnectFailed);
    }

    pub(super) fn bind(&mut self, conn: ConnId, leg: LegId, now: Instant) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.leg = Some(leg);
        c.raw.clear();
        c.raw_len = 0;
        c.parked = None;
        if let Some(l) = self
            .sessions
            .get_mut(&leg.session)
            .and_then(|s| s.leg_mut(leg.index))
        {
            l.conn = Some(conn);
            l.state = LegState::Connected;
            l.last_progress = now;
        }
        tracing::debug!(
            session = leg.session.0,
            leg = leg.index,
            conn = conn.0,
            "leg connected"
        );
        self.outputs
            .push_back(Output::Event(Event::LegConnected { leg }));
        self.dirty.insert(leg.session);
    }

    /// Bytes read from a connection.
    pub fn handle_data(&mut self, conn: ConnId, data: Bytes, now: Instant) {
        self.now = now;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.leg.is_none() {
            c.raw_len += data.len();
            c.raw.push(data.clone());
        }
        c.decoder.feed(data);
        self.decode(conn, now);
    }

    pub(super) fn decode(&mut self, conn: ConnId, now: Instant) {
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            if c.parked.is_some() {
                return;
            }
            let leg = c.leg;
            let ev = match c.decoder.poll() {
                Ok(Some(ev)) => ev,
                Ok(None) => return,
                Err(e) => {
                    tracing::debug!(conn = conn.0, error = %e, "decode error");
                    match (e.disposition(), leg) {
                        (Disposition::Reply(code), Some(leg)) => {
                            if let Some(s) = self.sessions.get_mut(&leg.session) {
                                s.decode_error_reply(leg.index, &e, code);
                                self.dirty.insert(leg.session);
                            }
                            continue;
                        }
                        (Disposition::Ignore, _) => continue,
                        (Disposition::Reply(_), None) | (Disposition::Close, _) => {
                            match leg {
                                Some(leg) => self.fail_leg(leg, FailReason::Protocol(e)),
                                None => self.close(conn, false),
                            }
                            return;
                        }
                    }
                }
            };
            let leg = match leg {
                Some(l) => l,
                None => match ev {
                    Wire::Request(head) => match self.bind_request(conn, &head, now) {
                        Some(l) => {
                            self.dispatch(l, Wire::Request(head));
                            continue;
                        }
                        None => return,
                    },
                    _ => {
                        self.close(conn, false);
                        return;
                    }
                },
            };
            self.dispatch(leg, ev);
        }
    }

    pub(super) fn dispatch(&mut self, leg: LegId, ev: Wire) {
        let Some(s) = self.sessions.get_mut(&leg.session) else {
            return;
        };
        let mut fx = Effects::default();
        let li = leg.index;
        match ev {
            Wire::Request(h) => s.on_request(li, h, &mut fx),
            Wire::Body(b) => {
                self.received_total += b.len() as u64;
                s.on_body(li, b, &self.cfg)
            }
            Wire::End(flag) => s.on_end(li, flag),
            Wire::Response(r) => {
                if let Some(l) = s.leg_mut(li) {
                    l.last_progress = self.now;
                }
                s.on_response(li, &r, &mut fx)
            }
        }
        self.dirty.insert(leg.session);
        self.apply(leg.session, fx);
    }

    pub(super) fn apply(&mut self, session: SessionId, fx: Effects) {
        for (li, reason) in fx.failed {
            self.fail_leg(LegId { session, index: li }, reason);
        }
    }

    /// MSRP-BIND: the first request on an accepted connection names the
    /// leg by the session-id of the relay's URI in its To-Path (which holds
    /// exactly that one URI, RFC 4975 §7.3), and its From-Path must end
    /// with the peer's URI from the SDP; else 481 and the connection
    /// closes. A leg already bound to another connection gets 506
    /// (RFC 4975 §5.4). A session of another worker hands the connection
    /// over.
    pub(super) fn bind_request(
        &mut self,
        conn: ConnId,
        head: &RequestHead,
        now: Instant,
    ) -> Option<LegId> {
        let to = head.to_path.first();
        let sid = to.session_id().unwrap_or_default();
        let found = (head.to_path.uris().len() == 1)
            .then(|| self.by_sid.get(sid).copied())
            .flatten();
        let Some(leg) = found else {
            if let Some(w) = Engine::worker_of(sid)
                && w != self.cfg.worker
                && u16::from(w) < self.cfg.workers
                && head.to_path.uris().len() == 1
                && let Some(c) = self.conns.remove(&conn)
            {
                self.outputs.push_back(Output::Handover {
                    conn,
                    worker: w,
                    data: c.raw,
                });
                return None;
            }
            self.refuse(conn, head, StatusCode::NO_SUCH_SESSION);
            return None;
        };
        let Some(l) = self
            .sessions
            .get(&leg.session)
            .and_then(|s| s.leg(leg.index))
        else {
            self.refuse(conn, head, StatusCode::NO_SUCH_SESSION);
            return None;
        };
        match l.state {
            LegState::Invited => {
                // Connected before the front end's answer: wait for it
                // (bounded by the bind timeout), replay then.
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.parked = Some(leg);
                    self.parked.insert(conn);
                }
                return None;
            }
            LegState::Answered if l.conn.is_none() && l.cold.setup == Setup::Passive => {}
            // RFC 4975 §5.4: the session is already in use on another
            // connection; 506, and the bound connection is untouched.
            _ if l.conn.is_some() => {
                tracing::info!(
                    conn = conn.0,
                    "leg already bound to another connection: 506"
                );
                self.refuse(conn, head, StatusCode::WRONG_CONNECTION);
                return None;
            }
            _ => {
                self.refuse(conn, head, StatusCode::NO_SUCH_SESSION);
                return None;
            }
        }
        let over = self
            .conns
            .get(&conn)
            .map_or(Transport::Tcp, |c| c.transport);
        if l.cold.transport == Transport::Tls && over != Transport::Tls {
            // The SDP said TCP/TLS/MSRP: the same session over plain TCP
            // would be a downgrade (RFC 4975 §14.1).
            tracing::info!(conn = conn.0, "a TLS leg named over plain TCP: 481");
            self.refuse(conn, head, StatusCode::NO_SUCH_SESSION);
            return None;
        }
        let expected = l.cold.peer_path.last();
        if expected.is_none_or(|p| p != head.from_path.last()) {
            tracing::info!(
                conn = conn.0,
                "From-Path does not match the negotiated path: 481"
            );
            self.refuse(conn, head, StatusCode::NO_SUCH_SESSION);
            return None;
        }
        self.bind(conn, leg, now);
        Some(leg)
    }

    /// Re-runs binding of a parked connection from its first byte.
    pub(super) fn replay(&mut self, conn: ConnId, now: Instant) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let raw = std::mem::take(&mut c.raw);
        c.raw_len = 0;
        c.parked = None;
        c.decoder = Decoder::new(self.cfg.limits);
        // Readable again, and the driver may hold bytes for it.
        self.ready.insert(conn);
        for d in raw {
            self.handle_data(conn, d, now);
        }
    }

    /// Answers a request on an unbound connection and closes it.
    pub(super) fn refuse(&mut self, conn: ConnId, head: &RequestHead, code: StatusCode) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if head.wants_response() {
            self.counters.statuses.add(code.0);
            let mut b = bytes::BytesMut::new();
            encode::transaction_response(
                &mut b,
                head.tid.as_bytes(),
                code,
                None,
                head.from_path.first().as_bytes(),
                head.to_path.first().as_bytes(),
            );
            c.out.push_back(b.freeze());
            self.ready.insert(conn);
        }
        self.close(conn, true);
    }

    pub(super) fn close(&mut self, conn: ConnId, flush: bool) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.parked = None;
            // Keep the record while its last output is written.
            if !flush || c.out.is_empty() {
                self.conns.remove(&conn);
            } else {
                c.leg = None;
                c.decoder = Decoder::new(self.cfg.limits);
                c.opened = self
                    .now
                    .checked_sub(self.cfg.bind_timeout)
                    .unwrap_or(self.now);
            }
        }
        self.outputs.push_back(Output::Close { conn, flush });
    }

    /// The peer closed the connection, or it broke.
    pub fn handle_closed(&mut self, conn: ConnId, now: Instant) {
        self.now = now;
        let Some(mut c) = self.conns.remove(&conn) else {
            return;
        };
        let Some(leg) = c.leg else { return };
        let truncated = c.decoder.finish().is_err();
        let Some(s) = self.sessions.get_mut(&leg.session) else {
            return;
        };
        if let Some(l) = s.leg_mut(leg.index) {
            l.conn = None;
        }
        if leg.is_upstream() {
            // The sender is gone: a message it left open is aborted (its
            // devices see `#`, RFC 4975 §7.1.1) and the devices drain.
            if truncated {
                tracing::info!(
                    call = %s.call,
                    session = leg.session.0,
                    "sender disconnected inside a chunk"
                );
            }
            if !s.ending {
                s.end_upstream();
                self.outputs.push_back(Output::Event(Event::UpstreamEnded {
                    session: leg.session,
                }));
            }
            if let Some(l) = s.leg_mut(UPSTREAM) {
                l.state = LegState::Done;
            }
            s.retire_leg(UPSTREAM);
            self.dirty.insert(leg.session);
            return;
        }
        let done = s.leg(leg.index).is_some_and(|l| l.state == LegState::Done);
        if !done {
            self.fail_leg(leg, FailReason::Disconnected);
        }
    }

    pub(super) fn fail_leg(&mut self, leg: LegId, reason: FailReason) {
        let Some(s) = self.sessions.get_mut(&leg.session) else {
            return;
        };
        let call = s.call.clone();
        let Some(l) = s.leg_mut(leg.index) else {
            return;
        };
        if matches!(l.state, LegState::Failed(_)) {
            return;
        }
        tracing::info!(%call, session = leg.session.0, leg = leg.index, label = %l.cold.label, %reason, "leg failed");
        l.state = LegState::Failed(reason.clone());
        let conn = l.conn.take();
        s.retire_leg(leg.index);
        if leg.is_upstream() && !s.ending {
            s.end_upstream();
            self.outputs.push_back(Output::Event(Event::UpstreamEnded {
                session: leg.session,
            }));
        }
        if let Some(conn) = conn {
            self.conns.remove(&conn);
            self.outputs.push_back(Output::Close { conn, flush: false });
        }
        self.pacer.cancel(&leg);
        self.outputs
            .push_back(Output::Event(Event::LegFailed { leg, reason }));
        self.dirty.insert(leg.session);
    }
}
