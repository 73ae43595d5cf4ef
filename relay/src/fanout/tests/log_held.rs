//! A content log that cannot take more (CPM-MLD-020, PF-LMM-SEND): the
//! spill file failing (a full disk, a vanished spill directory) holds the
//! sender, says so once, counts it, and loses no byte; the devices'
//! progress frees memory and the sender goes on.

use super::file;
use super::harness::{H, cfg};
use crate::fanout::log::LogConfig;
use crate::msrp::Flag;

const CHUNK: usize = 64 << 10;

/// The spill directory does not exist, so every spill write fails like a
/// full disk would: the sender is held (not read) once memory is spent,
/// `spill_errors` and `log_stalls` count it, and once the paused devices
/// read again every byte reaches both, in order.
#[test]
fn pf_lmm_send_failed_spill_holds_the_sender_and_loses_nothing() {
    let mut c = cfg();
    c.log = LogConfig {
        memory_limit: 4 * CHUNK as u64,
        disk_limit: 64 * CHUNK as u64,
        spill_dir: Some("/nonexistent/msrp-relay-spill".into()),
    };
    c.leg_low_water = CHUNK;
    c.read_ahead = u64::MAX;
    let mut h = H::new(c);
    let (_, snd, legs) = h.session(2);
    let devs = h.connect_devices(&legs, "held", "x");
    for d in &devs {
        h.peers.get_mut(d).unwrap().paused = true;
        h.eng.set_write_blocked(*d, true);
    }
    let data = file(32 * CHUNK);
    let send = |h: &mut H, i: usize| {
        let (at, end) = (i * CHUNK, (i + 1) * CHUNK);
        let flag = if end == data.len() {
            Flag::Complete
        } else {
            Flag::More
        };
        let range = (at as u64 + 1, end as u64, Some(data.len() as u64));
        let w = h.chunk(snd, "held0001", range, &data[at..end], flag, "");
        h.send_raw(snd, &w);
    };
    let mut i = 0;
    while h.eng.can_read(snd) {
        send(&mut h, i);
        i += 1;
        assert!(i < 32, "the sender was never held");
    }
    let st = h.eng.stats();
    assert!(st.spill_errors >= 1, "{st:?}");
    assert_eq!(st.log_stalls, 1);
    assert_eq!(st.log_spilled, 0);

    // The devices read again: memory frees, the held bytes go in, and the
    // sender is read to the end.
    for d in &devs {
        h.peers.get_mut(d).unwrap().paused = false;
        h.eng.set_write_blocked(*d, false);
    }
    h.run();
    while i < 32 {
        assert!(h.eng.can_read(snd), "chunk {i}: still held");
        send(&mut h, i);
        i += 1;
        h.run();
    }
    for d in &devs {
        let (body, flag) = h.peers[d].messages()[&b"held0001".to_vec()].clone();
        assert_eq!(flag, Flag::Complete);
        assert!(body == data, "device {d:?}: bytes differ");
    }
    assert!(h.eng.stats().log_stalls >= 1);
}
