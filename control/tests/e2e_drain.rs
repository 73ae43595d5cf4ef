//! OPS-DRAIN: taking a relay out of service without losing a session,
//! through the real `msrp-relay` binary over loopback sockets.
//!
//! - SIGTERM drains: the live session goes on (a file the sender sends
//!   after the signal reaches the device byte for byte), a new call's ng
//!   `offer` gets `Parallel session limit reached` (the rtpengine
//!   module's cue to use the next relay), `ping` still gets `pong`, the
//!   control socket still serves; when the front end deletes the last
//!   session the process exits 0 by itself, long before the drain's
//!   deadline.
//! - The JSON `drain` command: enter (a new call refused `draining`, the
//!   metric `msrp_relay_draining` 1), leave (new calls taken again).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Read;
use std::net::SocketAddr;

use msrp_control::ng::bencode::Value;
use nix::sys::signal::Signal;
use serde_json::{Value as Json, json};
use support::metrics::metric;
use support::msrp_peer::MsrpPeer;
use support::ng::{NgUdp, req, s};
use support::sdp::{answer as answer_sdp, path_of};
use support::{Control, EventLog, RelayProcess, WAIT};

const CALL: &str = "drain-call-1@alice";
const SENDER_PATH: &str = "msrp://127.0.0.1:7654/dralice;tcp";
const CHUNK: usize = 16 * 1024;

fn offer_sdp() -> String {
    support::sdp::offer(
        SENDER_PATH,
        "a=file-selector:name:\"a.jpg\" type:image/jpeg size:200000\r\n",
    )
}

/// OPS-DRAIN, PF-LMM-BYE: SIGTERM with a live ng session. See the module
/// docs; the drain's deadline is 10 minutes here, so a relay that waited
/// for it instead of exiting after the last session fails the exit wait.
#[test]
fn ops_drain_sigterm_session_goes_on_new_call_refused_exits_0_after_last_delete() {
    let notify = support::notify::Notify::bind();
    let mut relay = RelayProcess::start_with(
        "epoll",
        "",
        "[ng]\nlisten-udp = \"127.0.0.1:0\"\n\n[timeouts]\nshutdown-drain-ms = 600000\n",
        Some("info"),
        &[notify.env()],
    );
    let mut stderr = relay.take_stderr().unwrap();
    let log = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).unwrap();
        s
    });
    assert!(notify.next().contains("READY=1"));
    let msrp: SocketAddr = relay.msrp.parse().unwrap();
    let events = EventLog::subscribe(&relay.socket, |_| Json::Null);
    let mut ng = NgUdp::new(&relay.ready_word("ng-udp").unwrap());

    // A session over ng, its device and its sender connected.
    let sdp = offer_sdp();
    let o = ng.call(&req(&[
        ("command", "offer"),
        ("call-id", CALL),
        ("from-tag", "f1"),
        ("via-branch", "z9hG4bK.d0"),
        ("sdp", &sdp),
    ]));
    assert_eq!(s(&o, "result"), "ok", "{o:?}");
    let dev_path = "msrp://127.0.0.1:9/drdev0;tcp";
    let a = ng.call(&req(&[
        ("command", "answer"),
        ("call-id", CALL),
        ("from-tag", "f1"),
        ("to-tag", "ph"),
        ("via-branch", "z9hG4bK.d0"),
        ("sdp", &answer_sdp(dev_path)),
    ]));
    assert_eq!(s(&a, "forward"), "yes", "{a:?}");
    let device = MsrpPeer::connect("devph", msrp, dev_path, &path_of(s(&o, "sdp")));
    device.bind();
    let sender = MsrpPeer::connect("alice", msrp, SENDER_PATH, &path_of(s(&a, "sdp")));
    sender.bind();

    relay.signal(Signal::SIGTERM);
    // Sent once the drain is in force (new calls refused from here on).
    assert!(notify.next().contains("STOPPING=1"));

    // The live session goes on: a file sent after the signal, whole.
    let body: Vec<u8> = (0..200_000).map(|i| (i * 13 % 251) as u8).collect();
    for at in (0..body.len()).step_by(CHUNK) {
        sender.send_chunk(&body, at, (at + CHUNK).min(body.len()));
    }
    drop(device.wait("the file sent after SIGTERM", |st| {
        st.complete && st.body.len() >= body.len()
    }));
    assert_eq!(device.state().body, body, "byte for byte");

    // A new call: the rtpengine module's "try the next relay".
    let n = ng.call(&req(&[
        ("command", "offer"),
        ("call-id", "drain-new@bob"),
        ("from-tag", "b1"),
        ("via-branch", "z9hG4bK.n0"),
        ("sdp", &sdp),
    ]));
    assert_eq!(s(&n, "result"), "error", "{n:?}");
    assert_eq!(s(&n, "error-reason"), "Parallel session limit reached");
    assert_eq!(s(&ng.call(&req(&[("command", "ping")])), "result"), "pong");
    // The control socket still takes connections and says what it does.
    let mut fe = Control::connect(&relay.socket);
    let st = fe.ok(json!({"command": "statistics"}));
    assert_eq!(
        (st["draining"].clone(), st["sessions"].clone()),
        (json!(true), json!(1)),
        "{st}"
    );
    let q = ng.call(&req(&[("command", "query"), ("call-id", CALL)]));
    assert_eq!(s(&q, "result"), "ok", "{q:?}");

    // The front end relays the sender's BYE: the last session ends, and
    // with it the process.
    let d = ng.call(&req(&[
        ("command", "delete"),
        ("call-id", CALL),
        ("from-tag", "f1"),
        ("to-tag", "ph"),
    ]));
    assert_eq!(s(&d, "result"), "ok", "{d:?}");
    assert_eq!(d.get("draining"), Some(&Value::Int(1)));
    let ev = events.wait("leg-done and session-ended", |e| {
        EventLog::named(e, "session-ended") == 1
    });
    let done: Vec<&Json> = ev
        .iter()
        .map(|(e, _)| e)
        .filter(|e| e["event"] == "leg-done")
        .collect();
    assert_eq!(done.len(), 1, "{ev:?}");
    assert_eq!(done[0]["reason"], "drained");
    assert_eq!(done[0]["bytes-sent"], body.len());
    let status = relay.wait_exit(WAIT);
    assert!(status.success(), "{status:?}");
    let log = log.join().unwrap();
    let start = log
        .lines()
        .find(|l| l.contains("shutting down: draining"))
        .unwrap_or_else(|| panic!("no drain line in:\n{log}"));
    assert!(
        start.contains("sessions=1") && start.contains("deadline_s=600"),
        "{start}"
    );
    let end = log
        .lines()
        .find(|l| l.contains("drain finished"))
        .unwrap_or_else(|| panic!("no drain end line in:\n{log}"));
    assert!(end.contains("ended=1") && end.contains("cut=0"), "{end}");
    assert!(!log.contains("drain deadline"), "{log}");
}

