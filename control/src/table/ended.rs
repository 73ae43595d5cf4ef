//! Sessions that ended recently, so that the `delete` a front end sends
//! on the sender's BYE as a matter of course is answered `ok` even when
//! the session is already gone (the sender's MSRP connection closed first,
//! the drain finished, the orphan timer fired): `delete` is idempotent.
//!
//! Bounded: at most [`MAX_ENDED`] keys, each for [`ENDED_MEMORY`], the
//! oldest forgotten first. A `delete` of a call-id never seen, or ended
//! longer ago than that, is still `unknown call-id`: a front end's typo
//! is not hidden.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::Key;

/// How long an ended session is remembered: well past SIP's 32 s
/// transaction timeout (RFC 3261 Timer F), so a BYE retransmitted or sent
/// late still finds it.
pub(crate) const ENDED_MEMORY: Duration = Duration::from_secs(300);
/// Most ended sessions remembered.
pub(crate) const MAX_ENDED: usize = 65_536;

#[derive(Debug, Default)]
pub(crate) struct Ended {
    /// Key → (when it ended, why).
    map: HashMap<Key, (Instant, &'static str)>,
    /// Keys in the order they ended (may hold keys already gone).
    order: VecDeque<(Key, Instant)>,
}

impl Ended {
    /// Session `key` ended at `now` for `reason`.
    pub(crate) fn remember(&mut self, key: Key, reason: &'static str, now: Instant) {
        self.purge(now);
        while self.map.len() >= MAX_ENDED {
            let Some((old, at)) = self.order.pop_front() else {
                break;
            };
            if self.map.get(&old).is_some_and(|(t, _)| *t == at) {
                self.map.remove(&old);
            }
        }
        self.map.insert(key.clone(), (now, reason));
        self.order.push_back((key, now));
    }

    /// Why `key` ended, if it did within [`ENDED_MEMORY`] of `now`.
    pub(crate) fn get(&self, key: &Key, now: Instant) -> Option<&'static str> {
        self.map
            .get(key)
            .filter(|(t, _)| now.saturating_duration_since(*t) < ENDED_MEMORY)
            .map(|(_, r)| *r)
    }

    /// A session of this key is live again (a new offer reused it).
    pub(crate) fn forget(&mut self, key: &Key) {
        self.map.remove(key);
    }

    /// Forgets what ended [`ENDED_MEMORY`] ago.
    pub(crate) fn purge(&mut self, now: Instant) {
        while let Some((key, at)) = self.order.front() {
            if now.saturating_duration_since(*at) < ENDED_MEMORY {
                break;
            }
            if self.map.get(key).is_some_and(|(t, _)| t == at) {
                self.map.remove(key);
            }
            self.order.pop_front();
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: usize) -> Key {
        (format!("call{i}"), "tag".into())
    }

    #[test]
    fn remembered_for_a_while_then_forgotten() {
        let now = Instant::now();
        let mut e = Ended::default();
        e.remember(key(1), "sender-ended", now);
        assert_eq!(
            e.get(&key(1), now + Duration::from_secs(299)),
            Some("sender-ended")
        );
        assert_eq!(e.get(&key(1), now + ENDED_MEMORY), None);
        assert_eq!(e.get(&key(2), now), None);
        e.purge(now + ENDED_MEMORY);
        assert_eq!(e.len(), 0);
    }

    #[test]
    fn bounded_oldest_first() {
        let now = Instant::now();
        let mut e = Ended::default();
        for i in 0..MAX_ENDED + 10 {
            e.remember(key(i), "deleted", now);
        }
        assert_eq!(e.len(), MAX_ENDED);
        assert_eq!(e.get(&key(0), now), None);
        assert_eq!(e.get(&key(MAX_ENDED + 9), now), Some("deleted"));
    }

    #[test]
    fn a_key_ended_twice_keeps_its_latest_end() {
        let now = Instant::now();
        let mut e = Ended::default();
        e.remember(key(1), "deleted", now);
        e.forget(&key(1));
        let later = now + Duration::from_secs(200);
        e.remember(key(1), "expired", later);
        e.purge(now + ENDED_MEMORY);
        assert_eq!(e.get(&key(1), now + ENDED_MEMORY), Some("expired"));
    }
}
