//! The reply cache: the rtpengine module retransmits a request whose reply
//! did not come in time, with the same cookie. A retransmission is
//! answered with the reply already sent and not executed again; a request
//! that reuses a cookie with a different body is refused (and logged).
//!
//! Bounded: at most `capacity` cookies, each kept for `ttl`, the oldest
//! forgotten first. A body is remembered by its length and a keyed hash
//! (SipHash with a per-process random key), not by its bytes.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Slot {
    body: (usize, u64),
    /// `None` while the first copy is being executed.
    reply: Option<Arc<[u8]>>,
    at: Instant,
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// First time: execute it, then [`ReplyCache::finish`].
    Fresh,
    /// A retransmission: send this reply again.
    Replay(Arc<[u8]>),
    /// A retransmission of a request still executing (another transport):
    /// drop it; the next retransmission gets the reply.
    InProgress,
    /// The cookie was used with another body.
    Conflict,
}

/// See the module docs.
#[derive(Debug)]
pub struct ReplyCache {
    capacity: usize,
    ttl: Duration,
    hasher: RandomState,
    map: HashMap<Vec<u8>, Slot>,
    order: VecDeque<(Vec<u8>, Instant)>,
}

impl ReplyCache {
    /// An empty cache (`capacity` at least 1).
    pub fn new(capacity: usize, ttl: Duration) -> ReplyCache {
        ReplyCache {
            capacity: capacity.max(1),
            ttl,
            hasher: RandomState::new(),
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Cookies remembered.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Nothing remembered.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Looks `cookie` up; a fresh one is recorded as executing.
    pub fn begin(&mut self, cookie: &[u8], body: &[u8], now: Instant) -> Lookup {
        self.purge(now);
        let sig = (body.len(), self.hasher.hash_one(body));
        if let Some(slot) = self.map.get(cookie) {
            if slot.body != sig {
                return Lookup::Conflict;
            }
            return match &slot.reply {
                Some(r) => Lookup::Replay(r.clone()),
                None => Lookup::InProgress,
            };
        }
        while self.map.len() >= self.capacity {
            let Some((old, at)) = self.order.pop_front() else {
                break;
            };
            if self.map.get(&old).is_some_and(|s| s.at == at) {
                self.map.remove(&old);
            }
        }
        self.map.insert(
            cookie.to_vec(),
            Slot {
                body: sig,
                reply: None,
                at: now,
            },
        );
        self.order.push_back((cookie.to_vec(), now));
        Lookup::Fresh
    }

    /// The reply of a request that [`begin`](Self::begin) found fresh.
    pub fn finish(&mut self, cookie: &[u8], reply: Arc<[u8]>) {
        if let Some(slot) = self.map.get_mut(cookie) {
            slot.reply = Some(reply);
        }
    }

    fn purge(&mut self, now: Instant) {
        while let Some((k, at)) = self.order.front() {
            if now.saturating_duration_since(*at) < self.ttl {
                break;
            }
            if self.map.get(k).is_some_and(|s| s.at == *at) {
                self.map.remove(k);
            }
            self.order.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn ng_retransmit_cache_replays_and_refuses_conflicts() {
        let t0 = Instant::now();
        let mut c = ReplyCache::new(2, Duration::from_secs(30));
        assert_eq!(c.begin(b"a", b"body", t0), Lookup::Fresh);
        assert_eq!(c.begin(b"a", b"body", t0), Lookup::InProgress);
        let r: Arc<[u8]> = Arc::from(&b"a d6:result2:oke"[..]);
        c.finish(b"a", r.clone());
        assert_eq!(c.begin(b"a", b"body", t0), Lookup::Replay(r.clone()));
        assert_eq!(c.begin(b"a", b"other", t0), Lookup::Conflict);
        // Still the original reply after the conflict.
        assert_eq!(c.begin(b"a", b"body", t0), Lookup::Replay(r));
    }

    #[test]
    fn ng_retransmit_cache_is_bounded_by_size_and_age() {
        let t0 = Instant::now();
        let ttl = Duration::from_secs(30);
        let mut c = ReplyCache::new(2, ttl);
        for k in [&b"a"[..], b"b", b"c"] {
            assert_eq!(c.begin(k, b"x", t0), Lookup::Fresh);
        }
        assert_eq!(c.len(), 2);
        // "a" was the oldest: forgotten.
        assert_eq!(c.begin(b"a", b"y", t0), Lookup::Fresh);
        let later = t0 + ttl;
        assert_eq!(c.begin(b"c", b"z", later), Lookup::Fresh);
        assert_eq!(c.len(), 1);
    }
}
