//! Per-worker counters of what a driver asked the kernel, for measuring
//! syscalls per relayed chunk. Each worker owns one [`Counters`] (no
//! cache line is shared between workers); [`Relay::counters`] sums them.
//!
//! [`Relay::counters`]: super::Relay::counters

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// One worker's counters; written by that worker only.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    syscalls: AtomicU64,
    submitted: AtomicU64,
    completions: AtomicU64,
    receives: AtomicU64,
    copied: AtomicU64,
    zc_sends: AtomicU64,
    busy_ns: AtomicU64,
}

impl Counters {
    /// The worker spent `d` on a turn of its loop (not waiting).
    pub(crate) fn busy(&self, d: std::time::Duration) {
        self.busy_ns
            .fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Relaxed);
    }
    pub(crate) fn syscall(&self) {
        self.syscalls.fetch_add(1, Relaxed);
    }
    pub(crate) fn submitted(&self, n: usize) {
        self.submitted.fetch_add(n as u64, Relaxed);
    }
    pub(crate) fn completions(&self, n: usize) {
        self.completions.fetch_add(n as u64, Relaxed);
    }
    pub(crate) fn receive(&self, copied: bool) {
        self.receives.fetch_add(1, Relaxed);
        if copied {
            self.copied.fetch_add(1, Relaxed);
        }
    }
    pub(crate) fn zc_send(&self) {
        self.zc_sends.fetch_add(1, Relaxed);
    }
}

/// What the drivers' workers did so far, summed over the workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DriverCounters {
    /// System calls on the data path: `io_uring_enter` for io_uring;
    /// `epoll_wait`, `read`, `writev`, `accept` for epoll. Socket options
    /// and socket creation are not counted.
    pub syscalls: u64,
    /// Submission queue entries (io_uring only).
    pub submitted: u64,
    /// Completion queue entries (io_uring only).
    pub completions: u64,
    /// Receives that returned data.
    pub receives: u64,
    /// Of those, receives whose bytes were copied out of a ring buffer
    /// (small, or the buffer ring was low; io_uring only).
    pub copied: u64,
    /// Zero-copy sends issued (io_uring only).
    pub zc_sends: u64,
    /// Nanoseconds the worker spent working: from each return of its wait
    /// (`epoll_wait`, `io_uring_enter`) to the next wait.
    pub busy_ns: u64,
}

impl DriverCounters {
    pub(crate) fn add(&mut self, c: &Counters) {
        self.syscalls += c.syscalls.load(Relaxed);
        self.submitted += c.submitted.load(Relaxed);
        self.completions += c.completions.load(Relaxed);
        self.receives += c.receives.load(Relaxed);
        self.copied += c.copied.load(Relaxed);
        self.zc_sends += c.zc_sends.load(Relaxed);
        self.busy_ns += c.busy_ns.load(Relaxed);
    }
}

/// Reads each worker's counters from any thread (for metrics); cheap to
/// clone.
#[derive(Debug, Clone)]
pub struct CounterProbe(pub(crate) Vec<std::sync::Arc<Counters>>);

impl CounterProbe {
    /// One [`DriverCounters`] per worker, in worker order.
    pub fn per_worker(&self) -> Vec<DriverCounters> {
        self.0
            .iter()
            .map(|c| {
                let mut d = DriverCounters::default();
                d.add(c);
                d
            })
            .collect()
    }
}
