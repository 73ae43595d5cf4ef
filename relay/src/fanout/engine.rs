//! The engine of one worker: its sessions, the connections the driver
//! feeds it, binding connections to legs, pacing, timers and outputs.
//!
//! Drivers call `handle_*` with bytes, connection events and the time,
//! write what [`Engine::output`] holds for a connection (one vectored
//! write) and report it with [`Engine::consume_output`], then act on
//! [`Engine::poll_output`] until it is empty and sleep until
//! [`Engine::poll_timeout`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};

use super::ids::{local_uri, mint_session_id, random_bytes, tid_prefix};
use super::leg::{Leg, LegState};
use super::log::MemoryBudget;
use super::pacer::Pacer;
use super::session::{Effects, Session, UPSTREAM};
use super::types::*;
use crate::msrp::{Decoder, Disposition, Event as Wire, MsrpUri, RequestHead, StatusCode, encode};

/// Reads the driver should issue per readable event; the log must have this
/// much room before the sender's socket is read.
pub const READ_SIZE: usize = 64 * 1024;

#[derive(Debug)]
struct Conn {
    decoder: Decoder,
    leg: Option<LegId>,
    /// Bytes fed before binding, replayed after a handover or a late answer.
    raw: Vec<Bytes>,
    raw_len: usize,
    /// Output of an unbound connection (its 481).
    out: VecDeque<Bytes>,
    opened: Instant,
    /// Waiting for the front end's answer for this leg (the device
    /// connected first).
    parked: Option<LegId>,
}

/// A leg's state for `query`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegInfo {
    /// The leg.
    pub leg: LegId,
    /// Its label.
    pub label: String,
    /// `invited`, `answered`, `connected`, `done` or `failed: …`.
    pub state: String,
    /// The relay's URI on this leg.
    pub local_uri: String,
    /// Body bytes queued to the leg so far.
    pub bytes: u64,
    /// Body bytes received from the leg's peer.
    pub received: u64,
    /// Bytes queued and not yet written.
    pub queued: usize,
}

/// Engine-wide counters for `statistics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Live sessions.
    pub sessions: usize,
    /// Live legs.
    pub legs: usize,
    /// Open connections.
    pub connections: usize,
    /// Content bytes held in memory, in all logs of this engine.
    pub log_memory: u64,
    /// Content bytes spilled to disk.
    pub log_spilled: u64,
    /// Messages indexed and not yet freed.
    pub messages: usize,
    /// Body bytes received on every leg since the engine started.
    pub bytes_received: u64,
}

/// The fan-out engine of one worker. See the module docs.
#[derive(Debug)]
pub struct Engine {
    cfg: EngineConfig,
    budget: Arc<MemoryBudget>,
    sessions: HashMap<SessionId, Session>,
    next_session: u64,
    by_sid: HashMap<Bytes, LegId>,
    conns: HashMap<ConnId, Conn>,
    pacer: Pacer<LegId>,
    outputs: VecDeque<Output>,
    dirty: HashSet<SessionId>,
    now: Instant,
    received_total: u64,
}

