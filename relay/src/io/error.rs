//! Errors of the I/O layer and of the library API.

use std::fmt::Display;
use std::net::SocketAddr;
use std::num::TryFromIntError;

use crate::fanout::EngineError;

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IoError {
    /// More workers than a session id's top byte can name.
    #[error("bad relay configuration: {0} workers: at most 256 (a session id's top byte)")]
    TooManyWorkers(usize),
    /// A worker's index or count does not fit the engine's fields.
    #[error("bad relay configuration: {0}")]
    WorkerIndex(#[source] TryFromIntError),
    /// A listening socket could not be set up.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The poller, a waker or a thread could not be created.
    #[error("worker setup: {0}")]
    Setup(#[from] std::io::Error),
    /// The engine refused its configuration.
    #[error("engine: {}", engine_detail(.0))]
    Engine(#[source] EngineError),
    /// `io = "uring"` was asked for and io_uring cannot be used.
    #[error("io_uring unavailable: {0}")]
    Uring(#[from] super::uring::Unavailable),
}

/// What [`IoError::Engine`] says after `engine: `: a refused pacing
/// configuration in its own words, without the `configuration refused: `
/// of a reload's [`EngineError::Config`].
fn engine_detail(e: &EngineError) -> &dyn Display {
    match e {
        EngineError::Config(p) => p,
        e => e,
    }
}

/// Why a [`RelayHandle`](super::RelayHandle) call failed.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The engine refused the call (no such session or leg, …).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The owning worker has stopped (the relay is shutting down).
    #[error("the worker has stopped")]
    WorkerGone,
    /// An I/O error while reaching the worker.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fanout::pacer::PacerError;

    #[test]
    fn start_errors_read_as_before() {
        assert_eq!(
            IoError::TooManyWorkers(300).to_string(),
            "bad relay configuration: 300 workers: at most 256 (a session id's top byte)"
        );
        assert_eq!(
            IoError::Engine(EngineError::Config(PacerError::Rate(0))).to_string(),
            "engine: pacer rate 0/s out of range 1..=1000000"
        );
        assert_eq!(
            RelayError::Engine(EngineError::Config(PacerError::Burst(0))).to_string(),
            "configuration refused: pacer burst 0 out of range 1..=1000000"
        );
        assert_eq!(
            IoError::Engine(EngineError::Random("x".into())).to_string(),
            "engine: random source failed: x"
        );
    }
}
