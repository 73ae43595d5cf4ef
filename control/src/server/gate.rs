//! Another front door to the same session table: the ng listener
//! ([`crate::ng`]) executes its commands through a [`Gate`], under the
//! table's one lock, so that its replies and the JSON socket's replies and
//! events keep one global order, and the events its commands cause reach
//! the JSON socket's subscribers like any others.

use std::sync::Arc;
use std::time::Instant;

use super::Shared;
use super::outbox::lock;
use crate::protocol::Event;
use crate::table::Core;

/// A handle on the server's table; cheap to clone.
#[derive(Clone)]
pub struct Gate {
    pub(super) shared: Arc<Shared>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate").finish_non_exhaustive()
    }
}

impl Gate {
    /// The control server's metrics, for commands that arrive another way
    /// (the ng listener).
    pub fn metrics(&self) -> &crate::metrics::ControlMetrics {
        &self.shared.cfg.metrics
    }

    /// Runs `f` on the table at the current time, then publishes the
    /// events it returns to the subscribers and wakes the data plane
    /// (so that what `f` posted runs before its caller replies).
    pub fn run<R>(&self, f: impl FnOnce(&mut Core, Instant) -> (R, Vec<Event>)) -> R {
        let mut core = lock(&self.shared.core);
        let (r, events) = f(&mut core, Instant::now());
        self.shared.hub.publish(&events);
        core.wake_plane();
        r
    }
}
