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
}

impl Counters {
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
}

impl DriverCounters {
    pub(crate) fn add(&mut self, c: &Counters) {
        self.syscalls += c.syscalls.load(Relaxed);
        self.submitted += c.submitted.load(Relaxed);
        self.completions += c.completions.load(Relaxed);
        self.receives += c.receives.load(Relaxed);
        self.copied += c.copied.load(Relaxed);
        self.zc_sends += c.zc_sends.load(Relaxed);
    }
}
