//! PF-LMM-BYE over real sockets: after the sender's BYE (`end_session`)
//! each device's `LegDone` is raised only once that device has received
//! its last byte; the session then ends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use msrp_relay::fanout::Event;
use support::*;

fn bye_after_last_byte(driver: Driver) {
    let relay = start_relay(driver, 2, |c| c.sndbuf = Some(32 << 10));
    let h = relay.handle();
    let (session, snd) = sender(&relay, "sender");
    let mut devs = devices(&relay, session, 2, PeerOpts::default());
    let slow = PeerOpts {
        rate: Some(2_000_000),
        rcvbuf: Some(16 << 10),
        ..PeerOpts::default()
    };
    devs.push(device(&relay, session, "slow", slow));
    let body = file(2 << 20, 11);
    let digest = sha256_hex(&body);
    let codes = send_file(&snd, "file-1", &body, 64 << 10);
    assert!(codes.iter().all(|&c| c == 200), "sender got {codes:?}");
    h.end_session(session).unwrap();
    let mut events = EventLog::default();
    for (leg, d) in &devs {
        events.wait(
            &relay,
            &format!("LegDone of {}", d.name),
            |e| matches!(e, Event::LegDone { leg: l, .. } if l == leg),
        );
        let done_at = events
            .seq_of(|e| matches!(e, Event::LegDone { leg: l, .. } if l == leg))
            .unwrap();
        let st = d.state();
        let last_byte_at = st.msg("file-1").and_then(|m| m.done_seq);
        assert!(
            last_byte_at.is_some_and(|s| s < done_at),
            "{}: LegDone (seq {done_at}) before its last byte ({last_byte_at:?})",
            d.name
        );
        assert!(st.has_file("file-1", &digest), "{}'s copy differs", d.name);
    }
    for (_, seen) in &events.seen {
        if let Event::LegDone { bytes, .. } = seen {
            assert_eq!(*bytes, body.len() as u64);
        }
    }
    events.wait(&relay, "SessionEnded", |e| {
        *e == Event::SessionEnded { session }
    });
    for (_, d) in &devs {
        d.wait("the relay's close", WAIT, |s| s.eof);
    }
    relay.shutdown(Duration::from_secs(5));
}

#[test]
fn pf_lmm_bye_leg_done_only_after_each_device_got_its_last_byte() {
    for d in drivers() {
        bye_after_last_byte(d);
    }
}

#[test]
fn pf_lmm_bye_unanswered_leg_fails_never_connected_and_session_ends() {
    for d in drivers() {
        // The grace a never-answered leg gets after the sender's BYE is
        // the leg timeout: short here, so the suite does not idle 30 s.
        let relay = start_relay(d, 1, |c| c.engine.leg_timeout = Duration::from_secs(2));
        let h = relay.handle();
        let (session, snd) = sender(&relay, "sender");
        let (_, dev) = device(&relay, session, "dev", PeerOpts::default());
        let (never, _) = h.add_leg(session, "never").unwrap();
        let body = file(64 << 10, 1);
        assert!(
            send_file(&snd, "file-1", &body, 64 << 10)
                .iter()
                .all(|&c| c == 200)
        );
        dev.wait("the file", WAIT, |s| {
            s.has_file("file-1", &sha256_hex(&body))
        });
        h.end_session(session).unwrap();
        let mut events = EventLog::default();
        events.wait(&relay, "LegFailed of the unanswered leg", |e| {
            *e == Event::LegFailed {
                leg: never,
                reason: msrp_relay::fanout::FailReason::NeverConnected,
            }
        });
        events.wait(&relay, "SessionEnded", |e| {
            *e == Event::SessionEnded { session }
        });
        relay.shutdown(Duration::from_secs(1));
    }
}
