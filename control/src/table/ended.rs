//! Sessions that ended recently, so that the `delete` a front end sends
//! on the sender's BYE as a matter of course is answered `ok` even when
//! the session is already gone (the sender's MSRP connection closed first,
//! the drain finished, the orphan timer fired): `delete` is idempotent.
//!
//! Bounded: at most [`MAX_ENDED`] keys, each for [`ENDED_MEMORY`], the
//! oldest forgotten first. A `delete` of a call-id never seen, or ended
//! longer ago than that, is still `unknown call-id`: a front end's typo
//! is not hidden.
//!
//! Compact and reserved at start, so that a busy relay's memory does not
//! climb for its first minutes while this fills (a soak at 460 sessions/s
//! reaches the bound after 140 s; keyed by the strings themselves, this
//! held an estimated 29 MiB there). A key is kept as a 64-bit SipHash
//! digest under a per-process random key, not as its two strings: about
//! 6 MiB reserved at start (24-byte slots, twice the bound) plus 2 MiB of
//! age order, instead of ~220 bytes a key allocated as it fills. A digest
//! collision would answer a never-seen key's `delete` `ok` — with at most
//! 65,536 digests live, odds of 2⁻⁴⁸ per lookup, and a front end cannot
//! aim for one without the process's key.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use super::Key;

/// How long an ended session is remembered: well past SIP's 32 s
/// transaction timeout (RFC 3261 Timer F), so a BYE retransmitted or sent
/// late still finds it.
pub(crate) const ENDED_MEMORY: Duration = Duration::from_secs(300);
/// Most ended sessions remembered.
pub(crate) const MAX_ENDED: usize = 65_536;
/// Slots reserved: twice the bound, so that the tombstones removals leave
/// are cleared by rehashing in place (hashbrown does so while the table is
/// at most half full) and the table never reallocates larger.
const MAP_SLOTS: usize = 2 * MAX_ENDED;
/// Most entries in the age order, live or stale (a key that was forgotten
/// or ended again leaves its old entry behind until it reaches the front).
const MAX_ORDER: usize = 2 * MAX_ENDED;

/// A key's digest.
type Digest = u64;

#[derive(Debug)]
pub(crate) struct Ended {
    /// Keys the digests.
    keyer: RandomState,
    /// The first instant seen; times are nanoseconds since it.
    base: Option<Instant>,
    /// Digest → (when it ended, why: an index into `reasons`).
    map: HashMap<Digest, (u64, u16)>,
    /// The reasons seen (a handful of static strings).
    reasons: Vec<&'static str>,
    /// Digests in the order they ended (may hold entries already gone).
    order: VecDeque<(Digest, u64)>,
}

impl Default for Ended {
    fn default() -> Self {
        Self {
            keyer: RandomState::new(),
            base: None,
            map: HashMap::with_capacity(MAP_SLOTS),
            reasons: Vec::new(),
            order: VecDeque::with_capacity(MAX_ORDER),
        }
    }
}

impl Ended {
    fn digest(&self, key: &Key) -> Digest {
        self.keyer.hash_one(key)
    }

    /// `now` as nanoseconds since the first instant seen (earlier is 0).
    fn stamp(&mut self, now: Instant) -> u64 {
        let base = *self.base.get_or_insert(now);
        nanos(now.saturating_duration_since(base))
    }

    /// How long ago `at` was, at `now`.
    fn age(&self, at: u64, now: Instant) -> Duration {
        let now = self
            .base
            .map_or(0, |b| nanos(now.saturating_duration_since(b)));
        Duration::from_nanos(now.saturating_sub(at))
    }

    /// Drops the oldest entry of the age order.
    fn pop_oldest(&mut self) -> bool {
        let Some((old, at)) = self.order.pop_front() else {
            return false;
        };
        if self.map.get(&old).is_some_and(|(t, _)| *t == at) {
            self.map.remove(&old);
        }
        true
    }

    /// Session `key` ended at `now` for `reason`.
    pub(crate) fn remember(&mut self, key: Key, reason: &'static str, now: Instant) {
        self.purge(now);
        while (self.map.len() >= MAX_ENDED || self.order.len() >= MAX_ORDER) && self.pop_oldest() {}
        let (d, at) = (self.digest(&key), self.stamp(now));
        let why = match self.reasons.iter().position(|r| *r == reason) {
            Some(i) => i,
            None => {
                self.reasons.push(reason);
                self.reasons.len() - 1
            }
        };
        self.map
            .insert(d, (at, u16::try_from(why).unwrap_or(u16::MAX)));
        self.order.push_back((d, at));
    }

    /// Why `key` ended, if it did within [`ENDED_MEMORY`] of `now`.
    pub(crate) fn get(&self, key: &Key, now: Instant) -> Option<&'static str> {
        self.map
            .get(&self.digest(key))
            .filter(|(t, _)| self.age(*t, now) < ENDED_MEMORY)
            .map(|(_, r)| {
                self.reasons
                    .get(usize::from(*r))
                    .copied()
                    .unwrap_or("ended")
            })
    }

    /// A session of this key is live again (a new offer reused it).
    pub(crate) fn forget(&mut self, key: &Key) {
        let d = self.digest(key);
        self.map.remove(&d);
    }

    /// Forgets what ended [`ENDED_MEMORY`] ago.
    pub(crate) fn purge(&mut self, now: Instant) {
        while let Some((_, at)) = self.order.front() {
            if self.age(*at, now) < ENDED_MEMORY {
                break;
            }
            self.pop_oldest();
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

/// A duration in nanoseconds (584 years fit).
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
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

    /// Soak RSS flat (issue 13): the memory is reserved at start and never
    /// grows, however many sessions end and however often a key is reused.
    #[test]
    fn reserved_at_start_and_never_grows() {
        let now = Instant::now();
        let mut e = Ended::default();
        let (map_cap, order_cap) = (e.map.capacity(), e.order.capacity());
        for i in 0..MAX_ENDED + 10 {
            e.remember(key(i), "deleted", now);
        }
        // One key forgotten and ended again and again leaves stale entries
        // in the age order; they are bounded too.
        for _ in 0..MAX_ORDER {
            e.forget(&key(7));
            e.remember(key(7), "expired", now);
        }
        assert!(e.order.len() <= MAX_ORDER);
        assert_eq!(e.get(&key(7), now), Some("expired"));
        // Churn at the bound: every new key pushes the oldest out, leaving
        // tombstones that make the table rehash (in place, never larger;
        // reserved for MAX_ENDED alone it grew after ~9 × MAX_ENDED).
        for i in 0..16 * MAX_ENDED {
            e.remember(key(MAX_ENDED + 10 + i), "deleted", now);
            assert!(e.map.capacity() <= map_cap, "grew after {i}");
        }
        assert_eq!(e.len(), MAX_ENDED);
        assert_eq!(e.order.capacity(), order_cap);
    }
}
