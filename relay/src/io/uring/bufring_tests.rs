//! Bookkeeping of the buffer ring, without a kernel: what is in the ring,
//! what is lent, what comes back and when receives are copied out.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;

use super::*;

const SIZE: usize = 8192;

/// Plays the kernel: fills buffer `bid` with `len` bytes of `byte`.
fn fill(ring: &BufRing, bid: u16, len: usize, byte: u8) {
    assert!(len <= SIZE);
    // SAFETY: `bid < count` and `len ≤ size`: inside the pool; nothing
    // borrows this buffer (the test has not taken it yet).
    unsafe { std::ptr::write_bytes(ring.pool.addr(bid), byte, len) }
}

/// The buffer ids the ring entries name, from the oldest unconsumed one.
fn ids_in_ring(ring: &BufRing, from: u16) -> Vec<u16> {
    let mask = ring.pool.count - 1;
    (from..from.wrapping_add(ring.in_ring))
        .map(|t| {
            // SAFETY: the index is masked into the allocated entries.
            unsafe { &*ring.entries.as_ptr().add(usize::from(t & mask)) }.bid()
        })
        .collect()
}

#[test]
fn new_ring_provides_every_buffer_once() {
    let ring = BufRing::new(16, SIZE, 3).unwrap();
    assert_eq!(ring.available(), 16);
    assert_eq!(ring.tail_atomic().load(Ordering::Acquire), 16);
    let ids: HashSet<u16> = ids_in_ring(&ring, 0).into_iter().collect();
    assert_eq!(ids, (0..16).collect());
    assert_eq!(ring.bgid(), 3);
}

#[test]
fn bad_shapes_are_refused() {
    assert!(BufRing::new(12, SIZE, 0).is_none());
    assert!(BufRing::new(16, 0, 0).is_none());
}

#[test]
fn lent_buffer_returns_when_last_clone_drops() {
    let mut ring = BufRing::new(16, SIZE, 0).unwrap();
    fill(&ring, 5, 4000, b'x');
    let (b, copied) = ring.take(5, 4000).unwrap();
    assert!(!copied);
    assert_eq!(ring.available(), 15);
    assert_eq!(b.len(), 4000);
    assert!(b.iter().all(|&c| c == b'x'));
    let legs: Vec<Bytes> = (0..10).map(|i| b.slice(i..)).collect();
    drop(b);
    assert_eq!(ring.reclaim(), 0, "still held by the legs");
    drop(legs);
    assert_eq!(ring.reclaim(), 1);
    assert_eq!(ring.available(), 16);
    assert_eq!(ring.reclaim(), 0, "returned once only");
}

#[test]
fn small_receives_are_copied_and_the_buffer_stays_in_the_ring() {
    let mut ring = BufRing::new(16, SIZE, 0).unwrap();
    fill(&ring, 2, 100, b'c');
    let (b, copied) = ring.take(2, 100).unwrap();
    assert!(copied);
    assert_eq!(&b[..], &[b'c'; 100][..]);
    assert_eq!(ring.available(), 16);
    drop(b);
    assert_eq!(ring.reclaim(), 0);
}

#[test]
fn low_ring_copies_out_so_a_held_log_cannot_starve_it() {
    let mut ring = BufRing::new(16, SIZE, 0).unwrap();
    let mut held = Vec::new();
    // The log keeps everything (a slow leg): lent while a quarter stays.
    let mut bid = 0;
    while ring.available() > 4 {
        fill(&ring, bid, SIZE, 1);
        let (b, copied) = ring.take(bid, SIZE).unwrap();
        assert!(!copied);
        held.push(b);
        bid += 1;
    }
    assert_eq!(held.len(), 12);
    for _ in 0..100 {
        // A copied-out buffer goes straight back: the kernel reuses it.
        fill(&ring, bid, SIZE, 2);
        let (b, copied) = ring.take(bid, SIZE).unwrap();
        assert!(copied, "below low water every receive is copied");
        held.push(b);
    }
    assert_eq!(bid, 12);
    assert_eq!(ring.available(), 4, "the ring never runs dry");
    held.truncate(12);
    drop(held);
    assert_eq!(ring.reclaim(), 12);
    assert_eq!(ring.available(), 16);
}

#[test]
fn returns_from_other_threads_reach_the_ring() {
    let mut ring = BufRing::new(64, SIZE, 0).unwrap();
    let mut lent = Vec::new();
    for bid in 0..32 {
        fill(&ring, bid, SIZE, bid as u8);
        lent.push(ring.take(bid, SIZE).unwrap().0);
    }
    assert_eq!(ring.available(), 32);
    std::thread::scope(|s| {
        for part in lent.chunks(8) {
            let part = part.to_vec();
            s.spawn(move || drop(part));
        }
    });
    drop(lent);
    assert_eq!(ring.reclaim(), 32);
    assert_eq!(ring.available(), 64);
}

#[test]
fn return_stack_takes_each_id_exactly_once_under_contention() {
    let st = ReturnStack::new(1024);
    std::thread::scope(|s| {
        for t in 0..4u16 {
            let st = &st;
            s.spawn(move || (t * 256..(t + 1) * 256).for_each(|b| st.push(b)));
        }
    });
    let mut out = Vec::new();
    st.take_all(&mut out);
    out.sort_unstable();
    assert_eq!(out, (0..1024).collect::<Vec<u16>>());
    out.clear();
    st.take_all(&mut out);
    assert!(out.is_empty());
}

#[test]
fn ring_entries_wrap_and_stay_consistent_over_many_cycles() {
    let mut ring = BufRing::new(4, SIZE, 0).unwrap();
    // The kernel consumes in ring order; emulate its head.
    let mut head: u16 = 0;
    for round in 0..40_000u32 {
        let bid = ids_in_ring(&ring, head)[0];
        head = head.wrapping_add(1);
        fill(&ring, bid, SIZE, round as u8);
        let (b, _) = ring.take(bid, SIZE).unwrap();
        assert_eq!(b[0], round as u8);
        drop(b);
        ring.reclaim();
        assert_eq!(ring.available(), 4);
        let ids: HashSet<u16> = ids_in_ring(&ring, head).into_iter().collect();
        assert_eq!(ids.len(), 4, "round {round}: no buffer twice in the ring");
    }
}

#[test]
fn impossible_cqes_are_refused() {
    let mut ring = BufRing::new(4, SIZE, 0).unwrap();
    assert!(ring.take(4, 10).is_none());
    assert!(ring.take(0, SIZE + 1).is_none());
    assert_eq!(ring.available(), 4);
}
