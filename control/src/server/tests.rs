//! The server over a real Unix socket in a temp dir, with a fake data plane.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use msrp_relay::fanout::{Event as PlaneEvent, LegId, SessionId};
use serde_json::{Value, json};

use super::*;
use crate::fake_plane::FakePlane;
use crate::table::TableConfig;
use crate::table::tests::{OFFER_SDP, answer_sdp};

struct Client {
    w: UnixStream,
    r: BufReader<UnixStream>,
}

impl Client {
    fn connect(path: &std::path::Path) -> Client {
        let w = UnixStream::connect(path).unwrap();
        // A safety net so a broken test fails instead of hanging.
        w.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let r = BufReader::new(w.try_clone().unwrap());
        Client { w, r }
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).unwrap();
    }

    fn line(&mut self) -> Value {
        let mut s = String::new();
        assert!(self.r.read_line(&mut s).unwrap() > 0, "connection closed");
        serde_json::from_str(&s).unwrap()
    }

    fn call(&mut self, v: Value) -> Value {
        self.send_raw(format!("{v}\n").as_bytes());
        self.line()
    }
}

fn start(cfg: impl FnOnce(&mut ServerConfig)) -> (tempfile::TempDir, Server, Arc<FakePlane>) {
    let dir = tempfile::tempdir().unwrap();
    let mut sc = ServerConfig::new(dir.path().join("relay.sock"));
    sc.max_line = 4096;
    cfg(&mut sc);
    let plane = Arc::new(FakePlane::default());
    let server = Server::start(sc, Core::new(TableConfig::default(), plane.clone())).unwrap();
    (dir, server, plane)
}

fn path(dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path().join("relay.sock")
}

#[test]
fn bad_input_gets_error_replies_and_the_connection_stays_usable() {
    let (dir, _server, _) = start(|_| {});
    let mut c = Client::connect(&path(&dir));
    c.send_raw(b"hello, relay\n");
    let r = c.line();
    assert_eq!(r["id"], Value::Null);
    assert!(
        r["error-reason"]
            .as_str()
            .unwrap()
            .starts_with("malformed JSON:")
    );
    let r = c.call(json!({"id": 1, "command": "reboot"}));
    assert_eq!(
        (r["id"].clone(), r["result"].clone()),
        (json!(1), json!("error"))
    );
    assert_eq!(r["error-reason"], "unknown command \"reboot\"");
    let r = c.call(json!({"id": 2, "command": "offer", "call-id": "c"}));
    assert!(
        r["error-reason"]
            .as_str()
            .unwrap()
            .starts_with("invalid offer request:")
    );
    let r = c.call(json!({"id": 3, "command": "query", "call-id": "nope"}));
    assert!(
        r["error-reason"]
            .as_str()
            .unwrap()
            .starts_with("unknown call-id")
    );
    let mut long = vec![b'x'; 5000];
    long.push(b'\n');
    c.send_raw(&long);
    let r = c.line();
    assert_eq!(r["id"], Value::Null);
    assert!(
        r["error-reason"].as_str().unwrap().starts_with("line of"),
        "{r}"
    );
    c.send_raw(b"[1,2]\n{\"command\":\"ping\"}\n");
    assert_eq!(c.line()["error-reason"], "a request must be a JSON object");
    assert_eq!(c.line()["error-reason"], "missing \"id\"");
    assert_eq!(
        c.call(json!({"id": "p", "command": "ping"})),
        json!({"id": "p", "result": "ok"})
    );
}

#[test]
fn wrong_uid_is_refused_with_an_error_line() {
    let own = nix::unistd::getuid().as_raw();
    let (dir, _server, _) = start(|c| c.allowed_uids = vec![own.wrapping_add(1)]);
    let mut c = Client::connect(&path(&dir));
    let r = c.line();
    assert_eq!(r["result"], "error");
    assert_eq!(
        r["error-reason"],
        format!("uid {own} is not allowed on this socket")
    );
    let mut rest = String::new();
    assert_eq!(c.r.read_line(&mut rest).unwrap(), 0, "then closed");
}

