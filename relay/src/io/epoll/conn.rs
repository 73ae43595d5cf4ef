//! One connection of the epoll driver and the socket calls on it: a read
//! into the worker's buffer, a vectored write of the engine's output.

use std::io::{self, IoSlice, Read, Write};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use mio::net::TcpStream;

use crate::fanout::{LegId, READ_SIZE};
use crate::io::tls::TlsConn;

/// Most slices in one vectored write (heads, bodies and end-lines of
/// several chunks); well under `IOV_MAX`.
pub(super) const MAX_IOV: usize = 64;
pub(super) use crate::io::setup::READS_PER_TURN;
/// Writes of one connection per loop turn before others get theirs.
pub(super) const WRITES_PER_TURN: usize = 32;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// An outgoing connect for `leg` (relay active side) is in progress.
    Connecting { leg: LegId, deadline: Instant },
    /// Bound or binding; read and written.
    Open,
    /// Closing: queued output is written until `deadline`; once `shut`
    /// (write side shut down) the peer's remaining bytes are discarded
    /// until its EOF or `deadline`, so the close is a FIN and not a RST
    /// that could destroy our last response in the peer's buffer.
    Closing { deadline: Instant, shut: bool },
}

/// A socket and its driver state.
#[derive(Debug)]
pub(super) struct Conn {
    pub(super) stream: TcpStream,
    pub(super) phase: Phase,
    /// The last write hit `WouldBlock`: wait for a writable event.
    pub(super) write_blocked: bool,
    /// TLS between the socket and the engine (`msrps:` legs).
    pub(super) tls: Option<Box<TlsConn>>,
}

impl Conn {
    pub(super) fn new(stream: TcpStream, phase: Phase, tls: Option<Box<TlsConn>>) -> Conn {
        Conn {
            stream,
            phase,
            write_blocked: false,
            tls,
        }
    }

    /// The deadline of a connect or close in progress.
    pub(super) fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Connecting { deadline, .. } | Phase::Closing { deadline, .. } => Some(deadline),
            Phase::Open => None,
        }
    }
}

/// What one read gave.
#[derive(Debug)]
pub(super) enum Read1 {
    Data(Bytes),
    WouldBlock,
    /// EOF or a broken connection.
    Closed(Option<io::Error>),
}

/// Reads up to [`READ_SIZE`] bytes into `buf` and freezes them: the
/// returned `Bytes` shares `buf`'s allocation (the engine keeps slices of
/// it; nothing is copied).
pub(super) fn read_once(stream: &mut TcpStream, buf: &mut BytesMut) -> Read1 {
    buf.clear();
    buf.resize(READ_SIZE, 0);
    loop {
        match stream.read(&mut buf[..]) {
            Ok(0) => return Read1::Closed(None),
            Ok(n) => {
                buf.truncate(n);
                return Read1::Data(buf.split().freeze());
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Read1::WouldBlock,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Read1::Closed(Some(e)),
        }
    }
}

/// Reads and drops what a closing connection's peer still sends.
pub(super) fn discard(stream: &mut TcpStream) -> Read1 {
    let mut scratch = [0u8; 4096];
    loop {
        match stream.read(&mut scratch) {
            Ok(0) => return Read1::Closed(None),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Read1::WouldBlock,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Read1::Closed(Some(e)),
        }
    }
}

/// What one vectored write did.
#[derive(Debug)]
pub(super) enum Write1 {
    /// Bytes written (possibly fewer than offered).
    Wrote(usize),
    /// Nothing was offered.
    Empty,
    WouldBlock,
    Closed(io::Error),
}

/// One vectored write of up to [`MAX_IOV`] pieces of `out`.
pub(super) fn write_once<'a>(
    stream: &mut TcpStream,
    out: impl Iterator<Item = &'a Bytes>,
) -> Write1 {
    let mut iov: [IoSlice<'a>; MAX_IOV] = [IoSlice::new(&[]); MAX_IOV];
    let mut k = 0;
    for b in out.filter(|b| !b.is_empty()).take(MAX_IOV) {
        iov[k] = IoSlice::new(b);
        k += 1;
    }
    if k == 0 {
        return Write1::Empty;
    }
    loop {
        match stream.write_vectored(&iov[..k]) {
            Ok(0) => return Write1::Closed(io::ErrorKind::WriteZero.into()),
            Ok(n) => return Write1::Wrote(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Write1::WouldBlock,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Write1::Closed(e),
        }
    }
}
