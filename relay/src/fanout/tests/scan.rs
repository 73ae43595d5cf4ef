//! The timeout scan of [`Engine::handle_timeout`] runs on its own
//! deadline ([`SCAN_EVERY`]), not on every call: the driver calls it at
//! every paced `leg-done` deadline (every 5 ms at 200/s), and a scan over
//! every leg each time cost most of a loaded relay's CPU. These tests pin
//! what must not change with that: a stalled leg still fails, called as
//! often as the pacer calls, and no later than one scan period after its
//! leg timeout; and not before its leg timeout.

use std::time::Duration;

use super::file;
use super::harness::{H, cfg};
use crate::fanout::engine::SCAN_EVERY;
use crate::fanout::{Event, FailReason};

fn failed(h: &H) -> bool {
    h.events.iter().any(|e| {
        matches!(
            e,
            Event::LegFailed {
                reason: FailReason::NeverConnected,
                ..
            }
        )
    })
}

/// PF-LMM-BYE, leg timeout: an answered device that never connects, in a
/// session with content, fails `never-connected` when handle_timeout is
/// called every 5 ms, within one scan period of its leg timeout, and not
/// before the leg timeout.
#[test]
fn pf_lmm_bye_leg_timeout_scan_runs_on_its_own_deadline_under_frequent_calls() {
    let mut h = H::new(cfg());
    let limit = h.eng.config().leg_timeout;
    let (sid, snd, legs) = h.session(1);
    h.answer(legs[0], "msrp://d0.example:1/gone0;tcp");
    h.send_file(snd, "gone0001", &file(4_000), 4_000);
    h.eng.end_session(sid, h.now).unwrap();
    h.run();
    let step = Duration::from_millis(5);
    let mut waited = Duration::ZERO;
    while !failed(&h) {
        assert!(
            waited <= limit + SCAN_EVERY + step,
            "no leg-failed {waited:?} after the last progress: {:?}",
            h.events
        );
        h.advance(step);
        waited += step;
    }
    assert!(
        waited > limit,
        "failed after {waited:?}, before the leg timeout {limit:?}"
    );
}
