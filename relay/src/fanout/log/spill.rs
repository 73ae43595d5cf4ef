//! The content log's spill file: the one place in `fanout/` that does I/O.
//!
//! Local storage only, synchronous, and bounded by the session's disk budget:
//! the file is used as a **ring** of `capacity` bytes in which the byte at
//! stream offset `o` lives at file position `o % capacity`. The spilled part
//! of a log is always one contiguous range of stream offsets no longer than
//! the disk budget (spilling takes the oldest in-memory piece, releasing
//! frees the oldest pieces), so live bytes never overlap in the ring and the
//! file never grows beyond the budget however long the session streams.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// A lazily created, already unlinked temporary file used as a byte ring.
#[derive(Debug)]
pub(super) struct SpillFile {
    dir: Option<PathBuf>,
    capacity: u64,
    file: Option<File>,
}

impl SpillFile {
    /// A spill ring of `capacity` bytes (the disk budget) created in `dir`
    /// (or the system temporary directory) on first write.
    pub(super) fn new(dir: Option<PathBuf>, capacity: u64) -> Self {
        Self {
            dir,
            capacity,
            file: None,
        }
    }

    fn file(&mut self) -> io::Result<&File> {
        if self.file.is_none() {
            let file = match &self.dir {
                Some(dir) => tempfile::tempfile_in(dir)?,
                None => tempfile::tempfile()?,
            };
            self.file = Some(file);
        }
        self.file
            .as_ref()
            .ok_or_else(|| io::Error::other("spill file vanished"))
    }

    /// The (up to two) ring segments `(file position, length)` holding the
    /// stream range `[offset, offset + len)`; `len <= capacity` is required.
    fn segments(&self, offset: u64, len: u64) -> io::Result<[(u64, u64); 2]> {
        if self.capacity == 0 || len > self.capacity {
            return Err(io::Error::other("spill range exceeds the disk budget"));
        }
        let pos = offset % self.capacity;
        let first = len.min(self.capacity - pos);
        Ok([(pos, first), (0, len - first)])
    }

    /// Writes `data`, the stream bytes starting at `offset`, into the ring.
    pub(super) fn write(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let segments = self.segments(offset, data.len() as u64)?;
        let file = self.file()?;
        let mut rest = data;
        for (pos, len) in segments {
            let (head, tail) = rest.split_at(usize::try_from(len).map_err(io::Error::other)?);
            if !head.is_empty() {
                file.write_all_at(head, pos)?;
            }
            rest = tail;
        }
        Ok(())
    }

    /// Reads the stream bytes `[offset, offset + buf.len())` back into `buf`.
    pub(super) fn read(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let segments = self.segments(offset, buf.len() as u64)?;
        let file = self.file()?;
        let mut rest = buf;
        for (pos, len) in segments {
            let (head, tail) = rest.split_at_mut(usize::try_from(len).map_err(io::Error::other)?);
            if !head.is_empty() {
                file.read_exact_at(head, pos)?;
            }
            rest = tail;
        }
        Ok(())
    }

    /// Gives the disk blocks back when nothing spilled is live any more.
    /// Best effort: a failure only means the space is reclaimed at drop.
    pub(super) fn clear(&mut self) {
        if let Some(file) = &self.file
            && let Err(err) = file.set_len(0)
        {
            tracing::debug!(%err, "could not truncate the spill file");
        }
    }
}
