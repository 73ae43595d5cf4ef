//! MSRP over TLS (`msrps:`, `TCP/TLS/MSRP`, RFC 4975 §14) in the drivers.
//!
//! TLS sits between a driver's socket and the engine; the engine never
//! sees it, only plaintext and which [`Transport`](crate::fanout::Transport)
//! a connection runs over. rustls does the work, without I/O of its own
//! ([`conn`]): both drivers feed it what their sockets received and write
//! what it produced, so one connection type serves epoll and io_uring.
//!
//! - [`TlsContext`]: the certificate, key and trust anchors from files;
//!   reloadable; shared by every worker.
//! - [`TlsListen`]: the TLS port, beside the plain one. A leg's SDP picks
//!   its transport; a plain sender can fan out to TLS devices and the
//!   other way round.
//! - [`ktls`]: the kernel-TLS probe.

mod config;
mod conn;
pub mod ktls;

use std::net::SocketAddr;

pub use config::{TlsContext, TlsError, TlsFiles};
pub(crate) use conn::{TlsConn, TlsConnError};

/// The relay's TLS listener.
#[derive(Debug, Clone)]
pub struct TlsListen {
    /// Where TLS legs connect (port 0: a free port, see
    /// [`Relay::tls_addr`](crate::io::Relay::tls_addr)).
    pub listen: SocketAddr,
    /// Certificate, key and trust anchors.
    pub context: TlsContext,
    /// Probe for kernel TLS at start (one log line says what was found).
    pub ktls: bool,
}
