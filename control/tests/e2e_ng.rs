//! The rtpengine ng protocol end to end through the real `msrp-relay`
//! binary, over real loopback UDP and TCP sockets: what the stock
//! `rtpengine` module of Kamailio or OpenSIPS sends, and what a hostile
//! or broken client sends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;

use msrp_control::ng::bencode::Value;
use msrp_control::ng::wire::Framing;
use serde_json::Value as Json;
use support::msrp_peer::MsrpPeer;
use support::ng::{NgTcp, NgUdp, decode_reply, message, req, s};
use support::{EventLog, RelayProcess};

const CALL: &str = "ng-call-1@alice";
const CHUNK: usize = 16 * 1024;

fn offer_sdp() -> &'static str {
    "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=message 7654 TCP/MSRP *\r\na=sendonly\r\na=accept-types:image/jpeg\r\na=setup:actpass\r\na=path:msrp://127.0.0.1:7654/ngalice;tcp\r\na=file-selector:name:\"a.jpg\" type:image/jpeg size:200000\r\n"
}

fn answer_sdp(path: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=message 9 TCP/MSRP *\r\na=recvonly\r\na=accept-types:image/jpeg\r\na=setup:active\r\na=path:{path}\r\n"
    )
}

fn path_of(sdp: &str) -> String {
    sdp.lines()
        .find_map(|l| l.strip_prefix("a=path:"))
        .unwrap()
        .to_owned()
}

fn relay(extra_ng: &str) -> RelayProcess {
    RelayProcess::start_io(
        "epoll",
        "",
        &format!("[ng]\nlisten-udp = \"127.0.0.1:0\"\nlisten-tcp = \"127.0.0.1:0\"\n{extra_ng}\n"),
    )
}

fn udp(r: &RelayProcess) -> NgUdp {
    NgUdp::new(&r.ready_word("ng-udp").expect("ng-udp in the ready line"))
}

fn ok(v: &Value) {
    assert_eq!(s(v, "result"), "ok", "{v:?}");
}

fn err(v: &Value) -> String {
    assert_eq!(s(v, "result"), "error", "{v:?}");
    s(v, "error-reason").to_owned()
}

fn legs(ng: &mut NgUdp, call: &str) -> usize {
    let q = ng.call(&req(&[("command", "query"), ("call-id", call)]));
    ok(&q);
    match q.get("legs") {
        Some(Value::List(l)) => l.len(),
        _ => panic!("{q:?}"),
    }
}

#[test]
fn ng_ping_over_udp_and_both_tcp_framings() {
    let r = relay("");
    let mut ng = udp(&r);
    assert_eq!(s(&ng.call(&req(&[("command", "ping")])), "result"), "pong");
    let mut tcp = NgTcp::connect(&r.ready_word("ng-tcp").unwrap());
    for (i, f) in [Framing::Bare, Framing::LengthPrefixed]
        .into_iter()
        .enumerate()
    {
        let v = tcp.call(f, &format!("t{i}"), &req(&[("command", "ping")]));
        assert_eq!(s(&v, "result"), "pong");
    }
}

/// PF-LMM-FORK, PF-LMM-FIRST200, PF-LMM-BYE over ng: an offer per
/// via-branch, both devices answer and connect, the sender's file reaches
/// both byte for byte; the sender's BYE (`delete` with the sender's
/// from-tag and the first device's to-tag) answers at once, and each
/// device's paced `leg-done` reaches the JSON socket's subscribers after
/// that device had the last byte.
#[test]
fn ng_pf_lmm_fork_first200_bye_two_branches_bytes_and_paced_leg_done() {
    let r = relay("");
    let msrp: SocketAddr = r.msrp.parse().unwrap();
    let events = EventLog::subscribe(&r.socket, |_| Json::Null);
    let mut ng = udp(&r);
    let ids = [("call-id", CALL), ("from-tag", "f1")];
    let mut relay_uri = Vec::new();
    for b in ["z9hG4bK.0", "z9hG4bK.1"] {
        let mut k = ids.to_vec();
        k.extend([
            ("command", "offer"),
            ("via-branch", b),
            ("sdp", offer_sdp()),
            ("ICE", "remove"),
        ]);
        let o = ng.call(&req(&k));
        ok(&o);
        relay_uri.push(path_of(s(&o, "sdp")));
    }
    let mut sender_sdp = String::new();
    let mut devices = Vec::new();
    for (i, (b, tag)) in [("z9hG4bK.0", "ph"), ("z9hG4bK.1", "tb")]
        .into_iter()
        .enumerate()
    {
        let path = format!("msrp://127.0.0.1:9/ngdev{i};tcp");
        let sdp = answer_sdp(&path);
        let mut k = ids.to_vec();
        k.extend([
            ("command", "answer"),
            ("via-branch", b),
            ("to-tag", tag),
            ("sdp", &sdp),
        ]);
        let a = ng.call(&req(&k));
        ok(&a);
        assert_eq!(s(&a, "forward"), if i == 0 { "yes" } else { "no" });
        sender_sdp = s(&a, "sdp").to_owned();
        let d = MsrpPeer::connect(&format!("dev{tag}"), msrp, &path, &relay_uri[i]);
        d.bind();
        devices.push(d);
    }
    let sender = MsrpPeer::connect(
        "alice",
        msrp,
        "msrp://127.0.0.1:7654/ngalice;tcp",
        &path_of(&sender_sdp),
    );
    let body: Vec<u8> = (0..200_000).map(|i| (i * 7 % 251) as u8).collect();
    for at in (0..body.len()).step_by(CHUNK) {
        sender.send_chunk(&body, at, (at + CHUNK).min(body.len()));
    }
    let mut k = ids.to_vec();
    k.extend([("command", "delete"), ("to-tag", "ph")]);
    let d = ng.call(&req(&k));
    ok(&d);
    assert_eq!(d.get("draining"), Some(&Value::Int(2)));
    let ev = events.wait("two leg-done and session-ended", |e| {
        EventLog::named(e, "session-ended") == 1
    });
    assert_eq!(EventLog::named(&ev, "leg-done"), 2, "{ev:?}");
    for (e, _) in ev.iter().filter(|(e, _)| e["event"] == "leg-done") {
        assert_eq!(e["reason"], "drained");
        assert_eq!(e["bytes-sent"], body.len());
    }
    for d in &devices {
        let st = d.state();
        assert_eq!(st.body, body, "every byte, in order");
    }
    // The same BYE again (a new cookie): ok, `ended`.
    let again = ng.call(&req(&k));
    ok(&again);
}

