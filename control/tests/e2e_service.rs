//! OPS-SERVICE (issue 13): the binary as systemd runs it (`Type=notify`,
//! `ExecReload` = SIGHUP), with a datagram socket standing in for
//! systemd's `NOTIFY_SOCKET`. READY once up; a reload is framed by
//! RELOADING and READY, applies the live keys at once (a lowered
//! `max-sessions` refuses the next offer), names the keys that need a
//! restart, and a file that does not parse changes nothing; STOPPING when
//! SIGTERM starts the drain.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Read;

use nix::sys::signal::Signal;
use serde_json::json;
use support::{Control, RelayProcess};

use support::sdp::CHAT_OFFER as SDP;

fn offer(fe: &mut Control, call: &str) -> serde_json::Value {
    fe.call(json!({"command": "offer", "call-id": call, "from-tag": "f", "via-branch": "b", "kind": "chat", "sdp": SDP}))
}

#[test]
fn ops_service_sd_notify_and_sighup_reload_apply_live_keys() {
    let sock = support::notify::Notify::bind();
    let mut relay = RelayProcess::start_with("epoll", "", "", Some("info"), &[sock.env()]);
    let mut stderr = relay.take_stderr().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).unwrap();
        s
    });
    assert!(sock.next().contains("READY=1"));
    let mut fe = Control::connect(&relay.socket);
    assert_eq!(offer(&mut fe, "one")["result"], "ok");

    // Live: max-sessions and pacing; restart-only: workers.
    let path = relay.config();
    let original = std::fs::read_to_string(&path).unwrap();
    let edited = original
        .replace("[control]\n", "[control]\nmax-sessions = 1\n")
        .replace("workers = 2", "workers = 3")
        + "\n[pacing]\nbye-per-sec = 7\n";
    std::fs::write(&path, edited).unwrap();
    relay.signal(Signal::SIGHUP);
    assert!(sock.next().contains("RELOADING=1"));
    assert!(sock.next().contains("READY=1"));
    let r = offer(&mut fe, "two");
    assert_eq!(
        r["result"], "error",
        "max-sessions = 1 applies at once: {r}"
    );
    assert!(r["error-reason"].as_str().unwrap().contains("limit"), "{r}");

    // A broken file: refused, the running configuration stays.
    std::fs::write(&path, "[control\nmax-sessions = ").unwrap();
    relay.signal(Signal::SIGHUP);
    assert!(sock.next().contains("RELOADING=1"));
    assert!(sock.next().contains("READY=1"));
    assert_eq!(offer(&mut fe, "three")["result"], "error");
    fe.ok(json!({"command": "delete", "call-id": "one", "from-tag": "f"}));

    relay.signal(Signal::SIGTERM);
    assert!(sock.next().contains("STOPPING=1"));
    assert!(relay.terminate_wait().success());
    let log = reader.join().unwrap();
    let reloaded = log
        .lines()
        .find(|l| l.contains("configuration reloaded"))
        .unwrap_or_else(|| panic!("no reload line in:\n{log}"));
    assert!(
        reloaded.contains("control.max-sessions") && reloaded.contains("pacing.bye-per-sec"),
        "{reloaded}"
    );
    let restart = log
        .lines()
        .find(|l| l.contains("only after a restart"))
        .unwrap_or_else(|| panic!("no restart line in:\n{log}"));
    assert!(restart.contains("msrp.workers"), "{restart}");
    assert!(log.contains("reload refused"), "{log}");
}
