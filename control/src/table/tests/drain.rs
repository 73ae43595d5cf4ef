//! Draining: no new session, everything about the sessions the relay has
//! goes on (OPS-DRAIN: several relays behind one front end taken out of
//! service without losing a session).

use super::*;

fn offer_of(call: &str, from: &str, branch: &str) -> serde_json::Value {
    json!({"command":"offer","call-id":call,"from-tag":from,"via-branch":branch,"kind":"chat","sdp":OFFER_SDP})
}

fn drain(t: &mut T, enable: bool) -> crate::protocol::DrainReply {
    match t.ok(json!({"command":"drain","enable":enable})).0 {
        OkReply::Drain(d) => d,
        other => panic!("not a drain reply: {other:?}"),
    }
}

/// OPS-DRAIN: `drain` refuses the offer of a call the relay does not have
/// (`draining`), and takes everything about the calls it has: another
/// branch, another from-tag of the same call, answer, query, list,
/// statistics (which says `draining`), delete. `enable: false` takes new
/// calls again.
#[test]
fn ops_drain_refuses_new_calls_and_keeps_serving_the_calls_it_has() {
    let mut t = T::new(TableConfig::default());
    t.offer("b1", "chat");
    t.answer("b1", false);
    let d = drain(&mut t, true);
    assert!(d.draining);
    assert_eq!(d.sessions, 1);
    assert!(t.core.draining());
    assert!(t.core.snapshot().draining);
    let e = t.err(offer_of("c2", "f1", "b1"));
    assert!(e.starts_with("draining"), "{e}");
    assert_eq!(t.core.len(), 1, "nothing was created");
    // The call the relay has: a new branch, the other side's session.
    let OkReply::Offer(o) = t.offer("b2", "chat") else {
        panic!()
    };
    assert!(!o.created);
    let (OkReply::Offer(o), _) = t.ok(offer_of("c1", "f2", "x1")) else {
        panic!()
    };
    assert!(o.created, "same call-id, another from-tag: stays here");
    t.answer("b2", false);
    t.ok(json!({"command":"query","call-id":"c1"}));
    let (OkReply::List(l), _) = t.ok(json!({"command":"list"})) else {
        panic!()
    };
    assert_eq!(l.calls, ["c1"]);
    let (OkReply::Statistics(st), _) = t.ok(json!({"command":"statistics"})) else {
        panic!()
    };
    assert!(st.draining);
    t.ok(json!({"command":"ping"}));
    let (OkReply::Delete(del), _) =
        t.ok(json!({"command":"delete","call-id":"c1","from-tag":"f1"}))
    else {
        panic!()
    };
    assert_eq!(del.draining, 2, "both answered legs drain as usual");
    // A second `drain` changes nothing; leaving takes new calls again.
    assert!(drain(&mut t, true).draining);
    let d = drain(&mut t, false);
    assert!(!d.draining);
    assert!(!t.core.snapshot().draining);
    let (OkReply::Offer(o), _) = t.ok(offer_of("c2", "f1", "b1")) else {
        panic!()
    };
    assert!(o.created);
}

/// OPS-DRAIN: the shutdown's drain cannot be left with `drain`
/// `enable: false` (`relay is shutting down`); new calls stay refused.
#[test]
fn ops_drain_of_the_shutdown_cannot_be_left() {
    let mut t = T::new(TableConfig::default());
    t.core.begin_shutdown_drain();
    let e = t.err(json!({"command":"drain","enable":false}));
    assert_eq!(e, "relay is shutting down");
    assert!(drain(&mut t, true).draining);
    let e = t.err(offer_of("c9", "f1", "b1"));
    assert!(e.starts_with("draining"), "{e}");
}

/// The session limit's JSON text stays `limit reached: N sessions`; a new
/// branch of a live session is not a new session.
#[test]
fn session_limit_text_unchanged_and_new_branches_still_taken() {
    let mut t = T::new(TableConfig {
        max_sessions: 1,
        ..TableConfig::default()
    });
    t.offer("b1", "chat");
    assert_eq!(
        t.err(offer_of("c2", "f1", "b1")),
        "limit reached: 1 sessions"
    );
    t.offer("b2", "chat");
}
