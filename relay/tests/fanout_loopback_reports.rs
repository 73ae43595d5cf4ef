//! MSRP-REPORT and CPM-MLD-024 over real loopback sockets, on both
//! drivers: devices that behave like the third-party clients seen in the
//! field (a success REPORT in a write of its own after the chunk's `200`,
//! late, one per chunk, out of order, duplicated) and a sender that waits
//! for each REPORT before its next message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::TcpListener;
use std::time::Duration;

use msrp_relay::fanout::Setup;
use msrp_relay::msrp::ByteRange;
use support::*;

/// A device the relay connects to (RFC 6135: the relay is active), with
/// its REPORT behaviour.
fn active_device(
    relay: &msrp_relay::io::Relay,
    session: msrp_relay::fanout::SessionId,
    name: &str,
    reports: Reports,
) -> Peer {
    let h = relay.handle();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let (leg, relay_uri) = h.add_leg(session, name).unwrap();
    let uri = peer_uri(name);
    answer(&h, leg, &uri, Setup::Active(listener.local_addr().unwrap()));
    let (stream, _) = listener.accept().unwrap();
    stream.set_nodelay(true).unwrap();
    let opts = PeerOpts {
        reports,
        ..PeerOpts::default()
    };
    Peer::from_stream(name, stream, &uri, &relay_uri, opts)
}

/// The whole-message range of an `n`-byte message.
fn whole(n: u64) -> ByteRange {
    ByteRange {
        start: 1,
        end: Some(n),
        total: Some(n),
    }
}

/// MSRP-REPORT: 10,000 messages of 200 bytes, each with
/// `Success-Report: yes`, the sender waiting for each REPORT before the
/// next; the device answers `200` and then, in a separate write, its
/// REPORT. Every REPORT reaches the sender exactly once, none is lost
/// after the device's `200` freed the message, and none waits for a timer
/// (10,000 of them would take 40 minutes at the engine's 250 ms tick; the
/// sender's wait per REPORT is the suite's usual generous deadline).
const SERIAL: u32 = 10_000;

#[test]
fn msrp_report_10000_serial_messages_each_report_reaches_the_sender_once() {
    for driver in drivers() {
        let relay = start_relay(driver, 1, |_| {});
        let (session, snd) = sender(&relay, "sender");
        let dev = active_device(
            &relay,
            session,
            "dev",
            Reports::Whole {
                delay: Duration::ZERO,
            },
        );
        let body = [b'x'; 200];
        for i in 0..SERIAL {
            let mid = format!("msg{i:05}");
            let tids = snd.send_reported(&mid, "text/plain", &body, 1 << 20);
            assert_eq!(snd.response(&tids[0], WAIT), 200, "{mid}");
            snd.wait(&format!("the REPORT of {mid}"), WAIT, |s| {
                s.reports.len() > i as usize
            });
        }
        let st = snd.state();
        assert_eq!(st.reports.len(), SERIAL as usize);
        for (i, ((mid, code), range)) in st.reports.iter().zip(&st.report_ranges).enumerate() {
            assert_eq!(mid, &format!("msg{i:05}"));
            assert_eq!(*code, 200);
            assert_eq!(*range, whole(200), "{mid}");
        }
        drop(st);
        assert_eq!(dev.state().complete().count(), SERIAL as usize);
        relay.shutdown(Duration::from_secs(5));
    }
}
