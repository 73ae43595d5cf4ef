//! File-transfer resume from the content store through the real
//! `msrp-relay` binary (FT-RESUME, RFC 5547 §6 and §8.2.2, issue 12): a
//! device whose connection broke at 60 % of a file pulls the rest with
//! `a=file-range`, and the relay serves it from its store, the sender gone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;

use serde_json::{Value, json};
use support::msrp_peer::{MsrpPeer, sha256_hex};
use support::sdp::{answer as answer_sdp, path_of};
use support::{Control, EventLog, RelayProcess, with};

const SENDER: &str = "msrp://127.0.0.1:7654/alice7;tcp";
const TABLET: &str = "<urn:gsma:imei:35-tablet>";
const SIZE: usize = 8 << 20;
const CHUNK: usize = 64 * 1024;

/// A pull offer (RFC 5547 §8.2.2): `recvonly`, the file by selector, and
/// `extra` (the `a=file-range`).
fn pull(path: &str, selector: &str, extra: &str) -> String {
    format!(
        "v=0\r\no=tablet 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=message 9 TCP/MSRP *\r\na=recvonly\r\na=accept-types:image/jpeg\r\n\
         a=setup:actpass\r\na=path:{path}\r\na=file-selector:{selector}\r\n\
         a=file-transfer-id:pull7\r\n{extra}"
    )
}

/// FT-RESUME, local-disk backend.
#[test]
fn ft_resume_a_transfer_cut_at_60_percent_completes_from_the_store() {
    let store = tempfile::tempdir().unwrap();
    resumed(&support::local_store(store.path()));
}

/// FT-RESUME on the S3 backend, against a real S3-compatible server
/// (moto) on loopback.
#[test]
fn ft_resume_a_transfer_cut_at_60_percent_completes_from_an_s3_store() {
    let s3 = support::s3::S3Server::start("msrp-resume");
    resumed(&s3.store_toml());
}

