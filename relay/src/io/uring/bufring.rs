//! The provided-buffer ring of one worker (`IORING_REGISTER_PBUF_RING`)
//! and the lending of its buffers to the engine as [`Bytes`].
//!
//! - A [`Pool`] is `count` buffers of `size` bytes in one allocation,
//!   shared (`Arc`) by the worker and every [`Bytes`] lent from it, so
//!   its memory outlives the last slice wherever that slice is dropped.
//! - A buffer is in exactly one place: in the kernel's ring, in a CQE
//!   being handled, or lent. A receive CQE names the buffer the kernel
//!   filled; [`BufRing::take`] turns it into [`Bytes`] with
//!   [`Bytes::from_owner`] whose owner ([`Lent`]) puts the buffer id on the
//!   pool's [`ReturnStack`] when the last clone is dropped (every leg has
//!   written the body and the log let go of it).
//! - Returns may happen on any thread (a handover moves bytes to another
//!   worker) but are given back to the kernel only by the owning worker
//!   ([`BufRing::reclaim`], once per loop turn): the return stack is a
//!   lock-free push-only stack drained with one `swap`, so no lock sits on
//!   the data path and the single consumer has no ABA problem.
//!
//! **Starvation.** The content log keeps bodies for a slow or late leg (up
//! to its memory budget, then it spills); a lent buffer held there is out
//! of the ring for that long. The ring is protected by *copying out*: a
//! receive is copied into a fresh allocation and its buffer provided again
//! at once when it is small (< [`COPY_BELOW`]: a 100-byte chat message
//! must not pin 64 KiB) or when fewer than a quarter of the buffers are in
//! the ring. Copying was chosen over replenishing (adding buffers) because
//! (a) the log's budget counts body bytes, and a replenished ring would
//! hold memory the budget does not see, up to 64 KiB per small message;
//! (b) a copy costs one `memcpy` per chunk, while fanning the chunk out
//! costs N socket copies, so it is < 1/N of the work at any N worth a
//! relay; (c) the ring keeps a fixed, preallocated size. On a healthy
//! fan-out buffers come back within a turn or two and nothing is copied.

use std::alloc::{Layout, alloc, dealloc};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};

use bytes::Bytes;
use io_uring::types::BufRingEntry;

/// Receives shorter than this are copied out (see the module docs).
pub(crate) const COPY_BELOW: usize = 2048;
const NIL: u32 = u32::MAX;
const PAGE: usize = 4096;

/// Buffer ids given back by [`Lent`] owners, on any thread; taken by the
/// ring's worker. A Treiber stack whose links live in a fixed array
/// indexed by buffer id (a buffer is on the stack at most once).
#[derive(Debug)]
pub(crate) struct ReturnStack {
    head: AtomicU32,
    next: Box<[AtomicU32]>,
}

impl ReturnStack {
    pub(crate) fn new(count: u16) -> ReturnStack {
        ReturnStack {
            head: AtomicU32::new(NIL),
            next: (0..count).map(|_| AtomicU32::new(NIL)).collect(),
        }
    }

    /// Pushes a buffer id; lock-free, any thread.
    pub(crate) fn push(&self, bid: u16) {
        let Some(link) = self.next.get(usize::from(bid)) else {
            return;
        };
        let mut h = self.head.load(Ordering::Acquire);
        loop {
            link.store(h, Ordering::Relaxed);
            match self.head.compare_exchange_weak(
                h,
                u32::from(bid),
                Ordering::Release,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(now) => h = now,
            }
        }
    }

    /// Takes every id pushed so far (in some order) into `out`. Only the
    /// owning worker calls this: a buffer taken here cannot be pushed
    /// again before that worker provides it to the kernel and lends it
    /// anew, so the links read here are stable.
    pub(crate) fn take_all(&self, out: &mut Vec<u16>) {
        let mut h = self.head.swap(NIL, Ordering::Acquire);
        while let Some(link) = self.next.get(h as usize) {
            out.push(h as u16);
            h = link.load(Ordering::Relaxed);
        }
    }
}

/// The buffers' memory; see the module docs.
#[derive(Debug)]
pub(crate) struct Pool {
    base: NonNull<u8>,
    layout: Layout,
    size: usize,
    count: u16,
    returns: ReturnStack,
}

