//! Success REPORTs owed to the sender (RFC 4975 §7.1.3 at a B2BUA;
//! CPM-MLD-024: exactly one per message for a multi-device recipient).
//!
//! A device may report a message whole, or chunk by chunk, in any order,
//! more than once, and well after its `200` for the last chunk (§7.1.2
//! lets a REPORT come any time). What a REPORT upstream must mean is that
//! some device has the **whole** message, so the relay keeps, per upstream
//! message that asked for success reports, the byte ranges each device has
//! reported, and sends the sender exactly one REPORT, `Byte-Range:
//! 1-N/N` with the message's real size `N`, once one device's ranges
//! cover `1..=N` of a message whose last chunk has arrived.
//!
//! The record lives apart from the message index, which frees a message
//! once every device has answered its chunks: a REPORT usually comes
//! after those answers. Bounds, each documented in `docs/configuration.md`:
//! - at most `cap` messages per session await reports (the oldest is
//!   forgotten first, logged at debug);
//! - a complete message waits at most `wait` for a device to cover it
//!   (`[timeouts] report-wait-ms`), then is forgotten (logged at debug);
//!   no failure REPORT follows: the sender's own timer covers a device
//!   that never reports, as it would without a relay;
//! - at most [`MAX_RANGES`] disjoint ranges per device and message;
//!   a report that would need more is dropped (logged).
//!
//! A REPORT for a message that is not (or no longer) awaited is ignored as
//! §7.1.2 says, with a debug line naming its Message-ID.
//!
//! No I/O and no clock: time is an argument.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

/// Most disjoint byte ranges kept per device and message.
pub(crate) const MAX_RANGES: usize = 64;

/// What became of a device's success REPORT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The device now covers the whole message: send the sender one
    /// REPORT for `1..=size` (the message is no longer awaited).
    Whole { size: u64 },
    /// Noted; the message is not covered yet.
    Noted,
    /// Not awaited: never asked for, already reported, or forgotten.
    Unknown,
    /// The range is reversed, or past the message's end.
    BadRange,
    /// The device's ranges for this message are at [`MAX_RANGES`].
    TooFragmented,
}

/// Disjoint, sorted, inclusive byte ranges (1-based, as in Byte-Range).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Ranges(Vec<(u64, u64)>);

impl Ranges {
    /// Adds `start..=end`, merging with what it touches or overlaps.
    /// False (nothing changed) when it would be range number
    /// [`MAX_RANGES`] + 1.
    pub(crate) fn add(&mut self, start: u64, end: u64) -> bool {
        let v = &mut self.0;
        // The first range that ends at or after `start - 1` (touching).
        let lo = v.partition_point(|&(_, e)| e.saturating_add(1) < start);
        // One past the last range that starts at or before `end + 1`.
        let hi = v.partition_point(|&(s, _)| s <= end.saturating_add(1));
        if lo == hi {
            if v.len() >= MAX_RANGES {
                return false;
            }
            v.insert(lo, (start, end));
            return true;
        }
        let merged = (start.min(v[lo].0), end.max(v[hi - 1].1));
        v.splice(lo..hi, [merged]);
        true
    }

    /// Whether `1..=size` is covered.
    pub(crate) fn covers(&self, size: u64) -> bool {
        self.0.first().is_some_and(|&(s, e)| s <= 1 && e >= size)
    }

    #[cfg(test)]
    fn spans(&self) -> &[(u64, u64)] {
        &self.0
    }
}

#[derive(Debug)]
struct Awaited {
    /// The message's size once its last chunk arrived.
    size: Option<u64>,
    /// Forgotten after this (set at the first tick after it completed).
    deadline: Option<Instant>,
    /// Ranges reported, per device leg.
    legs: Vec<(u32, Ranges)>,
}

/// The session's messages awaiting a device's success REPORT.
#[derive(Debug)]
pub(crate) struct SuccessReports {
    awaited: HashMap<Bytes, Awaited>,
    /// Message-IDs in the order they were first awaited (eviction order);
    /// may hold ids already gone, skipped when met.
    order: VecDeque<Bytes>,
    cap: usize,
    wait: Duration,
}

impl SuccessReports {
    /// At most `cap` messages awaited at once (0 is taken as 1), each for
    /// at most `wait` after it completes.
    pub(crate) fn new(cap: usize, wait: Duration) -> SuccessReports {
        SuccessReports {
            awaited: HashMap::new(),
            order: VecDeque::new(),
            cap: cap.max(1),
            wait,
        }
    }

