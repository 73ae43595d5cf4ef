//! The content log of one session (design §3, steps 2–5).
//!
//! Every body piece from the upstream sender is appended once, as the
//! [`Bytes`] slice of the receive buffer it arrived in, and addressed by its
//! absolute byte offset in the session's stream. Each device leg keeps a
//! `u64` cursor into the log and reads from it at its own pace; a leg that
//! accepts late starts at offset 0 and still gets every byte (CPM-MLD-020).
//!
//! **Retention.** The engine calls [`ContentLog::release_before`] with the
//! minimum cursor of every leg that may still need data (legs invited but
//! not yet answered pin offset 0); pieces wholly before it are freed at once.
//!
//! **Budgets.** In-memory bytes count against a per-session limit and a
//! process-wide [`MemoryBudget`]. When an append would exceed either, the
//! oldest in-memory pieces (those only slow or late legs still need) are
//! spilled to a temporary file and read back on demand; spilled bytes count
//! against a per-session disk limit. When both are spent, `append` refuses
//! with [`LogError::Full`] and the engine stops reading the sender, so TCP
//! pushes back; [`ContentLog::has_room`] lets it check before reading.
//!
//! **Accounting.** A piece is charged its `len()`, not the capacity of the
//! receive allocation it may keep alive (a `Bytes` slice pins its whole
//! buffer). `Bytes` does not expose that capacity, and charging `len()`
//! keeps the accounting exact and independent of how the driver sizes its
//! buffers; the driver bounds the overhead by recycling receive buffers of a
//! bounded size, so the real footprint is at most (buffer size / smallest
//! body piece) times the charged bytes.
//!
//! A leg's output queue refers to the bytes it has taken from the log (up
//! to `EngineConfig::leg_low_water` past its write position), which the log
//! no longer counts once every reader's cursor is past them: a session's
//! real footprint is its log's charge plus at most one low-water mark (the
//! queues share the same `Bytes`).
//!
//! A piece is charged and freed as a whole: releasing in its middle moves the
//! low-water mark (reads before it fail) but the piece stays until its last
//! byte is released, because slicing a `Bytes` frees no memory anyway.

mod budget;
mod spill;
#[cfg(test)]
mod tests;
mod types;

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;

pub use budget::MemoryBudget;
use spill::SpillFile;
pub use types::{LogConfig, LogError, LogStats};

/// The most bytes one [`ContentLog::read`] of spilled data allocates, so
/// that a caller's large `max` cannot turn into a large allocation.
pub const MAX_READ_BACK: usize = 256 * 1024;

/// Re-planning attempts when another session takes the process budget
/// between planning and reserving; after that `append` reports `Full` and
/// the engine retries later.
const RESERVE_ATTEMPTS: usize = 8;

/// One appended body piece: `[start, start + len)` of the stream.
#[derive(Debug)]
struct Piece {
    start: u64,
    len: u64,
    /// `Some` while in memory, `None` once spilled (then the bytes live in
    /// the spill ring at their stream offset).
    data: Option<Bytes>,
}

impl Piece {
    fn end(&self) -> u64 {
        self.start + self.len
    }
}

/// Where the next piece will go, and how many old pieces must spill first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    Memory { spill: usize },
    Disk { spill: usize },
    Full,
    TooLarge { max: u64 },
}

/// The content log of one session; see the module documentation.
///
/// Invariant: `pieces` are contiguous in stream offsets, the first
/// `disk_pieces` of them are spilled and the rest are in memory (spilling
/// always takes the oldest in-memory piece, releasing the oldest piece).
#[derive(Debug)]
pub struct ContentLog {
    memory_limit: u64,
    disk_limit: u64,
    global: Arc<MemoryBudget>,
    pieces: VecDeque<Piece>,
    disk_pieces: usize,
    low: u64,
    end: u64,
    mem_used: u64,
    disk_used: u64,
    /// Bytes ever written to the spill file.
    spilled_total: u64,
    /// High-water mark of `mem_used`.
    memory_peak: u64,
    spill: SpillFile,
}

