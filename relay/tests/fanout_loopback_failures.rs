//! Faults on one leg over real sockets: a device that disconnects fails
//! alone (the sender sees only 200s, a `LegFailed` names the device); a
//! sender that disconnects mid-chunk interrupts the message at every
//! device (`#`) and the session ends with an event for every leg.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use msrp_relay::fanout::{Event, FailReason};
use msrp_relay::msrp::Flag;
use support::*;

fn device_disconnects(driver: Driver) {
    let relay = start_relay(driver, 2, |c| c.sndbuf = Some(32 << 10));
    let (session, snd) = sender(&relay, "sender");
    let (_, a) = device(&relay, session, "dev-a", PeerOpts::default());
    let (_, b) = device(&relay, session, "dev-b", PeerOpts::default());
    let slow = PeerOpts {
        rate: Some(2_000_000),
        rcvbuf: Some(16 << 10),
        ..PeerOpts::default()
    };
    let (gone_leg, gone) = device(&relay, session, "dev-gone", slow);
    let body = file(4 << 20, 3);
    let digest = sha256_hex(&body);
    let mut events = EventLog::default();
    std::thread::scope(|s| {
        let sending = s.spawn(|| send_file(&snd, "file-1", &body, 64 << 10));
        gone.wait("some bytes", WAIT, |s| s.body_bytes >= 256 << 10);
        gone.disconnect();
        let codes = sending.join().unwrap();
        assert!(codes.iter().all(|&c| c == 200), "sender got {codes:?}");
    });
    let failed = events.wait(&relay, "LegFailed of dev-gone", |e| {
        matches!(e, Event::LegFailed { .. })
    });
    assert_eq!(
        failed,
        Event::LegFailed {
            leg: gone_leg,
            reason: FailReason::Disconnected
        }
    );
    for d in [&a, &b] {
        d.wait("the whole file", WAIT, |s| s.has_file("file-1", &digest));
    }
    assert!(
        snd.state().reports.is_empty(),
        "sender got REPORTs: {:?}",
        snd.state().reports
    );
    events.drain(&relay);
    assert_eq!(
        events.count(|e| matches!(e, Event::LegFailed { .. })),
        1,
        "{:?}",
        events.seen
    );
    relay.shutdown(Duration::from_secs(5));
}

#[test]
fn pf_lmm_send_device_disconnects_mid_transfer_others_complete() {
    for d in drivers() {
        device_disconnects(d);
    }
}

fn sender_disconnects(driver: Driver) {
    let relay = start_relay(driver, 2, |_| {});
    let (session, snd) = sender(&relay, "sender");
    let devs = devices(&relay, session, 3, PeerOpts::default());
    let body = file(256 << 10, 5);
    let total = 1 << 20;
    // Chunk 1 whole (`+`), then the head of chunk 2 and part of its body.
    let first = 64 << 10;
    let mut b = bytes::BytesMut::new();
    msrp_relay::msrp::encode::SendHead {
        tid: b"chunk1tid",
        to_path: snd.relay_uri.as_bytes(),
        from_path: snd.local_uri.as_bytes(),
        message_id: b"file-1",
        byte_range: Some(msrp_relay::msrp::ByteRange {
            start: 1,
            end: Some(first),
            total: Some(total),
        }),
        success_report: None,
        failure_report: None,
        content_type: Some(b"application/octet-stream"),
        extra: &[],
    }
    .encode(&mut b);
    b.extend_from_slice(&body[..first as usize]);
    msrp_relay::msrp::encode::end_line(&mut b, b"chunk1tid", Flag::More, true);
    snd.write(&b);
    assert_eq!(snd.response("chunk1tid", WAIT), 200);
    snd.send_partial(
        "file-1",
        "application/octet-stream",
        first + 1,
        total,
        &body[first as usize..],
    );
    for (_, d) in &devs {
        d.wait("the first chunk", WAIT, |s| s.body_bytes >= first);
    }
    snd.disconnect();
    let mut events = EventLog::default();
    events.wait(&relay, "SessionEnded", |e| {
        *e == Event::SessionEnded { session }
    });
    assert_eq!(
        events.count(|e| *e == Event::UpstreamEnded { session }),
        1,
        "{:?}",
        events.seen
    );
    for (leg, d) in &devs {
        d.wait("the message interrupted", WAIT, |s| {
            s.msg("file-1")
                .is_some_and(|m| m.flag == Some(Flag::Aborted))
        });
        let n = events.count(|e| match e {
            Event::LegDone { leg: l, .. } | Event::LegFailed { leg: l, .. } => l == leg,
            _ => false,
        });
        assert_eq!(n, 1, "events of {}: {:?}", d.name, events.seen);
        assert!(d.state().msg("file-1").unwrap().len <= 256 << 10);
        d.wait("the relay's close", WAIT, |s| s.eof);
    }
    relay.shutdown(Duration::from_secs(5));
}

#[test]
fn pf_lmm_send_sender_disconnects_mid_chunk_devices_see_abort_and_session_ends() {
    for d in drivers() {
        sender_disconnects(d);
    }
}

/// MSRP-CHUNK (issue 13): a sender whose first chunk claims a 1 GB
/// Byte-Range, sends 100 body bytes and disconnects: every device gets
/// those 100 bytes and an interrupted (`#`) end, and the session ends —
/// for a file's octets and for a CPIM chat message, which the relay holds
/// whole until its end-line.
fn sender_claims_huge_range_then_vanishes(driver: Driver, ct: &str) {
    let relay = start_relay(driver, 2, |_| {});
    let (session, snd) = sender(&relay, "sender");
    let devs = devices(&relay, session, 2, PeerOpts::default());
    let body = file(100, 9);
    snd.send_partial("huge-1", ct, 1, 1 << 30, &body);
    if ct != "message/cpim" {
        // Octets stream: the devices have them before the sender goes.
        for (_, d) in &devs {
            d.wait("the 100 bytes sent", WAIT, |s| s.body_bytes >= 100);
        }
    }
    snd.disconnect();
    let mut events = EventLog::default();
    events.wait(&relay, "SessionEnded", |e| {
        *e == Event::SessionEnded { session }
    });
    for (_, d) in &devs {
        d.wait("the message interrupted", WAIT, |s| {
            s.msg("huge-1")
                .is_some_and(|m| m.flag == Some(Flag::Aborted))
        });
        let st = d.state();
        let m = st.msg("huge-1").unwrap();
        assert_eq!((m.len, &m.body[..]), (100, &body[..]), "{}", d.name);
    }
    relay.shutdown(Duration::from_secs(5));
}

#[test]
fn msrp_chunk_sender_claims_huge_range_sends_few_bytes_devices_get_them_and_hash() {
    for d in drivers() {
        sender_claims_huge_range_then_vanishes(d, "application/octet-stream");
        sender_claims_huge_range_then_vanishes(d, "message/cpim");
    }
}
