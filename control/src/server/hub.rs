//! The event subscriptions, and the lock helper.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use super::outbox::{Outbox, lock};

use crate::protocol::{Event, EventName, encode_event};
use crate::table::ConnId;

#[derive(Debug)]
struct Subscriber {
    /// `None`: every event.
    filter: Option<HashSet<EventName>>,
    outbox: Arc<Outbox>,
}

/// The connections that asked for events.
#[derive(Debug, Default)]
pub(crate) struct Hub {
    subs: Mutex<HashMap<ConnId, Subscriber>>,
}

impl Hub {
    pub(crate) fn subscribe(&self, conn: ConnId, events: &[EventName], outbox: Arc<Outbox>) {
        let filter = (!events.is_empty()).then(|| events.iter().copied().collect());
        lock(&self.subs).insert(conn, Subscriber { filter, outbox });
    }

    pub(crate) fn remove(&self, conn: ConnId) {
        lock(&self.subs).remove(&conn);
    }

    /// Queues each event on every subscriber that wants it, in order.
    pub(crate) fn publish(&self, events: &[Event]) {
        if events.is_empty() {
            return;
        }
        let subs = lock(&self.subs);
        for ev in events {
            let line = match encode_event(ev) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(error = %e, "cannot encode event");
                    continue;
                }
            };
            tracing::debug!(event = line.trim_end(), "event");
            for s in subs.values() {
                if s.filter.as_ref().is_none_or(|f| f.contains(&ev.name())) {
                    s.outbox.push_event(&line);
                }
            }
        }
    }
}
