//! A device's reader: checks each chunk's order and every byte against
//! the file, counts what arrived and marks when the last byte did; and
//! the run's check that every device got the file exactly.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use msrp_relay::msrp::{Flag, RequestHead};
use sha2::{Digest, Sha256};

use super::report::RunResult;
use crate::cli::Verify;
use crate::error::{LoadError, Result};
use crate::peer::{Handler, is_content};

/// A device's live counters.
#[derive(Debug, Default)]
pub struct Progress {
    /// Body bytes received.
    pub bytes: AtomicU64,
    /// Nanoseconds from the run's start to the last byte, plus one; 0 while
    /// not done.
    pub done_ns: AtomicU64,
}

impl Progress {
    /// Time from the run's start to the last byte.
    pub fn done(&self) -> Option<Duration> {
        match self.done_ns.load(Ordering::Acquire) {
            0 => None,
            n => Some(Duration::from_nanos(n - 1)),
        }
    }
}

/// A device's reader: checks order and content, counts, marks the end.
#[derive(Debug)]
pub struct FileSink {
    verify: Verify,
    file: Bytes,
    hasher: Sha256,
    offset: u64,
    in_content: bool,
    mismatch: Option<u64>,
    pub(super) errors: Vec<String>,
    progress: Arc<Progress>,
    base: Instant,
    pub(super) digest: Option<String>,
}

impl FileSink {
    /// A sink expecting `file`; `base` is the run's start.
    pub fn new(verify: Verify, file: Bytes, progress: Arc<Progress>, base: Instant) -> FileSink {
        FileSink {
            verify,
            file,
            hasher: Sha256::new(),
            offset: 0,
            in_content: false,
            mismatch: None,
            errors: Vec::new(),
            progress,
            base,
            digest: None,
        }
    }

    /// Whether every byte arrived, in order, equal to the file.
    pub fn exact(&self, want_digest: &str) -> bool {
        self.offset == self.file.len() as u64
            && self.mismatch.is_none()
            && self.errors.is_empty()
            && match self.verify {
                Verify::Sha256 => self.digest.as_deref() == Some(want_digest),
                Verify::Compare => self.digest.is_some(),
                Verify::None => self.digest.is_some(),
            }
    }
}

impl Handler for FileSink {
    fn request(&mut self, h: &RequestHead, _now: Instant) {
        self.in_content = is_content(h);
        if self.in_content {
            let start = h.byte_range.map_or(1, |r| r.start);
            if start != self.offset + 1 {
                self.errors
                    .push(format!("chunk at byte {start} after {} bytes", self.offset));
            }
        }
    }

    fn body(&mut self, b: &Bytes) {
        if !self.in_content {
            return;
        }
        let at = self.offset as usize;
        match self.verify {
            Verify::Sha256 => self.hasher.update(b),
            Verify::Compare => {
                if self.mismatch.is_none() && self.file.get(at..at + b.len()) != Some(&b[..]) {
                    self.mismatch = Some(self.offset);
                }
            }
            Verify::None => {}
        }
        self.offset += b.len() as u64;
        self.progress.bytes.store(self.offset, Ordering::Relaxed);
    }

    fn end(&mut self, flag: Flag, now: Instant, _out: &mut bytes::BytesMut) {
        if self.in_content && flag == Flag::Complete && self.digest.is_none() {
            self.digest = Some(match self.verify {
                Verify::Sha256 => hex::encode(std::mem::take(&mut self.hasher).finalize()),
                _ => String::new(),
            });
            let ns = u64::try_from(now.saturating_duration_since(self.base).as_nanos())
                .unwrap_or(u64::MAX - 1);
            self.progress.done_ns.store(ns + 1, Ordering::Release);
        }
        self.in_content = false;
    }

    fn error(&mut self, e: String) {
        self.errors.push(e);
    }
}

pub(super) fn check_exact(r: &RunResult) -> Result<()> {
    let bad: Vec<String> = r
        .devices
        .iter()
        .filter(|d| !d.exact)
        .map(|d| {
            format!(
                "{} ({:?}: {} bytes, errors {:?})",
                d.name, r.mode, d.bytes, d.errors
            )
        })
        .take(5)
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(LoadError::Verify(bad.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::Endpoint;

    #[test]
    fn sink_checks_order_and_bytes() {
        use msrp_relay::msrp::{Decoder, Event, Limits};
        let file = crate::peer::make_file(1000);
        let prog = Arc::new(Progress::default());
        let mut sink = FileSink::new(Verify::Compare, file.clone(), prog.clone(), Instant::now());
        let mut ep = Endpoint::new("s", "msrp://a:1/a;tcp", "msrp://b:1/b;tcp");
        let mut wire = bytes::BytesMut::new();
        for (a, b) in [(0u64, 400u64), (400, 1000)] {
            let (h, t) = ep.chunk_frame(b"msg-1", b"x/y", a, b, 1000);
            wire.extend_from_slice(&h);
            wire.extend_from_slice(&file[a as usize..b as usize]);
            wire.extend_from_slice(&t);
        }
        let mut dec = Decoder::new(Limits::default());
        dec.feed(wire.freeze());
        let mut out = bytes::BytesMut::new();
        while let Some(ev) = dec.poll().unwrap() {
            match ev {
                Event::Request(h) => sink.request(&h, Instant::now()),
                Event::Body(b) => sink.body(&b),
                Event::End(f) => sink.end(f, Instant::now(), &mut out),
                _ => {}
            }
        }
        assert!(sink.exact(""));
        assert_eq!(prog.bytes.load(Ordering::Relaxed), 1000);
        assert!(prog.done().is_some());
        // A wrong byte is caught.
        let mut bad = FileSink::new(
            Verify::Compare,
            file.clone(),
            Arc::default(),
            Instant::now(),
        );
        bad.in_content = true;
        bad.body(&Bytes::from_static(b"nope"));
        assert!(bad.mismatch.is_some());
    }
}
