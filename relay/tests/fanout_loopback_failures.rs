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
