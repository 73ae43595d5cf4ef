//! Transaction ids are a leg's prefix and 8 hex digits of its sequence
//! number: past 2^32 requests they repeat, and the responses to chunks
//! sent across the wrap must still find their chunk (else the leg would
//! wait for them and time out, and the message would stay pinned).

use std::time::Duration;

use super::file;
use super::harness::{Got, H, cfg};
use crate::fanout::Event;
use crate::fanout::tid::WINDOW;
use crate::msrp::{Flag, Method};

#[test]
fn chunks_sent_across_the_tid_wrap_are_answered_and_delivered() {
    let mut h = H::new(cfg());
    let (_, snd, legs) = h.session(2);
    let devs = h.connect_devices(&legs, "w", "z");
    for &l in &legs {
        h.eng.set_next_tid_seq(l, WINDOW - 2);
    }
    let data = file(200_000);
    h.send_file(snd, "wrap0001", &data, 16 * 1024);
    h.send_file(snd, "wrap0002", &data[..5000], 5000);
    for d in &devs {
        let msgs = h.peers[d].messages();
        assert_eq!(msgs[&b"wrap0001".to_vec()], (data.clone(), Flag::Complete));
        assert_eq!(msgs[&b"wrap0002".to_vec()].0, &data[..5000]);
        let tids: Vec<String> = h.peers[d]
            .got
            .iter()
            .filter_map(|g| match g {
                Got::Request { head, .. } if head.method == Method::Send => {
                    Some(head.tid.to_string())
                }
                _ => None,
            })
            .collect();
        let digits: Vec<&str> = tids.iter().map(|t| &t[4..]).collect();
        assert!(tids.iter().all(|t| t.len() == 12), "{tids:?}");
        assert_eq!(
            digits[..3],
            ["fffffffe", "ffffffff", "00000000"],
            "{tids:?}"
        );
    }
    // Every chunk was answered and matched: nothing left awaited.
    h.advance(Duration::from_secs(31));
    assert!(
        !h.events
            .iter()
            .any(|e| matches!(e, Event::LegFailed { .. })),
        "{:?}",
        h.events
    );
    assert!(h.eng.stats().log_memory <= 205_000);
}
