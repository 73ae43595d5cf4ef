//! Which driver runs: the choice made at start from [`IoMode`](crate::io::IoMode) ([`Driver`]),
//! and the mapping of the io_uring probe's refusal.

use std::sync::mpsc::Sender;

use super::config::{IoMode, RelayConfig};
use super::error::IoError;
use super::setup::Started;
use super::uring::{self, Unavailable};
use crate::fanout::Event;

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