impl Engine {
    /// An engine with its configuration and the process-wide log budget.
    pub fn new(
        cfg: EngineConfig,
        budget: Arc<MemoryBudget>,
        now: Instant,
    ) -> Result<Engine, String> {
        let pacer = Pacer::new(cfg.done_pacing).map_err(|e| e.to_string())?;
        let next_session = (u64::from(cfg.worker) << 56) | 1;
        Ok(Engine {
            cfg,
            budget,
            sessions: HashMap::new(),
            next_session,
            by_sid: HashMap::new(),
            conns: HashMap::new(),
            pacer,
            outputs: VecDeque::new(),
            dirty: HashSet::new(),
            now,
            received_total: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// The worker that minted a session-id (its first two hex digits).
    pub fn worker_of(session_id: &[u8]) -> Option<u8> {
        let h = std::str::from_utf8(session_id.get(..2)?).ok()?;
        u8::from_str_radix(h, 16).ok()
    }

    // ----- control-plane API ----------------------------------------------

    /// Creates a session with its upstream leg (index 0) in state invited.
    pub fn create_session(&mut self, upstream: LegParams, now: Instant) -> (SessionId, LegId) {
        let id = SessionId(self.next_session);
        self.next_session += 1;
        let sid = mint_session_id(self.cfg.worker);
        match self.create_session_as(id, upstream, sid, now) {
            Ok(leg) => (id, leg),
            // The engine's own numbering never collides with itself.
            Err(_) => (
                id,
                LegId {
                    session: id,
                    index: 0,
                },
            ),
        }
    }

    /// Creates a session under identities minted ahead by the caller (a
    /// control handle that wants no round trip to this worker): `id` must
    /// be new and carry this worker in its top byte, `sid` comes from
    /// [`mint_session_id`].
    pub fn create_session_as(
        &mut self,
        id: SessionId,
        upstream: LegParams,
        sid: String,
        now: Instant,
    ) -> Result<LegId, EngineError> {
        self.now = now;
        if self.sessions.contains_key(&id) {
            return Err(EngineError::Duplicate);
        }
        self.sessions
            .insert(id, Session::new(id, &self.cfg, self.budget.clone()));
        self.add_leg_as(id, 0, upstream, sid, now)
    }

    /// Adds a device leg, invited: from now on it keeps the whole content
    /// for a late accept (CPM-MLD-020).
    pub fn add_leg(
        &mut self,
        session: SessionId,
        params: LegParams,
        now: Instant,
    ) -> Result<LegId, EngineError> {
        let index = self
            .sessions
            .get(&session)
            .ok_or(EngineError::NoSession)?
            .legs
            .len() as u32;
        self.add_leg_as(
            session,
            index,
            params,
            mint_session_id(self.cfg.worker),
            now,
        )
    }

    /// Adds a leg at `index` under a session-id minted by the caller. Indexes
    /// must be new; a gap (a leg the caller numbered but never sent) stays
    /// empty.
    pub fn add_leg_as(
        &mut self,
        session: SessionId,
        index: u32,
        params: LegParams,
        sid: String,
        now: Instant,
    ) -> Result<LegId, EngineError> {
        self.now = now;
        let s = self
            .sessions
            .get_mut(&session)
            .ok_or(EngineError::NoSession)?;
        if index >= u32::from(u16::MAX) {
            return Err(EngineError::TooManyLegs);
        }
        if (index as usize) < s.legs.len() {
            return Err(EngineError::Duplicate);
        }
        let uri = local_uri(&self.cfg, &sid);
        let tid_prefix = tid_prefix(&sid);
        let sid = Bytes::from(sid);
        s.legs.resize_with(index as usize, || None);
        s.legs.push(Some(Leg::new(
            params.label,
            Bytes::from(uri),
            sid.clone(),
            tid_prefix,
            now,
        )));
        let leg = LegId { session, index };
        self.by_sid.insert(sid, leg);
        Ok(leg)
    }

    /// The relay's own MSRP URI on a leg (for the SDP `a=path`).
    pub fn local_uri(&self, leg: LegId) -> Option<String> {
        let l = self.sessions.get(&leg.session)?.leg(leg.index)?;
        Some(String::from_utf8_lossy(&l.local_uri).into_owned())
    }

    /// The peer answered: its path, and who connects. A device accepted
    /// after content flowed reads from the beginning (CPM-MLD-020).
    pub fn answer(&mut self, leg: LegId, answer: Answer, now: Instant) -> Result<(), EngineError> {
        self.now = now;
        if answer.peer_path.is_empty() {
            return Err(EngineError::BadPath("empty".into()));
        }
        let mut path = Vec::with_capacity(answer.peer_path.len());
        for raw in &answer.peer_path {
            path.push(
                MsrpUri::parse(raw.clone()).map_err(|e| EngineError::BadPath(e.to_string()))?,
            );
        }
        let to_path = Bytes::from(answer.peer_path.join(&b' '));
        let s = self
            .sessions
            .get_mut(&leg.session)
            .ok_or(EngineError::NoSession)?;
        let l = s.leg_mut(leg.index).ok_or(EngineError::NoLeg)?;
        if l.state != LegState::Invited {
            return Err(EngineError::AlreadyAnswered);
        }
        l.state = LegState::Answered;
        l.peer_path = path;
        let mut paths = bytes::BytesMut::new();
        encode::paths(&mut paths, &to_path, &l.local_uri);
        l.paths = paths.freeze();
        l.to_path = to_path;
        l.setup = answer.setup;
        l.last_progress = now;
        if let Setup::Active(addr) = answer.setup {
            self.outputs.push_back(Output::Connect { leg, addr });
        }
        // A device that connected before its answer arrived was parked.
        let parked: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.parked == Some(leg))
            .map(|(&id, _)| id)
            .collect();
        for conn in parked {
            self.replay(conn, now);
        }
        Ok(())
    }

    /// Removes a leg (a device's BYE, CANCEL or reject), closing its
    /// connection. The other legs and the session go on.
    pub fn remove_leg(&mut self, leg: LegId, now: Instant) -> Result<(), EngineError> {
        self.now = now;
        let s = self
            .sessions
            .get_mut(&leg.session)
            .ok_or(EngineError::NoSession)?;
        s.retire_leg(leg.index);
        let l = s
            .legs
            .get_mut(leg.index as usize)
            .and_then(Option::take)
            .ok_or(EngineError::NoLeg)?;
        self.by_sid.remove(&l.local_sid);
        self.pacer.cancel(&leg);
        if let Some(conn) = l.conn {
            self.conns.remove(&conn);
            self.outputs.push_back(Output::Close { conn, flush: false });
        }
        if leg.is_upstream() {
            s.end_upstream();
            self.outputs.push_back(Output::Event(Event::UpstreamEnded {
                session: leg.session,
            }));
        }
        self.dirty.insert(leg.session);
        Ok(())
    }

    /// The sender ended the session (its BYE): no more content; each device
    /// leg drains to its last byte, then gets its paced `leg-done`.
    pub fn end_session(&mut self, session: SessionId, now: Instant) -> Result<(), EngineError> {
        self.now = now;
        let s = self
            .sessions
            .get_mut(&session)
            .ok_or(EngineError::NoSession)?;
        if s.ending {
            return Ok(());
        }
        s.end_upstream();
        if let Some(up) = s.leg_mut(UPSTREAM) {
            up.state = LegState::Done;
            if let Some(conn) = up.conn {
                self.outputs.push_back(Output::Close { conn, flush: true });
            }
        }
        s.retire_leg(UPSTREAM);
        self.outputs
            .push_back(Output::Event(Event::UpstreamEnded { session }));
        self.dirty.insert(session);
        Ok(())
    }

    /// A leg's state.
    pub fn leg_info(&self, leg: LegId) -> Option<LegInfo> {
        let l = self.sessions.get(&leg.session)?.leg(leg.index)?;
        Some(LegInfo {
            leg,
            label: l.label.clone(),
            state: match &l.state {
                LegState::Invited => "invited".into(),
                LegState::Answered => "answered".into(),
                LegState::Connected => "connected".into(),
                LegState::Done => "done".into(),
                LegState::Failed(r) => format!("failed: {r}"),
            },
            local_uri: String::from_utf8_lossy(&l.local_uri).into_owned(),
            bytes: l.delivered_bytes,
            received: l.received_bytes,
            queued: l.out_len,
        })
    }

    /// Every leg of a session.
    pub fn session_legs(&self, session: SessionId) -> Option<Vec<LegInfo>> {
        let s = self.sessions.get(&session)?;
        Some(
            (0..s.legs.len() as u32)
                .filter_map(|index| self.leg_info(LegId { session, index }))
                .collect(),
        )
    }

    /// Counters.
    pub fn stats(&self) -> EngineStats {
        let mut st = EngineStats {
            sessions: self.sessions.len(),
            connections: self.conns.len(),
            bytes_received: self.received_total,
            ..EngineStats::default()
        };
        for s in self.sessions.values() {
            st.legs += s.legs.iter().flatten().count();
            let ls = s.log.stats();
            st.log_memory += ls.in_memory;
            st.log_spilled += ls.spilled;
            st.messages += s.live_messages();
        }
        st
    }

    // ----- driver API: connections ----------------------------------------

    /// A connection was accepted; it binds by its first request.
    pub fn handle_accepted(&mut self, conn: ConnId, now: Instant) {
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
            },
        );
    }