// SAFETY: `Pool` is a plain allocation plus atomics. Its bytes are written
// only by the kernel, into buffers that are in the ring (not lent), and read
// only through a `Lent` of a buffer that is out of the ring; the handoff
// between the two is ordered by the CQE (kernel → worker) and by the
// release/acquire pair of `ReturnStack` (any thread → worker). No `&mut` to
// the memory is ever formed.
unsafe impl Send for Pool {}
// SAFETY: as for `Send`: shared access is either atomic (`returns`) or a
// read of a buffer no one writes while it is lent.
unsafe impl Sync for Pool {}

impl Pool {
    fn new(count: u16, size: usize) -> Option<Pool> {
        let bytes = usize::from(count).checked_mul(size)?;
        let layout = Layout::from_size_align(bytes.max(1), PAGE).ok()?;
        // SAFETY: `layout` has a non-zero size.
        let base = NonNull::new(unsafe { alloc(layout) })?;
        Some(Pool {
            base,
            layout,
            size,
            count,
            returns: ReturnStack::new(count),
        })
    }

    fn addr(&self, bid: u16) -> *mut u8 {
        // In bounds: callers pass `bid < count`, and `count * size` bytes
        // are allocated.
        self.base
            .as_ptr()
            .wrapping_add(usize::from(bid) * self.size)
    }

    /// The first `len` bytes of buffer `bid`.
    ///
    /// # Safety
    /// The kernel wrote at least `len ≤ size` bytes into `bid` (a receive
    /// CQE said so) and `bid` is not in the ring until the slice is gone.
    unsafe fn slice(&self, bid: u16, len: usize) -> &[u8] {
        debug_assert!(bid < self.count && len <= self.size);
        // SAFETY: the caller's contract: initialised by the kernel, in
        // bounds, and not written while this borrow lives.
        unsafe { std::slice::from_raw_parts(self.addr(bid), len) }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // SAFETY: allocated in `Pool::new` with this layout; the last `Arc`
        // is gone, so no `Lent` borrows it, and the worker unregistered the
        // ring (or leaked a clone of this `Arc` when it could not).
        unsafe { dealloc(self.base.as_ptr(), self.layout) }
    }
}

/// The owner of a lent buffer: the bytes the kernel received into it.
#[derive(Debug)]
struct Lent {
    pool: Arc<Pool>,
    bid: u16,
    len: usize,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: a `Lent` is made only by `BufRing::take` for a buffer the
        // kernel filled with `len` bytes, and the buffer goes back to the
        // ring only in `Drop`, after the last borrow.
        unsafe { self.pool.slice(self.bid, self.len) }
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        self.pool.returns.push(self.bid);
    }
}

/// A worker's registered buffer ring: the ring entries the kernel reads
/// (page-aligned, `count` × 16 bytes, the tail in entry 0) and the pool.
#[derive(Debug)]
pub(crate) struct BufRing {
    entries: NonNull<BufRingEntry>,
    layout: Layout,
    pool: Arc<Pool>,
    bgid: u16,
    /// Our tail (the kernel keeps the head).
    tail: u16,
    in_ring: u16,
    scratch: Vec<u16>,
}

// SAFETY: the ring entries are a private allocation written only by the
// owning worker (and read by the kernel); a `BufRing` is moved to its
// worker thread before use and never shared.
unsafe impl Send for BufRing {}

impl BufRing {
    /// `count` (a power of two, ≤ 32768) buffers of `size` bytes, all
    /// provided; not yet registered with a ring.
    pub(crate) fn new(count: u16, size: usize, bgid: u16) -> Option<BufRing> {
        if !count.is_power_of_two() || count > 1 << 15 || size == 0 || size > u32::MAX as usize {
            return None;
        }
        let pool = Arc::new(Pool::new(count, size)?);
        let bytes = usize::from(count) * std::mem::size_of::<BufRingEntry>();
        let layout = Layout::from_size_align(bytes.max(PAGE), PAGE).ok()?;
        // SAFETY: non-zero size.
        let entries = NonNull::new(unsafe { alloc(layout) }.cast::<BufRingEntry>())?;
        let mut ring = BufRing {
            entries,
            layout,
            pool,
            bgid,
            tail: 0,
            in_ring: 0,
            scratch: Vec::with_capacity(usize::from(count)),
        };
        // The tail lives in entry 0's reserved field: zero it first.
        ring.tail_atomic().store(0, Ordering::Relaxed);
        for bid in 0..count {
            ring.provide(bid);
        }
        ring.publish();
        Some(ring)
    }

