//! A device leg the control plane removes (the front end's `delete` with a
//! `via-branch`, a policy close) owes the front end one `leg-done`; it goes
//! out when the data plane reports the removal (`LegRemoved`, with the
//! bytes the device got), not from a round trip in the command. These
//! tests check it is said exactly once whatever the plane reports first.

use super::*;

fn leg_dones(ev: &[Event]) -> Vec<(String, DoneReason, u64)> {
    ev.iter()
        .filter_map(|e| match e {
            Event::LegDone {
                via_branch,
                reason,
                bytes_sent,
                ..
            } => Some((via_branch.clone(), *reason, *bytes_sent)),
            _ => None,
        })
        .collect()
}

fn deleted(branch: &str, bytes: u64) -> Vec<(String, DoneReason, u64)> {
    vec![(branch.to_owned(), DoneReason::Deleted, bytes)]
}

impl T {
    /// The device's BYE: `delete` with its branch. Returns the events of
    /// the command itself.
    fn bye(&mut self, branch: &str) -> Vec<Event> {
        let (OkReply::Delete(d), ev) =
            self.ok(json!({"command":"delete","call-id":"c1","from-tag":"f1","via-branch":branch}))
        else {
            panic!("not a delete reply")
        };
        assert_eq!(d.draining, 0);
        ev
    }

    fn plane_event(&mut self, ev: PlaneEvent) -> Vec<Event> {
        self.core.on_plane_event(ev, self.now)
    }

    fn connected(&mut self, i: u32) {
        self.plane_event(PlaneEvent::LegConnected { leg: leg(i) });
    }
}

/// FT-TERMINATE: the device's BYE posts the removal and replies without
/// asking the worker anything; the `leg-done` comes with the plane's
/// report, once, and a repeated `delete` is harmless.
#[test]
fn ft_terminate_device_bye_leg_done_comes_from_the_plane_once() {
    let mut t = T::new(TableConfig::default());
    t.offer("b1", "file-transfer");
    t.offer("b2", "file-transfer");
    t.answer("b1", false);
    t.connected(1);
    assert!(t.bye("b1").is_empty(), "nothing until the plane reports");
    let calls = t.plane.calls();
    assert!(calls.contains(&"remove_leg 1/1".to_owned()), "{calls:?}");
    assert!(
        !calls.iter().any(|c| c.starts_with("session_legs")),
        "no round trip to the worker: {calls:?}"
    );
    // Meanwhile the leg is over for `query`.
    let (OkReply::Query(q), _) = t.ok(json!({"command":"query","call-id":"c1"})) else {
        panic!()
    };
    assert_eq!(q.legs[1].state, crate::protocol::LegState::Done);
    assert_eq!(leg_dones(&t.pump()), deleted("b1", 100));
    assert!(t.bye("b1").is_empty());
    assert!(t.pump().is_empty(), "removed once, reported once");
    // Nothing more about the leg, even a connection that raced the BYE.
    assert!(
        t.plane_event(PlaneEvent::LegConnected { leg: leg(1) })
            .is_empty()
    );
    assert!(
        t.plane_event(PlaneEvent::LegDone {
            leg: leg(1),
            bytes: 7
        })
        .is_empty()
    );
}

/// A leg deleted before it connected (still invited; answered, never
/// bound) gets its `leg-done` the same way.
#[test]
fn device_bye_before_connecting_is_confirmed() {
    let mut t = T::new(TableConfig::default());
    for b in ["b1", "b2", "b3"] {
        t.offer(b, "chat");
    }
    t.answer("b2", false);
    assert!(t.bye("b1").is_empty());
    assert!(t.bye("b2").is_empty());
    let mut told = leg_dones(&t.pump());
    told.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        told,
        [
            ("b1".to_owned(), DoneReason::Deleted, 100),
            ("b2".to_owned(), DoneReason::Deleted, 200)
        ]
    );
}

