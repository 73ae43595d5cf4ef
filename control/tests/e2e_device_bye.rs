//! FT-TERMINATE end to end through the real `msrp-relay` binary: a device's
//! BYE (`delete` with its `via-branch`) mid-transfer. Its `leg-done` comes
//! from the data plane's report of the removal, with the bytes the device
//! got, once; a branch deleted before it connected is confirmed the same
//! way; the session goes on and ends after both.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;

use serde_json::{Value, json};
use support::msrp_peer::MsrpPeer;
use support::sdp::{answer as answer_sdp, path_of};
use support::{Control, EventLog, RelayProcess};

fn offer_sdp() -> String {
    support::sdp::offer("msrp://127.0.0.1:7654/alice2;tcp", "")
}

const CHUNK: usize = 16 * 1024;

#[test]
fn ft_terminate_device_bye_leg_done_carries_the_bytes_once() {
    for io in support::drivers() {
        eprintln!("msrp.io = {io}");
        device_bye(io);
    }
}

fn device_bye(io: &str) {
    let relay = RelayProcess::start_io(io, "", "");
    let msrp: SocketAddr = relay.msrp.parse().unwrap();
    let events = EventLog::subscribe(&relay.socket, |_| Value::Null);
    let mut fe = Control::connect(&relay.socket);
    let ids = json!({"call-id": "bye1", "from-tag": "f1"});
    let with = |extra: Value| {
        let mut v = ids.clone();
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    let mut uri = Vec::new();
    for b in ["phone", "tablet"] {
        let r = fe.ok(with(json!({"command": "offer", "via-branch": b, "kind": "file-transfer", "sdp": &offer_sdp()})));
        uri.push(path_of(r["sdp"].as_str().unwrap()));
    }
    let phone_path = "msrp://127.0.0.1:9/phone2;tcp";
    let r = fe.ok(with(json!({"command": "answer", "via-branch": "phone", "to-tag": "ph", "sdp": answer_sdp(phone_path)})));
    let phone = MsrpPeer::connect("phone", msrp, phone_path, &uri[0]);
    phone.bind();
    let sender = MsrpPeer::connect(
        "alice",
        msrp,
        "msrp://127.0.0.1:7654/alice2;tcp",
        &path_of(r["sdp"].as_str().unwrap()),
    );
    let body: Vec<u8> = (0..200_000).map(|i| (i % 251) as u8).collect();
    let part = 3 * CHUNK + 17;
    for at in (0..part).step_by(CHUNK) {
        sender.send_chunk(&body, at, (at + CHUNK).min(part));
    }
    drop(phone.wait("the first part", |s| s.body.len() >= part));

    // The phone's BYE, and a CANCEL of the tablet's branch.
    for b in ["phone", "tablet"] {
        let r = fe.ok(with(json!({"command": "delete", "via-branch": b})));
        assert_eq!(r["draining"], 0);
    }
    let ev = events.wait("two leg-done", |e| EventLog::named(e, "leg-done") == 2);
    let done = |b: &str| {
        ev.iter()
            .map(|(e, _)| e)
            .find(|e| e["event"] == "leg-done" && e["via-branch"] == b)
            .unwrap_or_else(|| panic!("no leg-done for {b}: {ev:?}"))
            .clone()
    };
    let phone_done = done("phone");
    assert_eq!(phone_done["reason"], "deleted");
    assert_eq!(phone_done["to-tag"], "ph");
    assert_eq!(phone_done["bytes-sent"], part, "what the phone was given");
    let tablet_done = done("tablet");
    assert_eq!(tablet_done["reason"], "deleted");
    assert_eq!(tablet_done["bytes-sent"], 0, "never connected");

    // The session goes on; a repeated delete is harmless; the sender's
    // BYE ends it.
    fe.ok(with(json!({"command": "delete", "via-branch": "phone"})));
    let r = fe.ok(with(json!({"command": "delete"})));
    assert_eq!(r["draining"], 0);
    let ev = events.wait("session-ended", |e| {
        EventLog::named(e, "session-ended") == 1
    });
    assert_eq!(EventLog::named(&ev, "leg-done"), 2, "{ev:?}");
    assert_eq!(ev.last().unwrap().0["event"], "session-ended");
}
