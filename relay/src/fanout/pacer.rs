//! Paced "leg done" events (PF-LMM-BYE).
//!
//! When the sender ends a session, every device leg is drained to its last
//! byte and only then reported done, so that the SIP front end sends that
//! device its BYE. With a large fan-out (hundreds of devices draining at
//! about the same time) reporting them all at once would make the front end
//! emit a burst of BYEs; the [`Pacer`] spreads them out with a token bucket.
//!
//! The bucket is implemented as a GCRA ("generic cell rate algorithm", the
//! virtual-scheduling form of a token bucket): a single *theoretical arrival
//! time* replaces the token counter, so there is no floating point, no drift
//! and no periodic refill. Time is always an argument ([`Instant`]): the pacer
//! never reads a clock and tests drive it explicitly.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// The largest accepted `max_per_sec`; anything above is a configuration
/// mistake (the emission interval would fall below one microsecond).
pub const MAX_RATE_PER_SEC: u32 = 1_000_000;

/// The largest accepted `burst`; a larger burst defeats the purpose of pacing.
pub const MAX_BURST: u32 = 1_000_000;

/// Configuration of a [`Pacer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacerConfig {
    /// Sustained maximum rate of released events, per second (`1..=1_000_000`).
    pub max_per_sec: u32,
    /// How many events may leave back to back after an idle period
    /// (`1..=1_000_000`); `1` means strictly spaced events.
    pub burst: u32,
}

/// A rejected [`PacerConfig`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacerError {
    /// `max_per_sec` was 0 (nothing would ever be released) or above
    /// [`MAX_RATE_PER_SEC`].
    #[error("pacer rate {0}/s out of range 1..={MAX_RATE_PER_SEC}")]
    Rate(u32),
    /// `burst` was 0 (nothing would ever be released) or above [`MAX_BURST`].
    #[error("pacer burst {0} out of range 1..={MAX_BURST}")]
    Burst(u32),
}

/// A FIFO of ids (legs that finished draining) released at a bounded rate.
///
/// `Id` is whatever the engine uses to name a leg; the pacer only moves it.
#[derive(Debug)]
pub struct Pacer<Id> {
    /// Time between two events at the sustained rate, rounded *up* to whole
    /// nanoseconds so that the configured rate is never exceeded.
    interval: Duration,
    /// How far ahead of `now` the theoretical arrival time may run:
    /// `(burst - 1) * interval`; this is what allows a burst.
    tolerance: Duration,
    /// Theoretical arrival time of the next event if the bucket were empty;
    /// `None` before the first event (bucket full).
    tat: Option<Instant>,
    /// FIFO of ids, with entries cancelled in place (skipped when they
    /// reach the front): cancelling is O(1), not a scan of the queue,
    /// which holds thousands of legs when a burst of sessions ends.
    queue: VecDeque<Id>,
    /// Per id, how many entries of `queue` are live.
    live: HashMap<Id, u32>,
    /// Per id, how many cancelled entries are still in `queue`. A
    /// cancel kills every entry of the id queued so far, so the dead
    /// entries of an id always come before its live ones.
    dead: HashMap<Id, u32>,
    live_len: usize,
}

impl<Id: Clone + Eq + Hash> Pacer<Id> {
    /// Creates a pacer, rejecting a rate or burst of 0 and absurd values.
    pub fn new(config: PacerConfig) -> Result<Self, PacerError> {
        if config.max_per_sec == 0 || config.max_per_sec > MAX_RATE_PER_SEC {
            return Err(PacerError::Rate(config.max_per_sec));
        }
        if config.burst == 0 || config.burst > MAX_BURST {
            return Err(PacerError::Burst(config.burst));
        }
        let nanos = 1_000_000_000u64.div_ceil(u64::from(config.max_per_sec));
        let interval = Duration::from_nanos(nanos);
        // Both factors are bounded above, so this stays far below u64::MAX ns.
        let tolerance = Duration::from_nanos(nanos.saturating_mul(u64::from(config.burst - 1)));
        Ok(Self {
            interval,
            tolerance,
            tat: None,
            queue: VecDeque::new(),
            live: HashMap::new(),
            dead: HashMap::new(),
            live_len: 0,
        })
    }

    /// Changes rate and burst (a configuration reload); what is queued
    /// stays queued, in order, and leaves at the new rate.
    pub fn set_config(&mut self, config: PacerConfig) -> Result<(), PacerError> {
        let fresh = Pacer::<Id>::new(config)?;
        self.interval = fresh.interval;
        self.tolerance = fresh.tolerance;
        Ok(())
    }

    /// Queues an id behind those already waiting (FIFO).
    pub fn offer(&mut self, id: Id) {
        *self.live.entry(id.clone()).or_insert(0) += 1;
        self.live_len += 1;
        self.queue.push_back(id);
    }

