//! I/O drivers: thin loops that own sockets and feed the fan-out engine.
//!
//! The engine ([`crate::fanout::Engine`]) is pure; a driver owns one
//! engine per worker thread, reads sockets into it, writes what it queues
//! and carries out its [`Output`](crate::fanout::Output)s. A session and
//! all its legs live on one worker: no lock is taken on the data path.
//!
//! - [`epoll`]: the portable driver on `mio` (epoll on Linux).
//! - [`Relay`] / [`RelayHandle`]: the library API the control plane and
//!   the tests use; it is the same whatever driver runs underneath.
//!
//! What is shared between drivers (the control commands, their execution
//! against an engine, the worker links) lives in `command`; a driver only
//! supplies the socket loop.

mod command;
pub mod epoll;
mod error;
mod handle;

pub use error::{IoError, RelayError};
pub use handle::{Relay, RelayConfig, RelayHandle};