    /// A connection handed over by another worker, with what it read.
    pub fn handle_handover(&mut self, conn: ConnId, data: Vec<Bytes>, now: Instant) {
        self.handle_accepted(conn, now);
        for d in data {
            self.handle_data(conn, d, now);
        }
    }

    /// The relay's outgoing connection for `leg` is up (RFC 6135 active
    /// side). The relay speaks first: a bodiless SEND binds the connection
    /// at the peer (RFC 4975 §5.4).
    pub fn handle_connected(&mut self, conn: ConnId, leg: LegId, now: Instant) {
        self.handle_accepted(conn, now);
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
        let mut tid = [0u8; 20];
        let n = l.next_tid(&mut tid);
        l.push_inflight(None);
        let (to, from) = (l.to_path.clone(), l.local_uri.clone());
        let mid: [u8; 10] = random_bytes();
        let mid: Vec<u8> = mid
            .iter()
            .map(|b| super::ids::ALNUM[*b as usize % 62])
            .collect();
        l.push_encoded(|b| {
            encode::SendHead {
                tid: &tid[..n],
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
            encode::end_line(b, &tid[..n], crate::msrp::Flag::Complete, false);
        });
        self.bind(conn, leg, now);
    }

    /// The outgoing connection for `leg` could not be made.
    pub fn handle_connect_failed(&mut self, leg: LegId, now: Instant) {
        self.now = now;
        self.fail_leg(leg, FailReason::ConnectFailed);
    }

    fn bind(&mut self, conn: ConnId, leg: LegId, now: Instant) {
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

    fn decode(&mut self, conn: ConnId, now: Instant) {
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
                            }
                            continue;
                        }
                        (Disposition::Ignore, _) => continue,
                        (Disposition::Reply(_), None) | (Disposition::Close, _) => {
                            match leg {
                                Some(leg) => {
                                    self.fail_leg(leg, FailReason::Protocol(e.to_string()))
                                }
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

    fn dispatch(&mut self, leg: LegId, ev: Wire) {
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

    fn apply(&mut self, session: SessionId, fx: Effects) {
        for (li, reason) in fx.failed {
            self.fail_leg(LegId { session, index: li }, reason);
        }
    }

    /// MSRP-BIND: the first request on an accepted connection names the
    /// leg by the session-id of the relay's URI in its To-Path (which holds
    /// exactly that one URI, RFC 4975 §7.3), and its From-Path must end
    /// with the peer's URI from the SDP; else 481 and the connection
    /// closes. A session of another worker hands the connection over.
    fn bind_request(&mut self, conn: ConnId, head: &RequestHead, now: Instant) -> Option<LegId> {
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
                }
                return None;
            }
            LegState::Answered if l.conn.is_none() && l.setup == Setup::Passive => {}
            _ => {
                self.refuse(conn, head, StatusCode::NO_SUCH_SESSION);
                return None;
            }
        }
        let expected = l.peer_path.last();
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
    fn replay(&mut self, conn: ConnId, now: Instant) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let raw = std::mem::take(&mut c.raw);
        c.raw_len = 0;
        c.parked = None;
        c.decoder = Decoder::new(self.cfg.limits);
        for d in raw {
            self.handle_data(conn, d, now);
        }
    }

    /// Answers a request on an unbound connection and closes it.
    fn refuse(&mut self, conn: ConnId, head: &RequestHead, code: StatusCode) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if head.wants_response() {
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
        }
        self.close(conn, true);
    }

