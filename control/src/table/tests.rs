//! The session table over a fake data plane; time is an argument.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use msrp_relay::fanout::{Event as PlaneEvent, FailReason, LegId, SessionId, Setup as PlaneSetup};
use serde_json::json;

use super::*;
use crate::fake_plane::FakePlane;
use crate::protocol::{DoneReason, Event, OkReply, Reply, ReplyBody, Request, decode_request};

mod delete_idempotent;
mod drain;
mod leg_done;
mod whole_delete;

pub(crate) const OFFER_SDP: &str = "v=0\r\no=alice 1 1 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\nm=message 7654 TCP/MSRP *\r\na=sendonly\r\na=accept-types:message/cpim\r\na=setup:actpass\r\na=path:msrp://203.0.113.5:7654/jshA7we;tcp\r\na=file-selector:name:\"a.jpg\" type:image/jpeg size:4096\r\na=file-transfer-id:ZVE8\r\n";

pub(crate) fn answer_sdp(setup: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\nm=message 9 TCP/MSRP *\r\na=recvonly\r\na=accept-types:message/cpim\r\na=setup:{setup}\r\na=path:msrp://10.0.0.9:9/dev;tcp\r\n"
    )
}

struct T {
    core: Core,
    plane: Arc<FakePlane>,
    now: Instant,
    n: u64,
}

impl T {
    fn new(cfg: TableConfig) -> T {
        let plane = Arc::new(FakePlane::default());
        T {
            core: Core::new(cfg, plane.clone()),
            plane,
            now: Instant::now(),
            n: 0,
        }
    }

    fn run(&mut self, v: serde_json::Value) -> Outcome {
        self.run_on(ConnId(1), v)
    }

    /// Runs a command as control connection `conn`.
    fn run_on(&mut self, conn: ConnId, mut v: serde_json::Value) -> Outcome {
        self.n += 1;
        v["id"] = json!(self.n);
        let req: Request = decode_request(v.to_string().as_bytes(), 1 << 20).unwrap();
        self.core.handle(conn, req, self.now)
    }

    fn ok(&mut self, v: serde_json::Value) -> (OkReply, Vec<Event>) {
        let o = self.run(v);
        match o.reply.body {
            ReplyBody::Ok(ok) => (ok, o.events),
            ReplyBody::Error(e) => panic!("error: {e}"),
        }
    }

    fn err(&mut self, v: serde_json::Value) -> String {
        match self.run(v).reply {
            Reply {
                body: ReplyBody::Error(e),
                ..
            } => e,
            r => panic!("expected an error, got {r:?}"),
        }
    }

    fn offer(&mut self, branch: &str, kind: &str) -> OkReply {
        self.ok(json!({"command":"offer","call-id":"c1","from-tag":"f1","via-branch":branch,"kind":kind,"sdp":OFFER_SDP})).0
    }

    /// Feeds the table what the plane raised since the last pump (its
    /// `LegRemoved`s), as the event pump does; returns what the front end
    /// is told.
    fn pump(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        for ev in self.plane.take_events() {
            out.extend(self.core.on_plane_event(ev, self.now));
        }
        out
    }

    fn answer(&mut self, branch: &str, auto: bool) -> (OkReply, Vec<Event>) {
        self.ok(json!({"command":"answer","call-id":"c1","from-tag":"f1","via-branch":branch,"to-tag":format!("t-{branch}"),"auto-answer":auto,"sdp":answer_sdp("active")}))
    }
}

fn leg(i: u32) -> LegId {
    LegId {
        session: SessionId(1),
        index: i,
    }
}

