//! Control commands by name and result, and how long each took: recorded
//! by the control server's connection threads (atomics, no lock), read at
//! each scrape.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

/// Labels of a command counter: `command`, `result` (`ok` or `error`).
pub(crate) type CommandLabels = [(&'static str, &'static str); 2];
/// Labels of a command duration histogram: `command`.
pub(crate) type NameLabel = [(&'static str, &'static str); 1];

fn buckets() -> Histogram {
    // 10 µs … 328 ms, doubling: a command is a table update and, for a
    // setup, one post to a worker; the upper buckets catch lock waits.
    Histogram::new(exponential_buckets(1e-5, 2.0, 16))
}

/// What the control server counts. Cheap to clone (shared counters).
#[derive(Debug, Clone)]
pub struct ControlMetrics {
    pub(crate) commands: Family<CommandLabels, Counter>,
    pub(crate) durations: Family<NameLabel, Histogram, fn() -> Histogram>,
    pub(crate) bad_lines: Counter,
}

impl Default for ControlMetrics {
    fn default() -> Self {
        ControlMetrics {
            commands: Family::default(),
            durations: Family::new_with_constructor(buckets),
            bad_lines: Counter::default(),
        }
    }
}

impl ControlMetrics {
    /// A command named `name` was executed: `ok` or not, in `took` (from
    /// its line being decoded to its reply, the table's lock included).
    pub fn command(&self, name: &'static str, ok: bool, took: Duration) {
        let result = if ok { "ok" } else { "error" };
        self.commands
            .get_or_create(&[("command", name), ("result", result)])
            .inc();
        self.durations
            .get_or_create(&[("command", name)])
            .observe(took.as_secs_f64());
    }

    /// A line that was not a request (bad JSON, unknown command, too long).
    pub fn bad_line(&self) {
        self.bad_lines.inc();
    }
}