/// A retransmission (same cookie, same body) gets the very same reply and
/// is executed once; the same cookie with another body is refused.
#[test]
fn ng_retransmit_same_cookie_same_reply_executed_once() {
    let r = relay("");
    let mut ng = udp(&r);
    let o = req(&[
        ("command", "offer"),
        ("call-id", "rt1"),
        ("from-tag", "f1"),
        ("via-branch", "b1"),
        ("sdp", offer_sdp()),
    ]);
    let msg = message("rtx-1", &o);
    let first = ng.exchange(&msg, "rtx-1");
    let second = ng.exchange(&msg, "rtx-1");
    assert_eq!(first, second, "the cached reply, byte for byte");
    ok(&decode_reply(&first));
    assert_eq!(
        legs(&mut ng, "rt1"),
        2,
        "executed once: sender + one device"
    );
    // Same cookie, different body.
    let other = message("rtx-1", &req(&[("command", "ping")]));
    let e = err(&decode_reply(&ng.exchange(&other, "rtx-1")));
    assert!(e.contains("cookie"), "{e}");
    // Over TCP the same cache answers.
    let mut tcp = NgTcp::connect(&r.ready_word("ng-tcp").unwrap());
    tcp.write(&msg);
    let (_, m) = tcp.read().unwrap();
    assert_eq!(m, first);
    assert_eq!(legs(&mut ng, "rt1"), 2);
}

