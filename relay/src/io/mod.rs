//! I/O drivers: thin loops that own sockets and feed the fan-out engine.
//!
//! The engine ([`crate::fanout::Engine`]) is pure; a driver owns one
//! engine per worker thread, reads sockets into it, writes what it queues
//! and carries out its [`Output`](crate::fanout::Output)s. A session and
//! all its legs live on one worker: no lock is taken on the data path.
//!
//! - [`uring`]: the fast path on io_uring (batched submissions, provided
//!   buffer rings, multishot receives); the only place with `unsafe`.
//! - [`epoll`]: the portable driver on `mio` (epoll on Linux), the
//!   fallback where io_uring is refused ([`IoMode::Auto`]).
//! - [`tls`]: MSRP over TLS on both drivers (rustls between the socket
//!   and the engine).
//! - [`Relay`] / [`RelayHandle`]: the library API the control plane and
//!   the tests use; it is the same whatever driver runs underneath.
//!
//! What is shared between drivers (the control commands, their execution
//! against an engine, the worker links) lives in `command`, start-up
//! (listeners, engines, threads) in `setup`; a driver only supplies the
//! socket loop.

mod command;
mod config;
mod counters;
mod deadlines;
pub mod epoll;
mod error;
mod handle;
mod select;
mod setup;
pub mod tls;
pub mod uring;

pub use config::{IoMode, RelayConfig, UringConfig};
pub use counters::{CounterProbe, DriverCounters};
pub use error::{IoError, RelayError};
pub use handle::{Relay, RelayHandle};
pub use select::Driver;
pub use tls::{TlsContext, TlsError, TlsFiles, TlsListen};
pub use uring::Unavailable;
