//! The ng door while the relay drains, and at its session limit: a new
//! call's `offer` gets rtpengine's `Parallel session limit reached` (the
//! module then tries the next relay of its set at once); everything about
//! the calls the relay has goes on.

use super::*;
use crate::table::TableConfig;

fn offer_call(t: &mut T, call: &str, branch: &str) -> Value {
    t.run(&[
        ("command", "offer"),
        ("call-id", call),
        ("from-tag", "f1"),
        ("via-branch", branch),
        ("sdp", CHAT_SDP),
    ])
}

/// OPS-DRAIN over ng: while draining, an `offer` for a call-id the relay
/// does not know is `Parallel session limit reached`, exactly; a new
/// via-branch of a call it has, answer, query, list, statistics (with
/// `draining: yes`), ping and delete all still work. Leaving the drain
/// takes new calls again.
#[test]
fn ng_ops_drain_new_call_gets_session_limit_existing_calls_go_on() {
    let mut t = T::new();
    ok(&offer(&mut t, "b1"));
    t.core.set_draining(true).unwrap();
    assert_eq!(err(&offer_call(&mut t, "new-call", "b1")), SESSION_LIMIT);
    assert_eq!(SESSION_LIMIT, "Parallel session limit reached");
    ok(&offer(&mut t, "b2"));
    ok(&answer(&mut t, "b1", "dev-a"));
    assert_eq!(legs(&mut t).len(), 3);
    let st = t.run(&[("command", "statistics")]);
    ok(&st);
    assert_eq!(s(&st, "draining"), "yes");
    let l = t.run(&[("command", "list")]);
    assert!(
        matches!(l.get("calls"), Some(Value::List(c)) if c.len() == 1),
        "{l:?}"
    );
    assert_eq!(s(&t.run(&[("command", "ping")]), "result"), "pong");
    let d = t.run(&[("command", "delete"), ("call-id", "c1"), ("from-tag", "f1")]);
    ok(&d);
    assert!(d.get("warning").is_none(), "{d:?}");
    t.core.set_draining(false).unwrap();
    ok(&offer_call(&mut t, "new-call", "b1"));
}

/// The session limit over ng is the same `Parallel session limit
/// reached` (the JSON socket keeps `limit reached: N sessions`); the
/// shutdown's cut says it too.
#[test]
fn ng_session_limit_and_shutdown_say_parallel_session_limit_reached() {
    let plane = Arc::new(FakePlane::default());
    let mut t = T {
        core: Core::new(
            TableConfig {
                max_sessions: 1,
                ..TableConfig::default()
            },
            plane.clone(),
        ),
        plane,
        now: Instant::now(),
    };
    ok(&offer_call(&mut t, "one", "b1"));
    assert_eq!(err(&offer_call(&mut t, "two", "b1")), SESSION_LIMIT);
    ok(&offer_call(&mut t, "one", "b2"));
    let _ = t.core.begin_shutdown(t.now);
    assert_eq!(err(&offer_call(&mut t, "three", "b1")), SESSION_LIMIT);
    // Other refusals keep their own text.
    let e = err(&t.run(&[
        ("command", "offer"),
        ("call-id", "four"),
        ("from-tag", "f1"),
        ("sdp", AUDIO_SDP),
    ]));
    assert!(e.contains("no MSRP media"), "{e}");
}
