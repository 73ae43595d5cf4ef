//! The sender's BYE (`delete` without `via-branch`) of a forked session in
//! which one branch answered and one never did: the cycle `msrp-load setup
//! --ng` drives, which must leave the table empty.

use super::*;
use crate::policy::CancelReason;

/// PF-LMM-BYE: offer b1, offer b2, answer b1, delete. The never-answered
/// b2 leaves the data plane with the reply (`cancel-branches`, no device
/// connection, nothing to pace); the answered b1 is left to drain (its
/// `leg-done` comes from the plane, paced) and the session is gone, the
/// count back to 0, once the plane frees it.
#[test]
fn pf_lmm_bye_whole_delete_ends_the_unanswered_branch_at_once_answered_drains_count_back_to_0() {
    for kind in ["chat", "file-transfer"] {
        let mut t = T::new(TableConfig::default());
        t.offer("b1", kind);
        t.offer("b2", kind);
        t.answer("b1", false);
        assert_eq!(t.core.len(), 1);
        let (OkReply::Delete(d), ev) =
            t.ok(json!({"command":"delete","call-id":"c1","from-tag":"f1"}))
        else {
            panic!("not a delete reply")
        };
        assert_eq!(d.draining, 1, "{kind}: only the answered leg drains");
        let calls = t.plane.calls();
        assert!(calls.contains(&"remove_leg 1/2".to_owned()), "{calls:?}");
        assert!(!calls.contains(&"remove_leg 1/1".to_owned()), "{calls:?}");
        assert!(calls.contains(&"end_session 1".to_owned()), "{calls:?}");
        assert!(
            ev.iter().any(
                |e| matches!(e, Event::CancelBranches { via_branches, reason, .. }
                if via_branches == &["b2"] && *reason == CancelReason::SenderEnded)
            ),
            "{ev:?}"
        );
        // b2's removal owes nothing more (its CANCEL was the news).
        assert!(t.pump().is_empty());
        // b1 drains: it still counts until the plane says it is done.
        assert_eq!(t.core.len(), 1);
        let done = t.core.on_plane_event(
            PlaneEvent::LegDone {
                leg: leg(1),
                bytes: 0,
            },
            t.now,
        );
        assert!(
            matches!(done.as_slice(), [Event::LegDone { via_branch, reason: DoneReason::Drained, .. }] if via_branch == "b1"),
            "{done:?}"
        );
        let ended = t.core.on_plane_event(
            PlaneEvent::SessionEnded {
                session: SessionId(1),
            },
            t.now,
        );
        assert!(
            matches!(ended.as_slice(), [Event::SessionEnded { reason, .. }] if reason == "deleted"),
            "{ended:?}"
        );
        assert_eq!(t.core.len(), 0, "{kind}");
        assert!(t.core.is_empty());
    }
}
