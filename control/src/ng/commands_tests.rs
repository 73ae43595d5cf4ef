//! The ng adapter over the real session table and a fake data plane.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Instant;

use super::*;
use crate::fake_plane::FakePlane;
use crate::ng::bencode::{self, Limits};
use crate::table::TableConfig;
use crate::table::tests::{OFFER_SDP, answer_sdp};

#[path = "drain_tests.rs"]
mod drain;

const CHAT_SDP: &str = "v=0\r\no=alice 1 1 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\nm=message 7654 TCP/MSRP *\r\na=accept-types:message/cpim\r\na=setup:actpass\r\na=path:msrp://203.0.113.5:7654/chat1;tcp\r\n";
const AUDIO_SDP: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";

struct T {
    core: Core,
    plane: Arc<FakePlane>,
    now: Instant,
}

impl T {
    fn new() -> T {
        let plane = Arc::new(FakePlane::default());
        T {
            core: Core::new(TableConfig::default(), plane.clone()),
            plane,
            now: Instant::now(),
        }
    }

    /// Runs one request given as `(key, value)` text pairs (lists as
    /// `Value`s through `run_v`).
    fn run(&mut self, pairs: &[(&str, &str)]) -> Value {
        let v = Value::Dict(
            pairs
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), Value::str(*v)))
                .collect(),
        );
        self.run_v(&v)
    }

    fn run_v(&mut self, v: &Value) -> Value {
        // Through the encoder and decoder, as on the wire.
        let bytes = bencode::encode(v);
        let v = bencode::decode(&bytes, Limits::default()).unwrap();
        execute(&mut self.core, ConnId(u64::MAX), &v, self.now).reply
    }
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no {key} in {v:?}"))
}

fn ok(v: &Value) {
    assert_eq!(s(v, "result"), "ok", "{v:?}");
}

fn err(v: &Value) -> String {
    assert_eq!(s(v, "result"), "error", "{v:?}");
    s(v, "error-reason").to_owned()
}

fn offer(t: &mut T, branch: &str) -> Value {
    t.run(&[
        ("command", "offer"),
        ("call-id", "c1"),
        ("from-tag", "f1"),
        ("via-branch", branch),
        ("sdp", OFFER_SDP),
    ])
}

fn answer(t: &mut T, branch: &str, to_tag: &str) -> Value {
    t.run(&[
        ("command", "answer"),
        ("call-id", "c1"),
        ("from-tag", "f1"),
        ("to-tag", to_tag),
        ("via-branch", branch),
        ("sdp", &answer_sdp("active")),
    ])
}

fn legs(t: &mut T) -> Vec<(String, String)> {
    let q = t.run(&[("command", "query"), ("call-id", "c1")]);
    ok(&q);
    let Some(Value::List(legs)) = q.get("legs") else {
        panic!("no legs in {q:?}");
    };
    legs.iter()
        .map(|l| {
            let b = l
                .get("via-branch")
                .and_then(Value::as_str)
                .unwrap_or("sender");
            (b.to_owned(), s(l, "state").to_owned())
        })
        .collect()
}

#[test]
fn ng_ping_pong() {
    let mut t = T::new();
    assert_eq!(s(&t.run(&[("command", "ping")]), "result"), "pong");
}

/// PF-LMM-FORK, PF-LMM-FIRST200 over ng: one `offer` per via-branch adds
/// a device leg each with its own relay path; the first `answer` is the
/// one to forward, the second is connected quietly, and both carry the
/// sender's SDP (a proxy relays every 200).
#[test]
fn ng_pf_lmm_fork_first200_offer_two_branches_answer_both() {
    let mut t = T::new();
    let o1 = offer(&mut t, "b1");
    let o2 = offer(&mut t, "b2");
    ok(&o1);
    ok(&o2);
    let (p1, p2) = (s(&o1, "sdp"), s(&o2, "sdp"));
    assert!(p1.contains("a=path:msrp://127.0.0.1:2855/"), "{p1}");
    assert!(p1.contains("a=file-selector:"), "untouched attributes pass");
    assert_ne!(p1, p2, "each branch has its own path");
    let a1 = answer(&mut t, "b1", "dev-a");
    ok(&a1);
    assert_eq!(s(&a1, "forward"), "yes");
    assert!(s(&a1, "sdp").contains("a=setup:passive"));
    let a2 = answer(&mut t, "b2", "dev-b");
    ok(&a2);
    assert_eq!(s(&a2, "forward"), "no");
    assert_eq!(s(&a2, "sdp"), s(&a1, "sdp"));
    assert_eq!(
        s(&t.run(&[("command", "query"), ("call-id", "c1")]), "kind"),
        "file-transfer"
    );
    assert_eq!(legs(&mut t).len(), 3);
}

