//! A peer's connection to the relay: plain TCP or TLS over TCP, read and
//! written the same way, so the peers' reader, decoder and verification
//! code are one for both and a TLS run differs from a plain one only by
//! the record layer.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;

use crate::error::{Context, Result};
use crate::tls::TlsStream;

/// A connection's byte stream.
#[derive(Debug)]
pub enum Wire {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS (client side) over TCP.
    Tls(TlsStream),
}

impl From<TcpStream> for Wire {
    fn from(s: TcpStream) -> Wire {
        Wire::Tcp(s)
    }
}

impl Wire {
    /// Another handle on the same connection.
    pub fn try_clone(&self) -> io::Result<Wire> {
        Ok(match self {
            Wire::Tcp(s) => Wire::Tcp(s.try_clone()?),
            Wire::Tls(s) => Wire::Tls(s.try_clone()?),
        })
    }

    /// Shuts the connection down (TLS: `close_notify` first, for a write
    /// shutdown).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Wire::Tcp(s) => s.shutdown(how),
            Wire::Tls(s) => s.shutdown(how),
        }
    }

    /// The TCP socket under it.
    pub fn socket(&self) -> &TcpStream {
        match self {
            Wire::Tcp(s) => s,
            Wire::Tls(s) => s.socket(),
        }
    }
}

/// Connects to `addr` (see [`crate::net::connect`]) and, with `tls`,
/// makes the TLS handshake (at most `wait`).
pub fn connect(
    addr: SocketAddr,
    tls: Option<&Arc<ClientConfig>>,
    bufs: (Option<usize>, Option<usize>),
    wait: Duration,
) -> Result<Wire> {
    let s = crate::net::connect(addr, bufs.0, bufs.1)?;
    match tls {
        None => Ok(Wire::Tcp(s)),
        Some(cfg) => Ok(Wire::Tls(
            TlsStream::handshake(s, addr, cfg, wait)
                .context(|| format!("TLS handshake with {addr}"))?,
        )),
    }
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Wire::Tcp(s) => s.read(buf),
            Wire::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Wire::Tcp(s) => s.write(buf),
            Wire::Tls(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Wire::Tcp(s) => s.write_vectored(bufs),
            Wire::Tls(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Wire::Tcp(s) => s.flush(),
            Wire::Tls(s) => s.flush(),
        }
    }
}