    /// Releases the next queued id if a token is available at `now`.
    ///
    /// Call repeatedly until it returns `None`; then arm a timer for
    /// [`next_deadline`](Self::next_deadline).
    pub fn poll(&mut self, now: Instant) -> Option<Id> {
        if self.live_len == 0 || !self.conforms(now) {
            return None;
        }
        let id = self.pop_live()?;
        // An idle period refills the bucket up to `burst`: the arrival time
        // restarts from `now` if it fell behind.
        let base = match self.tat {
            Some(tat) if tat > now => tat,
            _ => now,
        };
        // `Instant + Duration` can overflow only for absurd instants; then
        // keep the base, which at worst releases one extra event.
        self.tat = Some(base.checked_add(self.interval).unwrap_or(base));
        Some(id)
    }

    /// When the driver should call [`poll`](Self::poll) next: `None` if
    /// nothing is queued, `Some(t)` with `t <= now` if an id can be released
    /// right away, else the instant the next token becomes available.
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        if self.live_len == 0 {
            return None;
        }
        let Some(tat) = self.tat else {
            return Some(now);
        };
        match tat.checked_sub(self.tolerance) {
            Some(ready) if ready > now => Some(ready),
            _ => Some(now),
        }
    }

    /// Whether an event may leave at `now` (GCRA: `now >= tat - tolerance`,
    /// written without subtracting from an `Instant`).
    fn conforms(&self, now: Instant) -> bool {
        match self.tat {
            None => true,
            Some(tat) => match now.checked_add(self.tolerance) {
                Some(limit) => limit >= tat,
                None => true,
            },
        }
    }

    /// Removes a queued id (e.g. its leg failed or was removed before its
    /// turn); returns whether it was queued.
    pub fn cancel(&mut self, id: &Id) -> bool {
        let Some(n) = self.live.remove(id) else {
            return false;
        };
        self.live_len -= n as usize;
        if self.live_len == 0 {
            self.queue.clear();
            self.dead.clear();
        } else {
            *self.dead.entry(id.clone()).or_insert(0) += n;
        }
        true
    }

    /// The front live entry, dropping the cancelled ones before it.
    fn pop_live(&mut self) -> Option<Id> {
        while let Some(id) = self.queue.pop_front() {
            if let Some(d) = self.dead.get_mut(&id) {
                *d -= 1;
                if *d == 0 {
                    self.dead.remove(&id);
                }
                continue;
            }
            if let Some(l) = self.live.get_mut(&id) {
                *l -= 1;
                if *l == 0 {
                    self.live.remove(&id);
                }
            }
            self.live_len -= 1;
            return Some(id);
        }
        None
    }

    /// Number of ids waiting for a token.
    pub fn len(&self) -> usize {
        self.live_len
    }

    /// Whether no id is waiting.
    pub fn is_empty(&self) -> bool {
        self.live_len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacer(max_per_sec: u32, burst: u32) -> Pacer<u32> {
        Pacer::new(PacerConfig { max_per_sec, burst }).unwrap()
    }

    /// Drives the pacer in virtual time: drain what is ready, jump to the
    /// next deadline, repeat. Returns (id, release time) in release order.
    fn drive(p: &mut Pacer<u32>, start: Instant) -> Vec<(u32, Instant)> {
        let mut now = start;
        let mut out = Vec::new();
        while let Some(deadline) = p.next_deadline(now) {
            now = now.max(deadline);
            let mut released = 0;
            while let Some(id) = p.poll(now) {
                out.push((id, now));
                released += 1;
            }
            assert!(released > 0, "a deadline must release at least one id");
        }
        out
    }

    #[test]
    fn pf_lmm_bye_1000_legs_at_100_per_sec_take_about_10_virtual_seconds() {
        let mut p = pacer(100, 10);
        for id in 0..1000 {
            p.offer(id);
        }
        let start = Instant::now();
        let out = drive(&mut p, start);
        assert_eq!(out.len(), 1000);
        let elapsed = out.last().unwrap().1 - start;
        // 10 leave at once, the other 990 at 10 ms each.
        assert_eq!(elapsed, Duration::from_millis(9_900));
        // Never more than 100 in any 1 s window beyond the burst.
        for w in out.windows(110) {
            assert!(w[109].1 - w[0].1 >= Duration::from_millis(990));
        }
    }

    #[test]
    fn pf_lmm_bye_fifo_order_preserved() {
        let mut p = pacer(7, 3);
        for id in [5, 1, 9, 2, 8] {
            p.offer(id);
        }
        let ids: Vec<u32> = drive(&mut p, Instant::now())
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(ids, vec![5, 1, 9, 2, 8]);
    }

    #[test]
    fn pf_lmm_bye_burst_respected_then_spaced() {
        let mut p = pacer(10, 4);
        for id in 0..10 {
            p.offer(id);
        }
        let t0 = Instant::now();
        let mut first = Vec::new();
        while let Some(id) = p.poll(t0) {
            first.push(id);
        }
        assert_eq!(first, vec![0, 1, 2, 3]);
        assert_eq!(p.next_deadline(t0), Some(t0 + Duration::from_millis(100)));
        assert_eq!(p.poll(t0 + Duration::from_millis(99)), None);
        assert_eq!(p.poll(t0 + Duration::from_millis(100)), Some(4));
        assert_eq!(p.poll(t0 + Duration::from_millis(100)), None);
    }

    #[test]
    fn pf_lmm_bye_idle_refills_burst_but_not_beyond() {
        let mut p = pacer(10, 2);
        let t0 = Instant::now();
        for id in 0..5 {
            p.offer(id);
        }
        assert_eq!(p.poll(t0), Some(0));
        assert_eq!(p.poll(t0), Some(1));
        assert_eq!(p.poll(t0), None);
        // After a long idle time only `burst` events leave at once.
        let later = t0 + Duration::from_secs(60);
        assert_eq!(p.poll(later), Some(2));
        assert_eq!(p.poll(later), Some(3));
        assert_eq!(p.poll(later), None);
        assert_eq!(
            p.next_deadline(later),
            Some(later + Duration::from_millis(100))
        );
    }

    #[test]
    fn pf_lmm_bye_empty_queue_has_no_deadline_and_cancel_works() {
        let mut p = pacer(1, 1);
        let t0 = Instant::now();
        assert_eq!(p.next_deadline(t0), None);
        assert_eq!(p.poll(t0), None);
        p.offer(1);
        p.offer(2);
        assert!(p.cancel(&1));
        assert!(!p.cancel(&1));
        assert_eq!(p.len(), 1);
        assert_eq!(p.next_deadline(t0), Some(t0));
        assert_eq!(p.poll(t0), Some(2));
        assert!(p.is_empty());
    }

    #[test]
    fn pf_lmm_bye_time_going_backwards_is_harmless() {
        let mut p = pacer(10, 1);
        let t1 = Instant::now() + Duration::from_secs(5);
        p.offer(1);
        p.offer(2);
        assert_eq!(p.poll(t1), Some(1));
        assert_eq!(p.poll(t1 - Duration::from_secs(1)), None);
        assert_eq!(
            p.next_deadline(t1 - Duration::from_secs(1)),
            Some(t1 + Duration::from_millis(100))
        );
    }

    #[test]
    fn pf_lmm_bye_bad_config_rejected() {
        let bad = [
            (0, 1, PacerError::Rate(0)),
            (
                MAX_RATE_PER_SEC + 1,
                1,
                PacerError::Rate(MAX_RATE_PER_SEC + 1),
            ),
            (10, 0, PacerError::Burst(0)),
            (10, u32::MAX, PacerError::Burst(u32::MAX)),
        ];
        for (max_per_sec, burst, want) in bad {
            let got = Pacer::<u32>::new(PacerConfig { max_per_sec, burst }).unwrap_err();
            assert_eq!(got, want);
        }
        assert!(
            Pacer::<u32>::new(PacerConfig {
                max_per_sec: MAX_RATE_PER_SEC,
                burst: MAX_BURST
            })
            .is_ok()
        );
    }

    #[test]
    fn pf_lmm_bye_rate_never_exceeded_for_non_divisor_rates() {
        let mut p = pacer(3, 1);
        for id in 0..7 {
            p.offer(id);
        }
        let out = drive(&mut p, Instant::now());
        for w in out.windows(4) {
            assert!(w[3].1 - w[0].1 >= Duration::from_secs(1));
        }
    }

    proptest::proptest! {
        /// PF-LMM-BYE: the lazily cancelled queue releases exactly what a
        /// plain FIFO with cancel-by-scan releases, in the same order, for
        /// any sequence of offers, cancels (re-offers after a cancel
        /// included) and polls.
        #[test]
        fn pf_lmm_bye_lazy_cancel_matches_a_plain_fifo(
            ops in proptest::collection::vec((0u8..3, 0u32..6), 0..200)
        ) {
            let mut p = pacer(MAX_RATE_PER_SEC, MAX_BURST);
            let mut model: VecDeque<u32> = VecDeque::new();
            let t0 = Instant::now();
            for (op, id) in ops {
                match op {
                    0 => {
                        p.offer(id);
                        model.push_back(id);
                    }
                    1 => {
                        let had = model.contains(&id);
                        model.retain(|q| *q != id);
                        proptest::prop_assert_eq!(p.cancel(&id), had);
                    }
                    _ => proptest::prop_assert_eq!(p.poll(t0), model.pop_front()),
                }
                proptest::prop_assert_eq!(p.len(), model.len());
            }
            while let Some(m) = model.pop_front() {
                proptest::prop_assert_eq!(p.poll(t0), Some(m));
            }
            proptest::prop_assert_eq!(p.poll(t0), None);
        }
    }
}
