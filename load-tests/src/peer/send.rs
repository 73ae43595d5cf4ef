//! A file sender: the file in chunks, at most a window of them
//! unanswered, and the responses counted.

use std::io::IoSlice;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::endpoint::Endpoint;
use super::reader::{Handler, SharedWriter};
use crate::error::{Context, LoadError, Result};
use crate::net::write_all_vectored;
use crate::sync::lock;

/// Counts responses to our chunks: the sender's window.
#[derive(Debug, Default)]
pub struct Acks {
    done: Mutex<(u64, u64)>,
    cv: Condvar,
}

impl Acks {
    /// Records one response.
    pub fn record(&self, ok: bool) {
        let mut g = lock(&self.done);
        if ok {
            g.0 += 1
        } else {
            g.1 += 1
        }
        self.cv.notify_all();
    }

    /// (answered 200, answered otherwise).
    pub fn counts(&self) -> (u64, u64) {
        *lock(&self.done)
    }

    /// Waits until at least `n` responses arrived; false on timeout.
    pub fn wait_for(&self, n: u64, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let mut g = lock(&self.done);
        while g.0 + g.1 < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            g = self
                .cv
                .wait_timeout(g, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

/// A sender's reader: counts responses.
#[derive(Debug)]
pub struct AckHandler(pub Arc<Acks>);

impl Handler for AckHandler {
    fn response(&mut self, _tid: &[u8], code: u16, _now: Instant) {
        self.0.record(code == 200);
    }
}

/// Sends `file` as one message in chunks of `chunk` bytes with at most
/// `window` chunks unanswered; `progress` counts body bytes written.
/// Returns once every chunk is answered.
#[allow(clippy::too_many_arguments)] // one call site per mode; a struct would only rename them
pub fn send_file(
    writer: &SharedWriter,
    ep: &mut Endpoint,
    mid: &[u8],
    file: &Bytes,
    chunk: usize,
    window: u64,
    acks: &Acks,
    progress: &AtomicU64,
    stall: Duration,
) -> Result<()> {
    let total = file.len() as u64;
    let chunk = chunk.max(1);
    let mut at = 0usize;
    let mut sent = 0u64;
    // A clone of the socket for the bulk writes: nothing else writes on a
    // file sender's connection (it receives only responses).
    let mut w = lock(writer)
        .try_clone()
        .context(|| "clone sender socket".into())?;
    while at < file.len() {
        let (ok0, bad0) = acks.counts();
        if sent.saturating_sub(ok0 + bad0) >= window.max(1)
            && !acks.wait_for(sent + 1 - window.max(1), stall)
        {
            return Err(LoadError::Timeout(format!(
                "no response to the sender's chunks for {stall:?}"
            )));
        }
        let end = (at + chunk).min(file.len());
        let (head, tail) = ep.chunk_frame(
            mid,
            b"application/octet-stream",
            at as u64,
            end as u64,
            total,
        );
        let body = &file[at..end];
        let mut iov = [IoSlice::new(&head), IoSlice::new(body), IoSlice::new(&tail)];
        write_all_vectored(&mut w, &mut iov).context(|| "sender write".into())?;
        sent += 1;
        progress.store(end as u64, Ordering::Relaxed);
        at = end;
    }
    if !acks.wait_for(sent, stall) {
        return Err(LoadError::Timeout(
            "the last chunks were not answered".into(),
        ));
    }
    let (_, bad) = acks.counts();
    if bad > 0 {
        return Err(LoadError::Msrp(format!(
            "{bad} chunks answered with an error"
        )));
    }
    Ok(())
}
