//! TCP sockets as every peer and baseline opens them: `TCP_NODELAY`, the
//! buffer sizes set before connecting, and writes of several buffers at
//! once.

use std::io::{IoSlice, Write};
use std::net::{SocketAddr, TcpStream};

use crate::error::{Context, Result};

/// Opens a TCP connection with `TCP_NODELAY` and, when given, the buffer
/// sizes (set before connecting, so the window is small from the start).
pub fn connect(
    addr: SocketAddr,
    rcvbuf: Option<usize>,
    sndbuf: Option<usize>,
) -> Result<TcpStream> {
    let ctx = || format!("connect to {addr}");
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )
    .context(ctx)?;
    if let Some(n) = rcvbuf {
        sock.set_recv_buffer_size(n).context(ctx)?;
    }
    if let Some(n) = sndbuf {
        sock.set_send_buffer_size(n).context(ctx)?;
    }
    sock.connect(&addr.into()).context(ctx)?;
    sock.set_tcp_nodelay(true).context(ctx)?;
    Ok(sock.into())
}

/// Writes every byte of `bufs` with vectored writes.
pub fn write_all_vectored(w: &mut impl Write, mut bufs: &mut [IoSlice<'_>]) -> std::io::Result<()> {
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match w.write_vectored(bufs) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
