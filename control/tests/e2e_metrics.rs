//! OPS-METRICS (issue 13): the Prometheus endpoint of the real binary. A
//! session with two devices moves a file; one scrape then shows the
//! commands by name and result, sessions and legs by state, bytes and
//! chunks in and out, the 200s sent, per-worker busy time and the command
//! duration histogram, in OpenMetrics text. Anything but `GET /metrics`
//! gets a clear HTTP error and the endpoint goes on serving.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;

use serde_json::json;
use support::metrics::{http, sample};
use support::msrp_peer::MsrpPeer;
use support::sdp::{answer as answer_sdp, path_of};
use support::{Control, RelayProcess, WAIT};

fn offer_sdp() -> String {
    support::sdp::offer("msrp://127.0.0.1:7654/alice3;tcp", "")
}

const CHUNK: usize = 16 * 1024;

#[test]
fn ops_metrics_scrape_shows_the_session_commands_bytes_and_statuses() {
    for io in support::drivers() {
        eprintln!("msrp.io = {io}");
        scrape(io);
    }
}

fn scrape(io: &str) {
    let relay = RelayProcess::start_io(
        io,
        "",
        "[metrics]\nlisten = \"127.0.0.1:0\"\n[ng]\nlisten-udp = \"127.0.0.1:0\"\n",
    );
    let addr = relay.metrics.clone().expect("metrics= in the ready line");
    let msrp: SocketAddr = relay.msrp.parse().unwrap();
    let mut fe = Control::connect(&relay.socket);
    let ids = json!({"call-id": "m1", "from-tag": "f1"});
    let with = |extra: serde_json::Value| {
        let mut v = ids.clone();
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    let mut devices = Vec::new();
    let mut sender_uri = String::new();
    for b in ["phone", "tablet"] {
        let r = fe.ok(with(json!({"command": "offer", "via-branch": b, "kind": "file-transfer", "sdp": &offer_sdp()})));
        let relay_uri = path_of(r["sdp"].as_str().unwrap());
        let path = format!("msrp://127.0.0.1:9/{b}3;tcp");
        let r = fe.ok(with(
            json!({"command": "answer", "via-branch": b, "to-tag": b, "sdp": answer_sdp(&path)}),
        ));
        if let Some(sdp) = r["sdp"].as_str() {
            // The first 200 goes to the sender (PF-LMM-FIRST200).
            sender_uri = path_of(sdp);
        }
        let d = MsrpPeer::connect(b, msrp, &path, &relay_uri);
        d.bind();
        devices.push(d);
    }
    let r = fe.call(json!({"command": "answer", "call-id": "nope", "from-tag": "x", "via-branch": "b", "to-tag": "t", "sdp": answer_sdp("msrp://127.0.0.1:9/x;tcp")}));
    assert_eq!(r["result"], "error");
    // One ng ping: counted beside the JSON commands.
    let ng_addr = relay
        .ready
        .split_whitespace()
        .find_map(|w| w.strip_prefix("ng-udp="))
        .expect("ng-udp= in the ready line");
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(WAIT)).unwrap();
    udp.send_to(b"c1 d7:command4:pinge", ng_addr).unwrap();
    let mut pong = [0u8; 256];
    let n = udp.recv(&mut pong).unwrap();
    assert!(String::from_utf8_lossy(&pong[..n]).contains("pong"));
    let sender = MsrpPeer::connect(
        "alice",
        msrp,
        "msrp://127.0.0.1:7654/alice3;tcp",
        &sender_uri,
    );
    let body: Vec<u8> = (0..100_000).map(|i| (i % 251) as u8).collect();
    for at in (0..body.len()).step_by(CHUNK) {
        sender.send_chunk(&body, at, (at + CHUNK).min(body.len()));
    }
    for d in &devices {
        drop(d.wait("the file", |s| s.complete));
    }

    let (status, text) = http(&addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        text.ends_with("# EOF\n"),
        "OpenMetrics text ends with # EOF"
    );
    let v = |n: &str| sample(&text, n);
    assert_eq!(
        v(r#"msrp_relay_control_commands_total{command="offer",result="ok"}"#),
        2.0
    );
    assert_eq!(
        v(r#"msrp_relay_control_commands_total{command="answer",result="ok"}"#),
        2.0
    );
    assert_eq!(
        v(r#"msrp_relay_control_commands_total{command="answer",result="error"}"#),
        1.0
    );
    assert_eq!(
        v(r#"msrp_relay_control_command_duration_seconds_count{command="offer"}"#),
        2.0
    );
    assert_eq!(
        v(r#"msrp_relay_control_commands_total{command="ng-ping",result="ok"}"#),
        1.0
    );
    assert_eq!(v(r#"msrp_relay_sessions{state="active"}"#), 1.0);
    assert_eq!(v("msrp_relay_sessions_created_total"), 1.0);
    assert_eq!(v(r#"msrp_relay_legs{state="connected"}"#), 3.0);
    assert_eq!(v("msrp_relay_data_plane_up"), 1.0);
    let n = body.len() as f64;
    assert!(v("msrp_relay_received_bytes_total") >= n);
    assert_eq!(v("msrp_relay_sent_bytes_total"), 2.0 * n);
    let chunks = body.len().div_ceil(CHUNK) as f64;
    assert!(v("msrp_relay_chunks_received_total") >= chunks);
    assert!(v("msrp_relay_chunks_sent_total") >= 2.0 * chunks);
    assert!(v("msrp_relay_log_session_peak_bytes") > 0.0);
    assert!(v(r#"msrp_relay_msrp_responses_sent_total{code="200"}"#) >= chunks);
    assert_eq!(
        v(r#"msrp_relay_msrp_responses_sent_total{code="481"}"#),
        0.0
    );
    assert_eq!(v(r#"msrp_relay_legs_failed_total{reason="timeout"}"#), 0.0);
    assert!(v(r#"msrp_relay_worker_busy_seconds_total{worker="0"}"#) > 0.0);
    assert!(v(r#"msrp_relay_worker_busy_seconds_total{worker="1"}"#) >= 0.0);
    assert_eq!(v("msrp_relay_control_connections"), 1.0);

    // Every name the dashboard and the metrics doc use is scraped.
    for doc in ["grafana-dashboard.json", "metrics.md"] {
        let path = format!("{}/../docs/{doc}", env!("CARGO_MANIFEST_DIR"));
        for name in metric_names(&std::fs::read_to_string(path).unwrap()) {
            let sampled = text.lines().any(|l| {
                l.strip_prefix(name.as_str())
                    .is_some_and(|r| r.starts_with([' ', '{']))
            });
            assert!(sampled, "{doc} names {name}, which no scrape sample has");
        }
    }

    // Wrong requests get an HTTP error; the endpoint keeps serving.
    let (status, _) = http(&addr, b"POST /metrics HTTP/1.1\r\n\r\n");
    assert!(status.contains(" 405 "), "{status}");
    let (status, _) = http(&addr, b"GET /nothing HTTP/1.1\r\n\r\n");
    assert!(status.contains(" 404 "), "{status}");
    let (status, _) = http(&addr, b"\x00\x01garbage\r\n\r\n");
    assert!(status.contains(" 400 "), "{status}");
    let (status, _) = http(&addr, b"GET /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    fe.ok(with(json!({"command": "delete"})));
}

/// `msrp_relay_…` words of a document (a `_bucket` suffix kept: the
/// histogram's samples carry it).
fn metric_names(doc: &str) -> Vec<String> {
    let mut names: Vec<String> = doc
        .match_indices("msrp_relay_")
        .map(|(i, _)| {
            doc[i..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect::<String>()
        })
        .filter(|n| !n.ends_with('_') && n != "msrp_relay_control_command_duration_seconds")
        .collect();
    names.sort();
    names.dedup();
    assert!(names.len() > 10, "{names:?}");
    names
}
