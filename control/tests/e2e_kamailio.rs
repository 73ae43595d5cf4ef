//! A real, unchanged Kamailio (Debian's 5.6 package, its stock
//! `rtpengine` module) anchors MSRP through the real `msrp-relay` binary
//! over the ng protocol: two devices of one user register, the sender's
//! INVITE is forked to both, each branch is `rtpengine_offer`ed, each
//! 200 OK `rtpengine_answer`ed, and the MSRP goes through the relay on the
//! SDPs Kamailio handed out; every byte is checked on both devices, then
//! the BYEs. The Kamailio configuration is
//! `control/tests/kamailio/kamailio.cfg`, the one docs/kamailio.md gives.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;

use serde_json::Value as Json;
use support::kamailio::Kamailio;
use support::sdp;
use support::sip::Ua;
use support::sipcall::{bye, call, devices};
use support::{EventLog, RelayProcess};

const CHUNK: usize = 16 * 1024;

/// A relay with its ng UDP listener on, and the JSON socket's events.
fn relay() -> (RelayProcess, EventLog) {
    let r = RelayProcess::start_io("epoll", "", "[ng]\nlisten-udp = \"127.0.0.1:0\"\n");
    let events = EventLog::subscribe(&r.socket, |_| Json::Null);
    (r, events)
}

fn ng_of(r: &RelayProcess) -> String {
    r.ready_word("ng-udp").expect("ng-udp in the ready line")
}

/// PF-LMM-FORK, PF-LMM-FIRST200, PF-LMM-BYE through a real Kamailio: a
/// 200,000-byte file (RFC 5547 `a=file-selector`) forked to two
/// registered devices reaches both byte for byte; the sender's BYE
/// (`rtpengine_delete` with the sender's From tag and the first device's
/// To tag) ends the session, and each device's paced `leg-done` comes
/// after that device had the last byte; the BYE of the second dialog is
/// answered too (the relay says `ok` to a `delete` of a call it ended).
#[test]
fn kamailio_pf_lmm_fork_file_transfer_two_devices_every_byte_then_bye() {
    let (r, events) = relay();
    let k = Kamailio::start(&[ng_of(&r)]);
    let relay_msrp: SocketAddr = r.msrp.parse().unwrap();
    let mut devs = devices(&k);
    let mut alice = Ua::new("alice", k.sip);
    let offer = sdp::offer(
        &format!("msrp://127.0.0.1:7654/kamft{};tcp", std::process::id()),
        "a=file-selector:name:\"photo.jpg\" type:image/jpeg size:200000\r\n",
    );
    let c = call(
        &[relay_msrp],
        None,
        &mut alice,
        &mut devs,
        &offer,
        sdp::answer,
    );
    let body: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(31) % 251) as u8)
        .collect();
    for at in (0..body.len()).step_by(CHUNK) {
        c.sender.send_chunk(&body, at, (at + CHUNK).min(body.len()));
    }
    let (first, rest) = devs.split_at_mut(1);
    bye(&mut alice, &mut first[0], &c.dialogs[0]);
    let ev = events.wait("two leg-done and session-ended", |e| {
        EventLog::named(e, "session-ended") == 1
    });
    assert_eq!(EventLog::named(&ev, "leg-done"), 2, "{ev:?}");
    for (e, _) in ev.iter().filter(|(e, _)| e["event"] == "leg-done") {
        assert_eq!(e["reason"], "drained", "{e}");
        assert_eq!(e["bytes-sent"], body.len(), "{e}");
    }
    for d in &c.devices {
        let st = d.wait("the whole file", |s| s.complete);
        assert_eq!(
            st.digest(),
            support::msrp_peer::sha256_hex(&body),
            "every byte, in order"
        );
    }
    bye(&mut alice, &mut rest[0], &c.dialogs[1]);
    assert!(
        !k.log_text().contains("rtpengine_offer failed"),
        "{}",
        k.log_text()
    );
}

/// A chat forked to both devices through Kamailio: three text messages,
/// each its own MSRP message, arrive on both devices in order.
#[test]
fn kamailio_cpm_chat_forked_two_devices_messages_in_order() {
    let (r, events) = relay();
    let k = Kamailio::start(&[ng_of(&r)]);
    let relay_msrp: SocketAddr = r.msrp.parse().unwrap();
    let mut devs = devices(&k);
    let mut alice = Ua::new("alice", k.sip);
    let offer = chat_sdp(
        &format!("msrp://127.0.0.1:7655/kamchat{};tcp", std::process::id()),
        "actpass",
    );
    let c = call(&[relay_msrp], None, &mut alice, &mut devs, &offer, |p| {
        chat_sdp(p, "active")
    });
    let messages = ["hello from alice", "are you there?", "bye for now"];
    for (i, m) in messages.iter().enumerate() {
        c.sender
            .send_message(&format!("chat-{i}"), "text/plain", m.as_bytes());
    }
    let all: Vec<u8> = messages.concat().into_bytes();
    for d in &c.devices {
        let st = d.wait("three messages", |s| s.body.len() >= all.len());
        assert_eq!(st.body, all);
    }
    let (first, rest) = devs.split_at_mut(1);
    bye(&mut alice, &mut first[0], &c.dialogs[0]);
    events.wait("session-ended", |e| {
        EventLog::named(e, "session-ended") == 1
    });
    bye(&mut alice, &mut rest[0], &c.dialogs[1]);
}

/// A chat SDP (OMA CPM 1-1 chat: CPIM and plain text).
fn chat_sdp(path: &str, setup: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=message 9 TCP/MSRP *\r\na=sendrecv\r\na=accept-types:message/cpim text/plain\r\na=setup:{setup}\r\na=path:{path}\r\n"
    )
}
