//! The read-ahead window ([`EngineConfig::read_ahead`]): the sender is not
//! read far ahead of the device legs that write freely, and a leg whose
//! socket is full never holds it back (CPM-MLD-020: a slow device never
//! slows the sender or the others).
//!
//! [`EngineConfig::read_ahead`]: crate::fanout::EngineConfig::read_ahead

use super::file;
use super::harness::{H, cfg};
use crate::fanout::ConnId;
use crate::msrp::Flag;

const CHUNK: usize = 64 << 10;

/// Sends chunk `i` of `data` (message `mid`) from the sender.
fn send_chunk(h: &mut H, snd: ConnId, mid: &str, data: &[u8], i: usize) {
    let (at, end) = (i * CHUNK, ((i + 1) * CHUNK).min(data.len()));
    let flag = if end == data.len() {
        Flag::Complete
    } else {
        Flag::More
    };
    let range = (at as u64 + 1, end as u64, Some(data.len() as u64));
    let w = h.chunk(snd, mid, range, &data[at..end], flag, "");
    h.send_raw(snd, &w);
}

/// PF-LMM-SEND, CPM-MLD-020: two devices that take nothing while their
/// sockets are not full (the relay is the one behind) pause the sender
/// once it is `read_ahead` ahead of both, long before the log budget;
/// once their sockets are full they no longer count and only the budget
/// limits reading; a device writing freely again sets the pace, and the
/// other, still full, does not slow it. Both get every byte.
#[test]
fn pf_lmm_send_read_ahead_window_counts_only_freely_writing_legs() {
    let mut c = cfg();
    c.read_ahead = 512 << 10;
    let (low_water, memory_limit) = (c.leg_low_water, c.log.memory_limit);
    let mut h = H::new(c);
    let (_, snd, legs) = h.session(2);
    let devs = h.connect_devices(&legs, "ra", "x");
    for d in &devs {
        h.peers.get_mut(d).unwrap().paused = true;
    }
    let data = file(64 * CHUNK);
    let mut i = 0;
    while h.eng.can_read(snd) {
        send_chunk(&mut h, snd, "ahead001", &data, i);
        i += 1;
        assert!(i < 64, "the window never closed");
    }
    // Each leg took `low_water` into its queue; the sender stopped one
    // window past that, with the log far below its budget.
    let fed = (i * CHUNK) as u64;
    let window = (low_water as u64) + (512 << 10);
    assert!(fed >= window && fed < window + CHUNK as u64, "fed {fed}");
    assert!(h.eng.stats().log_memory < memory_limit);
    assert_eq!(h.eng.stats().log_spilled, 0);

    // Both sockets full: slow devices, not a slow relay. Only the budget
    // limits reading now.
    for d in &devs {
        h.eng.set_write_blocked(*d, true);
    }
    h.run();
    assert!(h.eng.can_read(snd));
    send_chunk(&mut h, snd, "ahead001", &data, i);
    i += 1;

    // Device 0 writes freely again and keeps up; device 1 stays full and
    // paused: the sender is read without pause to the end.
    h.peers.get_mut(&devs[0]).unwrap().paused = false;
    h.eng.set_write_blocked(devs[0], false);
    h.run();
    while i < 64 {
        assert!(h.eng.can_read(snd), "chunk {i}: paused by the slow leg");
        send_chunk(&mut h, snd, "ahead001", &data, i);
        i += 1;
    }
    assert_eq!(h.peers[&devs[0]].messages()[&b"ahead001".to_vec()].0, data);
    h.peers.get_mut(&devs[1]).unwrap().paused = false;
    h.eng.set_write_blocked(devs[1], false);
    h.run();
    assert_eq!(h.peers[&devs[1]].messages()[&b"ahead001".to_vec()].0, data);
}
