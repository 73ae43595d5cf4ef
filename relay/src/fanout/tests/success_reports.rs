//! MSRP-REPORT, CPM-MLD-024: success REPORTs from devices that report the
//! way real clients do — after their `200`, late, chunk by chunk, out of
//! order, twice — reach the sender exactly once, for the whole message
//! with its real size, and never before some device has all of it.

use std::time::Duration;

use super::file;
use super::harness::{H, cfg};
use crate::fanout::ConnId;
use crate::msrp::{ByteRange, Flag};

const ASK: &str = "Success-Report: yes\r\n";

/// Sends `data` from the sender as `mid` in `chunk`-byte chunks, each
/// asking for a success REPORT; `between(h, i)` runs after chunk `i`.
fn send_reported(
    h: &mut H,
    snd: ConnId,
    mid: &str,
    data: &[u8],
    chunk: usize,
    mut between: impl FnMut(&mut H, usize),
) {
    let total = data.len() as u64;
    for (i, part) in data.chunks(chunk).enumerate() {
        let start = (i * chunk) as u64 + 1;
        let end = start + part.len() as u64 - 1;
        let flag = if end == total {
            Flag::Complete
        } else {
            Flag::More
        };
        let w = h.chunk(snd, mid, (start, end, Some(total)), part, flag, ASK);
        h.send_raw(snd, &w);
        between(h, i);
    }
}

/// A device's success REPORT for `start..=end` of `total` bytes, in a
/// write of its own.
fn report(h: &mut H, dev: ConnId, mid: &str, start: u64, end: u64, total: u64) {
    let p = &h.peers[&dev];
    let tid = format!("rep{dev:?}{start}x{end}").replace(['(', ')', ' '], "");
    let w = format!(
        "MSRP {tid} REPORT\r\nTo-Path: {}\r\nFrom-Path: {}\r\nMessage-ID: {mid}\r\n\
         Byte-Range: {start}-{end}/{total}\r\nStatus: 000 200 OK\r\n-------{tid}$\r\n",
        p.relay_uri, p.uri
    );
    h.send_raw(dev, w.as_bytes());
}

/// The sender's REPORTs as (Message-ID, status, range).
fn upstream(h: &H, snd: ConnId) -> Vec<(String, u16, ByteRange)> {
    h.peers[&snd]
        .reports()
        .into_iter()
        .map(|r| {
            let id = String::from_utf8_lossy(&r.message_id.unwrap_or_default()).into_owned();
            let code = r.status.map_or(0, |s| s.code.0);
            (id, code, r.byte_range.unwrap())
        })
        .collect()
}

fn whole(n: u64) -> ByteRange {
    ByteRange {
        start: 1,
        end: Some(n),
        total: Some(n),
    }
}

/// MSRP-REPORT (issue 15 A): the device's `200` frees the message, its
/// REPORT comes later in a write of its own: it still reaches the sender,
/// once; a duplicate does not.
#[test]
fn msrp_report_after_the_200_that_freed_the_message_reaches_the_sender_once() {
    let mut h = H::new(cfg());
    let (_, snd, legs) = h.session(1);
    let dev = h.connect_devices(&legs, "r", "r")[0];
    send_reported(&mut h, snd, "late0001", &file(200), 200, |_, _| {});
    assert_eq!(h.eng.stats().messages, 0, "every 200 came: record freed");
    assert_eq!(h.eng.stats().awaiting_reports, 1);
    assert!(upstream(&h, snd).is_empty());
    h.advance(Duration::from_secs(2));
    report(&mut h, dev, "late0001", 1, 200, 200);
    assert_eq!(upstream(&h, snd), [("late0001".into(), 200, whole(200))]);
    report(&mut h, dev, "late0001", 1, 200, 200);
    assert_eq!(upstream(&h, snd).len(), 1, "a duplicate is not forwarded");
    assert_eq!(h.eng.stats().awaiting_reports, 0);
}