fn resumed(store: &str) {
    let io = support::drivers()[0];
    let relay = RelayProcess::start_io(io, "", store);
    let msrp: SocketAddr = relay.msrp.parse().unwrap();
    let events = EventLog::subscribe(&relay.socket, |_| Value::Null);
    let mut fe = Control::connect(&relay.socket);
    let body: Vec<u8> = (0..SIZE)
        .map(|i| (i.wrapping_mul(2_246_822_519) >> 11) as u8)
        .collect();
    let selector = format!("name:\"resume.bin\" type:image/jpeg size:{SIZE}");

    // 1. The push: the phone gets it all, the tablet breaks at 60 %.
    let ids = json!({"call-id": "ft-resume", "from-tag": "a7"});
    let offer = support::sdp::offer(SENDER, &format!("a=file-selector:{selector}\r\n"));
    let mut uri = Vec::new();
    for (b, inst) in [("phone", "<urn:gsma:imei:35-phone>"), ("tablet", TABLET)] {
        let r = fe.ok(with(&ids, json!({"command": "offer", "via-branch": b, "kind": "file-transfer", "instance-id": inst, "sdp": &offer})));
        uri.push(path_of(r["sdp"].as_str().unwrap()));
    }
    let (phone_path, tablet_path) = (
        "msrp://127.0.0.1:9/phone7;tcp",
        "msrp://127.0.0.1:9/tab7;tcp",
    );
    let r = fe.ok(with(&ids, json!({"command": "answer", "via-branch": "phone", "to-tag": "ph", "sdp": answer_sdp(phone_path)})));
    let sender_uri = path_of(r["sdp"].as_str().unwrap());
    fe.ok(with(&ids, json!({"command": "answer", "via-branch": "tablet", "to-tag": "tb", "sdp": answer_sdp(tablet_path)})));
    let phone = MsrpPeer::connect("phone", msrp, phone_path, &uri[0]);
    phone.bind();
    let cut = SIZE * 6 / 10;
    let tablet = MsrpPeer::connect_cut("tablet", msrp, tablet_path, &uri[1], cut);
    tablet.bind();
    let sender = MsrpPeer::connect("alice", msrp, SENDER, &sender_uri);
    for at in (0..SIZE).step_by(CHUNK) {
        sender.send_chunk(&body, at, (at + CHUNK).min(SIZE));
    }
    drop(phone.wait("the whole file", |s| s.complete));
    let head = tablet.wait("the cut", |s| s.eof).body.clone();
    assert_eq!(head, body[..cut], "the tablet kept 60 %");
    events.wait("the tablet's leg failed", |e| {
        EventLog::named(e, "leg-failed") == 1
    });
    fe.ok(with(&ids, json!({"command": "delete"})));
    let ev = events.wait("stored", |e| EventLog::named(e, "stored") == 1);
    let stored = ev
        .iter()
        .map(|(e, _)| e)
        .find(|e| e["event"] == "stored")
        .unwrap();
    assert_eq!(
        stored["pending"],
        json!([TABLET]),
        "a device whose leg failed is pending: {stored}"
    );
    drop(ev);
    drop(sender);

    // 2. Bad pulls: a clear error each, nothing created.
    let path2 = "msrp://127.0.0.1:9/tab8;tcp";
    let pull_ids = json!({"call-id": "pull-1", "from-tag": "tb2", "via-branch": "p1", "kind": "file-transfer", "instance-id": TABLET});
    for (range, why) in [
        (format!("a=file-range:{}-*\r\n", SIZE + 1), "past the end"),
        (format!("a=file-range:1-{}\r\n", SIZE + 1), "past the end"),
        ("a=file-range:10-5\r\n".to_owned(), "file-range"),
    ] {
        let r = fe.call(with(
            &pull_ids,
            json!({"command": "offer", "sdp": pull(path2, &selector, &range)}),
        ));
        assert_eq!(r["result"], "error", "{range}: {r}");
        let reason = r["error-reason"].as_str().unwrap();
        assert!(reason.contains(why), "{range}: {reason}");
    }
    let no_selector = pull(path2, &selector, "a=file-range:1-*\r\n")
        .replace(&format!("a=file-selector:{selector}\r\n"), "");
    let r = fe.call(with(
        &pull_ids,
        json!({"command": "offer", "sdp": no_selector}),
    ));
    assert_eq!(r["result"], "error", "{r}");
    assert!(
        r["error-reason"]
            .as_str()
            .unwrap()
            .contains("file-selector"),
        "{r}"
    );

    // A file the store does not hold: the pull goes to the sender as usual.
    let other = json!({"call-id": "pull-0", "from-tag": "tb0", "via-branch": "p0", "kind": "file-transfer"});
    let r = fe.ok(with(&other, json!({"command": "offer", "sdp": pull(path2, "name:\"other.bin\"", "a=file-range:1-*\r\n")})));
    assert_eq!(r.get("from-store"), None, "{r}");
    assert!(
        r["sdp"].as_str().unwrap().contains("a=setup:actpass"),
        "an offer to fork: {r}"
    );
    fe.ok(json!({"command": "delete", "call-id": "pull-0", "from-tag": "tb0"}));

    // 3. The pull of the rest, served from the store.
    let range = format!("a=file-range:{}-{SIZE}\r\n", cut + 1);
    let r = fe.ok(with(
        &pull_ids,
        json!({"command": "offer", "sdp": pull(path2, "name:\"resume.bin\"", &range)}),
    ));
    assert_eq!(r["from-store"], true, "{r}");
    let answer = r["sdp"].as_str().unwrap();
    assert!(answer.contains("a=sendonly"), "{answer}");
    assert!(
        answer.contains(&range),
        "the range echoed (RFC 5547 §8.3.2): {answer}"
    );
    assert!(
        answer.contains("a=setup:passive"),
        "the relay listens: {answer}"
    );
    let rest = MsrpPeer::connect("tablet2", msrp, path2, &path_of(answer));
    rest.bind();
    let ev = events.wait("the pull's leg-done", |e| {
        e.iter()
            .any(|(e, _)| e["event"] == "leg-done" && e["via-branch"] == "p1")
    });
    let done = ev
        .iter()
        .map(|(e, _)| e)
        .find(|e| e["event"] == "leg-done" && e["via-branch"] == "p1")
        .unwrap();
    assert_eq!(done["reason"], "drained", "{done}");
    assert_eq!(done["bytes-sent"], SIZE - cut);
    drop(ev);
    let got = rest.wait("the rest", |s| s.complete);
    // RFC 5547 §8.7: the range is a message of its own, numbered from 1.
    let first = got.ranges.first().unwrap();
    assert_eq!((first.start, first.total), (1, Some((SIZE - cut) as u64)));
    let mut whole = head;
    whole.extend_from_slice(&got.body);
    assert_eq!(whole.len(), SIZE);
    assert_eq!(sha256_hex(&whole), sha256_hex(&body), "byte-exact");
}
