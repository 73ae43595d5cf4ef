//! Data-plane events (leg ids) into protocol events (SIP names).

use std::time::Instant;

use msrp_relay::fanout::{Event as PlaneEvent, LegId};

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
                d.status = DeviceStatus::Done;
                out.push(Event::LegDone {
                    call_id: key.0,
                    from_tag: key.1,
                    via_branch: d.via_branch.clone(),
                    to_tag: d.to_tag.clone(),
                    reason: DoneReason::Drained,
                    bytes_sent: bytes,
                });
                self.counters.bytes_sent += bytes;
            }
            // Not used yet: the table removes legs itself.
            PlaneEvent::LegRemoved { .. } => {}
            PlaneEvent::LegFailed { leg, reason } => {
                let Some((key, e)) = self.lookup(leg) else {
                    return out;
                };
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
                    self.drop_entry(&key, &mut out);
                }
            }
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
