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

/// The TLS state of an accepted connection: a server side on the TLS
/// listener (`tls`), none on the plain one.
pub(crate) fn accepted(
    ctx: Option<&TlsContext>,
    tls: bool,
) -> Result<Option<Box<TlsConn>>, TlsConnError> {
    match (ctx, tls) {
        (Some(ctx), true) => Ok(Some(Box::new(TlsConn::server(ctx.server())?))),
        _ => Ok(None),
    }
}

/// The TLS state of an outgoing connection (`Output::Connect`'s `tls`):
/// a client side checking the peer's certificate for `host`, or none.
pub(crate) fn connecting(
    ctx: Option<&TlsContext>,
    host: Option<String>,
) -> Result<Option<Box<TlsConn>>, TlsConnError> {
    match host {
        Some(host) => Ok(Some(Box::new(TlsConn::client(
            ctx.and_then(TlsContext::client),
            &host,
        )?))),
        None => Ok(None),
    }
}

/// The engine's name for a connection with or without TLS state.
pub(crate) fn transport_of(tls: &Option<Box<TlsConn>>) -> crate::fanout::Transport {
    match tls {
        Some(_) => crate::fanout::Transport::Tls,
        None => crate::fanout::Transport::Tcp,
    }
}
