//! A sender that claims more than it sends, then goes (MSRP-CHUNK,
//! RFC 4975 §7.1.1, §5.1): whatever body bytes did arrive reach every
//! device, and each device's copy of the message ends interrupted (`#`),
//! whatever the claimed Byte-Range — `1-*/*`, a total of 1 GB, or an end far
//! beyond what the relay would ever hold.

use super::file;
use super::harness::{H, cfg};
use crate::fanout::Event;
use crate::msrp::Flag;
use std::time::Duration;

/// Writes the head of a chunk claiming `range` (a Byte-Range value), of
/// content type `ct`, and `sent` bytes of its body, no end-line; then the
/// sender's connection closes. Every device must hold exactly those bytes,
/// ended with `#`.
fn claim_then_vanish(ct: &str, range: &str, sent: usize) {
    let mut h = H::new(cfg());
    let (sid, snd, legs) = h.session(2);
    let devs = h.connect_devices(&legs, "huge", "x");
    let body = file(sent);
    let p = &h.peers[&snd];
    let mut w = format!(
        "MSRP cut1 SEND\r\nTo-Path: {}\r\nFrom-Path: {}\r\nMessage-ID: huge0001\r\n\
         Byte-Range: {range}\r\nContent-Type: {ct}\r\n\r\n",
        p.relay_uri, p.uri
    )
    .into_bytes();
    w.extend_from_slice(&body);
    h.send_raw(snd, &w);
    h.eng.handle_closed(snd, h.now);
    h.run();
    for d in &devs {
        let msgs = h.peers[d].messages();
        let (got, flag) = msgs
            .get(b"huge0001".as_slice())
            .cloned()
            .unwrap_or_else(|| panic!("{d:?} got nothing of {ct} {range}"));
        assert_eq!((flag, got.len()), (Flag::Aborted, sent), "{ct} {range}");
        assert_eq!(got, body, "{ct} {range}");
    }
    assert!(h.events.contains(&Event::UpstreamEnded { session: sid }));
    h.advance(Duration::from_secs(1));
    assert_eq!(h.done_legs().len(), 2);
}

const OCTETS: &str = "application/octet-stream";
const CPIM: &str = "message/cpim";

#[test]
fn msrp_chunk_huge_total_few_bytes_then_disconnect_devices_get_them_and_hash() {
    claim_then_vanish(OCTETS, "1-1000000000/1000000000", 100);
    claim_then_vanish(OCTETS, "1-1099511627776/1099511627776", 5000);
}

#[test]
fn msrp_chunk_unknown_end_few_bytes_then_disconnect_devices_get_them_and_hash() {
    claim_then_vanish(OCTETS, "1-*/*", 37);
    claim_then_vanish(OCTETS, "1-*/1000000000", 3);
}

/// A CPIM body is held whole until its end-line so that a notification can
/// be told from a message (CPM-MLD-004); a sender that goes before the end
/// still has what it sent delivered, interrupted.
#[test]
fn msrp_chunk_cpim_cut_short_is_delivered_interrupted_not_dropped() {
    claim_then_vanish(CPIM, "1-1000000000/1000000000", 100);
    claim_then_vanish(CPIM, "1-*/*", 12);
}