#[test]
fn connection_bound_refuses_the_extra_connection() {
    let (dir, _server, _) = start(|c| c.max_connections = 1);
    let mut first = Client::connect(&path(&dir));
    let mut second = Client::connect(&path(&dir));
    assert!(
        second.line()["error-reason"]
            .as_str()
            .unwrap()
            .starts_with("limit reached")
    );
    assert_eq!(
        first.call(json!({"id": 1, "command": "ping"}))["result"],
        "ok"
    );
}

/// Every command's success path, and events on a subscribed connection
/// (the other connection, which did not subscribe, gets none).
#[test]
fn pf_lmm_fork_every_command_and_events_reach_subscribers() {
    let (dir, server, _plane) = start(|_| {});
    let mut sub = Client::connect(&path(&dir));
    let r = sub.call(json!({"id": 1, "command": "subscribe", "events": ["leg-connected", "cancel-branches", "leg-done", "session-ended"]}));
    assert_eq!(r["events"].as_array().unwrap().len(), 4);
    let mut fe = Client::connect(&path(&dir));
    assert_eq!(fe.call(json!({"id": 1, "command": "ping"}))["result"], "ok");
    let r = fe.call(json!({"id": 2, "command": "register", "user": "sip:bob@x", "version": 1, "devices": [{"instance-id": "a", "name": "Phone", "capabilities": ["chat"]}, {"instance-id": "b", "name": "Tablet", "capabilities": ["chat"]}]}));
    assert_eq!(r["devices"], 2);
    let r = fe.call(json!({"id": 3, "command": "plan", "user": "sip:bob@x", "kind": "chat"}));
    assert_eq!(r["outcome"], "deliver");
    for (i, b) in ["b1", "b2", "b3"].iter().enumerate() {
        let r = fe.call(json!({"id": 10 + i, "command": "offer", "call-id": "c1", "from-tag": "f1", "via-branch": b, "kind": "chat", "sdp": OFFER_SDP}));
        assert_eq!(r["created"], i == 0, "{r}");
    }
    let r = fe.call(json!({"id": 20, "command": "answer", "call-id": "c1", "from-tag": "f1", "via-branch": "b1", "to-tag": "t1", "sdp": answer_sdp("active")}));
    assert_eq!(r["forward"], true);
    let r = fe.call(json!({"id": 21, "command": "reject", "call-id": "c1", "from-tag": "f1", "via-branch": "b2", "code": 486}));
    assert_eq!(r["result"], "ok");
    assert!(r.get("sender-status").is_none());
    let r = fe.call(json!({"id": 22, "command": "query", "call-id": "c1"}));
    assert_eq!(r["legs"].as_array().unwrap().len(), 4);
    assert_eq!(
        fe.call(json!({"id": 23, "command": "list"}))["calls"],
        json!(["c1"])
    );
    assert_eq!(
        fe.call(json!({"id": 24, "command": "statistics"}))["control-connections"],
        2
    );
    server.on_plane_event(PlaneEvent::LegConnected {
        leg: LegId {
            session: SessionId(1),
            index: 1,
        },
    });
    let r = fe.call(json!({"id": 25, "command": "delete", "call-id": "c1", "from-tag": "f1"}));
    assert_eq!(r["draining"], 1);
    server.on_plane_event(PlaneEvent::LegDone {
        leg: LegId {
            session: SessionId(1),
            index: 1,
        },
        bytes: 10,
    });
    server.on_plane_event(PlaneEvent::SessionEnded {
        session: SessionId(1),
    });
    let ev: Vec<Value> = (0..4).map(|_| sub.line()).collect();
    assert_eq!(
        ev[0],
        json!({"event": "leg-connected", "call-id": "c1", "from-tag": "f1", "via-branch": "b1", "to-tag": "t1"})
    );
    assert_eq!(ev[1]["event"], "cancel-branches");
    assert_eq!(ev[1]["via-branches"], json!(["b3"]));
    assert_eq!(
        ev[2],
        json!({"event": "leg-done", "call-id": "c1", "from-tag": "f1", "via-branch": "b1", "to-tag": "t1", "reason": "drained", "bytes-sent": 10})
    );
    assert_eq!(
        ev[3],
        json!({"event": "session-ended", "call-id": "c1", "from-tag": "f1", "reason": "deleted"})
    );
    // The front end's connection got replies only: the next line is the
    // reply to this ping.
    assert_eq!(
        fe.call(json!({"id": 26, "command": "ping"})),
        json!({"id": 26, "result": "ok"})
    );
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let (dir, _server, _) = start(|c| c.max_queued_lines = 4);
    let mut c = Client::connect(&path(&dir));
    let mut batch = String::new();
    for i in 0..200 {
        batch.push_str(&format!("{{\"id\":{i},\"command\":\"ping\"}}\n"));
    }
    c.send_raw(batch.as_bytes());
    for i in 0..200 {
        assert_eq!(c.line()["id"], i);
    }
}

