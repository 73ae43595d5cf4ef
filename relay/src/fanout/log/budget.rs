//! The process-wide memory budget shared by every session's content log.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A byte budget shared by all sessions of the process (across worker
/// threads), counting the body bytes that content logs hold in memory.
///
/// Sessions reserve before they keep a piece in memory and give back when
/// they spill or release it (and on drop), so [`used`](Self::used) is exact:
/// it returns to 0 once every log is gone. When a reservation fails the log
/// spills its oldest pieces to disk instead (see `ContentLog::append`).
#[derive(Debug)]
pub struct MemoryBudget {
    limit: AtomicU64,
    used: AtomicU64,
}

impl MemoryBudget {
    /// A budget of `limit` bytes, ready to be shared (`Arc::clone`) by logs.
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(Self {
            limit: AtomicU64::new(limit),
            used: AtomicU64::new(0),
        })
    }

    /// The configured limit in bytes.
    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::Acquire)
    }

    /// Changes the limit (a configuration reload). Lowering it below what
    /// is in use takes nothing back: logs spill as they append, until the
    /// use is under the new limit.
    pub fn set_limit(&self, limit: u64) {
        self.limit.store(limit, Ordering::Release);
    }

    /// Bytes currently reserved by all logs together.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    /// Bytes still available (a snapshot: other threads may take them).
    pub fn available(&self) -> u64 {
        self.limit().saturating_sub(self.used())
    }

    /// Reserves `n` bytes if that keeps the total within the limit.
    ///
    /// A compare-and-swap loop rather than `fetch_add` + undo, so that a
    /// failed attempt never makes another thread's reservation fail.
    pub(super) fn try_reserve(&self, n: u64) -> bool {
        let mut current = self.used.load(Ordering::Acquire);
        loop {
            let Some(next) = current.checked_add(n) else {
                return false;
            };
            if next > self.limit() {
                return false;
            }
            match self.used.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
    }

    /// Returns `n` bytes reserved earlier by the caller.
    pub(super) fn release(&self, n: u64) {
        // Saturating so that an accounting bug can never wrap the counter
        // and block every session of the process; logs only release what
        // they reserved, so this is a plain subtraction in practice.
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(n))
            });
    }
}
