//! Codec tests: every command, reply and event round-trips; every decode
//! error becomes an error reply with the id when it was readable.

use serde_json::json;

use super::*;
use crate::policy::{
    self, CancelReason, Capability, Connectivity, Device, Registration, RequestKind,
};
use crate::protocol::*;

const MAX: usize = DEFAULT_MAX_LINE;

fn roundtrip_request(line: &str) -> Request {
    let req = decode_request(line.as_bytes(), MAX).unwrap();
    let encoded = encode_request(&req).unwrap();
    assert!(encoded.ends_with('\n') && !encoded[..encoded.len() - 1].contains('\n'));
    let again = decode_request(encoded.trim_end().as_bytes(), MAX).unwrap();
    assert_eq!(again, req, "{line}");
    // Wire words are kebab-case and the command tag is kept.
    let v: serde_json::Value = serde_json::from_str(&encoded).unwrap();
    assert_eq!(v["command"], req.command.name().as_str());
    assert_eq!(v["id"], req.id);
    req
}

#[test]
fn every_command_round_trips() {
    let lines = [
        r#"{"id":1,"command":"ping"}"#,
        r#"{"id":"o-1","command":"offer","call-id":"a84b4c76e66710","from-tag":"1928301774","via-branch":"z9hG4bK-d1","kind":"chat","instance-id":"<urn:gsma:imei:1>","sdp":"v=0\r\n"}"#,
        r#"{"id":[2],"command":"answer","call-id":"c","from-tag":"f","to-tag":"t","via-branch":"b","sdp":"v=0\r\n","auto-answer":true}"#,
        r#"{"id":3,"command":"reject","call-id":"c","from-tag":"f","via-branch":"b","code":603}"#,
        r#"{"id":4,"command":"delete","call-id":"c","from-tag":"f"}"#,
        r#"{"id":5,"command":"delete","call-id":"c","from-tag":"f","via-branch":"b"}"#,
        r#"{"id":6,"command":"query","call-id":"c"}"#,
        r#"{"id":7,"command":"list","limit":10}"#,
        r#"{"id":8,"command":"statistics"}"#,
        r#"{"id":9,"command":"register","user":"sip:+15551230002@ims.example","version":4,"devices":[{"instance-id":"<urn:gsma:imei:1>","gruu":"sip:u@x;gr=1","name":"Phone","primary":true,"capabilities":["chat","file-transfer","legacy-messaging"],"registered":true,"connectivity":"cpm"}]}"#,
        r#"{"id":10,"command":"plan","user":"sip:u@x","kind":"pager","preferences":{"excluded":{"pager":["<urn:uuid:tv>"]},"when-none":"defer"},"originator":"sip:a@x","anonymous":false}"#,
        r#"{"id":{"n":11},"command":"subscribe","events":["leg-done","cancel-branches"]}"#,
        r#"{"id":12,"command":"drain"}"#,
        r#"{"id":13,"command":"drain","enable":false}"#,
        r#"{"id":14,"command":"deliver","call-id":"d","from-tag":"s","via-branch":"b","item":"Ab12","device":"<urn:gsma:imei:1>","transport":"TCP/TLS/MSRP"}"#,
        r#"{"id":15,"command":"store-list"}"#,
        r#"{"id":16,"command":"store-delete","item":"Ab12"}"#,
    ];
    let mut seen = Vec::new();
    for line in lines {
        seen.push(roundtrip_request(line).command.name());
    }
    for name in CommandName::ALL {
        assert!(seen.contains(&name), "{name} has no round-trip test");
        assert_eq!(CommandName::parse(name.as_str()), Some(name));
    }
}

