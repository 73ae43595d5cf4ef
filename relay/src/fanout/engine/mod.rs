//! The engine of one worker: its sessions, the connections the driver
//! feeds it, binding connections to legs, pacing, timers and outputs.
//!
//! Drivers call `handle_*` with bytes, connection events and the time,
//! write what [`Engine::output`] holds for a connection (one vectored
//! write) and report it with [`Engine::consume_output`], then act on
//! [`Engine::poll_output`] until it is empty and sleep until
//! [`Engine::poll_timeout`].
//!
//! The control-plane API is here; connections and binding are in
//! `conns`, output, pacing and timers in `output`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::counters::{Counters, StatusCounts};
use super::ids::{IdSource, local_uri, mint_session_id, tid_prefix};
use super::leg::Leg;
use super::log::MemoryBudget;
use super::pacer::Pacer;
use super::session::{Session, UPSTREAM};
use super::tid::StartTemplate;
use super::types::*;
use crate::msrp::{Decoder, MsrpUri, encode};

/// Reads the driver should issue per readable event; the log must have this
/// much room before the sender's socket is read.
pub const READ_SIZE: usize = 64 * 1024;

/// How often [`Engine::handle_timeout`] scans legs and connections for
/// their timeouts (leg timeout, bind timeout, report expiry).
pub const SCAN_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

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
    /// What the driver runs it over (a TLS leg binds only over TLS).
    transport: Transport,
}

/// A leg's state for `query`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegInfo {
    /// The leg.
    pub leg: LegId,
    /// Its label.
    pub label: String,
    /// Where it stands (its `Display`: `invited`, `answered`,
    /// `connected`, `done` or `failed: …`).
    pub state: LegState,
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
    /// Content bytes spilled to disk now (a gauge: it falls as the legs
    /// read them back and the log releases them).
    pub log_spilled: u64,
    /// Content bytes written to spill files since the engine started (a
    /// counter: a spill that came and went between two samples of
    /// [`log_spilled`](Self::log_spilled) still shows here).
    pub log_spilled_total: u64,
    /// The most content one session's log held in memory at once, since
    /// the engine started (each log's high-water mark; at most the
    /// session memory budget).
    pub log_memory_peak: u64,
    /// Messages indexed and not yet freed.
    pub messages: usize,
    /// Body bytes received on every leg since the engine started.
    pub bytes_received: u64,
    /// Messages waiting for a device's success REPORT.
    pub awaiting_reports: usize,
    /// Episodes, since the engine started, in which a session's content
    /// log refused an append and its sender was held until devices freed
    /// room (each also logged once).
    pub log_stalls: u64,
    /// Spill-file writes that failed since the engine started (disk full,
    /// spill directory gone); each holds the sender, none loses a byte.
    pub spill_errors: u64,
    /// Live legs by state: invited (not answered), answered (waiting for
    /// the connection), connected, done (drained), failed (alone).
    pub legs_by_state: LegsByState,
    /// SEND requests with a body received on any leg since start.
    pub chunks_received: u64,
    /// SEND chunks queued to device legs since start (one per leg).
    pub chunks_sent: u64,
    /// Body bytes of those chunks.
    pub bytes_sent: u64,
    /// Transaction responses sent since start, by status.
    pub responses_sent: StatusCounts,
    /// REPORTs sent since start, by status.
    pub reports_sent: StatusCounts,
    /// Legs done and waiting for their paced `LegDone` (PF-LMM-BYE).
    pub paced_done: usize,
}

/// Live legs of an engine by state (see [`EngineStats::legs_by_state`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LegsByState {
    /// Invited, not answered.
    pub invited: u64,
    /// Answered, waiting for the connection.
    pub answered: u64,
    /// Connected.
    pub connected: u64,
    /// Drained, `leg-done` queued or sent.
    pub done: u64,
    /// Failed alone.
    pub failed: u64,
}

