//! End to end through the real `msrp-relay` binary: a scripted SIP front
//! end on the control socket, a sender and three devices speaking MSRP
//! over real TCP sockets.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use support::msrp_peer::{MsrpPeer, sha256_hex};
use support::{Control, EventLog, RelayProcess, WAIT};

const CALL: &str = "a84b4c76e66710@alice";
const FROM: &str = "1928301774";
const CHUNK: usize = 16 * 1024;

fn offer_sdp(size: usize) -> String {
    format!(
        "v=0\r\no=alice 2890844526 2890844526 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=message 7654 TCP/MSRP *\r\na=sendonly\r\na=accept-types:message/cpim image/jpeg\r\na=setup:actpass\r\na=path:msrp://127.0.0.1:7654/alice1;tcp\r\na=file-selector:name:\"sunset.jpg\" type:image/jpeg size:{size}\r\na=file-transfer-id:ZVE8MfI9mhAd\r\na=file-icon:cid:id3@alice.example.com\r\n"
    )
}

fn answer_sdp(setup: &str, path: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=message 9 TCP/MSRP *\r\na=recvonly\r\na=accept-types:message/cpim image/jpeg\r\na=setup:{setup}\r\na=path:{path}\r\na=file-selector:name:\"sunset.jpg\" type:image/jpeg size:1\r\na=file-transfer-id:ZVE8MfI9mhAd\r\n"
    )
}

fn attr<'a>(sdp: &'a str, prefix: &str) -> &'a str {
    sdp.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix} in {sdp}"))
}

fn file(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 31 % 251) as u8).collect()
}

fn branch_of(e: &Value) -> String {
    e["via-branch"].as_str().unwrap_or("sender").to_owned()
}

type Devices = Arc<Mutex<HashMap<String, Arc<MsrpPeer>>>>;

/// PF-LMM-BYE, PF-LMM-FIRST200, PF-LMM-FORK, CPM-MLD-020: a file to three
/// devices, one of which accepts late (the relay connects to it, it
/// answered `passive`); `delete` drains each and yields three `leg-done`,
/// each only after that device had the file's last byte.
#[test]
fn pf_lmm_bye_first200_fork_cpm_mld_020_file_to_three_devices_one_late() {
    for io in support::drivers() {
        eprintln!("msrp.io = {io}");
        file_to_three_devices_one_late(io);
    }
}

