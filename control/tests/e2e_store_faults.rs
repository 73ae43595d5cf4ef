//! The content store failing under a live session (issue 12, "Faults"):
//! the local disk refuses every write (its `items/` directory replaced by
//! a file once the relay runs, as a full or read-only disk would), and the
//! live fan-out goes on unharmed; the front end is told `store-failed`,
//! and the relay logs it once per item, not once per chunk.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Read;
use std::net::SocketAddr;

use serde_json::{Value, json};
use support::msrp_peer::{MsrpPeer, sha256_hex};
use support::sdp::{answer as answer_sdp, path_of};
use support::{Control, EventLog, RelayProcess, with};

const SIZE: usize = 4 << 20;
const CHUNK: usize = 64 * 1024;
const LOGGED: &str = "store write failed";

/// PF-DEFER under a failing backend: two file transfers, each to a phone
/// that answers and a tablet that never does. Both phones get every byte
/// (SHA-256 exact); each item ends in `store-failed`, none in `stored`;
/// the failure is logged once per item.
#[test]
fn pf_defer_a_failing_disk_leaves_the_live_fan_out_unharmed_and_is_reported() {
    let store = tempfile::tempdir().unwrap();
    let mut relay = RelayProcess::start_logged(
        support::drivers()[0],
        "",
        &support::local_store(store.path()),
        Some("warn"),
    );
    let mut stderr = relay.take_stderr().unwrap();
    let log = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).unwrap();
        s
    });
    let items = store.path().join("items");
    let _ = std::fs::remove_dir_all(&items);
    std::fs::write(&items, b"not a directory: every write under it fails").unwrap();

    let msrp: SocketAddr = relay.msrp.parse().unwrap();
    let events = EventLog::subscribe(&relay.socket, |_| Value::Null);
    let mut fe = Control::connect(&relay.socket);
    let body: Vec<u8> = (0..SIZE)
        .map(|i| (i.wrapping_mul(40_503) >> 7) as u8)
        .collect();
    for n in 1..=2 {
        let sender_path = format!("msrp://127.0.0.1:7654/full{n};tcp");
        let ids = json!({"call-id": format!("full-{n}"), "from-tag": "a"});
        let offer = support::sdp::offer(
            &sender_path,
            &format!("a=file-selector:name:\"f{n}.bin\" type:image/jpeg size:{SIZE}\r\n"),
        );
        let mut uri = Vec::new();
        for b in ["phone", "tablet"] {
            let r = fe.ok(with(&ids, json!({"command": "offer", "via-branch": b, "kind": "file-transfer", "sdp": &offer})));
            uri.push(path_of(r["sdp"].as_str().unwrap()));
        }
        let phone_path = format!("msrp://127.0.0.1:9/fullph{n};tcp");
        let r = fe.ok(with(&ids, json!({"command": "answer", "via-branch": "phone", "to-tag": "ph", "sdp": answer_sdp(&phone_path)})));
        let phone = MsrpPeer::connect("phone", msrp, &phone_path, &uri[0]);
        phone.bind();
        let sender = MsrpPeer::connect(
            "alice",
            msrp,
            &sender_path,
            &path_of(r["sdp"].as_str().unwrap()),
        );
        for at in (0..SIZE).step_by(CHUNK) {
            sender.send_chunk(&body, at, (at + CHUNK).min(SIZE));
        }
        let got = phone.wait("the whole file", |s| s.complete);
        assert_eq!(
            got.digest(),
            sha256_hex(&body),
            "the live fan-out is unharmed"
        );
        drop(got);
        fe.ok(with(&ids, json!({"command": "delete"})));
        let ev = events.wait("store-failed", |e| EventLog::named(e, "store-failed") == n);
        let failed: Vec<&Value> = ev
            .iter()
            .map(|(e, _)| e)
            .filter(|e| e["event"] == "store-failed")
            .collect();
        let last = failed[n - 1];
        assert_eq!(last["call-id"], format!("full-{n}"), "{last}");
        assert!(!last["reason"].as_str().unwrap().is_empty(), "{last}");
        assert_eq!(EventLog::named(&ev, "stored"), 0);
    }
    let list = fe.ok(json!({"command": "store-list"}));
    assert_eq!(list["items"], json!([]), "nothing looks stored: {list}");
    drop(fe);
    drop(events);
    relay.terminate();
    let log = log.join().unwrap();
    assert_eq!(log.matches(LOGGED).count(), 2, "once per item:\n{log}");
}
