//! The content store end to end through the real `msrp-relay` binary
//! (PF-DEFER, issue 12): a device that never answered a file transfer gets
//! the whole file later, from the store, with the sender gone and the
//! relay restarted in between (the store is the state).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;

use serde_json::{Value, json};
use support::msrp_peer::{MsrpPeer, sha256_hex};
use support::sdp::{answer as answer_sdp, path_of};
use support::{Control, EventLog, RelayProcess, with};

const SENDER: &str = "msrp://127.0.0.1:7654/alice9;tcp";
const CHUNK: usize = 64 * 1024;
const TABLET: &str = "<urn:gsma:imei:35-tablet>";

/// PF-DEFER, CPM-MLD-016/017 (the missing device catches up from the
/// store), local-disk backend: 50 MiB to a phone and a tablet; the tablet
/// never answers. The item is stored for the tablet alone; after a restart
/// of the relay, `deliver` sets up a session whose sender is the store,
/// and the tablet gets every byte (SHA-256 exact); the item is then
/// delivered once only.
#[test]
fn pf_defer_absent_device_gets_the_whole_file_from_the_store_after_a_restart() {
    let store = tempfile::tempdir().unwrap();
    deferred_delivery(&support::local_store(store.path()));
}

/// PF-DEFER: the same on the S3 backend, against a real S3-compatible
/// server (moto) on loopback: bodies are multipart uploads of 5 MiB parts.
#[test]
fn pf_defer_absent_device_gets_the_whole_file_from_an_s3_store_after_a_restart() {
    let s3 = support::s3::S3Server::start("msrp-store");
    deferred_delivery(&s3.store_toml());
}

fn deferred_delivery(store: &str) {
    let io = support::drivers()[0];
    let start = |io: &str| RelayProcess::start_io(io, "", store);
    let body: Vec<u8> = (0..50usize << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let item = {
        let relay = start(io);
        let msrp: SocketAddr = relay.msrp.parse().unwrap();
        let events = EventLog::subscribe(&relay.socket, |_| Value::Null);
        let mut fe = Control::connect(&relay.socket);
        let ids = json!({"call-id": "ft-50m", "from-tag": "a1"});
        let offer = support::sdp::offer(
            SENDER,
            "a=file-selector:name:\"big.bin\" type:image/jpeg size:52428800\r\n",
        );
        let mut uri = Vec::new();
        for (b, inst) in [("phone", "<urn:gsma:imei:35-phone>"), ("tablet", TABLET)] {
            let r = fe.ok(with(&ids, json!({"command": "offer", "via-branch": b, "kind": "file-transfer", "instance-id": inst, "sdp": &offer})));
            uri.push(path_of(r["sdp"].as_str().unwrap()));
        }
        let phone_path = "msrp://127.0.0.1:9/phone9;tcp";
        let r = fe.ok(with(&ids, json!({"command": "answer", "via-branch": "phone", "to-tag": "ph", "sdp": answer_sdp(phone_path)})));
        assert_eq!(r["forward"], true);
        let phone = MsrpPeer::connect("phone", msrp, phone_path, &uri[0]);
        phone.bind();
        let sender = MsrpPeer::connect("alice", msrp, SENDER, &path_of(r["sdp"].as_str().unwrap()));
        for at in (0..body.len()).step_by(CHUNK) {
            sender.send_chunk(&body, at, (at + CHUNK).min(body.len()));
        }
        drop(phone.wait("the whole file", |s| s.complete));
        fe.ok(with(&ids, json!({"command": "delete"})));
        let ev = events.wait("stored", |e| EventLog::named(e, "stored") == 1);
        let stored = ev
            .iter()
            .map(|(e, _)| e)
            .find(|e| e["event"] == "stored")
            .unwrap()
            .clone();
        assert_eq!(stored["call-id"], "ft-50m");
        assert_eq!(stored["pending"], json!([TABLET]), "{stored}");
        assert_eq!(stored["bytes"], body.len());
        assert_eq!(phone.state().digest(), sha256_hex(&body));
        stored["item"].as_str().unwrap().to_owned()
    };

    // A new relay process over the same store.
    let relay = start(io);
    let msrp: SocketAddr = relay.msrp.parse().unwrap();
    let events = EventLog::subscribe(&relay.socket, |_| Value::Null);
    let mut fe = Control::connect(&relay.socket);
    let list = fe.ok(json!({"command": "store-list"}));
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["item"], item.as_str());
    assert_eq!(items[0]["pending"], json!([TABLET]));
    assert_eq!(items[0]["bytes"], body.len());
    assert_eq!(items[0]["complete"], true);

    // The phone got it already: not for it.
    let r = fe.call(json!({"command": "deliver", "call-id": "d0", "from-tag": "s", "via-branch": "x", "item": &item, "device": "<urn:gsma:imei:35-phone>"}));
    assert_eq!(r["result"], "error", "{r}");

    let ids = json!({"call-id": "deliver-1", "from-tag": "store"});
    let r = fe.ok(with(
        &ids,
        json!({"command": "deliver", "via-branch": "tab2", "item": &item, "device": TABLET}),
    ));
    let sdp = r["sdp"].as_str().unwrap();
    assert!(sdp.contains("a=file-selector:name:\"big.bin\""), "{sdp}");
    assert!(sdp.contains("a=setup:actpass"), "{sdp}");
    let tablet_path = "msrp://127.0.0.1:9/tablet9;tcp";
    let a = fe.ok(with(&ids, json!({"command": "answer", "via-branch": "tab2", "to-tag": "tb", "sdp": answer_sdp(tablet_path)})));
    assert_eq!(a["forward"], false, "no SIP sender to answer: {a}");
    let tablet = MsrpPeer::connect("tablet", msrp, tablet_path, &path_of(sdp));
    tablet.bind();
    drop(tablet.wait("the stored file", |s| s.complete));
    let ev = events.wait("leg-done and session-ended", |e| {
        EventLog::named(e, "session-ended") == 1
    });
    let done = ev
        .iter()
        .map(|(e, _)| e)
        .find(|e| e["event"] == "leg-done")
        .unwrap_or_else(|| panic!("no leg-done: {ev:?}"));
    assert_eq!(done["via-branch"], "tab2");
    assert_eq!(done["reason"], "drained");
    assert_eq!(done["bytes-sent"], body.len());
    let got = tablet.state();
    assert_eq!(got.body.len(), body.len());
    assert_eq!(got.digest(), sha256_hex(&body), "byte-exact from the store");
    drop(got);

    // At most once per device.
    let r = fe.call(json!({"command": "deliver", "call-id": "deliver-2", "from-tag": "store", "via-branch": "tab3", "item": &item, "device": TABLET}));
    assert_eq!(r["result"], "error", "{r}");
}
