//! The connections of a worker that carry a deadline (connecting,
//! closing), kept apart so that neither the wait's timeout nor expiry
//! walks every connection.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use crate::fanout::ConnId;

/// Connection ids that may have a deadline; each driver's `Conn` says
/// whether it still has one (`deadline`), so a stale id is harmless.
#[derive(Debug, Default)]
pub(crate) struct Timed(HashSet<ConnId>);

impl Timed {
    /// `id` has (or may have) a deadline from now on.
    pub(crate) fn insert(&mut self, id: ConnId) {
        self.0.insert(id);
    }

    /// `id` is gone.
    pub(crate) fn remove(&mut self, id: &ConnId) {
        self.0.remove(id);
    }

    /// The earliest deadline.
    pub(crate) fn next<C>(
        &self,
        conns: &HashMap<ConnId, C>,
        deadline: impl Fn(&C) -> Option<Instant>,
    ) -> Option<Instant> {
        self.0
            .iter()
            .filter_map(|id| conns.get(id).and_then(&deadline))
            .min()
    }

    /// Forgets the ids without a deadline any more; returns those past it.
    pub(crate) fn due<C>(
        &mut self,
        conns: &HashMap<ConnId, C>,
        deadline: impl Fn(&C) -> Option<Instant>,
        now: Instant,
    ) -> Vec<ConnId> {
        self.0
            .retain(|id| conns.get(id).and_then(&deadline).is_some());
        self.0
            .iter()
            .filter(|id| conns.get(id).and_then(&deadline).is_some_and(|d| d <= now))
            .copied()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn due_returns_what_is_past_and_forgets_what_has_no_deadline() {
        let t0 = Instant::now();
        let conns: HashMap<ConnId, Option<Instant>> = [
            (ConnId(1), Some(t0)),
            (ConnId(2), Some(t0 + Duration::from_secs(5))),
            (ConnId(3), None),
        ]
        .into();
        let mut timed = Timed::default();
        for id in [1, 2, 3, 4] {
            timed.insert(ConnId(id));
        }
        assert_eq!(timed.next(&conns, |d| *d), Some(t0));
        let due = timed.due(&conns, |d| *d, t0 + Duration::from_secs(1));
        assert_eq!(due, vec![ConnId(1)]);
        // 3 has no deadline and 4 is gone: both forgotten.
        assert_eq!(timed.0.len(), 2);
        timed.remove(&ConnId(1));
        assert_eq!(
            timed.next(&conns, |d| *d),
            Some(t0 + Duration::from_secs(5))
        );
    }
}
