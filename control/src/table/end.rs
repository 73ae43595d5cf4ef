//! How sessions and legs end: `reject`, `delete`, the sender leaving,
//! owners vanishing, drains that do not finish, and shutdown.

use std::time::Instant;

use super::offer::{cancel_branches, close_leg, leg_done};
use super::{ConnId, DeviceStatus, Ending, Entry, Key, TableError};
use crate::plane::{DataPlane, PlaneError};
use crate::policy::{BranchState, CancelReason, ForkAction, Response};
use crate::protocol::{Delete, DeleteReply, DoneReason, Event, Reject, RejectReply};
use msrp_relay::fanout::EngineError;

/// Ends a whole session the way the sender's BYE does: outstanding
/// invitations are cancelled (their legs removed), the data plane drains
/// every accepted leg and reports each with a paced `LegDone`. Returns the
/// device legs now draining.
pub(crate) fn end_entry(
    plane: &dyn DataPlane,
    e: &mut Entry,
    reason: &'static str,
    now: Instant,
    events: &mut Vec<Event>,
) -> Result<usize, PlaneError> {
    let pending = e.fork.cancel_outstanding();
    cancel_branches(plane, e, pending, CancelReason::SenderEnded, events);
    let draining = e.devices.iter().filter(|d| d.status.live()).count();
    if e.ending.is_none() {
        e.ending = Some(Ending {
            reason,
            since: now,
            forced: false,
        });
        plane.end_session(e.id)?;
    }
    Ok(draining)
}

impl super::Core {
    /// `reject`: a device's non-2xx final response.
    pub(crate) fn reject(
        &mut self,
        conn: ConnId,
        r: Reject,
        now: Instant,
        events: &mut Vec<Event>,
    ) -> Result<RejectReply, TableError> {
        let plane = self.plane.clone();
        let e = self.entry_mut(&r.call_id, &r.from_tag)?;
        e.adopt(conn);
        let di = e.device(&r.via_branch)?;
        let actions = e.fork.respond(&r.via_branch, r.response())?;
        let dev = &mut e.devices[di];
        dev.declined = r.code == 603;
        if dev.status.live() {
            let _ = plane.remove_leg(dev.leg);
            dev.status = DeviceStatus::Removed;
        }
        let mut reply = RejectReply {
            sender_status: None,
        };
        for action in actions {
            match action {
                ForkAction::CancelBranches {
                    via_branches,
                    reason,
                } => cancel_branches(&*plane, e, via_branches, reason, events),
                ForkAction::FailSender { failure } => {
                    reply.sender_status = Some(failure.status());
                }
                _ => {}
            }
        }
        if reply.sender_status.is_some() {
            // Nobody accepted and nobody can: the session is over.
            end_entry(&*plane, e, "rejected", now, events)?;
        }
        Ok(reply)
    }

    /// `delete`: the whole session (sender's BYE or CANCEL) or one device
    /// leg (its BYE, or a CANCEL of its branch).
    pub(crate) fn delete(
        &mut self,
        conn: ConnId,
        d: Delete,
        now: Instant,
        events: &mut Vec<Event>,
    ) -> Result<DeleteReply, TableError> {
        let plane = self.plane.clone();
        let key = (d.call_id.clone(), d.from_tag.clone());
        if !self.sessions.contains_key(&key)
            && let Some(reason) = self.ended.get(&key, now)
        {
            // The sender's connection closed (or the session otherwise
            // ended) before the front end relayed its BYE: nothing left
            // to do, and nothing wrong (`ended`).
            return Ok(DeleteReply {
                draining: 0,
                ended: Some(reason.to_owned()),
            });
        }
        let e = self.entry_mut(&d.call_id, &d.from_tag)?;
        e.adopt(conn);
        let Some(branch) = d.via_branch else {
            let draining = end_entry(&*plane, e, "deleted", now, events)?;
            return Ok(DeleteReply {
                draining,
                ended: None,
            });
        };
        let di = e.device(&branch)?;
        if matches!(
            e.fork.state(&branch),
            Some(BranchState::Pending | BranchState::Cancelling)
        ) {
            // The front end CANCELled this branch itself; for the fork it
            // is over without an accept.
            let _ = e.fork.respond(&branch, Response::Timeout);
        }
        if e.devices[di].status.live() {
            close_leg(&*plane, e, &branch, DoneReason::Deleted, events);
        }
        Ok(DeleteReply {
            draining: 0,
            ended: None,
        })
    }

    /// The sender's leg ended in the data plane (its connection closed or
    /// failed) without a `delete`: the session drains as after a BYE.
    pub(crate) fn upstream_ended(&mut self, key: &Key, now: Instant, events: &mut Vec<Event>) {
        let plane = self.plane.clone();
        if let Some(e) = self.sessions.get_mut(key)
            && e.ending.is_none()
        {
            match end_entry(&*plane, e, "sender-ended", now, events) {
                Ok(_) => {}
                // The plane freed the session already (it had nothing left
                // to drain, e.g. at shutdown): nothing to end there.
                Err(PlaneError::Engine(EngineError::NoSession)) => {
                    tracing::debug!(call_id = %key.0, "sender left; the data plane had freed the session");
                }
                Err(err) => {
                    tracing::warn!(call_id = %key.0, error = %err, "ending session after sender left");
                }
            }
        }
    }

