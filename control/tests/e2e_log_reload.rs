//! Issue 13: `[log] filter` changes on SIGHUP without a restart, through
//! the real binary. The relay starts at `warn`: a session's info lines are
//! not written; after the file says `info` and a SIGHUP (framed by
//! systemd's RELOADING=1 … READY=1 on a notify socket of the test's, so
//! the test knows when the reload is done), the next session's are.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Read;

use nix::sys::signal::Signal;
use serde_json::{Value, json};
use support::{Control, EventLog, RelayProcess};

use support::sdp::CHAT_OFFER as SDP;

/// A session set up and deleted; returns once it ended.
fn session(fe: &mut Control, events: &EventLog, call: &str, ended: usize) {
    fe.ok(json!({"command": "offer", "call-id": call, "from-tag": "f", "via-branch": "b", "kind": "chat", "sdp": SDP}));
    fe.ok(json!({"command": "delete", "call-id": call, "from-tag": "f"}));
    events.wait("session-ended", |e| {
        EventLog::named(e, "session-ended") == ended
    });
}

#[test]
fn ops_log_filter_changes_live_on_sighup() {
    let sock = support::notify::Notify::bind();
    // RUST_LOG empty: the file's filter decides.
    let mut relay = RelayProcess::start_with(
        "epoll",
        "",
        "[log]\nfilter = \"warn\"\n",
        Some("warn"),
        &[sock.env(), ("RUST_LOG", "")],
    );
    let mut stderr = relay.take_stderr().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).unwrap();
        s
    });
    assert!(sock.next().contains("READY=1"));
    let events = EventLog::subscribe(&relay.socket, |_| Value::Null);
    let mut fe = Control::connect(&relay.socket);
    session(&mut fe, &events, "quiet-call", 1);

    let path = relay.config();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("filter = \"warn\"", "filter = \"info\""),
    )
    .unwrap();
    relay.signal(Signal::SIGHUP);
    assert!(sock.next().contains("RELOADING=1"));
    assert!(sock.next().contains("READY=1"));
    session(&mut fe, &events, "loud-call", 2);

    assert!(relay.terminate().success());
    let log = reader.join().unwrap();
    assert!(
        !log.contains("quiet-call"),
        "info lines written at warn:\n{log}"
    );
    assert!(
        log.contains("loud-call"),
        "no info line after the reload:\n{log}"
    );
    assert!(log.contains("log filter changed"), "{log}");
}