/// PF-LMM-BYE over ng: the sender's BYE (`from-tag` the sender's,
/// `to-tag` the device that answered) ends the whole session with paced
/// drains; the reply comes at once.
#[test]
fn ng_pf_lmm_bye_sender_delete_ends_whole_session() {
    let mut t = T::new();
    offer(&mut t, "b1");
    offer(&mut t, "b2");
    answer(&mut t, "b1", "dev-a");
    answer(&mut t, "b2", "dev-b");
    let d = t.run(&[
        ("command", "delete"),
        ("call-id", "c1"),
        ("from-tag", "f1"),
        ("to-tag", "dev-a"),
    ]);
    ok(&d);
    assert_eq!(d.get("draining"), Some(&Value::Int(2)));
    assert!(t.plane.calls().iter().any(|c| c.starts_with("end_session")));
    // Twice: harmless.
    ok(&t.run(&[("command", "delete"), ("call-id", "c1"), ("from-tag", "f1")]));
}

/// FT-TERMINATE over ng: a device's BYE carries the device's tag as
/// `from-tag` and the sender's as `to-tag`; only that leg ends.
#[test]
fn ng_ft_terminate_device_bye_swapped_tags_ends_one_leg() {
    let mut t = T::new();
    offer(&mut t, "b1");
    offer(&mut t, "b2");
    answer(&mut t, "b1", "dev-a");
    answer(&mut t, "b2", "dev-b");
    let d = t.run(&[
        ("command", "delete"),
        ("call-id", "c1"),
        ("from-tag", "dev-b"),
        ("to-tag", "f1"),
    ]);
    ok(&d);
    assert!(!t.plane.calls().iter().any(|c| c.starts_with("end_session")));
    let l = legs(&mut t);
    assert_eq!(l[2], ("b2".to_owned(), "done".to_owned()), "{l:?}");
    assert_ne!(l[1].1, "done", "{l:?}");
    // The same BYE again (a SIP retransmission with a new cookie): ok.
    ok(&t.run(&[
        ("command", "delete"),
        ("call-id", "c1"),
        ("from-tag", "dev-b"),
        ("to-tag", "f1"),
    ]));
}

/// Behind a proxy every 200 reaches the sender, which hangs up the
/// extra dialogs: a `delete` with the sender's tag and the `to-tag` of a
/// device whose 200 was not the forwarded one ends that leg only.
#[test]
fn ng_sender_bye_of_an_extra_dialog_ends_that_leg_only() {
    let mut t = T::new();
    offer(&mut t, "b1");
    offer(&mut t, "b2");
    answer(&mut t, "b1", "dev-a");
    answer(&mut t, "b2", "dev-b");
    ok(&t.run(&[
        ("command", "delete"),
        ("call-id", "c1"),
        ("from-tag", "f1"),
        ("to-tag", "dev-b"),
    ]));
    assert!(!t.plane.calls().iter().any(|c| c.starts_with("end_session")));
    let l = legs(&mut t);
    assert_eq!(l[2].1, "done", "{l:?}");
    assert_ne!(l[1].1, "done", "{l:?}");
}

/// A branch's failure reply as the module reports it from a reply route:
/// the tags swapped (the device's To tag, never answered, as `from-tag`)
/// and the branch's `via-branch`: that leg ends.
#[test]
fn ng_branch_failure_with_swapped_tags_and_via_branch_ends_that_leg() {
    let mut t = T::new();
    offer(&mut t, "b1");
    offer(&mut t, "b2");
    ok(&t.run(&[
        ("command", "delete"),
        ("call-id", "c1"),
        ("from-tag", "busy-dev"),
        ("to-tag", "f1"),
        ("via-branch", "b2"),
    ]));
    let l = legs(&mut t);
    assert_eq!(l[1].1, "invited", "{l:?}");
    assert_eq!(l[2].1, "done", "{l:?}");
}

/// A CANCEL of one branch: `delete` with the sender's tag and that
/// `via-branch` ends that leg only.
#[test]
fn ng_delete_with_via_branch_ends_one_leg() {
    let mut t = T::new();
    offer(&mut t, "b1");
    offer(&mut t, "b2");
    ok(&t.run(&[
        ("command", "delete"),
        ("call-id", "c1"),
        ("from-tag", "f1"),
        ("via-branch", "b1"),
    ]));
    let l = legs(&mut t);
    assert_eq!(l[1].1, "done", "{l:?}");
    assert_eq!(l[2].1, "invited", "{l:?}");
}

#[test]
fn ng_offer_without_via_branch_and_kind_from_sdp() {
    let mut t = T::new();
    let o = t.run(&[
        ("command", "offer"),
        ("call-id", "c1"),
        ("from-tag", "f1"),
        ("sdp", CHAT_SDP),
        ("ICE", "remove"),
        ("transport protocol", "TCP/MSRP"),
    ]);
    ok(&o);
    let q = t.run(&[("command", "query"), ("call-id", "c1")]);
    assert_eq!(s(&q, "kind"), "chat");
    assert_eq!(legs(&mut t)[1].0, DEFAULT_BRANCH);
    let a = t.run(&[
        ("command", "answer"),
        ("call-id", "c1"),
        ("from-tag", "f1"),
        ("to-tag", "t1"),
        ("sdp", &answer_sdp("active")),
    ]);
    ok(&a);
}