#[test]
fn shutdown_stops_accepting_and_removes_the_socket() {
    let (dir, mut server, _) = start(|_| {});
    let mut c = Client::connect(&path(&dir));
    c.call(json!({"id": 1, "command": "offer", "call-id": "c1", "from-tag": "f1", "via-branch": "b1", "kind": "chat", "sdp": OFFER_SDP}));
    server.begin_shutdown();
    assert!(!path(&dir).exists());
    let r = c.call(json!({"id": 2, "command": "offer", "call-id": "c2", "from-tag": "f1", "via-branch": "b1", "kind": "chat", "sdp": OFFER_SDP}));
    assert_eq!(r["error-reason"], "relay is shutting down");
    server.close();
    let mut rest = String::new();
    assert_eq!(c.r.read_line(&mut rest).unwrap(), 0);
}

/// OPS-DRAIN: the shutdown's drain keeps the socket: a connection made
/// after it began is served, a new call's `offer` is refused `draining`,
/// the drain cannot be left, and the session the relay has still takes
/// its commands; only the cut afterwards stops accepting.
#[test]
fn ops_drain_server_keeps_accepting_and_refuses_only_new_calls() {
    let (dir, mut server, _) = start(|_| {});
    let mut c = Client::connect(&path(&dir));
    let r = c.call(json!({"id": 1, "command": "offer", "call-id": "c1", "from-tag": "f1", "via-branch": "b1", "kind": "chat", "sdp": OFFER_SDP}));
    assert_eq!(r["result"], "ok", "{r}");
    assert!(!server.draining());
    assert_eq!(server.begin_drain(), 1);
    assert!(server.draining());
    assert!(path(&dir).exists(), "the socket stays while draining");
    let mut late = Client::connect(&path(&dir));
    assert_eq!(
        late.call(json!({"id": 1, "command": "ping"}))["result"],
        "ok"
    );
    let r = late.call(json!({"id": 2, "command": "offer", "call-id": "c2", "from-tag": "f1", "via-branch": "b1", "kind": "chat", "sdp": OFFER_SDP}));
    assert!(
        r["error-reason"].as_str().unwrap().starts_with("draining"),
        "{r}"
    );
    let r = late.call(json!({"id": 3, "command": "drain", "enable": false}));
    assert_eq!(r["error-reason"], "relay is shutting down");
    let r = late.call(json!({"id": 4, "command": "offer", "call-id": "c1", "from-tag": "f1", "via-branch": "b2", "kind": "chat", "sdp": OFFER_SDP}));
    assert_eq!(r["result"], "ok", "a branch of a call the relay has: {r}");
    let r = c.call(json!({"id": 5, "command": "delete", "call-id": "c1", "from-tag": "f1"}));
    assert_eq!(r["result"], "ok", "{r}");
    let r = c.call(json!({"id": 6, "command": "drain"}));
    assert_eq!(
        (r["draining"].clone(), r["sessions"].clone()),
        (json!(true), json!(1))
    );
    server.begin_shutdown();
    assert!(!path(&dir).exists());
    server.close();
}