fn file_to_three_devices_one_late(io: &str) {
    let relay = RelayProcess::start_io(io, "", "[pacing]\nbye-per-sec = 5\nbye-burst = 1\n");
    let msrp: SocketAddr = relay.msrp.parse().unwrap();
    let devices: Devices = Arc::default();
    let d = devices.clone();
    // At each leg-done, what that device had received.
    let events = EventLog::subscribe(&relay.socket, move |e| {
        if e["event"] != "leg-done" {
            return Value::Null;
        }
        let peers = d.lock().unwrap();
        let Some(p) = peers.get(&branch_of(e)) else {
            return Value::Null;
        };
        let st = p.state();
        json!({"bytes": st.body.len(), "complete": st.complete, "sha": st.digest()})
    });
    let mut fe = Control::connect(&relay.socket);
    let size = 256 * 1024 + 123;
    let body = file(size);

    // Registration and plan (CPM-MLD-001): all three get the file.
    fe.ok(json!({"command": "register", "user": "sip:+15551230002@ims.example", "version": 7, "devices": [
        {"instance-id": "<urn:gsma:imei:1>", "name": "Bob's phone", "capabilities": ["chat", "file-transfer", "legacy-messaging"]},
        {"instance-id": "<urn:uuid:tab>", "name": "Bob's tablet", "capabilities": ["chat", "file-transfer"]},
        {"instance-id": "<urn:uuid:pc>", "name": "Bob's PC", "capabilities": ["chat", "file-transfer"]}]}));
    let plan = fe.ok(
        json!({"command": "plan", "user": "sip:+15551230002@ims.example", "kind": "file-transfer"}),
    );
    assert_eq!(plan["outcome"], "deliver");
    assert!(
        plan["devices"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["selected"] == true)
    );

    // PF-LMM-FORK: one offer per branch, each SDP with its own relay path.
    let mut relay_uri = HashMap::new();
    for (i, b) in ["phone", "tablet", "pc"].iter().enumerate() {
        let r = fe.ok(json!({"command": "offer", "call-id": CALL, "from-tag": FROM, "via-branch": b, "kind": "file-transfer", "sdp": offer_sdp(size)}));
        assert_eq!(r["created"], i == 0);
        let sdp = r["sdp"].as_str().unwrap();
        assert_eq!(attr(sdp, "c="), "IN IP4 127.0.0.1");
        assert_eq!(
            attr(sdp, "m="),
            format!("message {} TCP/MSRP *", msrp.port())
        );
        assert_eq!(attr(sdp, "a=setup:"), "actpass");
        assert_eq!(
            attr(sdp, "a=file-selector:"),
            format!("name:\"sunset.jpg\" type:image/jpeg size:{size}")
        );
        assert_eq!(attr(sdp, "a=file-icon:"), "cid:id3@alice.example.com");
        relay_uri.insert(*b, attr(sdp, "a=path:").to_owned());
    }
    assert_eq!(
        relay_uri
            .values()
            .collect::<std::collections::HashSet<_>>()
            .len(),
        3
    );

    // PF-LMM-FIRST200: the phone answers first; its 200 goes to Alice.
    let phone_path = "msrp://127.0.0.1:9/phone1;tcp";
    let r = fe.ok(json!({"command": "answer", "call-id": CALL, "from-tag": FROM, "via-branch": "phone", "to-tag": "ph-77", "sdp": answer_sdp("active", phone_path)}));
    assert_eq!(
        (r["forward"].clone(), r["close"].clone()),
        (json!(true), json!(false))
    );
    let sender_sdp = r["sdp"].as_str().unwrap().to_owned();
    assert_eq!(attr(&sender_sdp, "a=setup:"), "passive");
    assert_eq!(attr(&sender_sdp, "c="), "IN IP4 127.0.0.1");
    let phone = Arc::new(MsrpPeer::connect(
        "phone",
        msrp,
        phone_path,
        &relay_uri["phone"],
    ));
    devices
        .lock()
        .unwrap()
        .insert("phone".into(), phone.clone());
    phone.bind();

    // Alice connects to the relay and sends the first half.
    let sender = MsrpPeer::connect(
        "alice",
        msrp,
        "msrp://127.0.0.1:7654/alice1;tcp",
        attr(&sender_sdp, "a=path:"),
    );
    let half = size / 2;
    for at in (0..half).step_by(CHUNK) {
        sender.send_chunk(&body, at, (at + CHUNK).min(half));
    }

    // The tablet answers: connected quietly.
    let tablet_path = "msrp://127.0.0.1:9/tablet1;tcp";
    let r = fe.ok(json!({"command": "answer", "call-id": CALL, "from-tag": FROM, "via-branch": "tablet", "to-tag": "tb-12", "sdp": answer_sdp("active", tablet_path)}));
    assert_eq!(r["forward"], false);
    assert!(r.get("sdp").is_none());
    let tablet = Arc::new(MsrpPeer::connect(
        "tablet",
        msrp,
        tablet_path,
        &relay_uri["tablet"],
    ));
    devices
        .lock()
        .unwrap()
        .insert("tablet".into(), tablet.clone());
    tablet.bind();

    // The PC answers late, when half the file has reached the phone; it
    // says passive, so the relay connects to it.
    drop(phone.wait("half the file", |s| s.body.len() >= half));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let pc_path = format!(
        "msrp://127.0.0.1:{}/pc1;tcp",
        listener.local_addr().unwrap().port()
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(listener.accept().map(|(s, _)| s));
    });
    let r = fe.ok(json!({"command": "answer", "call-id": CALL, "from-tag": FROM, "via-branch": "pc", "to-tag": "pc-5", "sdp": answer_sdp("passive", &pc_path)}));
    assert_eq!(r["forward"], false);
    let stream = rx
        .recv_timeout(WAIT)
        .expect("the relay did not connect to the PC")
        .unwrap();
    let pc = Arc::new(MsrpPeer::on("pc", stream, &pc_path, &relay_uri["pc"]));
    devices.lock().unwrap().insert("pc".into(), pc.clone());
    events.wait("four leg-connected", |e| {
        EventLog::named(e, "leg-connected") == 4
    });

    // The rest of the file, then Alice's BYE.
    for at in (half..size).step_by(CHUNK) {
        sender.send_chunk(&body, at, (at + CHUNK).min(size));
    }
    let r = fe.ok(json!({"command": "delete", "call-id": CALL, "from-tag": FROM}));
    assert_eq!(r["draining"], 3);

    let all = events.wait("three leg-done and session-ended", |e| {
        EventLog::named(e, "leg-done") == 3 && EventLog::named(e, "session-ended") == 1
    });
    let sha = sha256_hex(&body);
    let mut done = Vec::new();
    for (e, seen) in all.iter().filter(|(e, _)| e["event"] == "leg-done") {
        let b = branch_of(e);
        assert_eq!(e["reason"], "drained", "{e}");
        assert_eq!(e["call-id"], CALL);
        assert!(e["to-tag"].is_string(), "{e}");
        // PF-LMM-BYE: the device had its last byte before the BYE signal.
        assert_eq!(seen["bytes"], size, "{b}: {seen}");
        assert_eq!(seen["complete"], true, "{b}");
        assert_eq!(seen["sha"], sha.as_str(), "{b}");
        done.push(b);
    }
    done.sort();
    assert_eq!(done, ["pc", "phone", "tablet"]);
    let last = all
        .iter()
        .rposition(|(e, _)| e["event"] == "leg-done")
        .unwrap();
    let ended = all
        .iter()
        .position(|(e, _)| e["event"] == "session-ended")
        .unwrap();
    assert!(ended > last, "session-ended comes after every leg-done");
    assert_eq!(all[ended].0["reason"], "deleted");
    // Every device still holds the whole file, byte for byte.
    for p in [&phone, &tablet, &pc] {
        assert_eq!(p.state().digest(), sha);
    }

    let r = fe.call(json!({"command": "query", "call-id": CALL}));
    assert!(
        r["error-reason"]
            .as_str()
            .unwrap()
            .starts_with("unknown call-id"),
        "{r}"
    );
    let st = fe.ok(json!({"command": "statistics"}));
    assert_eq!(
        (st["sessions"].clone(), st["sessions-total"].clone()),
        (json!(0), json!(1))
    );

    // SIGTERM: clean exit, socket removed.
    let socket = relay.socket.clone();
    let status = relay.terminate();
    assert!(status.success(), "{status:?}");
    assert!(!socket.exists());
}

