//! Errors of the I/O layer and of the library API.

use std::net::SocketAddr;

use crate::fanout::EngineError;

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IoError {
    /// The configuration cannot run (zero or too many workers, …).
    #[error("bad relay configuration: {0}")]
    Config(String),
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
    #[error("engine: {0}")]
    Engine(String),
    /// `io = "uring"` was asked for and io_uring cannot be used.
    #[error("io_uring unavailable: {0}")]
    Uring(#[from] super::uring::Unavailable),
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
