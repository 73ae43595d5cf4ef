//! `delete` is idempotent (issue 17): the front end sends it on the
//! sender's BYE as a matter of course, even when the session already ended
//! because the sender's MSRP connection closed first. It is answered `ok`
//! with the reason the session ended; a call-id never seen is still an
//! error.

use super::*;
use crate::protocol::DeleteReply;
use crate::table::ended::ENDED_MEMORY;

fn delete(t: &mut T, via: Option<&str>) -> Result<DeleteReply, String> {
    let mut v = json!({"command":"delete","call-id":"c1","from-tag":"f1"});
    if let Some(b) = via {
        v["via-branch"] = json!(b);
    }
    match t.run(v).reply.body {
        ReplyBody::Ok(OkReply::Delete(d)) => Ok(d),
        ReplyBody::Ok(other) => panic!("not a delete reply: {other:?}"),
        ReplyBody::Error(e) => Err(e.to_string()),
    }
}

/// The sender hangs up its MSRP connection, the session drains and ends;
/// then the front end relays the sender's BYE as `delete`: `ok`.
#[test]
fn delete_after_the_sender_hung_up_is_ok() {
    let mut t = T::new(TableConfig::default());
    t.offer("b1", "chat");
    t.answer("b1", false);
    let ev = t.core.on_plane_event(
        PlaneEvent::UpstreamEnded {
            session: SessionId(1),
        },
        t.now,
    );
    assert!(
        !ev.iter().any(|e| matches!(e, Event::SessionEnded { .. })),
        "the session drains first"
    );
    let ev = t.core.on_plane_event(
        PlaneEvent::SessionEnded {
            session: SessionId(1),
        },
        t.now,
    );
    assert!(matches!(&ev[..], [Event::SessionEnded { reason, .. }] if reason == "sender-ended"));
    t.now += Duration::from_secs(5);
    let d = delete(&mut t, None).expect("delete of an ended session");
    assert_eq!(d.draining, 0);
    assert_eq!(d.ended.as_deref(), Some("sender-ended"));
    // A device's BYE relayed late is just as harmless.
    let d = delete(&mut t, Some("b1")).expect("delete of a leg of an ended session");
    assert_eq!(d.ended.as_deref(), Some("sender-ended"));
    // A repeated one too; and nothing is told to the front end.
    let o = t.run(json!({"command":"delete","call-id":"c1","from-tag":"f1"}));
    assert!(o.events.is_empty());
    // The wire form says so.
    let line = crate::protocol::encode_reply(&o.reply);
    assert!(line.contains("\"ended\":\"sender-ended\""), "{line}");
}

/// Not a blanket `ok`: a call-id never seen, another from-tag, or a
/// session ended longer ago than the memory, is `unknown call-id`.
#[test]
fn delete_of_an_unknown_or_long_ended_call_is_an_error() {
    let mut t = T::new(TableConfig::default());
    assert!(
        delete(&mut t, None)
            .unwrap_err()
            .starts_with("unknown call-id")
    );
    t.offer("b1", "chat");
    let d = delete(&mut t, None).unwrap();
    assert_eq!(d.ended, None, "a live session is ended by it");
    t.core.on_plane_event(
        PlaneEvent::SessionEnded {
            session: SessionId(1),
        },
        t.now,
    );
    assert_eq!(
        delete(&mut t, None).unwrap().ended.as_deref(),
        Some("deleted")
    );
    assert!(
        t.err(json!({"command":"delete","call-id":"c1","from-tag":"other"}))
            .starts_with("unknown call-id")
    );
    t.now += ENDED_MEMORY;
    t.core.sweep(t.now);
    assert!(
        delete(&mut t, None)
            .unwrap_err()
            .starts_with("unknown call-id")
    );
}

/// A new session under the same call-id and from-tag is a live session
/// again: its `delete` ends it.
#[test]
fn a_reused_key_is_live_again() {
    let mut t = T::new(TableConfig::default());
    t.offer("b1", "chat");
    delete(&mut t, None).unwrap();
    t.core.on_plane_event(
        PlaneEvent::SessionEnded {
            session: SessionId(1),
        },
        t.now,
    );
    t.offer("b2", "chat");
    let d = delete(&mut t, None).unwrap();
    assert_eq!(d.ended, None);
}