    /// A control connection closed: its sessions lose their owner and
    /// expire after the orphan timeout unless another connection takes
    /// them back by naming them in a command.
    pub fn connection_closed(&mut self, conn: ConnId, now: Instant) {
        for e in self.sessions.values_mut() {
            if e.owner == Some(conn) {
                e.owner = None;
                e.orphaned_at = Some(now);
            }
        }
    }

    /// Timers: orphaned sessions expire; drains that outlive the drain
    /// timeout have their remaining legs removed (`leg-failed`); a session
    /// the data plane never reports ended is dropped after a second drain
    /// timeout. Returns the events to publish.
    pub fn sweep(&mut self, now: Instant) -> Vec<Event> {
        let mut events = Vec::new();
        let plane = self.plane.clone();
        let (orphan, drain) = (self.cfg.orphan_timeout, self.cfg.drain_timeout);
        let mut dropped = Vec::new();
        self.ended.purge(now);
        for (key, e) in self.sessions.iter_mut() {
            match e.ending {
                None => {
                    let expired = e
                        .orphaned_at
                        .is_some_and(|t| now.saturating_duration_since(t) >= orphan);
                    if expired {
                        tracing::info!(call_id = %key.0, "session without control owner expired");
                        if let Err(err) = end_entry(&*plane, e, "expired", now, &mut events) {
                            tracing::warn!(call_id = %key.0, error = %err, "expiring session");
                            dropped.push(key.clone());
                        }
                    }
                }
                Some(ending) if !ending.forced => {
                    if now.saturating_duration_since(ending.since) >= drain {
                        force_end(&*plane, e, drain, &mut events, &mut dropped);
                    }
                }
                Some(ending) => {
                    if now.saturating_duration_since(ending.since) >= drain * 2 {
                        tracing::warn!(call_id = %key.0, "data plane never ended the session; dropped");
                        dropped.push(key.clone());
                    }
                }
            }
        }
        for key in dropped {
            self.drop_entry(&key, now, &mut events);
        }
        events
    }

    /// Removes an entry and says `session-ended`, after the `leg-done` of
    /// each leg still being removed (its removal lost the race with the
    /// session's end, or the plane never answered: `bytes-sent` 0).
    pub(crate) fn drop_entry(&mut self, key: &Key, now: Instant, events: &mut Vec<Event>) {
        if let Some(e) = self.sessions.remove(key) {
            self.by_id.remove(&e.id);
            let reason = e.ending.map_or("ended", |x| x.reason);
            self.ended.remember(key.clone(), reason, now);
            self.settle_store(&e);
            for d in &e.devices {
                if let DeviceStatus::Removing(reason) = d.status {
                    events.push(leg_done(&e.key, d, reason, 0));
                }
            }
            events.push(Event::SessionEnded {
                call_id: key.0.clone(),
                from_tag: key.1.clone(),
                reason: e.ending.map_or("ended", |x| x.reason).to_owned(),
            });
        }
    }

    /// Shutdown: no new sessions; every session ends as after a BYE, so
    /// devices still get what they are owed within the drain timeout.
    pub fn begin_shutdown(&mut self, now: Instant) -> Vec<Event> {
        self.shutting_down = true;
        let plane = self.plane.clone();
        let mut events = Vec::new();
        let mut dropped = Vec::new();
        for (key, e) in self.sessions.iter_mut() {
            if e.ending.is_none() && end_entry(&*plane, e, "shutdown", now, &mut events).is_err() {
                dropped.push(key.clone());
            }
        }
        for key in dropped {
            self.drop_entry(&key, now, &mut events);
        }
        events
    }
}

/// The drain took too long: remove what is left.
fn force_end(
    plane: &dyn DataPlane,
    e: &mut Entry,
    drain: std::time::Duration,
    events: &mut Vec<Event>,
    dropped: &mut Vec<Key>,
) {
    if let Some(x) = e.ending.as_mut() {
        x.forced = true;
    }
    for d in e.devices.iter_mut().filter(|d| d.status.live()) {
        match plane.remove_leg(d.leg) {
            Ok(()) | Err(PlaneError::Engine(EngineError::NoLeg)) => {}
            Err(PlaneError::Engine(EngineError::NoSession)) => {
                dropped.push(e.key.clone());
                return;
            }
            Err(err) => {
                tracing::warn!(call_id = %e.key.0, via_branch = %d.via_branch, error = %err, "removing an undrained leg")
            }
        }
        d.status = DeviceStatus::Failed;
        events.push(Event::LegFailed {
            call_id: e.key.0.clone(),
            from_tag: e.key.1.clone(),
            via_branch: Some(d.via_branch.clone()),
            to_tag: d.to_tag.clone(),
            error: format!("not drained within {} s", drain.as_secs()),
        });
    }
    if let Err(PlaneError::Engine(EngineError::NoSession)) = plane.end_session(e.id) {
        dropped.push(e.key.clone());
    }
}