    /// Registers the ring with `ring`'s kernel context under `bgid`.
    pub(crate) fn register(&self, sub: &io_uring::Submitter<'_>) -> std::io::Result<()> {
        // SAFETY: `entries` is a page-aligned allocation of `count` ring
        // entries that stays valid until `unregister` (the worker calls it
        // after its last operation completed) or, if that is not reached,
        // is leaked by the worker rather than freed (see `Worker::exit`).
        unsafe {
            sub.register_buf_ring_with_flags(
                self.entries.as_ptr() as u64,
                self.pool.count,
                self.bgid,
                0,
            )
        }
    }

    /// The buffer group id to name in receives.
    pub(crate) fn bgid(&self) -> u16 {
        self.bgid
    }

    /// Buffers in the ring now.
    pub(crate) fn available(&self) -> u16 {
        self.in_ring
    }

    fn tail_atomic(&self) -> &AtomicU16 {
        // SAFETY: `entries` points to at least one entry; `tail` gives the
        // address of its reserved u16, which the kernel reads as the tail
        // and which is only written here, through this atomic view.
        unsafe { AtomicU16::from_ptr(BufRingEntry::tail(self.entries.as_ptr()).cast_mut()) }
    }

    /// Writes buffer `bid` at the tail (not yet visible to the kernel).
    fn provide(&mut self, bid: u16) {
        let mask = self.pool.count - 1;
        let idx = usize::from(self.tail & mask);
        // SAFETY: `idx < count` entries are allocated; the kernel does not
        // read entries past the published tail, and this one is past it.
        let e = unsafe { &mut *self.entries.as_ptr().add(idx) };
        e.set_addr(self.pool.addr(bid) as u64);
        e.set_len(self.pool.size as u32);
        e.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
        self.in_ring += 1;
    }

    /// Makes the provided entries visible to the kernel.
    fn publish(&self) {
        self.tail_atomic().store(self.tail, Ordering::Release);
    }

    /// Gives every returned buffer back to the kernel; returns how many.
    pub(crate) fn reclaim(&mut self) -> usize {
        let mut ids = std::mem::take(&mut self.scratch);
        self.pool.returns.take_all(&mut ids);
        let n = ids.len();
        for &bid in &ids {
            self.provide(bid);
        }
        if n > 0 {
            self.publish();
        }
        ids.clear();
        self.scratch = ids;
        n
    }

    /// A receive CQE consumed buffer `bid` without data (EOF, error):
    /// straight back into the ring.
    pub(crate) fn give_back(&mut self, bid: u16) {
        if bid < self.pool.count {
            self.in_ring = self.in_ring.saturating_sub(1);
            self.provide(bid);
            self.publish();
        }
    }

    /// A receive CQE filled `len` bytes of buffer `bid`: lend it, or copy
    /// it out and provide it again (see the module docs). The bool says
    /// whether it was copied. `None` for an id or length the kernel cannot
    /// have given.
    pub(crate) fn take(&mut self, bid: u16, len: usize) -> Option<(Bytes, bool)> {
        if bid >= self.pool.count || len > self.pool.size {
            return None;
        }
        self.in_ring = self.in_ring.saturating_sub(1);
        if len < COPY_BELOW || self.in_ring < self.pool.count / 4 {
            // SAFETY: the CQE says the kernel wrote `len` bytes into `bid`,
            // and `bid` is out of the ring until `give_back` below.
            let data = Bytes::copy_from_slice(unsafe { self.pool.slice(bid, len) });
            self.provide(bid);
            self.publish();
            return Some((data, true));
        }
        let lent = Lent {
            pool: self.pool.clone(),
            bid,
            len,
        };
        Some((Bytes::from_owner(lent), false))
    }

    /// A handle on the pool, to leak it if the kernel may still write.
    pub(crate) fn pool(&self) -> Arc<Pool> {
        self.pool.clone()
    }

    /// Unregisters from `ring`.
    pub(crate) fn unregister(&self, sub: &io_uring::Submitter<'_>) -> std::io::Result<()> {
        sub.unregister_buf_ring(self.bgid)
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout. The worker drops a
        // `BufRing` only after unregistering it or after its io_uring was
        // torn down with no receive in flight; otherwise it leaks it.
        unsafe { dealloc(self.entries.as_ptr().cast(), self.layout) }
    }
}

#[cfg(test)]
#[path = "bufring_tests.rs"]
mod tests;
