//! `Engine::remove_leg` reports each removed leg once, with the body bytes
//! it was given (`Event::LegRemoved`), ahead of what the removal causes and
//! with nothing about the leg after it.

use std::time::Duration;

use super::file;
use super::harness::{H, cfg};
use crate::fanout::{EngineError, Event, FailReason, LegId};

/// The events about `leg`, in order.
fn about(h: &H, leg: LegId) -> Vec<Event> {
    h.events
        .iter()
        .filter(|e| match e {
            Event::LegConnected { leg: l }
            | Event::LegDone { leg: l, .. }
            | Event::LegRemoved { leg: l, .. }
            | Event::LegFailed { leg: l, .. } => *l == leg,
            Event::UpstreamEnded { .. } | Event::SessionEnded { .. } => false,
        })
        .cloned()
        .collect()
}

fn position(h: &H, ev: &Event) -> usize {
    h.events
        .iter()
        .position(|e| e == ev)
        .unwrap_or_else(|| panic!("{ev:?} not in {:?}", h.events))
}

/// FT-TERMINATE: a device's BYE mid-transfer. The removal reports what the
/// device was given, once; a second removal is refused and says nothing.
#[test]
fn ft_terminate_removed_leg_reports_its_bytes_once() {
    let mut h = H::new(cfg());
    let (_, snd, legs) = h.session(2);
    h.connect_devices(&legs, "r", "m");
    let data = file(30_000);
    h.send_file(snd, "rm000001", &data, 10_000);
    h.eng.remove_leg(legs[0], h.now).unwrap();
    h.run();
    assert_eq!(
        about(&h, legs[0]),
        [
            Event::LegConnected { leg: legs[0] },
            Event::LegRemoved {
                leg: legs[0],
                bytes: data.len() as u64
            }
        ]
    );
    assert_eq!(
        h.eng.remove_leg(legs[0], h.now),
        Err(EngineError::NoLeg),
        "removed already"
    );
    // The session and the other device go on; nothing more about leg 0,
    // not even when its timers would have run.
    h.send_file(snd, "rm000002", &data, 10_000);
    h.advance(Duration::from_secs(60));
    assert_eq!(about(&h, legs[0]).len(), 2, "{:?}", h.events);
    assert!(
        !h.events
            .iter()
            .any(|e| matches!(e, Event::SessionEnded { .. } | Event::UpstreamEnded { .. }))
    );
}

/// A leg removed before it ever connected (invited, or answered and never
/// bound) reports zero bytes.
#[test]
fn removed_leg_that_never_connected_reports_zero() {
    let mut h = H::new(cfg());
    let (_, snd, legs) = h.session(2);
    h.answer(legs[1], "msrp://late.example:1/nc1;tcp");
    h.send_file(snd, "nc000001", &file(5_000), 5_000);
    for &leg in &legs {
        h.eng.remove_leg(leg, h.now).unwrap();
    }
    h.run();
    for &leg in &legs {
        assert_eq!(about(&h, leg), [Event::LegRemoved { leg, bytes: 0 }]);
    }
}

/// A drained leg whose paced `LegDone` is still waiting, removed: its
/// `LegDone` is withdrawn, `LegRemoved` carries the bytes, and the
/// session's `SessionEnded` follows it.
#[test]
fn pf_lmm_bye_removal_withdraws_a_paced_done_and_precedes_session_end() {
    let mut c = cfg();
    c.done_pacing = crate::fanout::pacer::PacerConfig {
        max_per_sec: 1,
        burst: 1,
    };
    let mut h = H::new(c);
    let (sid, snd, legs) = h.session(2);
    h.connect_devices(&legs, "p", "q");
    let data = file(8_000);
    h.send_file(snd, "pc000001", &data, 4_000);
    h.eng.end_session(sid, h.now).unwrap();
    h.run();
    assert_eq!(h.done_legs(), [legs[0]], "the second is paced");
    h.eng.remove_leg(legs[1], h.now).unwrap();
    h.run();
    h.advance(Duration::from_secs(5));
    let removed = Event::LegRemoved {
        leg: legs[1],
        bytes: data.len() as u64,
    };
    assert_eq!(
        about(&h, legs[1]),
        [Event::LegConnected { leg: legs[1] }, removed.clone()]
    );
    assert_eq!(h.done_legs(), [legs[0]]);
    let ended = Event::SessionEnded { session: sid };
    assert!(position(&h, &removed) < position(&h, &ended));
    assert_eq!(
        h.eng.remove_leg(legs[0], h.now),
        Err(EngineError::NoSession),
        "the session is freed: the call fails and reports nothing"
    );
    h.run();
    assert_eq!(
        h.events
            .iter()
            .filter(|e| matches!(e, Event::LegRemoved { .. }))
            .count(),
        1
    );
}

/// A failed leg is still the control plane's to remove: its removal is
/// reported after the failure.
#[test]
fn removing_a_failed_leg_is_reported_after_the_failure() {
    let mut h = H::new(cfg());
    let (_, _, legs) = h.session(1);
    let conn = h.connect_and_bind(legs[0], "msrp://f.example:1/ff1;tcp");
    h.eng.handle_closed(conn, h.now);
    h.run();
    h.eng.remove_leg(legs[0], h.now).unwrap();
    h.run();
    assert_eq!(
        about(&h, legs[0]),
        [
            Event::LegConnected { leg: legs[0] },
            Event::LegFailed {
                leg: legs[0],
                reason: FailReason::Disconnected
            },
            Event::LegRemoved {
                leg: legs[0],
                bytes: 0
            }
        ]
    );
}

/// The upstream leg removed: `LegRemoved` first, then `UpstreamEnded`.
#[test]
fn removed_upstream_leg_precedes_upstream_ended() {
    let mut h = H::new(cfg());
    let (sid, _, _) = h.session(1);
    let up = LegId {
        session: sid,
        index: 0,
    };
    h.eng.remove_leg(up, h.now).unwrap();
    h.run();
    let removed = Event::LegRemoved { leg: up, bytes: 0 };
    let ended = Event::UpstreamEnded { session: sid };
    assert!(position(&h, &removed) < position(&h, &ended));
}