/// OPS-DRAIN, OPS-METRICS: the JSON `drain` command enters (a new call's
/// offer is refused `draining`, a new branch of the call the relay has is
/// taken, `msrp_relay_draining` is 1) and, with `enable: false`, leaves
/// (new calls taken, the gauge 0); `msrp-relay ctl drain` is the same.
#[test]
fn ops_drain_json_command_enter_refuses_new_calls_leave_takes_them() {
    let relay = RelayProcess::start_io("epoll", "", "[metrics]\nlisten = \"127.0.0.1:0\"\n");
    let addr = relay.metrics.clone().expect("metrics= in the ready line");
    let mut fe = Control::connect(&relay.socket);
    let offer = |call: &str, branch: &str| json!({"command": "offer", "call-id": call, "from-tag": "f1", "via-branch": branch, "kind": "file-transfer", "sdp": offer_sdp()});
    fe.ok(offer("keep", "b1"));
    assert_eq!(metric(&addr, "msrp_relay_draining"), 0.0);

    let r = fe.ok(json!({"command": "drain"}));
    assert_eq!(
        (r["draining"].clone(), r["sessions"].clone()),
        (json!(true), json!(1))
    );
    assert_eq!(metric(&addr, "msrp_relay_draining"), 1.0);
    let r = fe.call(offer("new", "b1"));
    assert_eq!(r["result"], "error", "{r}");
    assert!(
        r["error-reason"].as_str().unwrap().starts_with("draining"),
        "{r}"
    );
    let r = fe.ok(offer("keep", "b2"));
    assert_eq!(r["created"], false);

    let r = fe.ok(json!({"command": "drain", "enable": false}));
    assert_eq!(
        (r["draining"].clone(), r["sessions"].clone()),
        (json!(false), json!(1))
    );
    assert_eq!(metric(&addr, "msrp_relay_draining"), 0.0);
    let r = fe.ok(offer("new", "b1"));
    assert_eq!(r["created"], true);

    let ctl = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_msrp-relay"))
            .args(["ctl", "--config"])
            .arg(relay.config())
            .args(args)
            .output()
            .unwrap()
    };
    let out = ctl(&["drain"]);
    assert!(out.status.success());
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(
        line.contains("\"draining\":true") && line.contains("\"sessions\":2"),
        "{line}"
    );
    let out = ctl(&["drain", "enable=false"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"draining\":false"));
}