/// `msrp-relay ctl` against the running binary, and a second relay on the
/// same socket refusing to start.
#[test]
fn ctl_ping_and_second_instance_refused() {
    for io in support::drivers() {
        eprintln!("msrp.io = {io}");
        ctl_ping_and_second_instance(io);
    }
}

fn ctl_ping_and_second_instance(io: &str) {
    let relay = RelayProcess::start_io(io, "", "");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_msrp-relay"))
        .args(["ctl", "--socket"])
        .arg(&relay.socket)
        .arg("ping")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"id\":1,\"result\":\"ok\"}\n"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_msrp-relay"))
        .args(["ctl", "--config"])
        .arg(relay.config())
        .args(["query", "call-id=nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("unknown call-id"));
    let second = std::process::Command::new(env!("CARGO_BIN_EXE_msrp-relay"))
        .arg("--config")
        .arg(relay.config())
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("another relay is already listening"));
}

/// CPM-MLD-008a through the binary: a decline cancels the others and the
/// sender gets 603. Then a front end that vanishes leaves nothing behind:
/// its session expires (orphan timeout), the outstanding branch is
/// cancelled, the answered leg that never connected (the session never had
/// content: nothing to wait for) gets its `leg-done` at once, without
/// waiting for the drain timeout (a minute here), and the session ends.
#[test]
fn cpm_mld_008a_decline_then_orphaned_session_expires() {
    for io in support::drivers() {
        eprintln!("msrp.io = {io}");
        decline_then_orphaned_session_expires(io);
    }
}

fn decline_then_orphaned_session_expires(io: &str) {
    let relay = RelayProcess::start_io(io, "orphan-timeout-ms = 1\ndrain-timeout-ms = 60000", "");
    let events = EventLog::subscribe(&relay.socket, |_| Value::Null);
    let mut fe = Control::connect(&relay.socket);
    for b in ["phone", "tablet", "pc"] {
        fe.ok(json!({"command": "offer", "call-id": "c1", "from-tag": "f1", "via-branch": b, "kind": "chat", "sdp": offer_sdp(1)}));
    }
    let r = fe.ok(json!({"command": "reject", "call-id": "c1", "from-tag": "f1", "via-branch": "tablet", "code": 603}));
    assert_eq!(r["sender-status"], 603);
    let ev = events.wait("c1 ended", |e| EventLog::named(e, "session-ended") == 1);
    let cancel = ev
        .iter()
        .find(|(e, _)| e["event"] == "cancel-branches")
        .unwrap();
    assert_eq!(cancel.0["via-branches"], json!(["phone", "pc"]));
    assert_eq!(cancel.0["reason"], "declined");
    assert_eq!(cancel.0["reason-header"], "SIP;cause=603;text=\"Declined\"");

    for b in ["phone", "tablet"] {
        fe.ok(json!({"command": "offer", "call-id": "c2", "from-tag": "f2", "via-branch": b, "kind": "chat", "sdp": offer_sdp(1)}));
    }
    fe.ok(json!({"command": "answer", "call-id": "c2", "from-tag": "f2", "via-branch": "phone", "to-tag": "t", "sdp": answer_sdp("active", "msrp://127.0.0.1:9/ph;tcp")}));
    drop(fe);
    let ev = events.wait("c2 expired", |e| EventLog::named(e, "session-ended") == 2);
    let c2: Vec<&Value> = ev
        .iter()
        .map(|(e, _)| e)
        .filter(|e| e["call-id"] == "c2")
        .collect();
    assert!(
        c2.iter().any(|e| e["event"] == "cancel-branches"
            && e["via-branches"] == json!(["tablet"])
            && e["reason"] == "sender-ended"),
        "{c2:?}"
    );
    assert!(
        c2.iter().any(|e| e["event"] == "leg-done"
            && e["via-branch"] == "phone"
            && e["reason"] == "drained"
            && e["bytes-sent"] == 0),
        "{c2:?}"
    );
    assert!(!c2.iter().any(|e| e["event"] == "leg-failed"), "{c2:?}");
    assert_eq!(c2.last().unwrap()["event"], "session-ended");
    assert_eq!(c2.last().unwrap()["reason"], "expired");
    let mut c = Control::connect(&relay.socket);
    assert_eq!(c.ok(json!({"command": "list"}))["calls"], json!([]));
}