/// Bad input, each answered with a clear error or dropped and logged; a
/// session present throughout is not touched.
#[test]
fn ng_bad_input_each_gets_an_error_or_is_dropped_no_other_session_touched() {
    let r = relay("max-message-bytes = 4096\nmax-depth = 8\n");
    let mut ng = udp(&r);
    let o = ng.call(&req(&[
        ("command", "offer"),
        ("call-id", "keep"),
        ("from-tag", "f1"),
        ("via-branch", "b1"),
        ("sdp", offer_sdp()),
    ]));
    ok(&o);

    // Malformed bencode.
    let e = err(&decode_reply(&ng.exchange(b"bad1 d7:command", "bad1")));
    assert!(e.contains("malformed"), "{e}");
    let e = err(&decode_reply(&ng.exchange(b"bad2 hello", "bad2")));
    assert!(e.contains("malformed"), "{e}");
    // Nested past the bound.
    let mut deep = b"bad3 d1:x".to_vec();
    deep.extend(std::iter::repeat_n(b'l', 50));
    deep.extend(std::iter::repeat_n(b'e', 51));
    let e = err(&decode_reply(&ng.exchange(&deep, "bad3")));
    assert!(e.contains("nested deeper than 8"), "{e}");
    // Over-long datagram.
    let mut long = b"bad4 d3:sdp5000:".to_vec();
    long.extend(std::iter::repeat_n(b'x', 5000));
    long.push(b'e');
    let e = err(&decode_reply(&ng.exchange(&long, "bad4")));
    assert!(e.contains("exceeds the limit of 4096"), "{e}");
    // No cookie: dropped (the next datagram we get is the next ping's pong).
    ng.send(b"d7:command4:pinge");
    ng.send(b"nocookie");
    ng.send(b"pong1 d7:command4:pinge");
    let next = ng.recv_any();
    assert!(
        next.starts_with(b"pong1 "),
        "{:?}",
        String::from_utf8_lossy(&next)
    );
    // Unknown command, answer for an unknown call, delete twice.
    let e = err(&ng.call(&req(&[("command", "reboot")])));
    assert!(e.contains("Unrecognized command"), "{e}");
    let e = err(&ng.call(&req(&[
        ("command", "answer"),
        ("call-id", "nope"),
        ("from-tag", "f"),
        ("to-tag", "t"),
        ("sdp", &answer_sdp("msrp://127.0.0.1:9/x;tcp")),
    ])));
    assert!(e.contains("unknown call-id"), "{e}");
    let e = err(&ng.call(&req(&[
        ("command", "offer"),
        ("call-id", "audio"),
        ("from-tag", "f"),
        ("sdp", "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"),
    ])));
    assert!(e.contains("no MSRP media"), "{e}");
    let o2 = req(&[
        ("command", "offer"),
        ("call-id", "twice"),
        ("from-tag", "f1"),
        ("sdp", offer_sdp()),
    ]);
    ok(&ng.call(&o2));
    let del = req(&[
        ("command", "delete"),
        ("call-id", "twice"),
        ("from-tag", "f1"),
    ]);
    ok(&ng.call(&del));
    ok(&ng.call(&del));
    // A delete of a call never seen: ok with a warning (rtpengine's way).
    let w = ng.call(&req(&[
        ("command", "delete"),
        ("call-id", "never"),
        ("from-tag", "f"),
    ]));
    ok(&w);
    assert!(s(&w, "warning").contains("unknown call-id"), "{w:?}");
    // A flood of pings: sent without waiting; whatever the socket buffer
    // kept is answered with pong, and the relay still answers after.
    for i in 0..2000 {
        ng.send(&message(&format!("flood{i}"), &req(&[("command", "ping")])));
    }
    let after = ng.call(&req(&[("command", "ping")]));
    assert_eq!(s(&after, "result"), "pong");
    // TCP: a malformed message is answered, then the stream is closed.
    let mut tcp = NgTcp::connect(&r.ready_word("ng-tcp").unwrap());
    tcp.write(b"tb1 dx");
    let (_, m) = tcp.read().unwrap();
    assert!(m.starts_with(b"tb1 "));
    assert!(err(&decode_reply(&m)).contains("bencode"));
    assert_eq!(tcp.read(), None);
    // The session offered first is untouched.
    assert_eq!(legs(&mut ng, "keep"), 2);
}

/// PF-LMM-BYE over ng, the cycle `msrp-load setup --ng` drives (offer b1,
/// offer b2, answer b1, the sender's `delete`) with no MSRP connection
/// ever made: each session ends by itself (`session-ended`) and the
/// relay is left empty. The leg and drain timeouts are 10 minutes here,
/// so a session that waited for its answered-but-unconnected leg to time
/// out would fail the wait.
#[test]
fn ng_pf_lmm_bye_forked_calls_ended_before_any_connection_leave_no_session() {
    let r = RelayProcess::start_io(
        "epoll",
        "drain-timeout-ms = 600000",
        "[ng]\nlisten-udp = \"127.0.0.1:0\"\n\n[timeouts]\nleg-ms = 600000\nbind-ms = 600000\n",
    );
    let events = EventLog::subscribe(&r.socket, |_| Json::Null);
    let mut ng = udp(&r);
    let calls = ["cyc-0", "cyc-1", "cyc-2"];
    for call in calls {
        let ids = [("call-id", call), ("from-tag", "f")];
        for b in ["b1", "b2"] {
            let mut k = ids.to_vec();
            k.extend([
                ("command", "offer"),
                ("via-branch", b),
                ("sdp", offer_sdp()),
            ]);
            ok(&ng.call(&req(&k)));
        }
        let sdp = answer_sdp("msrp://127.0.0.1:9/cycdev;tcp");
        let mut k = ids.to_vec();
        k.extend([
            ("command", "answer"),
            ("via-branch", "b1"),
            ("to-tag", "t1"),
            ("sdp", &sdp),
        ]);
        ok(&ng.call(&req(&k)));
        let mut k = ids.to_vec();
        k.push(("command", "delete"));
        let d = ng.call(&req(&k));
        ok(&d);
        assert_eq!(d.get("draining"), Some(&Value::Int(1)), "{d:?}");
    }
    let ev = events.wait("a session-ended per call", |e| {
        EventLog::named(e, "session-ended") == calls.len()
    });
    for (e, _) in ev.iter().filter(|(e, _)| e["event"] == "session-ended") {
        assert_eq!(e["reason"], "deleted", "{e}");
    }
    assert_eq!(EventLog::named(&ev, "leg-done"), calls.len(), "{ev:?}");
    let st = ng.call(&req(&[("command", "statistics")]));
    ok(&st);
    assert_eq!(st.get("sessions"), Some(&Value::Int(0)), "{st:?}");
    let l = ng.call(&req(&[("command", "list")]));
    assert_eq!(l.get("calls"), Some(&Value::List(Vec::new())), "{l:?}");
}
