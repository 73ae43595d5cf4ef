//! `query`, `list`, `statistics`.

use std::time::Instant;

use msrp_relay::fanout::{LegInfo as PlaneLeg, LegState as PlaneState};

use super::{ConnId, DeviceStatus, Entry, TableError};
use crate::protocol::{LegInfo, LegRole, LegState, ListReply, Query, QueryReply, StatisticsReply};

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The engine's leg state, in the protocol's terms.
fn plane_state(s: &PlaneState, ending: bool) -> LegState {
    match s {
        PlaneState::Invited => LegState::Invited,
        PlaneState::Answered => LegState::Connecting,
        PlaneState::Connected if ending => LegState::Draining,
        PlaneState::Connected => LegState::Connected,
        PlaneState::Done => LegState::Done,
        PlaneState::Failed(_) => LegState::Failed,
    }
}

fn control_state(s: DeviceStatus) -> LegState {
    match s {
        DeviceStatus::Invited => LegState::Invited,
        DeviceStatus::Answered => LegState::Connecting,
        DeviceStatus::Connected => LegState::Connected,
        DeviceStatus::Failed => LegState::Failed,
        DeviceStatus::Done | DeviceStatus::Removing(_) | DeviceStatus::Removed => LegState::Done,
    }
}

impl super::Core {
    /// `query`: one session's legs. Like every command that names a
    /// session, it makes `conn` the session's owner: a restarted front end
    /// that starts by querying its calls takes them back before the orphan
    /// timer ends them.
    pub(crate) fn query(
        &mut self,
        conn: ConnId,
        q: &Query,
        now: Instant,
    ) -> Result<QueryReply, TableError> {
        let unknown = || TableError::UnknownCall {
            call_id: q.call_id.clone(),
            from_tag: q.from_tag.clone(),
        };
        let e: &mut Entry = match &q.from_tag {
            Some(tag) => self
                .sessions
                .get_mut(&(q.call_id.clone(), tag.clone()))
                .ok_or_else(unknown)?,
            None => self
                .sessions
                .range_mut((q.call_id.clone(), String::new())..)
                .next()
                .filter(|(k, _)| k.0 == q.call_id)
                .map(|(_, e)| e)
                .ok_or_else(unknown)?,
        };
        e.adopt(conn);
        let e: &Entry = e;
        let plane = self.plane.session_legs(e.id).unwrap_or_default();
        let find = |leg| plane.iter().find(|l: &&PlaneLeg| l.leg == leg);
        let ending = e.ending.is_some();
        let up = &e.upstream;
        let up_info = find(up.leg);
        let mut legs = vec![LegInfo {
            role: LegRole::Sender,
            via_branch: None,
            to_tag: None,
            instance_id: None,
            state: up_info.map_or(LegState::Done, |l| plane_state(&l.state, false)),
            bytes_received: up_info.map_or(0, |l| l.received),
            bytes_sent: up_info.map_or(0, |l| l.bytes),
            backlog_bytes: up_info.map_or(0, |l| l.queued as u64),
            age_ms: ms(now.saturating_duration_since(up.created)),
            connect_ms: up
                .connected_at
                .map(|t| ms(t.saturating_duration_since(up.created))),
        }];
        for d in &e.devices {
            let info = find(d.leg).filter(|_| d.status.live() || d.status == DeviceStatus::Done);
            legs.push(LegInfo {
                role: LegRole::Device,
                via_branch: Some(d.via_branch.clone()),
                to_tag: d.to_tag.clone(),
                instance_id: d.instance_id.clone(),
                state: info.map_or(control_state(d.status), |l| plane_state(&l.state, ending)),
                bytes_received: info.map_or(0, |l| l.received),
                bytes_sent: info.map_or(0, |l| l.bytes),
                backlog_bytes: info.map_or(0, |l| l.queued as u64),
                age_ms: ms(now.saturating_duration_since(d.created)),
                connect_ms: d
                    .connected_at
                    .map(|t| ms(t.saturating_duration_since(d.created))),
            });
        }
        Ok(QueryReply {
            call_id: e.key.0.clone(),
            from_tag: e.key.1.clone(),
            kind: e.kind,
            legs,
        })
    }

    /// `list`: call-ids present, in order, each once.
    pub(crate) fn list(&self, limit: Option<usize>) -> ListReply {
        let limit = limit
            .unwrap_or(self.cfg.list_limit)
            .min(self.cfg.list_limit);
        let mut calls: Vec<String> = Vec::new();
        for (call_id, _) in self.sessions.keys() {
            if calls.len() >= limit {
                break;
            }
            if calls.last() != Some(call_id) {
                calls.push(call_id.clone());
            }
        }
        ListReply { calls }
    }

    /// `statistics`.
    pub(crate) fn statistics(&self) -> Result<StatisticsReply, TableError> {
        let stats = self.plane.stats()?;
        let sum = |f: fn(&msrp_relay::fanout::EngineStats) -> u64| stats.iter().map(f).sum();
        Ok(StatisticsReply {
            sessions: sum(|s| s.sessions as u64),
            legs: sum(|s| s.legs as u64),
            sessions_total: self.counters.sessions_total,
            legs_failed: self.counters.legs_failed,
            bytes_received: sum(|s| s.bytes_received),
            bytes_sent: self.counters.bytes_sent,
            spilled_bytes: sum(|s| s.log_spilled),
            awaiting_reports: sum(|s| s.awaiting_reports as u64),
            log_stalls: sum(|s| s.log_stalls),
            spill_errors: sum(|s| s.spill_errors),
            control_connections: self.control_connections,
            draining: self.draining(),
        })
    }
}
