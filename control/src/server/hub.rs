//! Per-connection output queues and the event subscriptions.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::protocol::{Event, EventName, encode_event};
use crate::table::ConnId;

/// Locks, ignoring poisoning: every critical section leaves the state
/// consistent, and a panicking thread must not take the server with it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug, Default)]
struct OutState {
    lines: VecDeque<String>,
    closed: bool,
}

/// The lines waiting to be written to one connection. Replies are always
/// queued (the reader stops reading while `bound` lines wait, so they are
/// bounded by what one read can hold); events are dropped with the
/// connection when a subscriber lets `4 × bound` pile up, so a stuck front
/// end never stalls the relay or grows without bound.
#[derive(Debug)]
pub(crate) struct Outbox {
    state: Mutex<OutState>,
    cv: Condvar,
    bound: usize,
    stream: UnixStream,
}

impl Outbox {
    pub(crate) fn new(bound: usize, stream: UnixStream) -> Outbox {
        Outbox {
            state: Mutex::new(OutState::default()),
            cv: Condvar::new(),
            bound: bound.max(1),
            stream,
        }
    }

    pub(crate) fn push_reply(&self, line: String) {
        let mut s = lock(&self.state);
        if !s.closed {
            s.lines.push_back(line);
            self.cv.notify_all();
        }
    }

    fn push_event(&self, line: &str) {
        let mut s = lock(&self.state);
        if s.closed {
            return;
        }
        if s.lines.len() >= self.bound * 4 {
            tracing::warn!("control subscriber does not read its events; closing it");
            s.closed = true;
            s.lines.clear();
            let _ = self.stream.shutdown(Shutdown::Both);
        } else {
            s.lines.push_back(line.to_owned());
        }
        self.cv.notify_all();
    }

    /// Blocks the reader while `bound` lines wait (requests in flight).
    /// Returns `false` once closed.
    pub(crate) fn wait_room(&self) -> bool {
        let mut s = lock(&self.state);
        while s.lines.len() >= self.bound && !s.closed {
            s = self.cv.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
        !s.closed
    }

    /// Everything queued, as one write; `None` when closed and empty.
    pub(crate) fn next_batch(&self) -> Option<String> {
        let mut s = lock(&self.state);
        while s.lines.is_empty() && !s.closed {
            s = self.cv.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
        if s.lines.is_empty() {
            return None;
        }
        let batch: String = s.lines.drain(..).collect();
        self.cv.notify_all();
        Some(batch)
    }

    /// No more lines are taken; the writer flushes what is queued.
    pub(crate) fn close(&self) {
        lock(&self.state).closed = true;
        self.cv.notify_all();
    }

    /// Closes and breaks the connection at once (writer failed, shutdown).
    pub(crate) fn abort(&self) {
        self.close();
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

#[derive(Debug)]
struct Subscriber {
    /// `None`: every event.
    filter: Option<HashSet<EventName>>,
    outbox: Arc<Outbox>,
}

/// The connections that asked for events.
#[derive(Debug, Default)]
pub(crate) struct Hub {
    subs: Mutex<HashMap<ConnId, Subscriber>>,
}

impl Hub {
    pub(crate) fn subscribe(&self, conn: ConnId, events: &[EventName], outbox: Arc<Outbox>) {
        let filter = (!events.is_empty()).then(|| events.iter().copied().collect());
        lock(&self.subs).insert(conn, Subscriber { filter, outbox });
    }

    pub(crate) fn remove(&self, conn: ConnId) {
        lock(&self.subs).remove(&conn);
    }

    /// Queues each event on every subscriber that wants it, in order.
    pub(crate) fn publish(&self, events: &[Event]) {
        if events.is_empty() {
            return;
        }
        let subs = lock(&self.subs);
        for ev in events {
            let line = match encode_event(ev) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(error = %e, "cannot encode event");
                    continue;
                }
            };
            tracing::debug!(event = line.trim_end(), "event");
            for s in subs.values() {
                if s.filter.as_ref().is_none_or(|f| f.contains(&ev.name())) {
                    s.outbox.push_event(&line);
                }
            }
        }
    }
}