    /// The sender asked for success reports on message `id` (any of its
    /// chunks did): await them. Idempotent.
    pub(crate) fn expect(&mut self, id: &Bytes) {
        if self.awaited.contains_key(id) {
            return;
        }
        while self.awaited.len() >= self.cap {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if self.awaited.remove(&old).is_some() {
                tracing::debug!(message_id = %String::from_utf8_lossy(&old),
                    "success REPORT no longer awaited: too many messages awaiting one");
            }
        }
        self.awaited.insert(
            id.clone(),
            Awaited {
                size: None,
                deadline: None,
                legs: Vec::new(),
            },
        );
        self.order.push_back(id.clone());
        self.compact();
    }

    /// Message `id` is complete at `size` bytes: a device covering them
    /// is reported from now on, for `wait` from the next [`expire`]
    /// (the engine's tick, so no clock is needed here). Returns
    /// [`Outcome::Whole`] when a device already covers it.
    ///
    /// [`expire`]: SuccessReports::expire
    pub(crate) fn complete(&mut self, id: &[u8], size: u64) -> Outcome {
        let Some(a) = self.awaited.get_mut(id) else {
            return Outcome::Unknown;
        };
        a.size = Some(size);
        if a.legs.iter().any(|(_, r)| r.covers(size)) {
            self.awaited.remove(id);
            return Outcome::Whole { size };
        }
        Outcome::Noted
    }

    /// Message `id` will never complete (aborted, or the sender left).
    pub(crate) fn abandon(&mut self, id: &[u8]) {
        self.awaited.remove(id);
    }

    /// Device leg `leg` reported `start..=end` of message `id` received.
    /// `end` is `None` for a range open to the message's end (`*`).
    pub(crate) fn report(&mut self, id: &[u8], leg: u32, start: u64, end: Option<u64>) -> Outcome {
        let Some(a) = self.awaited.get_mut(id) else {
            return Outcome::Unknown;
        };
        let Some(end) = end.or(a.size) else {
            // `1-*` before the last chunk is in: no size to read it by.
            return Outcome::BadRange;
        };
        if start == 0 || end < start || a.size.is_some_and(|n| end > n) {
            return Outcome::BadRange;
        }
        let i = match a.legs.iter().position(|(l, _)| *l == leg) {
            Some(i) => i,
            None => {
                a.legs.push((leg, Ranges::default()));
                a.legs.len() - 1
            }
        };
        if !a.legs[i].1.add(start, end) {
            return Outcome::TooFragmented;
        }
        match a.size {
            Some(size) if a.legs[i].1.covers(size) => {
                self.awaited.remove(id);
                Outcome::Whole { size }
            }
            _ => Outcome::Noted,
        }
    }

    /// Starts the wait of messages completed since the last call, and
    /// forgets those whose wait is over; returns how many it forgot.
    pub(crate) fn expire(&mut self, now: Instant) -> usize {
        let before = self.awaited.len();
        let wait = self.wait;
        self.awaited.retain(|id, a| {
            if a.size.is_none() {
                return true;
            }
            let deadline = *a.deadline.get_or_insert(now + wait);
            let keep = now < deadline;
            if !keep {
                tracing::debug!(message_id = %String::from_utf8_lossy(id),
                    "no device reported the whole message in time; success REPORT no longer awaited");
            }
            keep
        });
        let n = before - self.awaited.len();
        if n > 0 {
            self.compact();
        }
        n
    }

    /// Messages awaited now.
    pub(crate) fn len(&self) -> usize {
        self.awaited.len()
    }

