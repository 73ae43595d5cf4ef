//! What the driver does next: reading allowed or not (backpressure), the
//! bytes to write on a connection, outputs and paced `leg-done` events,
//! freeing ended sessions, and timers.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::{Buf, Bytes};

use super::{Engine, READ_SIZE, SCAN_EVERY};
use crate::fanout::session::{PassMarks, UPSTREAM};
use crate::fanout::types::LegState;
use crate::fanout::types::*;

impl Engine {
    // ----- driver API: output ---------------------------------------------

    /// Whether the driver may read the connection now. The sender's socket
    /// is not read while its session's log has no room or the sender is a
    /// read-ahead window ahead of every freely writing leg (backpressure:
    /// TCP then slows the sender; [`EngineConfig::read_ahead`]); a parked
    /// connection waits.
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
                .is_none_or(|s| s.has_room(READ_SIZE, self.cfg.read_ahead)),
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

    /// The driver's word on a connection's socket: `true` when a write
    /// found it full (would block, or went out short), `false` once a write
    /// went out whole or the socket is writable again. A device leg whose
    /// socket is full is reading slower than the relay writes; it does not
    /// hold the sender back ([`EngineConfig::read_ahead`]).
    pub fn set_write_blocked(&mut self, conn: ConnId, blocked: bool) {
        let Some(leg) = self.conns.get(&conn).and_then(|c| c.leg) else {
            return;
        };
        let Some(l) = self
            .sessions
            .get_mut(&leg.session)
            .and_then(|s| s.leg_mut(leg.index))
        else {
            return;
        };
        if l.write_blocked != blocked {
            l.write_blocked = blocked;
            self.dirty.insert(leg.session);
        }
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

    /// Moves into `into` every connection whose output or readability may
    /// have changed since the last call: what a driver must look at (write
    /// [`Engine::output`], ask [`Engine::can_read`] again) besides the
    /// connections its own I/O touched. A turn then costs what is ready,
    /// not what is open. A connection may be named that has nothing to
    /// write, or that the engine has closed meanwhile; neither is an error.
    pub fn take_ready(&mut self, into: &mut Vec<ConnId>) {
        if !self.dirty.is_empty() {
            self.process_dirty();
        }
        into.extend(self.ready.drain());
    }

    /// Whether [`Engine::take_ready`] would name a connection.
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty() || !self.dirty.is_empty()
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

    pub(super) fn emit_done(&mut self, leg: LegId) {
        let Some(s) = self.sessions.get_mut(&leg.session) else {
            return;
        };
        let call = s.call.clone();
        let Some(l) = s.leg_mut(leg.index) else {
            return;
        };
        let bytes = l.delivered_bytes;
        l.done_sent = true;
        tracing::info!(%call, session = leg.session.0, leg = leg.index, label = %l.cold.label, bytes, "leg done");
        self.outputs
            .push_back(Output::Event(Event::LegDone { leg, bytes }));
        self.dirty.insert(leg.session);
    }

    pub(super) fn process_dirty(&mut self) {
        let dirty: Vec<SessionId> = self.dirty.drain().collect();
        for id in dirty {
            let Some(s) = self.sessions.get_mut(&id) else {
                continue;
            };
            let mut marks = PassMarks::default();
            self.ready
                .extend(s.legs.iter().flatten().filter_map(|l| l.conn));
            for li in 0..s.legs.len() as u32 {
                if let Err(e) = s.pump(li, &self.cfg) {
                    tracing::error!(call = %s.call, session = id.0, error = %e, "content log read");
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
                s.mark(li, &mut marks);
            }
            s.release(marks);
            self.maybe_end(id);
        }
    }

    /// Frees a session whose sender ended and whose every device leg is
    /// done (and told so), failed or removed.
    pub(super) fn maybe_end(&mut self, id: SessionId) {
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
        self.counters += s.counters_with_log();
        let call = s.call;
        for l in s.legs.into_iter().flatten() {
            self.by_sid.remove(&l.cold.local_sid);
            if let Some(conn) = l.conn {
                self.conns.remove(&conn);
                self.outputs.push_back(Output::Close { conn, flush: true });
            }
        }
        tracing::info!(%call, session = id.0, "session ended");
        self.outputs
            .push_back(Output::Event(Event::SessionEnded { session: id }));
    }

    // ----- timers ---------------------------------------------------------

    /// When to call [`Engine::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let tick = (!self.sessions.is_empty() || !self.conns.is_empty()).then_some(self.next_scan);
        match (tick, self.pacer.next_deadline(self.now)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Time passed: legs without progress fail, unbound connections past
    /// the bind timeout close, paced events become due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        // The scan is O(sessions + connections). Paced `leg-done`s make
        // the driver call this every 1/bye-per-sec; scanning each time
        // cost 44 % of a relay's CPU with 90,000 sessions (perf, `msrp-load
        // setup --ng`). A deadline of its own also means a busy worker,
        // whose clock moves with every event, still scans.
        if now < self.next_scan {
            return;
        }
        self.next_scan = now + SCAN_EVERY;
        let mut stalled = Vec::new();
        let limit = self.cfg.leg_timeout;
        for (id, s) in &mut self.sessions {
            s.expire_reports(now);
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
