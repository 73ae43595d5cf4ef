//! What a phase of cycles yields, and the reply count its writer waits
//! on; the same for the control socket and for ng.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::sync::lock;

/// One phase's outcome.
#[derive(Debug)]
pub struct Phase {
    /// Cycles completed per second (successful replies / commands per
    /// cycle, over last reply − first request).
    pub cycles_per_s: f64,
    /// Every command's latency (request written → reply read).
    pub latency: Histogram<u64>,
    /// Error replies.
    pub errors: u64,
    /// The first error reply.
    pub first_error: Option<String>,
    /// Requests sent again for want of a reply (ng over UDP only).
    pub retransmits: u64,
}

/// Cycles per second over `took`. Only successful replies count: an
/// error reply (e.g. `limit reached`) is fast and would flatter the rate.
pub fn cycles_per_s(total: u64, errors: u64, per: u64, took: Duration) -> f64 {
    let secs = took.as_secs_f64();
    if secs > 0.0 {
        total.saturating_sub(errors) as f64 / per as f64 / secs
    } else {
        0.0
    }
}

/// Replies counted by a reader thread, waited for by the writer.
#[derive(Debug, Default)]
pub struct Done {
    n: Mutex<u64>,
    cv: Condvar,
}

impl Done {
    /// Sets the count to `got` and wakes the writer (only on a change).
    pub fn publish(&self, got: u64) {
        let mut g = lock(&self.n);
        if *g != got {
            *g = got;
            self.cv.notify_all();
        }
    }

    /// The replies counted so far.
    pub fn get(&self) -> u64 {
        *lock(&self.n)
    }

    /// Waits until at least `need` replies were counted, for at most
    /// `timeout`; `Err` with the count reached when it runs out.
    pub fn wait_for(&self, need: u64, timeout: Duration) -> std::result::Result<(), u64> {
        let mut g = lock(&self.n);
        let deadline = Instant::now() + timeout;
        while *g < need {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(*g);
            }
            g = self
                .cv
                .wait_timeout(g, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        Ok(())
    }
}