    /// Drops ids of `order` that are no longer awaited once they are the
    /// larger part, so it stays within twice the live count.
    fn compact(&mut self) {
        if self.order.len() > 2 * self.awaited.len() + 16 {
            let awaited = &self.awaited;
            self.order.retain(|id| awaited.contains_key(id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn ranges_merge_touching_and_overlapping_in_any_order() {
        let mut r = Ranges::default();
        assert!(r.add(65537, 131072));
        assert!(r.add(1, 100));
        assert!(r.add(101, 65536));
        assert_eq!(r.spans(), &[(1, 131072)]);
        assert!(r.add(200_000, 300_000));
        assert!(r.add(150_000, 160_000));
        assert_eq!(
            r.spans(),
            &[(1, 131072), (150_000, 160_000), (200_000, 300_000)]
        );
        assert!(r.add(131073, 250_000), "bridges two gaps");
        assert_eq!(r.spans(), &[(1, 300_000)]);
        assert!(r.add(5, 10), "a duplicate inside changes nothing");
        assert_eq!(r.spans(), &[(1, 300_000)]);
        assert!(r.covers(300_000));
        assert!(!r.covers(300_001));
    }

    #[test]
    fn ranges_are_bounded() {
        let mut r = Ranges::default();
        for i in 0..MAX_RANGES as u64 {
            assert!(r.add(10 * i + 1, 10 * i + 5));
        }
        assert!(!r.add(10_000, 10_001), "one range too many");
        assert!(r.add(6, 10), "a merge needs no new range");
        assert_eq!(r.spans().len(), MAX_RANGES - 1);
    }

    /// MSRP-REPORT, CPM-MLD-024: per-chunk reports count only once the
    /// whole message is covered by one device, and then exactly once.
    #[test]
    fn msrp_report_cpm_mld_024_whole_once_after_per_chunk_reports() {
        let mut s = SuccessReports::new(16, Duration::from_secs(30));
        let m = id("file1");
        s.expect(&m);
        assert_eq!(s.report(&m, 1, 1, Some(65536)), Outcome::Noted);
        // Another device's later chunk does not add up with the first's.
        assert_eq!(s.report(&m, 2, 65537, Some(131072)), Outcome::Noted);
        assert_eq!(s.complete(&m, 131072), Outcome::Noted);
        assert_eq!(s.report(&m, 1, 1, Some(65536)), Outcome::Noted, "duplicate");
        assert_eq!(
            s.report(&m, 2, 1, Some(65536)),
            Outcome::Whole { size: 131072 }
        );
        assert_eq!(s.report(&m, 1, 65537, Some(131072)), Outcome::Unknown);
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn msrp_report_covered_before_the_last_chunk_is_reported_at_completion() {
        let mut s = SuccessReports::new(16, Duration::from_secs(30));
        let m = id("early");
        s.expect(&m);
        assert_eq!(s.report(&m, 1, 1, Some(10)), Outcome::Noted);
        assert_eq!(s.complete(&m, 10), Outcome::Whole { size: 10 });
        assert_eq!(s.complete(&m, 10), Outcome::Unknown);
    }

    #[test]
    fn msrp_report_bad_ranges_are_refused_and_harm_nothing() {
        let mut s = SuccessReports::new(16, Duration::from_secs(30));
        let m = id("msgA");
        s.expect(&m);
        assert_eq!(s.report(&m, 1, 1, None), Outcome::BadRange, "1-* unsized");
        assert_eq!(s.report(&m, 1, 0, Some(5)), Outcome::BadRange);
        assert_eq!(s.report(&m, 1, 9, Some(5)), Outcome::BadRange);
        s.complete(&m, 100);
        assert_eq!(s.report(&m, 1, 1, Some(101)), Outcome::BadRange);
        assert_eq!(s.report(&m, 1, 1, None), Outcome::Whole { size: 100 });
        assert_eq!(s.report(&id("never"), 1, 1, Some(1)), Outcome::Unknown);
    }

    #[test]
    fn msrp_report_wait_and_count_are_bounded() {
        let now = Instant::now();
        let mut s = SuccessReports::new(2, Duration::from_secs(30));
        let (a, b, c) = (id("aaaa"), id("bbbb"), id("cccc"));
        s.expect(&a);
        s.expect(&b);
        s.expect(&c);
        assert_eq!(s.len(), 2);
        assert_eq!(s.report(&a, 1, 1, Some(1)), Outcome::Unknown, "evicted");
        s.complete(&b, 5);
        assert_eq!(s.expire(now), 0, "the first tick starts the wait");
        assert_eq!(s.expire(now + Duration::from_secs(29)), 0);
        assert_eq!(s.expire(now + Duration::from_secs(30)), 1);
        assert_eq!(s.report(&b, 1, 1, Some(5)), Outcome::Unknown, "expired");
        // An open message has no deadline yet.
        assert_eq!(s.expire(now + Duration::from_secs(3600)), 0);
        s.abandon(&c);
        assert_eq!(s.len(), 0);
        for i in 0..1000 {
            s.expect(&id(&format!("m{i:04}")));
            s.abandon(format!("m{i:04}").as_bytes());
        }
        assert!(s.order.len() <= 2 * s.len() + 17, "{}", s.order.len());
    }
}
