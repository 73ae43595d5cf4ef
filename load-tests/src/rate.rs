//! Pacing: a token bucket for rate-limited reads and a fixed-interval
//! schedule for message senders. Pure: time is an argument.

use std::time::{Duration, Instant};

/// A token bucket of bytes. [`RateLimiter::take`] always grants and
/// returns how long the caller should sleep to stay under the rate, so a
/// reader sleeps after each read in proportion to what it read.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    /// `rate` bytes per second (≥ 1), at most `burst` bytes back to back
    /// after a quiet period. Starts full.
    pub fn new(rate: u64, burst: u64, now: Instant) -> RateLimiter {
        let burst = burst.max(1) as f64;
        RateLimiter {
            rate: rate.max(1) as f64,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// The rate in bytes per second.
    pub fn rate(&self) -> u64 {
        self.rate as u64
    }

    /// Takes `n` bytes at `now`; returns how long to wait before the next
    /// read so that the long-run rate holds (zero while within the burst).
    pub fn take(&mut self, n: u64, now: Instant) -> Duration {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        self.tokens -= n as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }

    /// A good read size for this rate: about 20 ms worth, between 1 KiB
    /// and `max`.
    pub fn read_size(&self, max: usize) -> usize {
        ((self.rate / 50.0) as usize).clamp(1024.min(max), max)
    }
}

/// When the n-th message of a paced stream is due: `start + n / rate`.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    start: Instant,
    interval: Duration,
}

impl Schedule {
    /// `per_sec` messages per second from `start` (≥ 1 per second).
    pub fn new(start: Instant, per_sec: f64) -> Schedule {
        Schedule {
            start,
            interval: Duration::from_secs_f64(1.0 / per_sec.max(1e-3)),
        }
    }

    /// When message `n` (from 0) is due.
    pub fn due(&self, n: u64) -> Instant {
        self.start + self.interval.mul_f64(n as f64)
    }

    /// How long to wait at `now` before sending message `n`.
    pub fn wait(&self, n: u64, now: Instant) -> Duration {
        self.due(n).saturating_duration_since(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_the_burst_then_paces_at_the_rate() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(1000, 500, t0);
        assert_eq!(r.take(500, t0), Duration::ZERO);
        // 1000 more bytes at 1000 B/s: one second of debt.
        assert_eq!(r.take(1000, t0), Duration::from_secs(1));
        // After that second the debt is paid; 100 bytes cost 0.1 s.
        let d = r.take(100, t0 + Duration::from_secs(1));
        assert!((d.as_secs_f64() - 0.1).abs() < 1e-9, "{d:?}");
    }

    #[test]
    fn bucket_long_run_rate_holds() {
        // A reader that sleeps what it is told reads at the rate.
        let t0 = Instant::now();
        let mut r = RateLimiter::new(1_000_000, 10_000, t0);
        let mut now = t0;
        for _ in 0..1000 {
            now += r.take(10_000, now);
        }
        let secs = (now - t0).as_secs_f64();
        assert!((secs - 9.99).abs() < 0.02, "{secs}");
    }

    #[test]
    fn bucket_never_refills_past_the_burst() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(1000, 100, t0);
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(r.take(100, later), Duration::ZERO);
        assert!(r.take(100, later) > Duration::ZERO);
    }

    #[test]
    fn read_size_is_bounded() {
        let t0 = Instant::now();
        assert_eq!(RateLimiter::new(10, 1, t0).read_size(65536), 1024);
        assert_eq!(RateLimiter::new(1 << 30, 1, t0).read_size(65536), 65536);
        assert_eq!(RateLimiter::new(5_000_000, 1, t0).read_size(65536), 65536);
        assert_eq!(RateLimiter::new(1_000_000, 1, t0).read_size(65536), 20_000);
    }

    #[test]
    fn schedule_spaces_messages_evenly() {
        let t0 = Instant::now();
        let s = Schedule::new(t0, 1000.0);
        assert_eq!(s.due(0), t0);
        assert_eq!(s.due(1000), t0 + Duration::from_secs(1));
        assert_eq!(s.wait(10, t0 + Duration::from_millis(20)), Duration::ZERO);
        assert_eq!(s.wait(10, t0), Duration::from_millis(10));
    }
}
