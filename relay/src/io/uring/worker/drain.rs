//! The ends of a uring worker's operations: the bytes a receive CQE
//! carries, and the exit, which waits for every operation's last CQE
//! before any buffer or descriptor is released.

use std::time::{Duration, Instant};

use bytes::Bytes;
use io_uring::cqueue;
use io_uring::types::{SubmitArgs, Timespec};

use super::super::bufring::BufRing;
use super::super::ops::Op;
use super::{EXIT_DRAIN, Worker};

impl Worker {
    /// Cancels everything in flight and waits for the last CQEs, so that no
    /// buffer or descriptor is released under the kernel. If they do not
    /// come within [`EXIT_DRAIN`], the memory they may touch is leaked.
    pub(super) fn exit(mut self) {
        for ud in self.ops.all() {
            if !matches!(self.ops.get_mut(ud), Some(Op::Cancel | Op::Close)) {
                self.cancel(ud);
            }
        }
        let deadline = Instant::now() + EXIT_DRAIN;
        while self.ops.live() > 0 && Instant::now() < deadline {
            let ts = Timespec::from(Duration::from_millis(100));
            let args = SubmitArgs::new().timespec(&ts);
            if let Err(e) = self.ring.submitter().submit_with_args(1, &args)
                && !matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR))
            {
                break;
            }
            let done: Vec<(u64, u32)> = self
                .ring
                .completion()
                .map(|c| (c.user_data(), c.flags()))
                .collect();
            for (ud, flags) in done {
                if let (Some(b), Some(bid)) = (&mut self.bufs, cqueue::buffer_select(flags)) {
                    b.give_back(bid);
                }
                // The last CQE of any op has no `MORE` (a zero-copy send's
                // result has it, its notification not).
                if !cqueue::more(flags) {
                    self.ops.remove(ud);
                }
            }
        }
        if self.ops.live() > 0 {
            tracing::error!(
                ops = self.ops.live(),
                "io_uring operations still in flight at exit: their memory is leaked"
            );
            std::mem::forget(std::mem::take(&mut self.ops));
            if let Some(b) = self.bufs.take() {
                std::mem::forget(b.pool());
                std::mem::forget(b);
            }
        } else if let Some(b) = &self.bufs
            && let Err(e) = b.unregister(&self.ring.submitter())
        {
            tracing::debug!(error = %e, "unregister buffer ring");
        }
        tracing::debug!(conns = self.conns.len(), "worker stops");
    }
}

/// Bytes of a receive, by where the kernel put them.
pub(super) fn received(
    bufs: &mut Option<BufRing>,
    buf: Option<Vec<u8>>,
    res: i32,
    flags: u32,
) -> Recvd {
    match (cqueue::buffer_select(flags), bufs) {
        (Some(bid), Some(b)) if res > 0 => match b.take(bid, res as usize) {
            Some((data, copied)) => Recvd::Data(data, copied),
            None => Recvd::Nothing,
        },
        (Some(bid), Some(b)) => {
            b.give_back(bid);
            Recvd::Nothing
        }
        _ if res > 0 => match buf {
            Some(mut v) if res as usize <= v.capacity() => {
                // SAFETY: the kernel wrote `res` bytes at the start of this
                // vector's spare capacity (its length was 0).
                unsafe { v.set_len(res as usize) };
                Recvd::Data(Bytes::from(v), false)
            }
            _ => Recvd::Nothing,
        },
        _ => Recvd::Nothing,
    }
}

pub(super) enum Recvd {
    Data(Bytes, bool),
    Nothing,
}