    fn close(&mut self, conn: ConnId, flush: bool) {
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

    fn fail_leg(&mut self, leg: LegId, reason: FailReason) {
        let Some(s) = self.sessions.get_mut(&leg.session) else {
            return;
        };
        let Some(l) = s.leg_mut(leg.index) else {
            return;
        };
        if matches!(l.state, LegState::Failed(_)) {
            return;
        }
        tracing::info!(session = leg.session.0, leg = leg.index, label = %l.label, %reason, "leg failed");
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

    // ----- driver API: output ---------------------------------------------

    /// Whether the driver may read the connection now. The sender's socket
    /// is not read while its session's log has no room (backpressure:
    /// TCP then slows the sender); a parked connection waits.
    pub fn can_read(&self, conn: ConnId) -> bool {
        let Some(c) = self.conns.get(&conn) else {
            return false;
        };
        if c.parked.is_some() {
            return false;
        }
        match c.leg {
            Some(leg) if leg.is_upstream() => self
                .sessions
                .get(&leg.session)
                .is_none_or(|s| s.has_room(READ_SIZE)),
            _ => true,
        }
    }

    /// What is queued for the connection, in order: write it with one
    /// vectored write.
    pub fn output(&self, conn: ConnId) -> impl Iterator<Item = &Bytes> {
        let c = self.conns.get(&conn);
        let leg_out = c
            .and_then(|c| c.leg)
            .and_then(|l| self.sessions.get(&l.session)?.leg(l.index))
            .map(|l| l.out.iter());
        c.map(|c| c.out.iter())
            .into_iter()
            .flatten()
            .chain(leg_out.into_iter().flatten())
    }

    /// Whether anything is queued for the connection.
    pub fn has_output(&self, conn: ConnId) -> bool {
        self.output(conn).next().is_some()
    }

    /// `n` bytes of [`Engine::output`] were written.
    pub fn consume_output(&mut self, conn: ConnId, mut n: usize, now: Instant) {
        self.now = now;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        advance(&mut c.out, &mut n, &mut 0);
        let Some(leg) = c.leg else { return };
        let Some(s) = self.sessions.get_mut(&leg.session) else {
            return;
        };
        if let Some(l) = s.leg_mut(leg.index) {
            let before = l.out_len;
            advance(&mut l.out, &mut n, &mut l.out_len);
            if l.out_len < before {
                l.last_progress = now;
            }
            if l.out_len < self.cfg.leg_low_water
                && let Err(e) = s.pump(leg.index, &self.cfg)
            {
                tracing::error!(error = %e, "content log read");
            }
        }
        self.dirty.insert(leg.session);
    }

    /// The next thing the driver must do.
    pub fn poll_output(&mut self) -> Option<Output> {
        if !self.dirty.is_empty() {
            self.process_dirty();
        }
        if let Some(o) = self.outputs.pop_front() {
            return Some(o);
        }
        let leg = self.pacer.poll(self.now)?;
        self.emit_done(leg);
        self.outputs.pop_front()
    }

    fn emit_done(&mut self, leg: LegId) {
        let Some(s) = self.sessions.get_mut(&leg.session) else {
            return;
        };
        let Some(l) = s.leg_mut(leg.index) else {
            return;
        };
        let bytes = l.delivered_bytes;
        l.done_sent = true;
        tracing::info!(session = leg.session.0, leg = leg.index, label = %l.label, bytes, "leg done");
        self.outputs
            .push_back(Output::Event(Event::LegDone { leg, bytes }));
        self.dirty.insert(leg.session);
    }

    fn process_dirty(&mut self) {
        let dirty: Vec<SessionId> = self.dirty.drain().collect();
        for id in dirty {
            let Some(s) = self.sessions.get_mut(&id) else {
                continue;
            };
            for li in 0..s.legs.len() as u32 {
                if let Err(e) = s.pump(li, &self.cfg) {
                    tracing::error!(session = id.0, error = %e, "content log read");
                }
                if li != UPSTREAM && s.leg_drained(li) {
                    if let Some(l) = s.leg_mut(li) {
                        l.state = LegState::Done;
                    }
                    self.pacer.offer(LegId {
                        session: id,
                        index: li,
                    });
                }
            }
            s.release();
            self.maybe_end(id);
        }
    }

    /// Frees a session whose sender ended and whose every device leg is
    /// done (and told so), failed or removed.
    fn maybe_end(&mut self, id: SessionId) {
        let Some(s) = self.sessions.get(&id) else {
            return;
        };
        if !s.ending {
            return;
        }
        let open = s
            .legs
            .iter()
            .skip(1)
            .flatten()
            .any(|l| l.state.is_reader() || l.state == LegState::Done && !l.done_sent);
        if open {
            return;
        }
        let Some(s) = self.sessions.remove(&id) else {
            return;
        };
        for l in s.legs.into_iter().flatten() {
            self.by_sid.remove(&l.local_sid);
            if let Some(conn) = l.conn {
                self.conns.remove(&conn);
                self.outputs.push_back(Output::Close { conn, flush: true });
            }
        }
        tracing::info!(session = id.0, "session ended");
        self.outputs
            .push_back(Output::Event(Event::SessionEnded { session: id }));
    }

    // ----- timers ---------------------------------------------------------

    /// When to call [`Engine::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let tick = (!self.sessions.is_empty() || !self.conns.is_empty())
            .then(|| self.now + Duration::from_millis(250));
        match (tick, self.pacer.next_deadline(self.now)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Time passed: legs without progress fail, unbound connections past
    /// the bind timeout close, paced events become due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        let mut stalled = Vec::new();
        let limit = self.cfg.leg_timeout;
        for (id, s) in &mut self.sessions {
            if s.ending && s.ending_at.is_none() {
                s.ending_at = Some(now);
            }
            let grace_over = s
                .ending_at
                .is_some_and(|t| now.saturating_duration_since(t) > limit);
            for (i, l) in s.legs.iter().enumerate() {
                let Some(l) = l else { continue };
                let leg = LegId {
                    session: *id,
                    index: i as u32,
                };
                let idle = now.saturating_duration_since(l.last_progress) > limit;
                match l.state {
                    LegState::Connected if idle && (!l.out.is_empty() || l.awaiting()) => {
                        stalled.push((leg, FailReason::Timeout));
                    }
                    // Answered but never connected; or still invited when
                    // the sender ended `leg_timeout` ago (a late accept gets
                    // that long after the sender's BYE).
                    LegState::Answered if idle => stalled.push((leg, FailReason::NeverConnected)),
                    LegState::Invited if i != 0 && grace_over => {
                        stalled.push((leg, FailReason::NeverConnected));
                    }
                    _ => {}
                }
            }
        }
        for (leg, reason) in stalled {
            self.fail_leg(leg, reason);
        }
        let expired: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.leg.is_none() && now.saturating_duration_since(c.opened) > self.cfg.bind_timeout
            })
            .map(|(&id, _)| id)
            .collect();
        for conn in expired {
            self.close(conn, false);
        }
    }
}

/// Drops `n` written bytes from the front of a queue.
fn advance(q: &mut VecDeque<Bytes>, n: &mut usize, len: &mut usize) {
    while *n > 0 {
        let Some(front) = q.front_mut() else { return };
        let k = front.len().min(*n);
        front.advance(k);
        *n -= k;
        *len = len.saturating_sub(k);
        if front.is_empty() {
            q.pop_front();
        }
    }
}