#[test]
fn ng_bad_input_commands_get_clear_errors() {
    let mut t = T::new();
    let e = err(&t.run(&[("command", "reboot")]));
    assert!(e.contains("Unrecognized command"), "{e}");
    let e = err(&t.run(&[("call-id", "c1")]));
    assert!(e.contains("command"), "{e}");
    let e = err(&t.run_v(&Value::List(vec![])));
    assert!(e.contains("dictionary"), "{e}");
    let e = err(&answer(&mut t, "b1", "x"));
    assert!(e.contains("unknown call-id"), "{e}");
    let e = err(&t.run(&[
        ("command", "offer"),
        ("call-id", "c2"),
        ("from-tag", "f"),
        ("sdp", AUDIO_SDP),
    ]));
    assert!(e.contains("no MSRP media"), "{e}");
    let e = err(&t.run(&[("command", "offer"), ("call-id", "c2"), ("from-tag", "f")]));
    assert!(e.contains("missing key \"sdp\""), "{e}");
    let e = err(&t.run(&[
        ("command", "offer"),
        ("call-id", "c2"),
        ("from-tag", "f"),
        ("sdp", CHAT_SDP),
        ("transport-protocol", "RTP/AVP"),
    ]));
    assert!(e.contains("transport-protocol"), "{e}");
    // A delete of an unknown call: ok with a warning (rtpengine's way),
    // an error with `fatal`.
    let w = t.run(&[
        ("command", "delete"),
        ("call-id", "never"),
        ("from-tag", "f"),
    ]);
    ok(&w);
    assert!(s(&w, "warning").contains("unknown call-id"), "{w:?}");
    let fatal = Value::Dict(
        [
            (b"command".to_vec(), Value::str("delete")),
            (b"call-id".to_vec(), Value::str("never")),
            (b"from-tag".to_vec(), Value::str("f")),
            (b"flags".to_vec(), Value::List(vec![Value::str("fatal")])),
        ]
        .into_iter()
        .collect(),
    );
    let e = err(&t.run_v(&fatal));
    assert!(e.contains("unknown call-id"), "{e}");
    let e = err(&t.run(&[
        ("command", "offer"),
        ("call-id", "c2"),
        ("from-tag", "f"),
        ("to-tag", "t"),
        ("sdp", CHAT_SDP),
    ]));
    assert!(e.contains("re-INVITE"), "{e}");
    // Nothing was created by any of these.
    assert!(t.core.is_empty());
    // A session present is not touched by others' errors.
    offer(&mut t, "b1");
    let w = t.run(&[("command", "delete"), ("call-id", "c1"), ("from-tag", "zz")]);
    assert!(s(&w, "warning").contains("unknown call-id"), "{w:?}");
    assert_eq!(legs(&mut t).len(), 2);
}

#[test]
fn ng_list_and_statistics() {
    let mut t = T::new();
    offer(&mut t, "b1");
    let l = t.run(&[("command", "list")]);
    ok(&l);
    assert_eq!(l.get("calls"), Some(&Value::List(vec![Value::str("c1")])));
    let st = t.run(&[("command", "statistics")]);
    ok(&st);
    assert_eq!(st.get("sessions-total"), Some(&Value::Int(1)));
}

/// `transport-protocol` in an `offer` picks the branch leg's transport: a
/// plain sender's offer becomes a TLS device's (m= protocol and port,
/// msrps path); without a TLS listener the offer is refused with a clear
/// reason.
#[test]
fn ng_offer_transport_protocol_picks_the_device_legs_transport() {
    let mut t = T::new();
    let no_tls = t.run(&[
        ("command", "offer"),
        ("call-id", "tp1"),
        ("from-tag", "f"),
        ("via-branch", "b1"),
        ("sdp", CHAT_SDP),
        ("transport-protocol", "TCP/TLS/MSRP"),
    ]);
    assert!(err(&no_tls).contains("no TLS listener"), "{no_tls:?}");

    let plane = Arc::new(FakePlane::default());
    let cfg = TableConfig {
        relay_tls_port: Some(2856),
        ..TableConfig::default()
    };
    let mut t = T {
        core: Core::new(cfg, plane.clone()),
        plane,
        now: Instant::now(),
    };
    let r = t.run(&[
        ("command", "offer"),
        ("call-id", "tp1"),
        ("from-tag", "f"),
        ("via-branch", "b1"),
        ("sdp", CHAT_SDP),
        ("transport-protocol", "TCP/TLS/MSRP"),
    ]);
    let sdp = s(&r, "sdp");
    assert!(sdp.contains("m=message 2856 TCP/TLS/MSRP *"), "{sdp}");
    assert!(sdp.contains("a=path:msrps://127.0.0.1:2856/"), "{sdp}");
    let r = t.run(&[
        ("command", "offer"),
        ("call-id", "tp1"),
        ("from-tag", "f"),
        ("via-branch", "b2"),
        ("sdp", CHAT_SDP),
    ]);
    assert!(s(&r, "sdp").contains("m=message 2855 TCP/MSRP *"), "{r:?}");
}
