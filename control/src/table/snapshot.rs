//! What the metrics exporter reads from the table: counts taken under the
//! table's lock in one pass (the data plane is asked for the rest after
//! the lock is released).

/// The table's counts at one moment (see [`super::Core::snapshot`]).
#[derive(Debug, Clone)]
pub struct TableSnapshot {
    /// Sessions with their sender live and an owning control connection.
    pub active: u64,
    /// Sessions whose control connection closed, waiting to be taken back
    /// (`orphan-timeout-ms`).
    pub orphaned: u64,
    /// Sessions ending (the sender's `delete` or BYE): devices drain.
    pub ending: u64,
    /// Sessions created since start.
    pub sessions_total: u64,
    /// Device legs that failed since start, by
    /// [`msrp_relay::fanout::FailReason::KINDS`] (same order).
    pub legs_failed_by: Vec<(&'static str, u64)>,
    /// Body bytes the drained or removed legs got, since start.
    pub bytes_delivered: u64,
    /// Control connections now.
    pub control_connections: u64,
    /// Users in the device registry.
    pub users: u64,
    /// The relay takes no new session (`drain`, or shutting down).
    pub draining: bool,
}

impl super::Core {
    /// The table's counts, for the metrics exporter. One pass over the
    /// sessions; the data plane is not called.
    pub fn snapshot(&self) -> TableSnapshot {
        let (mut active, mut orphaned, mut ending) = (0, 0, 0);
        for e in self.sessions.values() {
            if e.ending.is_some() {
                ending += 1;
            } else if e.owner.is_none() {
                orphaned += 1;
            } else {
                active += 1;
            }
        }
        let c = &self.counters;
        TableSnapshot {
            active,
            orphaned,
            ending,
            sessions_total: c.sessions_total,
            legs_failed_by: msrp_relay::fanout::FailReason::KINDS
                .iter()
                .copied()
                .zip(c.legs_failed_by)
                .collect(),
            bytes_delivered: c.bytes_sent,
            control_connections: self.control_connections,
            users: self.registry.len() as u64,
            draining: self.draining(),
        }
    }
}
