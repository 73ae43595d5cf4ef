//! MSRP-BIND and MSRP-ACM over real sockets: a connection binds to its leg
//! by its first request; a wrong `From-Path` or an unknown session gets
//! `481` and is closed, garbage is closed, and another session on the same
//! worker is untouched. The relay as the active side (RFC 6135) connects
//! to a listening device.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::TcpListener;
use std::time::Duration;

use msrp_relay::fanout::{LegState, SessionId, Setup};
use msrp_relay::io::Relay;
use support::*;

/// A session with one device on worker 0; `bad` runs against the relay,
/// then the bystander's transfer must still complete intact.
fn with_bystander(driver: Driver, bad: impl FnOnce(&Relay, SessionId)) {
    let relay = start_relay(driver, 2, |_| {});
    let (session, snd) = sender(&relay, "bystander");
    assert_eq!(session.worker(), 0);
    let (_, dev) = device(&relay, session, "by-dev", PeerOpts::default());
    bad(&relay, session);
    let body = file(512 << 10, 99);
    let codes = send_file(&snd, "file-1", &body, 64 << 10);
    assert!(codes.iter().all(|&c| c == 200), "bystander got {codes:?}");
    dev.wait("the whole file", WAIT, |s| {
        s.has_file("file-1", &sha256_hex(&body))
    });
    let legs = relay.handle().session_legs(session).unwrap();
    assert!(
        legs.iter().all(|l| l.state == LegState::Connected),
        "{legs:?}"
    );
    relay.shutdown(Duration::from_secs(5));
}

/// A new session on worker 0 (round-robin over 2 workers).
fn session_on_worker0(relay: &Relay) -> SessionId {
    loop {
        let (leg, _) = relay.handle().create_session("other").unwrap();
        if leg.session.worker() == 0 {
            return leg.session;
        }
    }
}

fn expect_481_and_close(p: &Peer) {
    let tid = p.send_bind();
    assert_eq!(p.response(&tid, WAIT), 481, "{}", p.name);
    p.wait("the relay's close", WAIT, |s| s.eof);
}

#[test]
fn msrp_bind_wrong_from_path_481_and_close() {
    for d in drivers() {
        with_bystander(d, |relay, _| {
            let h = relay.handle();
            let session = session_on_worker0(relay);
            let (leg, relay_uri) = h.add_leg(session, "dev").unwrap();
            answer(&h, leg, &peer_uri("dev"), Setup::Passive);
            let p = Peer::connect(
                "impostor",
                relay.local_addr(),
                &peer_uri("impostor"),
                &relay_uri,
                PeerOpts::default(),
            );
            expect_481_and_close(&p);
            assert_eq!(
                h.session_legs(session).unwrap()[1].state,
                LegState::Answered
            );
        });
    }
}

#[test]
fn msrp_bind_unknown_session_481() {
    for d in drivers() {
        with_bystander(d, |relay, _| {
            let port = relay.local_addr().port();
            // Several connections, so that accepts land on both workers
            // (the other one hands over to worker 0, which owns id `00…`).
            for i in 0..4 {
                let uri = format!("msrp://127.0.0.1:{port}/00ab12cd34ef56ab78cd90ef;tcp");
                let p = Peer::connect(
                    &format!("stranger{i}"),
                    relay.local_addr(),
                    &peer_uri("stranger"),
                    &uri,
                    PeerOpts::default(),
                );
                expect_481_and_close(&p);
            }
        });
    }
}

#[test]
fn msrp_bind_unknown_session_of_missing_worker_481() {
    for d in drivers() {
        with_bystander(d, |relay, _| {
            let port = relay.local_addr().port();
            let uri = format!("msrp://127.0.0.1:{port}/ffab12cd34ef56ab78cd90ef;tcp");
            let p = Peer::connect(
                "stranger",
                relay.local_addr(),
                &peer_uri("stranger"),
                &uri,
                PeerOpts::default(),
            );
            expect_481_and_close(&p);
        });
    }
}

#[test]
fn msrp_bind_garbage_bytes_close() {
    for d in drivers() {
        with_bystander(d, |relay, _| {
            for i in 0..4 {
                let p = Peer::connect(
                    &format!("garbage{i}"),
                    relay.local_addr(),
                    "x",
                    "y",
                    PeerOpts::default(),
                );
                p.write(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 this is not MSRP\r\n\r\n");
                p.wait("the relay's close", WAIT, |s| s.eof);
            }
        });
    }
}

#[test]
fn msrp_acm_relay_active_side_connects_to_listening_device() {
    for d in drivers() {
        let relay = start_relay(d, 2, |_| {});
        let h = relay.handle();
        let (session, snd) = sender(&relay, "sender");
        let (_, passive) = device(&relay, session, "passive", PeerOpts::default());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (leg, relay_uri) = h.add_leg(session, "active").unwrap();
        let uri = peer_uri("active");
        answer(&h, leg, &uri, Setup::Active(listener.local_addr().unwrap()));
        let (stream, _) = listener.accept().unwrap();
        let active = Peer::from_stream("active", stream, &uri, &relay_uri, PeerOpts::default());
        let body = file(1 << 20, 1234);
        let digest = sha256_hex(&body);
        let codes = send_file(&snd, "file-1", &body, 64 << 10);
        assert!(codes.iter().all(|&c| c == 200), "sender got {codes:?}");
        for p in [&passive, &active] {
            p.wait("the whole file", WAIT, |s| s.has_file("file-1", &digest));
        }
        let legs = h.session_legs(session).unwrap();
        assert!(
            legs.iter().all(|l| l.state == LegState::Connected),
            "{legs:?}"
        );
        relay.shutdown(Duration::from_secs(5));
    }
}