/// The leg drained (the sender's BYE came first) just before the removal
/// reached the worker: the plane's `LegDone` settles it, with the reason
/// the front end asked for; the `LegRemoved` after it says nothing, and
/// the drained-bytes counter is not charged.
#[test]
fn device_bye_racing_its_drain_is_told_once() {
    let mut t = T::new(TableConfig::default());
    t.offer("b1", "file-transfer");
    t.answer("b1", false);
    t.connected(1);
    let (OkReply::Delete(d), _) = t.ok(json!({"command":"delete","call-id":"c1","from-tag":"f1"}))
    else {
        panic!()
    };
    assert_eq!(d.draining, 1);
    assert!(t.bye("b1").is_empty());
    let ev = t.plane_event(PlaneEvent::LegDone {
        leg: leg(1),
        bytes: 4096,
    });
    assert_eq!(leg_dones(&ev), deleted("b1", 4096));
    assert!(t.pump().is_empty());
    let ev = t.plane_event(PlaneEvent::SessionEnded {
        session: SessionId(1),
    });
    assert!(matches!(&ev[..], [Event::SessionEnded { reason, .. }] if reason == "deleted"));
    let (OkReply::Statistics(s), _) = t.ok(json!({"command":"statistics"})) else {
        panic!()
    };
    assert_eq!(s.bytes_sent, 0);
}

/// The session ended in the data plane before the removal ran (the plane
/// refuses it and reports no `LegRemoved`; the leg failed meanwhile): the
/// `leg-done` still goes out, before `session-ended`.
#[test]
fn device_bye_when_the_session_ends_meanwhile() {
    let mut t = T::new(TableConfig::default());
    t.offer("b1", "chat");
    t.answer("b1", false);
    t.connected(1);
    assert!(t.bye("b1").is_empty());
    drop(t.plane.take_events());
    let ev = t.plane_event(PlaneEvent::LegFailed {
        leg: leg(1),
        reason: FailReason::Disconnected,
    });
    assert!(ev.is_empty(), "being removed: its leg-done is what is owed");
    let ev = t.plane_event(PlaneEvent::SessionEnded {
        session: SessionId(1),
    });
    assert_eq!(leg_dones(&ev), deleted("b1", 0));
    assert!(matches!(ev.last(), Some(Event::SessionEnded { .. })));
    assert_eq!(ev.len(), 2);
}

/// A removal that cannot be posted (the worker is gone) is told at once:
/// nothing else would report it.
#[test]
fn device_bye_the_plane_refuses_is_told_at_once() {
    let mut t = T::new(TableConfig::default());
    t.offer("b1", "chat");
    t.answer("b1", false);
    t.plane.forget_session(SessionId(1));
    assert_eq!(leg_dones(&t.bye("b1")), deleted("b1", 0));
    assert!(t.pump().is_empty());
}

/// Orphan expiry and the drain timeout leave a leg being removed alone:
/// its report still gives the one `leg-done`; only the undrained legs fail.
#[test]
fn device_bye_pending_through_orphan_and_drain_timeouts() {
    let mut t = T::new(TableConfig::default());
    t.offer("b1", "chat");
    t.offer("b2", "chat");
    t.answer("b1", false);
    t.answer("b2", false);
    assert!(t.bye("b1").is_empty());
    let report = t.plane.take_events();
    t.core.connection_closed(ConnId(1), t.now);
    let t1 = t.now + Duration::from_secs(60);
    assert!(t.core.sweep(t1).is_empty());
    let ev = t.core.sweep(t1 + Duration::from_secs(30));
    assert!(
        matches!(&ev[..], [Event::LegFailed { via_branch: Some(b), .. }] if b == "b2"),
        "{ev:?}"
    );
    for e in report {
        assert_eq!(
            leg_dones(&t.core.on_plane_event(e, t.now)),
            deleted("b1", 100)
        );
    }
    assert!(t.pump().is_empty(), "b2's removal was told as leg-failed");
    let ev = t.core.sweep(t1 + Duration::from_secs(60));
    assert!(matches!(&ev[..], [Event::SessionEnded { reason, .. }] if reason == "expired"));
}

/// The plane never reports the removal (nor the session's end): the
/// table drops the session after twice the drain timeout, and the
/// `leg-done` goes out before `session-ended`.
#[test]
fn device_bye_never_reported_is_told_when_the_session_is_dropped() {
    let mut t = T::new(TableConfig::default());
    t.offer("b1", "chat");
    t.answer("b1", false);
    assert!(t.bye("b1").is_empty());
    drop(t.plane.take_events());
    let (OkReply::Delete(d), _) = t.ok(json!({"command":"delete","call-id":"c1","from-tag":"f1"}))
    else {
        panic!()
    };
    assert_eq!(d.draining, 0);
    assert!(t.core.sweep(t.now + Duration::from_secs(30)).is_empty());
    let ev = t.core.sweep(t.now + Duration::from_secs(60));
    assert_eq!(leg_dones(&ev), deleted("b1", 0));
    assert!(matches!(&ev[..], [_, Event::SessionEnded { reason, .. }] if reason == "deleted"));
}
