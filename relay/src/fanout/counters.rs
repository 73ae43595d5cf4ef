//! Traffic counters of the engine, kept per session while it lives and
//! folded into the engine's own when it ends (so a scrape is a walk of the
//! live sessions plus one sum). Plain integers: a session and its engine
//! belong to one worker thread.

use std::ops::AddAssign;

/// MSRP status codes counted by name in [`StatusCounts`]: every code the
/// relay itself sends (RFC 4975 §10 and §7.1.2's REPORT statuses). Any
/// other code is counted as `other`.
pub const COUNTED_STATUS: [u16; 10] = [200, 400, 403, 408, 413, 415, 423, 481, 501, 506];

/// MSRP statuses the relay sent (responses or REPORTs), by code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusCounts([u64; COUNTED_STATUS.len() + 1]);

impl StatusCounts {
    /// Counts one status `code`.
    pub fn add(&mut self, code: u16) {
        let i = COUNTED_STATUS
            .iter()
            .position(|&c| c == code)
            .unwrap_or(COUNTED_STATUS.len());
        self.0[i] += 1;
    }

    /// `(Some(code), n)` for each counted code, then `(None, n)` for the
    /// rest.
    pub fn iter(&self) -> impl Iterator<Item = (Option<u16>, u64)> + '_ {
        COUNTED_STATUS
            .iter()
            .map(|&c| Some(c))
            .chain(std::iter::once(None))
            .zip(self.0.iter().copied())
    }

    /// Count of one code (`None`: the codes not counted by name).
    pub fn get(&self, code: Option<u16>) -> u64 {
        self.iter().find(|(c, _)| *c == code).map_or(0, |(_, n)| n)
    }
}

impl AddAssign for StatusCounts {
    fn add_assign(&mut self, o: StatusCounts) {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a += b;
        }
    }
}

/// What one session (or the engine, for what is not in a live session)
/// counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    /// Episodes in which the content log refused an append and the sender
    /// was held until the devices freed room.
    pub(crate) stalls: u64,
    /// Spill-file writes that failed.
    pub(crate) spill_errors: u64,
    /// SEND requests with a body received, on any leg.
    pub(crate) chunks_received: u64,
    /// SEND chunks queued to device legs (each leg's copy counts).
    pub(crate) chunks_sent: u64,
    /// Body bytes of those chunks.
    pub(crate) bytes_sent: u64,
    /// Transaction responses sent, by status.
    pub(crate) statuses: StatusCounts,
    /// REPORTs sent (to senders and, for a device's own messages, to
    /// devices), by their `Status`.
    pub(crate) reports: StatusCounts,
    /// Content-log bytes written to spill files.
    pub(crate) spilled_bytes: u64,
    /// The most content one session's log held in memory at once: not a
    /// sum, `+=` keeps the larger.
    pub(crate) log_memory_peak: u64,
}

impl AddAssign for Counters {
    fn add_assign(&mut self, o: Counters) {
        self.stalls += o.stalls;
        self.spill_errors += o.spill_errors;
        self.chunks_received += o.chunks_received;
        self.chunks_sent += o.chunks_sent;
        self.bytes_sent += o.bytes_sent;
        self.statuses += o.statuses;
        self.reports += o.reports;
        self.spilled_bytes += o.spilled_bytes;
        self.log_memory_peak = self.log_memory_peak.max(o.log_memory_peak);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_counts_name_the_relays_codes_and_pool_the_rest() {
        let mut s = StatusCounts::default();
        for c in [200, 200, 481, 506, 299, 999] {
            s.add(c);
        }
        assert_eq!(s.get(Some(200)), 2);
        assert_eq!(s.get(Some(481)), 1);
        assert_eq!(s.get(Some(413)), 0);
        assert_eq!(s.get(None), 2);
        let mut t = s;
        t += s;
        assert_eq!(t.get(Some(506)), 2);
        assert_eq!(t.iter().count(), COUNTED_STATUS.len() + 1);
    }
}
