//! The bytes waiting to be written to one control connection, and who
//! writes them.
//!
//! Replies and events are appended, whole lines, to one buffer in the
//! order they are produced, so they never interleave mid-line and the
//! events a command causes follow its reply. Whoever writes takes the
//! whole buffer and writes it with one `write_all`; only one writer at a
//! time (the `writing` flag), so the order on the wire is the order of the
//! buffer.
//!
//! - The connection's reader thread executes a read's requests (a
//!   *batch*), then writes everything queued itself ([`Outbox::flush`]):
//!   one write per read, no hand-off to another thread on the request
//!   path.
//! - Events pushed by other threads while no batch runs and nobody writes
//!   wake the connection's writer thread ([`Outbox::writer_next`]).
//! - Bounds: while `bound` lines wait (queued or being written) the reader
//!   does not read ([`Outbox::wait_room`]); replies are always queued
//!   (bounded by what one read holds). An event finding `4 × bound` lines
//!   waiting closes the connection instead, so a stuck front end never
//!   stalls the relay or grows without bound. Pushing never blocks on the
//!   socket.

use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// Locks, ignoring poisoning: every critical section leaves the state
/// consistent, and a panicking thread must not take the server with it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug, Default)]
struct State {
    /// Whole lines not yet taken by a writer.
    buf: Vec<u8>,
    /// A cleared buffer handed back by the last writer, for reuse.
    spare: Vec<u8>,
    /// Lines in `buf` plus lines in the write in progress.
    waiting: usize,
    /// Lines of the write in progress.
    in_write: usize,
    /// A writer (reader thread or writer thread) holds bytes taken from
    /// `buf` and is writing them.
    writing: bool,
    /// The reader is executing a batch and will flush at its end.
    in_batch: bool,
    /// The writer thread was asked to write.
    wake: bool,
    /// The reader waits for room.
    room_wanted: bool,
    closed: bool,
}

impl State {
    /// Takes the whole buffer for one write.
    fn take(&mut self) -> Vec<u8> {
        self.writing = true;
        self.in_write = self.waiting;
        let next = std::mem::take(&mut self.spare);
        std::mem::replace(&mut self.buf, next)
    }
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    /// The writer thread waits here for `wake` or `closed`.
    writer_cv: Condvar,
    /// The reader waits here for room.
    room_cv: Condvar,
    bound: usize,
    stream: UnixStream,
}

impl Outbox {
    /// An outbox over `stream` (a clone of the connection, used to break
    /// it) that stops reading at `bound` lines waiting.
    pub(crate) fn new(bound: usize, stream: UnixStream) -> Outbox {
        Outbox {
            state: Mutex::new(State::default()),
            writer_cv: Condvar::new(),
            room_cv: Condvar::new(),
            bound: bound.max(1),
            stream,
        }
    }

    /// The reader got requests: until [`Outbox::flush`] it writes what is
    /// queued, so events need not wake the writer thread.
    pub(crate) fn begin_batch(&self) {
        lock(&self.state).in_batch = true;
    }

    /// Queues a reply (always: see the module docs).
    pub(crate) fn push_reply(&self, line: &str) {
        let mut s = lock(&self.state);
        if !s.closed {
            s.buf.extend_from_slice(line.as_bytes());
            s.waiting += 1;
        }
    }

    /// Queues an event, or closes a connection that lets them pile up.
    /// Never blocks on the socket.
    pub(crate) fn push_event(&self, line: &str) {
        let mut s = lock(&self.state);
        if s.closed {
            return;
        }
        if s.waiting >= self.bound * 4 {
            tracing::warn!("control subscriber does not read its events; closing it");
            s.closed = true;
            s.buf.clear();
            s.waiting = s.in_write;
            let _ = self.stream.shutdown(Shutdown::Both);
            drop(s);
            self.writer_cv.notify_one();
            self.room_cv.notify_one();
            return;
        }
        s.buf.extend_from_slice(line.as_bytes());
        s.waiting += 1;
        if !s.in_batch && !s.writing && !s.wake {
            s.wake = true;
            drop(s);
            self.writer_cv.notify_one();
        }
    }

    /// Blocks the reader while `bound` lines wait. `false` once closed.
    pub(crate) fn wait_room(&self) -> bool {
        let mut s = lock(&self.state);
        while s.waiting >= self.bound && !s.closed {
            s.room_wanted = true;
            s = self.room_cv.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
        !s.closed
    }

    /// Ends the reader's batch: writes everything queued to `out` with one
    /// write, unless the writer thread is writing (it then takes these
    /// lines next). `false` when the write failed (the connection is then
    /// aborted).
    pub(crate) fn flush(&self, out: &mut UnixStream) -> bool {
        let bytes = {
            let mut s = lock(&self.state);
            s.in_batch = false;
            if s.writing || s.buf.is_empty() {
                return true;
            }
            s.take()
        };
        self.write(out, bytes, false)
    }

    /// The writer thread's next bytes: waits to be woken, `None` when
    /// closed with nothing left to write.
    pub(crate) fn writer_next(&self) -> Option<Vec<u8>> {
        let mut s = lock(&self.state);
        loop {
            let ready = !s.writing && !s.buf.is_empty();
            if ready && (s.wake || s.closed || !s.in_batch) {
                s.wake = false;
                return Some(s.take());
            }
            if s.closed && !s.writing {
                return None;
            }
            s.wake = false;
            s = self
                .writer_cv
                .wait(s)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Writes bytes taken from the buffer, then settles the counts; the
    /// writer thread passes `by_writer` (it looks for more by itself).
    /// `false` (and the connection aborted) when the write failed.
    pub(crate) fn write(&self, out: &mut UnixStream, bytes: Vec<u8>, by_writer: bool) -> bool {
        use std::io::Write;
        let result = out.write_all(&bytes);
        let mut bytes = bytes;
        bytes.clear();
        let mut s = lock(&self.state);
        s.writing = false;
        s.waiting = s.waiting.saturating_sub(s.in_write);
        s.in_write = 0;
        if s.spare.capacity() < bytes.capacity() {
            s.spare = bytes;
        }
        if std::mem::take(&mut s.room_wanted) {
            self.room_cv.notify_one();
        }
        // Lines queued meanwhile by another thread, with no batch to flush
        // them, or a close: the writer thread takes over.
        let more = !s.buf.is_empty() && !s.in_batch;
        if !by_writer && (more || s.closed) && !s.wake {
            s.wake = true;
            self.writer_cv.notify_one();
        }
        drop(s);
        if let Err(e) = result {
            tracing::debug!(error = %e, "control connection write failed");
            self.abort();
            return false;
        }
        true
    }

    /// No more lines are taken; the writer thread flushes what is queued.
    pub(crate) fn close(&self) {
        let mut s = lock(&self.state);
        s.closed = true;
        s.in_batch = false;
        drop(s);
        self.writer_cv.notify_one();
        self.room_cv.notify_one();
    }

    /// Closes and breaks the connection at once (a write failed, shutdown).
    pub(crate) fn abort(&self) {
        self.close();
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

#[cfg(test)]
#[path = "outbox_tests.rs"]
mod tests;
