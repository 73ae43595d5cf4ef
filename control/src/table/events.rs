//! Data-plane events (leg ids) into protocol events (SIP names).

use std::time::Instant;

use msrp_relay::fanout::{Event as PlaneEvent, FailReason, LegId};

use super::offer::leg_done;
use super::{DeviceStatus, Key};
use crate::protocol::{DoneReason, Event};

impl super::Core {
    /// Translates one data-plane event and updates the table; returns the
    /// protocol events to publish (none for legs or sessions the table no
    /// longer knows, e.g. a leg the control plane removed itself).
    pub fn on_plane_event(&mut self, ev: PlaneEvent, now: Instant) -> Vec<Event> {
        let mut out = Vec::new();
        match ev {
            PlaneEvent::LegConnected { leg } => self.leg_connected(leg, now, &mut out),
            PlaneEvent::LegDone { leg, bytes } => {
                let Some((key, e)) = self.lookup(leg) else {
                    return out;
                };
                let Some(d) = e.devices.iter_mut().find(|d| d.leg == leg) else {
                    return out;
                };
                match d.status {
                    // Drained just before the control plane's removal
                    // reached the worker: the front end asked for this
                    // leg's end, so its reason stands (and the plane's
                    // `LegRemoved`, if it comes, is not reported again).
                    DeviceStatus::Removing(reason) => {
                        d.status = DeviceStatus::Removed;
                        out.push(leg_done(&key, d, reason, bytes));
                    }
                    s if s.live() => {
                        d.status = DeviceStatus::Done;
                        out.push(leg_done(&key, d, DoneReason::Drained, bytes));
                        self.counters.bytes_sent += bytes;
                    }
                    // Told already (removed, failed, done).
                    _ => {}
                }
            }
            PlaneEvent::LegRemoved { leg, bytes } => {
                let Some((key, e)) = self.lookup(leg) else {
                    return out;
                };
                // Only a removal that owes the front end a `leg-done` is
                // reported; the others (CANCEL, reject, forced drains)
                // were told when they were made.
                if let Some(d) = e.devices.iter_mut().find(|d| d.leg == leg)
                    && let DeviceStatus::Removing(reason) = d.status
                {
                    d.status = DeviceStatus::Removed;
                    out.push(leg_done(&key, d, reason, bytes));
                }
            }
            PlaneEvent::LegFailed { leg, reason } => {
                let Some((key, e)) = self.lookup(leg) else {
                    return out;
                };
                if e.store.as_ref().is_some_and(|s| s.leg == leg) {
                    // Not the front end's business: the store reports the
                    // item not stored (`store-failed`).
                    tracing::warn!(call_id = %key.0, error = %reason, "store leg failed");
                    return out;
                }
                let (via_branch, to_tag) = if leg == e.upstream.leg {
                    (None, None)
                } else {
                    let Some(d) = e.devices.iter_mut().find(|d| d.leg == leg) else {
                        return out;
                    };
                    if !d.status.live() {
                        return out;
                    }
                    d.status = DeviceStatus::Failed;
                    (Some(d.via_branch.clone()), d.to_tag.clone())
                };
                self.counters.legs_failed += 1;
                if let Some(i) = FailReason::KINDS.iter().position(|k| *k == reason.kind()) {
                    self.counters.legs_failed_by[i] += 1;
                }
                out.push(Event::LegFailed {
                    call_id: key.0,
                    from_tag: key.1,
                    via_branch,
                    to_tag,
                    error: reason.to_string(),
                });
            }
            PlaneEvent::UpstreamEnded { session } => {
                if let Some(key) = self.by_id.get(&session).cloned() {
                    self.upstream_ended(&key, now, &mut out);
                }
            }
            PlaneEvent::SessionEnded { session } => {
                if let Some(key) = self.by_id.get(&session).cloned() {
                    self.drop_entry(&key, now, &mut out);
                }
            }
            other => tracing::debug!(event = ?other, "data-plane event this table does not track"),
        }
        out
    }

    fn lookup(&mut self, leg: LegId) -> Option<(Key, &mut super::Entry)> {
        let key = self.by_id.get(&leg.session)?.clone();
        let e = self.sessions.get_mut(&key)?;
        Some((key, e))
    }

    fn leg_connected(&mut self, leg: LegId, now: Instant, out: &mut Vec<Event>) {
        let Some((key, e)) = self.lookup(leg) else {
            return;
        };
        if leg == e.upstream.leg {
            e.upstream.connected_at = Some(now);
            out.push(Event::LegConnected {
                call_id: key.0,
                from_tag: key.1,
                via_branch: None,
                to_tag: None,
            });
            return;
        }
        let Some(d) = e.devices.iter_mut().find(|d| d.leg == leg) else {
            return;
        };
        // Nothing more about a leg after its `leg-done` or `leg-failed`,
        // or its CANCEL (a leg being removed still has its `leg-done`
        // to come, after this).
        if !d.status.live() && !matches!(d.status, DeviceStatus::Removing(_)) {
            return;
        }
        if d.status == DeviceStatus::Answered {
            d.status = DeviceStatus::Connected;
        }
        d.connected_at = Some(now);
        out.push(Event::LegConnected {
            call_id: key.0,
            from_tag: key.1,
            via_branch: Some(d.via_branch.clone()),
            to_tag: d.to_tag.clone(),
        });
    }
}
