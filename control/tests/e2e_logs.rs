//! OPS-LOGS (issue 13): `[log] format = "json"` through the real binary.
//! Every stderr line is one JSON object, and the lines about a session
//! name it: the data plane's `call` (`call-id;from-tag`) with the leg's
//! `label` (its `via-branch`), the control plane's `call_id`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Read;
use std::net::SocketAddr;

use serde_json::{Value, json};
use support::msrp_peer::MsrpPeer;
use support::sdp::{answer as answer_sdp, path_of};
use support::{Control, EventLog, RelayProcess};

fn offer_sdp() -> String {
    support::sdp::offer("msrp://127.0.0.1:7654/alice4;tcp", "")
}

#[test]
fn ops_logs_json_lines_name_the_call_and_leg() {
    let mut relay =
        RelayProcess::start_logged("epoll", "", "[log]\nformat = \"json\"\n", Some("info"));
    let mut stderr = relay.take_stderr().unwrap();
    // Read stderr as it comes, so the relay never blocks on a full pipe.
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).unwrap();
        s
    });
    let msrp: SocketAddr = relay.msrp.parse().unwrap();
    let events = EventLog::subscribe(&relay.socket, |_| Value::Null);
    let mut fe = Control::connect(&relay.socket);
    let ids = json!({"call-id": "log-call-1", "from-tag": "ft1"});
    let with = |extra: Value| {
        let mut v = ids.clone();
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    let r = fe.ok(with(json!({"command": "offer", "via-branch": "phone", "kind": "file-transfer", "sdp": offer_sdp()})));
    let relay_uri = path_of(r["sdp"].as_str().unwrap());
    let path = "msrp://127.0.0.1:9/phone4;tcp";
    let r = fe.ok(with(
        json!({"command": "answer", "via-branch": "phone", "to-tag": "p", "sdp": answer_sdp(path)}),
    ));
    let phone = MsrpPeer::connect("phone", msrp, path, &relay_uri);
    phone.bind();
    let sender = MsrpPeer::connect(
        "alice",
        msrp,
        "msrp://127.0.0.1:7654/alice4;tcp",
        &path_of(r["sdp"].as_str().unwrap()),
    );
    let body = vec![7u8; 5000];
    sender.send_chunk(&body, 0, body.len());
    drop(phone.wait("the file", |s| s.complete));
    fe.ok(with(json!({"command": "delete"})));
    events.wait("session-ended", |e| {
        EventLog::named(e, "session-ended") == 1
    });
    assert!(relay.terminate().success());
    let text = reader.join().unwrap();

    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for l in &lines {
        assert!(l["timestamp"].is_string() && l["level"].is_string(), "{l}");
        assert!(l["fields"]["message"].is_string(), "{l}");
    }
    let find = |msg: &str| {
        lines
            .iter()
            .find(|l| l["fields"]["message"] == msg)
            .unwrap_or_else(|| panic!("no {msg:?} line in:\n{text}"))
    };
    let done = find("leg done");
    assert_eq!(done["fields"]["call"], "log-call-1;ft1", "{done}");
    assert_eq!(done["fields"]["label"], "phone", "{done}");
    assert_eq!(done["fields"]["bytes"], 5000, "{done}");
    let ended = find("session ended");
    assert_eq!(ended["fields"]["call"], "log-call-1;ft1", "{ended}");
    find("msrp-relay stopped");
}