/// `drain` enters by default; `enable: false` leaves; a statistics
/// reply from before `draining` existed still decodes (not draining).
#[test]
fn drain_defaults_to_enter_and_statistics_without_draining_decodes() {
    let Command::Drain(d) = roundtrip_request(r#"{"id":1,"command":"drain"}"#).command else {
        panic!()
    };
    assert!(d.enable);
    let Command::Drain(d) =
        roundtrip_request(r#"{"id":1,"command":"drain","enable":false}"#).command
    else {
        panic!()
    };
    assert!(!d.enable);
    let old = r#"{"id":1,"result":"ok","sessions":0,"legs":0,"sessions-total":0,"legs-failed":0,"bytes-received":0,"bytes-sent":0,"spilled-bytes":0,"awaiting-reports":0,"log-stalls":0,"spill-errors":0,"control-connections":1}"#;
    let r = decode_reply(old.as_bytes(), CommandName::Statistics, MAX).unwrap();
    let ReplyBody::Ok(OkReply::Statistics(st)) = r.body else {
        panic!("{r:?}")
    };
    assert!(!st.draining);
}

#[test]
fn fields_decode_to_the_documented_types() {
    let req = roundtrip_request(
        r#"{"id":9,"command":"register","user":"sip:u@x","version":4,"devices":[{"instance-id":"i","name":"Tablet"}]}"#,
    );
    let Command::Register(Registration {
        devices, version, ..
    }) = req.command
    else {
        panic!()
    };
    assert_eq!(version, 4);
    // Defaults: registered, CPM connectivity, no capabilities, not primary.
    assert_eq!(
        devices[0],
        Device {
            instance_id: "i".into(),
            gruu: None,
            name: "Tablet".into(),
            primary: false,
            capabilities: Default::default(),
            registered: true,
            connectivity: Connectivity::Cpm
        }
    );
    let req = roundtrip_request(
        r#"{"id":3,"command":"reject","call-id":"c","from-tag":"f","via-branch":"b","code":486}"#,
    );
    let Command::Reject(r) = req.command else {
        panic!()
    };
    assert_eq!(r.response(), policy::Response::Fail);
    assert_eq!(
        Reject {
            code: 603,
            ..r.clone()
        }
        .response(),
        policy::Response::Reject
    );
    assert_eq!(
        Reject { code: 408, ..r }.response(),
        policy::Response::Timeout
    );
    let _ = Capability::Chat;
}

#[test]
fn every_reply_round_trips() {
    let dev = Device {
        instance_id: "i".into(),
        gruu: None,
        name: "Phone".into(),
        primary: true,
        capabilities: [Capability::Chat].into(),
        registered: true,
        connectivity: Connectivity::Cpm,
    };
    let mut reg = policy::Registry::default();
    let user = reg
        .register(Registration {
            user: "sip:u@x".into(),
            version: 1,
            devices: vec![dev],
        })
        .unwrap()
        .clone();
    let plan = policy::plan(
        RequestKind::Chat,
        &user,
        &Default::default(),
        &Default::default(),
    );
    let replies = [
        (CommandName::Ping, OkReply::Ping),
        (
            CommandName::Offer,
            OkReply::Offer(OfferReply {
                sdp: "v=0\r\n".into(),
                created: true,
                from_store: true,
            }),
        ),
        (
            CommandName::Answer,
            OkReply::Answer(AnswerReply {
                forward: true,
                sdp: Some("v=0\r\n".into()),
                close: false,
            }),
        ),
        (
            CommandName::Answer,
            OkReply::Answer(AnswerReply {
                forward: false,
                sdp: None,
                close: false,
            }),
        ),
        (
            CommandName::Reject,
            OkReply::Reject(RejectReply {
                sender_status: Some(603),
            }),
        ),
        (
            CommandName::Delete,
            OkReply::Delete(DeleteReply {
                draining: 3,
                ended: None,
            }),
        ),
        (
            CommandName::Query,
            OkReply::Query(QueryReply {
                call_id: "c".into(),
                from_tag: "f".into(),
                kind: RequestKind::FileTransfer,
                legs: vec![LegInfo {
                    role: LegRole::Device,
                    via_branch: Some("b".into()),
                    to_tag: Some("t".into()),
                    instance_id: None,
                    state: LegState::Draining,
                    bytes_received: 0,
                    bytes_sent: 4096,
                    backlog_bytes: 1024,
                    age_ms: 1500,
                    connect_ms: Some(120),
                }],
            }),
        ),
        (
            CommandName::List,
            OkReply::List(ListReply {
                calls: vec!["c".into()],
            }),
        ),
        (
            CommandName::Statistics,
            OkReply::Statistics(StatisticsReply {
                sessions: 1,
                legs: 4,
                sessions_total: 9,
                legs_failed: 1,
                bytes_received: 10,
                bytes_sent: 30,
                spilled_bytes: 0,
                awaiting_reports: 2,
                log_stalls: 3,
                spill_errors: 1,
                control_connections: 1,
                draining: true,
            }),
        ),
        (
            CommandName::Register,
            OkReply::Register(RegisterReply {
                user: "sip:u@x".into(),
                version: 1,
                devices: 1,
                primary: Some("i".into()),
            }),
        ),
        (CommandName::Plan, OkReply::Plan(plan)),
        (
            CommandName::Subscribe,
            OkReply::Subscribe(SubscribeReply {
                events: vec![EventName::LegDone],
            }),
        ),
        (
            CommandName::Drain,
            OkReply::Drain(DrainReply {
                draining: true,
                sessions: 12,
            }),
        ),
        (
            CommandName::Deliver,
            OkReply::Deliver(OfferReply {
                created: true,
                from_store: false,
                sdp: "v=0\r\n".into(),
            }),
        ),
        (
            CommandName::StoreList,
            OkReply::StoreList(StoreListReply {
                items: vec![StoredItem {
                    bytes: 52_428_800,
                    call_id: "c".into(),
                    complete: true,
                    created_ms: 1_796_000_000_000,
                    delivered: 1,
                    from_tag: "f".into(),
                    item: "Ab12".into(),
                    kind: "file-transfer".into(),
                    messages: 1,
                    pending: vec!["<urn:gsma:imei:1>".into()],
                    state: "stored".into(),
                }],
            }),
        ),
        (
            CommandName::StoreDelete,
            OkReply::StoreDelete(StoreDeleteReply { deleted: true }),
        ),
    ];
    for (command, ok) in replies {
        let reply = Reply::ok(json!({"seq": 7}), ok);
        let line = encode_reply(&reply);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["result"], "ok");
        assert_eq!(v["id"], json!({"seq": 7}));
        assert_eq!(
            decode_reply(line.trim_end().as_bytes(), command, MAX).unwrap(),
            reply,
            "{command}"
        );
        assert_eq!(
            line,
            sorted_line(&reply),
            "{command}: id, result, then keys in order"
        );
    }
    let err = Reply::error(json!(5), "unknown call-id \"c\"");
    let line = encode_reply(&err);
    assert_eq!(
        line,
        "{\"id\":5,\"result\":\"error\",\"error-reason\":\"unknown call-id \\\"c\\\"\"}\n"
    );
    assert_eq!(
        decode_reply(line.trim_end().as_bytes(), CommandName::Query, MAX).unwrap(),
        err
    );
}