/// MSRP-REPORT, CPM-MLD-024 (issue 15 B): one REPORT per chunk, out of
/// order and duplicated, from two devices. Nothing goes upstream while
/// the sender is still sending, nor when the two devices together (but
/// neither alone) cover the message; exactly one `1-N/N` once one device
/// covers it all.
#[test]
fn msrp_report_cpm_mld_024_per_chunk_reports_give_one_whole_report() {
    const CHUNK: usize = 64 << 10;
    let mut h = H::new(cfg());
    let (_, snd, legs) = h.session(2);
    let devs = h.connect_devices(&legs, "c", "c");
    let data = file(4 * CHUNK);
    let n = data.len() as u64;
    let c = |i: u64| (i * CHUNK as u64 + 1, (i + 1) * CHUNK as u64);
    send_reported(&mut h, snd, "file0001", &data, CHUNK, |h, i| {
        // Device 0 reports each chunk as it comes, before the last is in.
        if i < 2 {
            let (s, e) = c(i as u64);
            report(h, devs[0], "file0001", s, e, n);
        }
    });
    assert!(
        upstream(&h, snd).is_empty(),
        "a partial report is no REPORT"
    );
    for i in [3, 2, 3] {
        let (s, e) = c(i);
        report(&mut h, devs[1], "file0001", s, e, n);
    }
    assert!(
        upstream(&h, snd).is_empty(),
        "two devices' halves are not one device's whole"
    );
    report(&mut h, devs[1], "file0001", c(1).0, c(1).1, n);
    report(&mut h, devs[1], "file0001", 1, c(0).1, n);
    assert_eq!(upstream(&h, snd), [("file0001".into(), 200, whole(n))]);
    for i in [2, 3] {
        let (s, e) = c(i);
        report(&mut h, devs[0], "file0001", s, e, n);
    }
    assert_eq!(upstream(&h, snd).len(), 1, "exactly one");
}

/// MSRP-REPORT: bounded time. A message waits `report_wait` after it
/// completed; a REPORT after that is ignored (the sender's own timer
/// covers the device that never reported, as without a relay).
#[test]
fn msrp_report_wait_is_bounded() {
    let mut h = H::new(cfg());
    let (_, snd, legs) = h.session(1);
    let dev = h.connect_devices(&legs, "w", "w")[0];
    send_reported(&mut h, snd, "wait0001", &file(50), 50, |_, _| {});
    h.advance(Duration::from_millis(250));
    h.advance(cfg().report_wait);
    assert_eq!(h.eng.stats().awaiting_reports, 0);
    report(&mut h, dev, "wait0001", 1, 50, 50);
    assert!(upstream(&h, snd).is_empty());
}

/// MSRP-REPORT: a REPORT the sender did not ask for, one whose range does
/// not fit the message, one for an unknown Message-ID: none goes upstream,
/// and the session carries on.
#[test]
fn msrp_report_unasked_and_bad_reports_go_nowhere() {
    let mut h = H::new(cfg());
    let (_, snd, legs) = h.session(1);
    let dev = h.connect_devices(&legs, "u", "u")[0];
    h.send_file(snd, "noas0001", &file(80), 80);
    report(&mut h, dev, "noas0001", 1, 80, 80);
    report(&mut h, dev, "neverseen", 1, 80, 80);
    send_reported(&mut h, snd, "bad00001", &file(80), 80, |_, _| {});
    report(&mut h, dev, "bad00001", 1, 81, 81);
    report(&mut h, dev, "bad00001", 50, 20, 80);
    assert!(upstream(&h, snd).is_empty());
    report(&mut h, dev, "bad00001", 1, 80, 80);
    assert_eq!(upstream(&h, snd), [("bad00001".into(), 200, whole(80))]);
    assert_eq!(
        h.peers[&dev].messages()[&b"bad00001".to_vec()].1,
        Flag::Complete
    );
}