/// PF-LMM-FORK: one offer per branch, each with its own relay path; the
/// first creates the session.
#[test]
fn pf_lmm_fork_offers_create_one_leg_per_branch() {
    let mut t = T::new(TableConfig::default());
    let mut paths = Vec::new();
    for (i, b) in ["b1", "b2", "b3"].iter().enumerate() {
        let OkReply::Offer(r) = t.offer(b, "file-transfer") else {
            panic!()
        };
        assert_eq!(r.created, i == 0);
        assert!(r.sdp.contains("c=IN IP4 127.0.0.1\r\n"), "{}", r.sdp);
        assert!(r.sdp.contains("m=message 2855 TCP/MSRP *\r\n"));
        assert!(r.sdp.contains("a=setup:actpass\r\n"));
        assert!(
            r.sdp
                .contains("a=file-selector:name:\"a.jpg\" type:image/jpeg size:4096\r\n")
        );
        paths.push(
            r.sdp
                .lines()
                .find(|l| l.starts_with("a=path"))
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(paths[0], "a=path:msrp://127.0.0.1:2855/s1l1;tcp");
    assert_ne!(paths[1], paths[2]);
    assert!(t.err(json!({"command":"offer","call-id":"c1","from-tag":"f1","via-branch":"b1","kind":"file-transfer","sdp":OFFER_SDP})).contains("already offered"));
    assert!(t.err(json!({"command":"offer","call-id":"c1","from-tag":"f1","via-branch":"b9","kind":"chat","sdp":OFFER_SDP})).starts_with("session is file-transfer"));
    assert!(t.err(json!({"command":"offer","call-id":"c2","from-tag":"f1","via-branch":"b1","kind":"chat","sdp":"v=0\r\n"})).contains("no MSRP media line"));
    assert!(t.err(json!({"command":"offer","call-id":"c2","from-tag":"f1","via-branch":"b1","kind":"pager","sdp":OFFER_SDP})).contains("no session fork"));
    assert_eq!(t.core.len(), 1, "refused offers created nothing");
}

/// PF-LMM-FIRST200: the first accept is forwarded with the relay's SDP and
/// answers the sender leg; later ones are connected quietly.
#[test]
fn pf_lmm_first200_first_answer_forwarded_later_quiet() {
    let mut t = T::new(TableConfig::default());
    for b in ["b1", "b2", "b3"] {
        t.offer(b, "large-message");
    }
    let (OkReply::Answer(first), ev) = t.answer("b2", false) else {
        panic!()
    };
    assert!(first.forward && !first.close && ev.is_empty());
    let sdp = first.sdp.unwrap();
    assert!(
        sdp.contains("a=path:msrp://127.0.0.1:2855/s1l0;tcp\r\n"),
        "{sdp}"
    );
    assert!(sdp.contains("a=setup:passive\r\n"));
    assert!(sdp.contains("a=recvonly\r\n") && sdp.contains("a=accept-types:message/cpim\r\n"));
    assert!(sdp.starts_with("v=0\r\no=- 1 1 IN IP4 10.0.0.9\r\n"));
    let up = t.plane.answer_of(leg(0)).unwrap();
    assert_eq!(up.setup, PlaneSetup::Passive);
    assert_eq!(
        up.peer_path,
        vec![bytes::Bytes::from("msrp://203.0.113.5:7654/jshA7we;tcp")]
    );
    assert_eq!(
        t.plane.answer_of(leg(2)).unwrap().setup,
        PlaneSetup::Passive
    );
    let (OkReply::Answer(second), _) = t.answer("b3", false) else {
        panic!()
    };
    assert!(!second.forward && second.sdp.is_none());
    // The device said passive: the relay connects to its first hop.
    let (OkReply::Answer(third), _) = t.ok(json!({"command":"answer","call-id":"c1","from-tag":"f1","via-branch":"b1","to-tag":"x","sdp":answer_sdp("passive")})) else {
        panic!()
    };
    assert!(!third.forward);
    assert_eq!(
        t.plane.answer_of(leg(1)).unwrap().setup,
        PlaneSetup::Active("10.0.0.9:9".parse().unwrap())
    );
    assert!(t.err(json!({"command":"answer","call-id":"c1","from-tag":"f1","via-branch":"b1","to-tag":"x","sdp":answer_sdp("active")})).contains("already has a final response"));
    assert!(t.err(json!({"command":"answer","call-id":"zz","from-tag":"f1","via-branch":"b1","to-tag":"x","sdp":answer_sdp("active")})).starts_with("unknown call-id"));
    assert!(t.err(json!({"command":"answer","call-id":"c1","from-tag":"f1","via-branch":"b7","to-tag":"x","sdp":answer_sdp("active")})).starts_with("unknown via-branch"));
}

/// CPM-MLD-008a: a decline cancels every outstanding invitation; with no
/// accept the sender gets 603 and the session ends.
#[test]
fn cpm_mld_008a_decline_cancels_others_and_fails_sender() {
    let mut t = T::new(TableConfig::default());
    for b in ["b1", "b2", "b3"] {
        t.offer(b, "chat");
    }
    let (OkReply::Reject(r), ev) = t.ok(
        json!({"command":"reject","call-id":"c1","from-tag":"f1","via-branch":"b2","code":603}),
    ) else {
        panic!()
    };
    assert_eq!(r.sender_status, Some(603));
    assert!(
        matches!(&ev[0], Event::CancelBranches { via_branches, .. } if via_branches == &["b1", "b3"])
    );
    let calls = t.plane.calls();
    for c in [
        "remove_leg 1/1",
        "remove_leg 1/2",
        "remove_leg 1/3",
        "end_session 1",
    ] {
        assert!(calls.contains(&c.to_owned()), "{calls:?}");
    }
    let ended = t.core.on_plane_event(
        PlaneEvent::SessionEnded {
            session: SessionId(1),
        },
        t.now,
    );
    assert!(matches!(&ended[..], [Event::SessionEnded { reason, .. }] if reason == "rejected"));
    assert!(t.core.is_empty());
}

/// CPM-MLD-026: an auto-answer keeps only the responding device.
#[test]
fn cpm_mld_026_auto_answer_closes_the_others() {
    let mut t = T::new(TableConfig::default());
    for b in ["b1", "b2", "b3"] {
        t.offer(b, "chat");
    }
    t.answer("b1", false);
    let (OkReply::Answer(r), ev) = t.answer("b3", true) else {
        panic!()
    };
    assert!(!r.forward && !r.close);
    assert!(
        matches!(&ev[0], Event::CancelBranches { via_branches, reason: crate::policy::CancelReason::AutoAnswered, .. } if via_branches == &["b2"])
    );
    assert_eq!(ev.len(), 1, "b1's leg-done waits for the plane: {ev:?}");
    // The plane reports b1 removed (and b2, cancelled: nothing owed).
    let ev = t.pump();
    assert!(
        matches!(&ev[..], [Event::LegDone { via_branch, reason: DoneReason::Closed, bytes_sent: 100, .. }] if via_branch == "b1"),
        "{ev:?}"
    );
    // b2's 200 crosses the CANCEL: close it.
    let (OkReply::Answer(crossed), _) = t.answer("b2", false) else {
        panic!()
    };
    assert!(crossed.close && !crossed.forward);
}

/// CPM-MLD-020: accept-cancels-others for file transfer, by operator policy.
#[test]
fn cpm_mld_020_file_transfer_accept_cancels_others_by_policy() {
    let mut cfg = TableConfig::default();
    cfg.accept.file_transfer_accept_cancels_others = true;
    let mut t = T::new(cfg);
    for b in ["b1", "b2"] {
        t.offer(b, "file-transfer");
    }
    let (_, ev) = t.answer("b1", false);
    assert!(
        matches!(&ev[..], [Event::CancelBranches { via_branches, .. }] if via_branches == &["b2"])
    );
}

/// PF-LMM-BYE: delete cancels the unanswered, drains the answered; each
/// drained leg's LegDone becomes a `leg-done`, then `session-ended`.
#[test]
fn pf_lmm_bye_delete_drains_then_ends() {
    let mut t = T::new(TableConfig::default());
    for b in ["b1", "b2", "b3"] {
        t.offer(b, "file-transfer");
    }
    t.answer("b1", false);
    t.answer("b2", false);
    let ev = t
        .core
        .on_plane_event(PlaneEvent::LegConnected { leg: leg(1) }, t.now);
    assert!(
        matches!(&ev[..], [Event::LegConnected { via_branch: Some(b), to_tag: Some(tt), .. }] if b == "b1" && tt == "t-b1")
    );
    let (OkReply::Delete(d), ev) = t.ok(json!({"command":"delete","call-id":"c1","from-tag":"f1"}))
    else {
        panic!()
    };
    assert_eq!(d.draining, 2);
    assert!(
        matches!(&ev[..], [Event::CancelBranches { via_branches, reason: crate::policy::CancelReason::SenderEnded, .. }] if via_branches == &["b3"])
    );
    let ev = t.core.on_plane_event(
        PlaneEvent::LegDone {
            leg: leg(2),
            bytes: 4096,
        },
        t.now,
    );
    assert!(
        matches!(&ev[..], [Event::LegDone { via_branch, reason: DoneReason::Drained, bytes_sent: 4096, .. }] if via_branch == "b2")
    );
    let ev = t.core.on_plane_event(
        PlaneEvent::LegFailed {
            leg: leg(1),
            reason: FailReason::Disconnected,
        },
        t.now,
    );
    assert!(matches!(&ev[..], [Event::LegFailed { error, .. }] if error == "disconnected"));
    let ev = t.core.on_plane_event(
        PlaneEvent::SessionEnded {
            session: SessionId(1),
        },
        t.now,
    );
    assert!(matches!(&ev[..], [Event::SessionEnded { reason, .. }] if reason == "deleted"));
    assert!(
        t.err(json!({"command":"query","call-id":"c1"}))
            .starts_with("unknown call-id")
    );
}

/// One leg deleted (a device's BYE): only it ends.
#[test]
fn delete_one_leg_keeps_the_session() {
    let mut t = T::new(TableConfig::default());
    t.offer("b1", "chat");
    t.offer("b2", "chat");
    t.answer("b1", false);
    let (OkReply::Delete(d), ev) =
        t.ok(json!({"command":"delete","call-id":"c1","from-tag":"f1","via-branch":"b1"}))
    else {
        panic!()
    };
    assert_eq!(d.draining, 0);
    assert!(ev.is_empty(), "the leg-done follows the plane's report");
    assert!(matches!(
        &t.pump()[..],
        [Event::LegDone {
            reason: DoneReason::Deleted,
            ..
        }]
    ));
    let (OkReply::Query(q), _) = t.ok(json!({"command":"query","call-id":"c1"})) else {
        panic!()
    };
    assert_eq!(q.legs.len(), 3);
    assert_eq!(q.legs[1].state, crate::protocol::LegState::Done);
    assert_eq!(q.legs[2].state, crate::protocol::LegState::Invited);
    assert_eq!(q.legs[2].via_branch.as_deref(), Some("b2"));
}

/// A front end that vanishes leaves no session behind: orphans expire,
/// and a drain that never finishes is forced.
#[test]
fn orphaned_sessions_expire_and_stuck_drains_are_forced() {
    let mut t = T::new(TableConfig::default());
    t.offer("b1", "chat");
    t.answer("b1", false);
    t.core.connection_closed(ConnId(1), t.now);
    assert!(t.core.sweep(t.now + Duration::from_secs(59)).is_empty());
    let t1 = t.now + Duration::from_secs(60);
    assert!(t.core.sweep(t1).is_empty());
    assert!(t.plane.calls().contains(&"end_session 1".to_owned()));
    let ev = t.core.sweep(t1 + Duration::from_secs(30));
    assert!(matches!(&ev[..], [Event::LegFailed { error, .. }] if error.contains("not drained")));
    let ev = t.core.sweep(t1 + Duration::from_secs(60));
    assert!(matches!(&ev[..], [Event::SessionEnded { reason, .. }] if reason == "expired"));
    assert!(t.core.is_empty());
}

/// A restarted front end that starts by querying its calls takes them
/// back: `query`, like every command naming a session, makes the asking
/// connection the owner, so the orphan timer no longer ends the session.
/// `list` names no session and takes nothing.
#[test]
fn query_takes_an_orphaned_session_back() {
    let mut t = T::new(TableConfig::default());
    t.offer("b1", "chat");
    t.answer("b1", false);
    t.core.connection_closed(ConnId(1), t.now);
    let o = t.run_on(ConnId(2), json!({"command":"list"}));
    assert!(matches!(o.reply.body, ReplyBody::Ok(OkReply::List(_))));
    let o = t.run_on(ConnId(2), json!({"command":"query","call-id":"c1"}));
    assert!(matches!(o.reply.body, ReplyBody::Ok(OkReply::Query(_))));
    let later = t.now + Duration::from_secs(600);
    assert!(t.core.sweep(later).is_empty());
    assert!(!t.core.is_empty());
    assert!(!t.plane.calls().iter().any(|c| c.starts_with("end_session")));
    // The new owner's connection closing orphans it again.
    t.core.connection_closed(ConnId(2), later);
    t.core.sweep(later + Duration::from_secs(60));
    assert!(t.plane.calls().contains(&"end_session 1".to_owned()));
}

#[test]
fn limits_list_statistics_register_plan() {
    let mut t = T::new(TableConfig {
        max_sessions: 1,
        max_legs_per_session: 1,
        ..TableConfig::default()
    });
    t.offer("b1", "chat");
    assert!(t.err(json!({"command":"offer","call-id":"c1","from-tag":"f1","via-branch":"b2","kind":"chat","sdp":OFFER_SDP})).starts_with("limit reached"));
    assert!(t.err(json!({"command":"offer","call-id":"c2","from-tag":"f1","via-branch":"b1","kind":"chat","sdp":OFFER_SDP})).starts_with("limit reached"));
    let (OkReply::List(l), _) = t.ok(json!({"command":"list"})) else {
        panic!()
    };
    assert_eq!(l.calls, ["c1"]);
    let (OkReply::Statistics(s), _) = t.ok(json!({"command":"statistics"})) else {
        panic!()
    };
    assert_eq!((s.sessions, s.legs, s.sessions_total), (1, 2, 1));
    let (OkReply::Register(r), _) = t.ok(json!({"command":"register","user":"u","version":1,"devices":[{"instance-id":"p","name":"Phone","capabilities":["chat","legacy-messaging"]}]})) else { panic!() };
    assert_eq!(r.primary.as_deref(), Some("p"));
    assert!(
        t.err(json!({"command":"register","user":"u","version":1,"devices":[]}))
            .contains("not newer")
    );
    let (OkReply::Plan(p), _) = t.ok(json!({"command":"plan","user":"u","kind":"chat"})) else {
        panic!()
    };
    assert_eq!(p.targets().collect::<Vec<_>>(), ["p"]);
    assert!(
        t.err(json!({"command":"plan","user":"nobody","kind":"chat"}))
            .contains("no registration")
    );
}
