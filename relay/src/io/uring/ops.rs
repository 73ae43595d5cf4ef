//! Operations in flight and the memory their SQEs point into.
//!
//! Every SQE's `user_data` is the index of its slot in [`Ops`]. A slot
//! owns everything the kernel may read or write for that operation (the
//! `Bytes` of a send, its iovec array and `msghdr`, a receive buffer, a
//! `sockaddr`, a timespec) in heap allocations whose addresses do not
//! change while the slot lives, and a slot is freed only when its **last**
//! CQE arrived (for a multishot receive: the CQE without `MORE`; for a
//! zero-copy send: the notification). The driver never frees a slot
//! early: closing a connection cancels its operations and waits for those
//! CQEs (see `worker::conns`).

use bytes::Bytes;
use io_uring::types::Timespec;
use socket2::SockAddr;

use crate::fanout::ConnId;

/// Most slices in one vectored send; far below `UIO_MAXIOV`.
pub(super) const MAX_IOV: usize = 64;

/// What a send keeps alive until its completion: the engine's `Bytes`
/// (clones: the engine may drop its own at any time), their iovecs and
/// the `msghdr` naming them.
#[derive(Debug)]
pub(super) struct SendBuf {
    _bufs: Vec<Bytes>,
    iov: Vec<libc::iovec>,
    msg: libc::msghdr,
    len: usize,
    /// The largest piece, to choose a zero-copy send.
    pub(super) largest: usize,
}

// SAFETY: the raw pointers in `iov` and `msg` point into `_bufs` (shared,
// immutable `Bytes`) and into `iov` itself; the value is owned and used by
// one worker thread; `Send` is needed only because a `Worker` is built
// before it is moved onto that thread, with no operation in flight.
unsafe impl Send for SendBuf {}

impl SendBuf {
    /// Up to [`MAX_IOV`] non-empty pieces of `out`; `None` if there are
    /// none.
    pub(super) fn new<'a>(out: impl Iterator<Item = &'a Bytes>) -> Option<Box<SendBuf>> {
        let bufs: Vec<Bytes> = out
            .filter(|b| !b.is_empty())
            .take(MAX_IOV)
            .cloned()
            .collect();
        if bufs.is_empty() {
            return None;
        }
        let iov: Vec<libc::iovec> = bufs
            .iter()
            .map(|b| libc::iovec {
                iov_base: b.as_ptr().cast_mut().cast(),
                iov_len: b.len(),
            })
            .collect();
        let len = bufs.iter().map(Bytes::len).sum();
        let largest = bufs.iter().map(Bytes::len).max().unwrap_or(0);
        let mut sb = Box::new(SendBuf {
            _bufs: bufs,
            iov,
            // SAFETY: an all-zero `msghdr` is valid (null name, no control).
            msg: unsafe { std::mem::zeroed() },
            len,
            largest,
        });
        // Moving the `Vec`s into the box moved no heap data: the iovecs
        // still point into the `Bytes`, and `msg_iov` into `iov`'s heap.
        sb.msg.msg_iov = sb.iov.as_mut_ptr();
        sb.msg.msg_iovlen = sb.iov.len() as _;
        Some(sb)
    }

    /// Bytes offered.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The `msghdr` for `SENDMSG`; valid while `self` lives.
    pub(super) fn msghdr(&self) -> *const libc::msghdr {
        &self.msg
    }
}

/// An operation in flight.
#[derive(Debug)]
pub(super) enum Op {
    /// (Multishot) accept on a listener: the plain one, or (`tls`) the
    /// TLS one.
    Accept { tls: bool },
    /// A receive on a connection; `buf` when not from the buffer ring.
    Recv { conn: ConnId, buf: Option<Vec<u8>> },
    /// A send; for a zero-copy one, `notif` is set once its result came
    /// and the notification is awaited.
    Send {
        conn: ConnId,
        _buf: Box<SendBuf>,
        zc: bool,
        notif: bool,
    },
    /// An outgoing connect and its peer address.
    Connect { conn: ConnId, _addr: Box<SockAddr> },
    /// The link timeout of a connect.
    ConnectTimeout { _ts: Box<Timespec> },
    /// `shutdown(SHUT_WR)` of a closing connection.
    Shutdown { conn: ConnId },
    /// The close of a released descriptor.
    Close,
    /// An `ASYNC_CANCEL`.
    Cancel,
    /// The wake eventfd's read.
    Wake { _buf: Box<[u8; 8]> },
}

/// The slots; see the module docs.
#[derive(Debug, Default)]
pub(super) struct Ops {
    slots: Vec<Option<Op>>,
    free: Vec<u32>,
    live: usize,
}

impl Ops {
    /// Stores `op`; its `user_data`.
    pub(super) fn insert(&mut self, op: Op) -> u64 {
        self.live += 1;
        match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(op);
                u64::from(i)
            }
            None => {
                self.slots.push(Some(op));
                (self.slots.len() - 1) as u64
            }
        }
    }

    pub(super) fn get_mut(&mut self, ud: u64) -> Option<&mut Op> {
        self.slots.get_mut(ud as usize)?.as_mut()
    }

    /// Frees a slot after its last CQE.
    pub(super) fn remove(&mut self, ud: u64) -> Option<Op> {
        let op = self.slots.get_mut(ud as usize)?.take()?;
        self.live -= 1;
        self.free.push(ud as u32);
        Some(op)
    }

    /// Operations in flight.
    pub(super) fn live(&self) -> usize {
        self.live
    }

    /// The `user_data` of every operation in flight.
    pub(super) fn all(&self) -> Vec<u64> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some())
            .map(|(i, _)| i as u64)
            .collect()
    }
}