/// The fan-out engine of one worker: it does no I/O and reads no clock;
/// a driver gives it bytes, connection events and the time, and does what
/// it answers.
///
/// The driving contract, per loop turn:
/// 1. Connection events: [`handle_accepted_over`](Engine::handle_accepted_over),
///    [`handle_connected`](Engine::handle_connected),
///    [`handle_connect_failed`](Engine::handle_connect_failed),
///    [`handle_closed`](Engine::handle_closed), handovers.
/// 2. Reads: read a connection only while [`can_read`](Engine::can_read)
///    says so (backpressure), at most [`READ_SIZE`] bytes a read, and feed
///    them with [`handle_data`](Engine::handle_data); act on
///    [`poll_output`](Engine::poll_output) after each feed (a handover or a
///    close must be seen before the next bytes of that connection).
/// 3. Writes: for each connection the driver's own I/O touched and each
///    one [`take_ready`](Engine::take_ready) names, write
///    [`output`](Engine::output) in one vectored write, report what went
///    out with [`consume_output`](Engine::consume_output), and a full or
///    drained socket with [`set_write_blocked`](Engine::set_write_blocked);
///    ask `can_read` again for a connection that was held back.
/// 4. [`poll_output`](Engine::poll_output) until `None` (connects,
///    closes, handovers, events for the control plane); call
///    [`handle_timeout`](Engine::handle_timeout) once
///    [`poll_timeout`](Engine::poll_timeout) has passed; wait for I/O no
///    longer than that, and not at all while
///    [`has_ready`](Engine::has_ready).
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
    /// Connections whose output or readability may have changed since the
    /// driver last took them ([`Engine::take_ready`]).
    ready: HashSet<ConnId>,
    /// Connections parked until their leg's answer (see `answer`).
    parked: HashSet<ConnId>,
    /// Session-ids and Message-IDs ([`EngineConfig::id_seed`]).
    ids: IdSource,
    now: Instant,
    /// When [`Engine::handle_timeout`] next scans every leg and
    /// connection for its timeouts (every [`SCAN_EVERY`]); calls between
    /// only move the clock (the pacer's deadlines come far more often).
    next_scan: Instant,
    /// Content-log counters of the sessions that ended.
    counters: Counters,
    received_total: u64,
}

