//! Configuration, error and statistics types of the content log.

use std::io;
use std::path::PathBuf;

/// Limits of one session's content log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Body bytes this session may hold in memory.
    pub memory_limit: u64,
    /// Body bytes this session may hold in its spill file (also the file's
    /// maximum size: it is used as a ring).
    pub disk_limit: u64,
    /// Directory for the spill file; `None` means the system temporary
    /// directory. The file is unlinked at creation, so nothing is left
    /// behind even on a crash.
    pub spill_dir: Option<PathBuf>,
}

/// Why the log refused an operation.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Memory and disk budgets are both spent: stop reading the sender until
    /// legs progress and
    /// [`ContentLog::release_before`](super::ContentLog::release_before)
    /// frees space.
    #[error("content log full: no room for {len} more bytes")]
    Full {
        /// Length of the refused piece.
        len: usize,
    },
    /// The piece is larger than any budget could ever hold; the engine must
    /// bound chunk sizes below the log budgets.
    #[error("body piece of {len} bytes exceeds the log budgets ({max} bytes)")]
    TooLarge {
        /// Length of the refused piece.
        len: usize,
        /// The largest piece the log can hold.
        max: u64,
    },
    /// The offset lies before the low-water mark: that data was freed.
    #[error("offset {offset} was released (low-water mark {low_water})")]
    OffsetReleased {
        /// The requested offset.
        offset: u64,
        /// The current low-water mark.
        low_water: u64,
    },
    /// The offset lies past the end of what was appended.
    #[error("offset {offset} is beyond the end of the log ({end})")]
    OffsetBeyondEnd {
        /// The requested offset.
        offset: u64,
        /// The end of the log (total bytes appended).
        end: u64,
    },
    /// The stream offset would pass `u64::MAX`.
    #[error("content log offset overflow")]
    Overflow,
    /// Writing to or reading from the spill file failed.
    #[error("spill file: {0}")]
    Io(#[from] io::Error),
}

/// A snapshot of a log's sizes, for statistics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogStats {
    /// Body bytes held in memory (charged to both memory budgets).
    pub in_memory: u64,
    /// Body bytes held in the spill file (charged to the disk budget).
    pub spilled: u64,
    /// Body bytes ever written to the spill file (a counter: spills that
    /// were read back and released still count).
    pub spilled_total: u64,
    /// The most body bytes the log has held in memory at once.
    pub memory_peak: u64,
    /// Total bytes ever appended: the end offset of the stream.
    pub appended: u64,
    /// Offsets below this were released and can no longer be read.
    pub low_water: u64,
    /// Number of pieces held (in memory or spilled).
    pub pieces: usize,
}