impl ContentLog {
    /// An empty log with the session's limits, drawing memory from the
    /// process-wide `global` budget as well.
    pub fn new(config: LogConfig, global: Arc<MemoryBudget>) -> Self {
        Self {
            memory_limit: config.memory_limit,
            disk_limit: config.disk_limit,
            global,
            pieces: VecDeque::new(),
            disk_pieces: 0,
            low: 0,
            end: 0,
            mem_used: 0,
            disk_used: 0,
            spilled_total: 0,
            memory_peak: 0,
            spill: SpillFile::new(config.spill_dir, config.disk_limit),
        }
    }

    /// Appends one body piece, stored as-is (never copied while in memory);
    /// returns its start offset in the stream. Empty pieces store nothing.
    ///
    /// May spill older pieces to make room. On an error the new piece was
    /// not taken (and is dropped with `body`): the engine checks
    /// [`has_room`](Self::has_room) before reading the sender, or keeps its
    /// own handle (`Bytes::clone` counts a reference, it copies nothing) to
    /// retry. Older pieces are never lost; some may have moved to disk.
    pub fn append(&mut self, body: Bytes) -> Result<u64, LogError> {
        let start = self.end;
        let len = body.len() as u64;
        if len == 0 {
            return Ok(start);
        }
        let end = start.checked_add(len).ok_or(LogError::Overflow)?;
        for _ in 0..RESERVE_ATTEMPTS {
            match self.plan(len) {
                Placement::TooLarge { max } => {
                    return Err(LogError::TooLarge {
                        len: body.len(),
                        max,
                    });
                }
                Placement::Full => return Err(LogError::Full { len: body.len() }),
                Placement::Disk { spill } => {
                    for _ in 0..spill {
                        self.spill_oldest()?;
                    }
                    self.spill.write(start, &body)?;
                    self.disk_used += len;
                    self.spilled_total += len;
                    self.disk_pieces += 1;
                    self.pieces.push_back(Piece {
                        start,
                        len,
                        data: None,
                    });
                    self.end = end;
                    return Ok(start);
                }
                Placement::Memory { spill } => {
                    for _ in 0..spill {
                        self.spill_oldest()?;
                    }
                    // Another session may have taken the process budget since
                    // `plan`; then plan again with the new numbers.
                    if self.global.try_reserve(len) {
                        self.mem_used += len;
                        self.memory_peak = self.memory_peak.max(self.mem_used);
                        self.pieces.push_back(Piece {
                            start,
                            len,
                            data: Some(body),
                        });
                        self.end = end;
                        return Ok(start);
                    }
                }
            }
        }
        Err(LogError::Full { len: body.len() })
    }

    /// Whether a piece of `len` bytes could be appended now (possibly after
    /// spilling). Other sessions share the process budget, so `append` may
    /// still say `Full` in a race; it never loses data when it does.
    pub fn has_room(&self, len: usize) -> bool {
        matches!(
            self.plan(len as u64),
            Placement::Memory { .. } | Placement::Disk { .. }
        )
    }

    /// Decides where a piece of `len` bytes goes, without side effects:
    /// spill the fewest oldest in-memory pieces that make it fit in memory;
    /// if even spilling all of them does not (the process budget is held by
    /// other sessions, or the piece is larger than the memory limit), the
    /// piece itself goes to disk behind them, keeping the disk-then-memory
    /// order of the pieces.
    fn plan(&self, len: u64) -> Placement {
        let global_limit = self.global.limit();
        let max = self.memory_limit.min(global_limit).max(self.disk_limit);
        if len > max {
            return Placement::TooLarge { max };
        }
        let fits = |mem: u64, global: u64| {
            mem.saturating_add(len) <= self.memory_limit
                && global.saturating_add(len) <= global_limit
        };
        let mut mem = self.mem_used;
        let mut global = self.global.used();
        let mut disk = self.disk_used;
        let mut spill = 0;
        for piece in self.pieces.iter().skip(self.disk_pieces) {
            if fits(mem, global) {
                return Placement::Memory { spill };
            }
            if disk.saturating_add(piece.len) > self.disk_limit {
                return Placement::Full;
            }
            mem -= piece.len;
            global = global.saturating_sub(piece.len);
            disk += piece.len;
            spill += 1;
        }
        if fits(mem, global) {
            Placement::Memory { spill }
        } else if disk.saturating_add(len) <= self.disk_limit {
            Placement::Disk { spill }
        } else {
            Placement::Full
        }
    }

