//! Which driver runs: the configuration ([`IoMode`], [`UringConfig`]) and
//! the choice made at start ([`Driver`]).

use std::sync::mpsc::Sender;

use super::error::IoError;
use super::handle::RelayConfig;
use super::setup::Started;
use super::uring::{self, Unavailable};
use crate::fanout::Event;

/// Which I/O driver to run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IoMode {
    /// io_uring if the probe succeeds, else epoll (one log line says why).
    #[default]
    Auto,
    /// io_uring or fail to start.
    Uring,
    /// The epoll driver.
    Epoll,
}

/// Settings of the io_uring driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UringConfig {
    /// Submission queue entries per worker ring (the completion queue has
    /// four times as many).
    pub entries: u32,
    /// Provided receive buffers per worker (a power of two ≤ 32768).
    pub buffers: u16,
    /// Bytes per provided receive buffer (at most
    /// [`READ_SIZE`](crate::fanout::READ_SIZE)).
    pub buffer_size: usize,
    /// Send with `IORING_OP_SENDMSG_ZC` when a write carries a body piece
    /// of at least this many bytes; `None`: never (the default).
    pub send_zc_min: Option<usize>,
    /// Use multishot receives when the kernel has them (≥ 6.0).
    pub multishot: bool,
    /// Make the probe fail, as if io_uring were refused: tests the
    /// fallback of [`IoMode::Auto`].
    pub force_unavailable: bool,
}

impl Default for UringConfig {
    fn default() -> UringConfig {
        UringConfig {
            entries: 1024,
            buffers: 128,
            buffer_size: crate::fanout::READ_SIZE,
            send_zc_min: None,
            multishot: true,
            force_unavailable: false,
        }
    }
}

/// The driver a relay runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// `io/uring`.
    Uring,
    /// `io/epoll`.
    Epoll,
}

/// Starts the driver `cfg.io` selects.
pub(crate) fn start(
    cfg: &RelayConfig,
    events: Sender<Event>,
) -> Result<(Started, Driver), IoError> {
    match cfg.io {
        IoMode::Epoll => Ok((super::epoll::start(cfg, events)?, Driver::Epoll)),
        IoMode::Uring => {
            let f = uring::probe(&cfg.uring).map_err(IoError::Uring)?;
            Ok((uring::start(cfg, f, events)?, Driver::Uring))
        }
        IoMode::Auto => match uring::probe(&cfg.uring) {
            Ok(f) => Ok((uring::start(cfg, f, events)?, Driver::Uring)),
            Err(why) => {
                fallback(&why);
                Ok((super::epoll::start(cfg, events)?, Driver::Epoll))
            }
        },
    }
}

fn fallback(why: &Unavailable) {
    tracing::warn!(reason = %why, "io_uring unavailable, using the epoll driver: {why}");
}