impl Engine {
    /// An engine with its configuration and the process-wide log budget.
    pub fn new(
        cfg: EngineConfig,
        budget: Arc<MemoryBudget>,
        now: Instant,
    ) -> Result<Engine, EngineError> {
        let pacer = Pacer::new(cfg.done_pacing)?;
        let ids = IdSource::new(cfg.id_seed)?;
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
            ready: HashSet::new(),
            parked: HashSet::new(),
            ids,
            now,
            next_scan: now,
            received_total: 0,
            counters: Counters::default(),
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
    /// Refused only for a TLS leg without a TLS port
    /// ([`EngineError::NoTls`]): the engine's own numbering never collides.
    pub fn create_session(
        &mut self,
        upstream: LegParams,
        now: Instant,
    ) -> Result<(SessionId, LegId), EngineError> {
        let id = SessionId(self.next_session);
        let sid = mint_session_id(self.cfg.worker, &mut self.ids)?;
        let leg = self.create_session_as(id, upstream, sid, now)?;
        self.next_session += 1;
        Ok((id, leg))
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
        self.sessions.insert(
            id,
            Session::new(id, &upstream.label, &self.cfg, self.budget.clone()),
        );
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
        let sid = mint_session_id(self.cfg.worker, &mut self.ids)?;
        self.add_leg_as(session, index, params, sid, now)
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
        let uri = local_uri(&self.cfg, &sid, params.transport)?;
        let tid_prefix = tid_prefix(&sid);
        let sid = Bytes::from(sid);
        s.legs.resize_with(index as usize, || None);
        let mut leg = Leg::new(
            params.label,
            Bytes::from(uri),
            sid.clone(),
            tid_prefix,
            params.transport,
            now,
        );
        leg.role = params.role;
        s.legs.push(Some(leg));
        let leg = LegId { session, index };
        self.by_sid.insert(sid, leg);
        Ok(leg)
    }

    /// The relay's own MSRP URI on a leg (for the SDP `a=path`).
    pub fn local_uri(&self, leg: LegId) -> Option<String> {
        let l = self.sessions.get(&leg.session)?.leg(leg.index)?;
        Some(String::from_utf8_lossy(&l.cold.local_uri).into_owned())
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
        l.cold.peer_path = path;
        let mut paths = bytes::BytesMut::new();
        encode::paths(&mut paths, &to_path, &l.cold.local_uri);
        l.start = StartTemplate::new(l.tid_prefix(), &paths);
        l.cold.to_path = to_path;
        l.cold.setup = answer.setup;
        l.last_progress = now;
        if let Setup::Active(addr) = answer.setup {
            // RFC 4975 §14.2: the certificate is checked against the host
            // of the URI the relay connects to (the first hop).
            let tls = (l.cold.transport == Transport::Tls).then(|| {
                let host = l.cold.peer_path.first().map_or(&b""[..], |u| u.host());
                let host = String::from_utf8_lossy(host);
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned()
            });
            self.outputs.push_back(Output::Connect { leg, addr, tls });
        }
        // A device that connected before its answer arrived was parked.
        let mut parked: Vec<ConnId> = Vec::new();
        self.parked
            .retain(|id| match self.conns.get(id).and_then(|c| c.parked) {
                Some(l) if l == leg => {
                    parked.push(*id);
                    false
                }
                Some(_) => true,
                None => false,
            });
        parked.sort_unstable();
        for conn in parked {
            self.replay(conn, now);
        }
        Ok(())
    }

    /// Removes a leg (a device's BYE, CANCEL or reject), closing its
    /// connection. The other legs and the session go on.
    ///
    /// A removed leg is reported with [`Event::LegRemoved`] (the body bytes
    /// delivered to it), queued at once: it precedes every event the
    /// removal causes (`UpstreamEnded` for the upstream leg, the session's
    /// `SessionEnded`), and no other event about the leg follows it. A
    /// paced [`Event::LegDone`] not yet emitted is withdrawn. A call that
    /// fails (no such session or leg) reports nothing.
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
        self.by_sid.remove(&l.cold.local_sid);
        self.pacer.cancel(&leg);
        if let Some(conn) = l.conn {
            self.conns.remove(&conn);
            self.outputs.push_back(Output::Close { conn, flush: false });
        }
        self.outputs.push_back(Output::Event(Event::LegRemoved {
            leg,
            bytes: l.delivered_bytes,
        }));
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
            label: l.cold.label.clone(),
            state: l.state.clone(),
            local_uri: String::from_utf8_lossy(&l.cold.local_uri).into_owned(),
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

    /// Takes a new configuration (a reload): the identity this engine was
    /// started with (worker, host, port, scheme, codec limits) stays; the
    /// rest applies now — pacing and the process memory budget at once,
    /// timeouts from each leg's next check, content-log limits, message
    /// size bounds and report waits to the sessions created from now on.
    pub fn reconfigure(
        &mut self,
        new: &EngineConfig,
        process_memory: u64,
    ) -> Result<(), EngineError> {
        self.pacer.set_config(new.done_pacing)?;
        let keep = self.cfg.clone();
        self.cfg = EngineConfig {
            worker: keep.worker,
            workers: keep.workers,
            host: keep.host,
            port: keep.port,
            secure: keep.secure,
            tls_port: keep.tls_port,
            limits: keep.limits,
            ..new.clone()
        };
        self.budget.set_limit(process_memory);
        Ok(())
    }

    /// Counters.
    pub fn stats(&self) -> EngineStats {
        let mut st = EngineStats {
            sessions: self.sessions.len(),
            connections: self.conns.len(),
            bytes_received: self.received_total,
            ..EngineStats::default()
        };
        let mut counters = self.counters;
        for s in self.sessions.values() {
            for l in s.legs.iter().flatten() {
                st.legs += 1;
                let b = &mut st.legs_by_state;
                *match l.state {
                    LegState::Invited => &mut b.invited,
                    LegState::Answered => &mut b.answered,
                    LegState::Connected => &mut b.connected,
                    LegState::Done => &mut b.done,
                    LegState::Failed(_) => &mut b.failed,
                } += 1;
            }
            let ls = s.log.stats();
            st.log_memory += ls.in_memory;
            st.log_spilled += ls.spilled;
            st.messages += s.live_messages();
            st.awaiting_reports += s.awaiting_reports();
            counters += s.counters_with_log();
        }
        st.log_stalls = counters.stalls;
        st.spill_errors = counters.spill_errors;
        st.chunks_received = counters.chunks_received;
        st.chunks_sent = counters.chunks_sent;
        st.bytes_sent = counters.bytes_sent;
        st.responses_sent = counters.statuses;
        st.reports_sent = counters.reports;
        st.log_spilled_total = counters.spilled_bytes;
        st.log_memory_peak = counters.log_memory_peak;
        st.paced_done = self.pacer.len();
        st
    }
}

#[cfg(test)]
impl Engine {
    /// Moves a leg's next transaction sequence number (nothing may be in
    /// flight on it), to test ids across their wrap-around.
    pub(crate) fn set_next_tid_seq(&mut self, leg: LegId, seq: u64) {
        if let Some(l) = self
            .sessions
            .get_mut(&leg.session)
            .and_then(|s| s.leg_mut(leg.index))
        {
            assert!(l.inflight.is_empty());
            l.inflight_base = seq;
        }
    }
}

mod conns;
mod output;