#[test]
fn every_event_round_trips() {
    let events = [
        Event::LegConnected {
            call_id: "c".into(),
            from_tag: "f".into(),
            via_branch: Some("b".into()),
            to_tag: Some("t".into()),
        },
        Event::LegConnected {
            call_id: "c".into(),
            from_tag: "f".into(),
            via_branch: None,
            to_tag: None,
        },
        Event::LegDone {
            call_id: "c".into(),
            from_tag: "f".into(),
            via_branch: "b".into(),
            to_tag: Some("t".into()),
            reason: DoneReason::Drained,
            bytes_sent: 4096,
        },
        Event::LegFailed {
            call_id: "c".into(),
            from_tag: "f".into(),
            via_branch: Some("b".into()),
            to_tag: None,
            error: "no MSRP connection within 30 s".into(),
        },
        Event::CancelBranches {
            call_id: "c".into(),
            from_tag: "f".into(),
            via_branches: vec!["b2".into(), "b3".into()],
            reason: CancelReason::Declined,
            reason_header: CancelReason::Declined.reason_header().into(),
        },
        Event::SessionEnded {
            call_id: "c".into(),
            from_tag: "f".into(),
            reason: "deleted".into(),
        },
    ];
    let stored = [
        Event::Stored {
            call_id: "c".into(),
            from_tag: "f".into(),
            item: "Ab12".into(),
            pending: vec!["<urn:gsma:imei:1>".into()],
            bytes: 1 << 20,
        },
        Event::StoreFailed {
            call_id: "c".into(),
            from_tag: "f".into(),
            item: "Ab12".into(),
            reason: "disk full".into(),
        },
    ];
    for e in events.into_iter().chain(stored) {
        let line = encode_event(&e).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["call-id"], "c");
        assert_eq!(serde_json::to_value(e.name()).unwrap(), v["event"]);
        assert_eq!(decode_event(line.trim_end().as_bytes(), MAX).unwrap(), e);
    }
    assert!(decode_event(br#"{"event":"leg-exploded","call-id":"c"}"#, MAX).is_err());
}

#[test]
#[allow(clippy::type_complexity)] // the table's row type, spelled once
fn decode_errors_are_typed_and_echo_the_id_when_readable() {
    let rows: Vec<(&[u8], fn(&DecodeError) -> bool, serde_json::Value)> = vec![
        (b"{not json", |e| matches!(e, DecodeError::Malformed(_)), json!(null)),
        (b"\xff\xfe", |e| matches!(e, DecodeError::Malformed(_)), json!(null)),
        (b"[1,2]", |e| matches!(e, DecodeError::NotAnObject), json!(null)),
        (br#"{"command":"ping"}"#, |e| matches!(e, DecodeError::MissingId), json!(null)),
        (br#"{"id":"x"}"#, |e| matches!(e, DecodeError::MissingCommand { .. }), json!("x")),
        (br#"{"id":"x","command":7}"#, |e| matches!(e, DecodeError::MissingCommand { .. }), json!("x")),
        (br#"{"id":[1],"command":"reboot"}"#, |e| matches!(e, DecodeError::UnknownCommand { command, .. } if command == "reboot"), json!([1])),
        (br#"{"id":2,"command":"offer","call-id":"c"}"#, |e| matches!(e, DecodeError::InvalidFields { command: CommandName::Offer, .. }), json!(2)),
        (br#"{"id":3,"command":"reject","call-id":"c","from-tag":"f","via-branch":"b","code":"603"}"#, |e| matches!(e, DecodeError::InvalidFields { .. }), json!(3)),
        (br#"{"id":4,"command":"plan","user":"u","kind":"carrier-pigeon"}"#, |e| matches!(e, DecodeError::InvalidFields { .. }), json!(4)),
    ];
    for (line, check, id) in rows {
        let err = decode_request(line, MAX).unwrap_err();
        assert!(
            check(&err),
            "{:?} gave {err:?}",
            String::from_utf8_lossy(line)
        );
        let reply = err.to_reply().to_value();
        assert_eq!(reply["id"], id);
        assert_eq!(reply["result"], "error");
        assert!(!reply["error-reason"].as_str().unwrap().is_empty());
    }
    let long = format!(r#"{{"id":1,"command":"ping","pad":"{}"}}"#, "x".repeat(100));
    assert!(matches!(
        decode_request(long.as_bytes(), 64),
        Err(DecodeError::LineTooLong { max: 64, .. })
    ));
    assert!(
        decode_request(long.as_bytes(), 200).is_ok(),
        "unknown fields are ignored"
    );
}

#[test]
fn line_splitter_bounds_lines_and_stays_usable_after_an_oversized_one() {
    let mut s = LineSplitter::new(16);
    let got = s.feed(b"{\"id\":1}\r\n{\"id\"");
    assert_eq!(got, vec![Ok(b"{\"id\":1}".to_vec())]);
    assert_eq!(s.feed(b":2}\n\n"), vec![Ok(b"{\"id\":2}".to_vec())]);
    // An over-long line: one error, its tail skipped across feeds, then on.
    let got = s.feed(b"0123456789abcdefXYZ");
    assert!(matches!(
        got.as_slice(),
        [Err(DecodeError::LineTooLong { max: 16, .. })]
    ));
    assert!(s.buffered() <= 16);
    assert_eq!(s.feed(b"more junk"), vec![]);
    assert_eq!(s.feed(b"tail\nok\n"), vec![Ok(b"ok".to_vec())]);
    // Exactly at the bound is fine, with or without CR.
    assert_eq!(
        s.feed(b"0123456789abcdef\r\n"),
        vec![Ok(b"0123456789abcdef".to_vec())]
    );
    // Over-long line complete in one feed.
    let got = s.feed(b"0123456789abcdefg\nz\n");
    assert!(matches!(got.as_slice(), [Err(DecodeError::LineTooLong { .. }), Ok(z)] if z == b"z"));
}

/// The bad-input lines of docs/control-protocol.md §7, verbatim.
#[test]
fn documented_error_replies_are_exact() {
    let rows = [
        (
            &br#"{"id":40,"command":"reboot"}"#[..],
            "{\"id\":40,\"result\":\"error\",\"error-reason\":\"unknown command \\\"reboot\\\"\"}\n",
        ),
        (
            &br#"{"id":41,"command":"offer","call-id":"c4"}"#[..],
            "{\"id\":41,\"result\":\"error\",\"error-reason\":\"invalid offer request: missing field `from-tag`\"}\n",
        ),
        (
            &b"hello, relay"[..],
            "{\"id\":null,\"result\":\"error\",\"error-reason\":\"malformed JSON: expected value at line 1 column 1\"}\n",
        ),
    ];
    for (line, want) in rows {
        assert_eq!(
            encode_reply(&decode_request(line, MAX).unwrap_err().to_reply()),
            want
        );
    }
}

/// A reply as `id`, `result`, then the other keys sorted, through a
/// [`serde_json::Value`] map: what the direct encoder must write.
fn sorted_line(reply: &Reply) -> String {
    let serde_json::Value::Object(mut map) = reply.to_value() else {
        panic!("not an object");
    };
    let mut s = format!(
        "{{\"id\":{},\"result\":{}",
        map.remove("id").unwrap(),
        map.remove("result").unwrap()
    );
    for (k, v) in map {
        s.push_str(&format!(",{}:{v}", serde_json::Value::String(k)));
    }
    s.push_str("}\n");
    s
}

/// The setup path's one-pass decoding gives what the `Value` path gives,
/// and leaves to it what it cannot decode.
#[test]
fn setup_commands_decode_the_same_without_the_value_tree() {
    let lines: [&[u8]; 4] = [
        br#"{"id":{"a":[1]},"command":"delete","call-id":"c","from-tag":"f","x-new":{"y":1}}"#,
        br#"{"command":"reject","via-branch":"b","id":"r","call-id":"c","from-tag":"f","code":603}"#,
        br#"{"id":1,"command":"answer","call-id":"c","from-tag":"f","to-tag":"t","via-branch":"b","sdp":"v=0\r\n","auto-answer":true}"#,
        br#"{"id":2,"command":"offer","call-id":"c","from-tag":"f","via-branch":"b","sdp":"v=0\r\n","kind":"chat","instance-id":"i"}"#,
    ];
    for line in lines {
        let fast = decode_setup(line).unwrap();
        let value: serde_json::Value = serde_json::from_slice(line).unwrap();
        let slow = Request {
            id: value["id"].clone(),
            command: serde_json::from_value(value).unwrap(),
        };
        assert_eq!(fast, slow, "{}", String::from_utf8_lossy(line));
        assert_eq!(decode_request(line, MAX).unwrap(), slow);
    }
    // A repeated key: the Value path's reading (the last one wins).
    let dup = br#"{"id":1,"command":"delete","call-id":"a","call-id":"b","from-tag":"f"}"#;
    assert!(decode_setup(dup).is_none());
    let Command::Delete(d) = decode_request(dup, MAX).unwrap().command else {
        panic!("not a delete");
    };
    assert_eq!(d.call_id, "b");
}