    /// Moves the oldest in-memory piece to the spill file.
    fn spill_oldest(&mut self) -> Result<(), LogError> {
        let Some(piece) = self.pieces.get_mut(self.disk_pieces) else {
            return Ok(());
        };
        let Some(data) = &piece.data else {
            return Ok(());
        };
        self.spill.write(piece.start, data)?;
        piece.data = None;
        self.mem_used -= piece.len;
        self.global.release(piece.len);
        self.disk_used += piece.len;
        self.spilled_total += piece.len;
        self.disk_pieces += 1;
        Ok(())
    }

    /// Returns the next contiguous bytes at `offset`, at most `max` of them.
    ///
    /// In memory: a zero-copy slice of the appended `Bytes`, ending at most
    /// at that piece's end. Spilled: a fresh buffer read back from the file,
    /// spanning spilled pieces, at most [`MAX_READ_BACK`] bytes (it is not
    /// charged to the budgets: it is in flight to a socket). At the end of
    /// the log (or with `max == 0`) the result is empty.
    pub fn read(&mut self, offset: u64, max: usize) -> Result<Bytes, LogError> {
        if offset < self.low {
            return Err(LogError::OffsetReleased {
                offset,
                low_water: self.low,
            });
        }
        if offset > self.end {
            return Err(LogError::OffsetBeyondEnd {
                offset,
                end: self.end,
            });
        }
        if offset == self.end || max == 0 {
            return Ok(Bytes::new());
        }
        // Legs in step read the newest piece: try it before the search.
        let index = match self.pieces.back() {
            Some(last) if last.start <= offset => self.pieces.len() - 1,
            _ => self.pieces.partition_point(|piece| piece.end() <= offset),
        };
        let Some(piece) = self.pieces.get(index) else {
            return Err(LogError::OffsetBeyondEnd {
                offset,
                end: self.end,
            });
        };
        if let Some(data) = &piece.data {
            let from = usize::try_from(offset - piece.start).map_err(|_| LogError::Overflow)?;
            let to = from.saturating_add(max).min(data.len());
            return Ok(data.slice(from..to));
        }
        let disk_end = match self.pieces.get(self.disk_pieces) {
            Some(first_in_memory) => first_in_memory.start,
            None => self.end,
        };
        let available = usize::try_from(disk_end - offset).unwrap_or(usize::MAX);
        let mut buf = vec![0u8; available.min(max).min(MAX_READ_BACK)];
        self.spill.read(offset, &mut buf)?;
        Ok(Bytes::from(buf))
    }

    /// Raises the low-water mark to `offset` (the minimum cursor of all legs
    /// that may still need data) and frees every piece wholly before it.
    /// Lower offsets than the current mark are ignored (the mark only rises).
    pub fn release_before(&mut self, offset: u64) -> Result<(), LogError> {
        if offset > self.end {
            return Err(LogError::OffsetBeyondEnd {
                offset,
                end: self.end,
            });
        }
        if offset <= self.low {
            return Ok(());
        }
        self.low = offset;
        let had_spilled = self.disk_pieces > 0;
        while let Some(piece) = self.pieces.front() {
            if piece.end() > offset {
                break;
            }
            let len = piece.len;
            if piece.data.is_some() {
                self.mem_used -= len;
                self.global.release(len);
            } else {
                self.disk_used -= len;
                self.disk_pieces -= 1;
            }
            self.pieces.pop_front();
        }
        if had_spilled && self.disk_pieces == 0 {
            self.spill.clear();
        }
        Ok(())
    }

    /// The end offset: total bytes appended so far.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// The low-water mark: offsets below it can no longer be read.
    pub fn low_water(&self) -> u64 {
        self.low
    }

    /// Current sizes of the log.
    pub fn stats(&self) -> LogStats {
        LogStats {
            in_memory: self.mem_used,
            spilled: self.disk_used,
            spilled_total: self.spilled_total,
            memory_peak: self.memory_peak,
            appended: self.end,
            low_water: self.low,
            pieces: self.pieces.len(),
        }
    }
}

impl Drop for ContentLog {
    /// Gives the session's in-memory bytes back to the process budget (the
    /// pieces themselves drop with the log; the spill file is deleted when
    /// its handle closes, it was unlinked at creation).
    fn drop(&mut self) {
        self.global.release(self.mem_used);
        self.mem_used = 0;
    }
}
