//! The sender ends a session in which a device answered but never
//! connected: with no content there is nothing to wait for (its paced
//! `leg-done` comes at once and the session is freed); with content the
//! leg waits for its device and drains as any other (PF-LMM-BYE).

use super::file;
use super::harness::{H, cfg};
use crate::fanout::Event;

/// PF-LMM-BYE: a forked call ended before anything was sent (the load of
/// `msrp-load setup --ng`: offer two branches, answer one, delete): the
/// never-answered branch is removed, the answered one has no connection
/// and nothing to get, so its `leg-done` (0 bytes) and the session's end
/// come without waiting for the leg timeout. Fails if the answered leg
/// holds the session until it fails `never-connected`.
#[test]
fn pf_lmm_bye_answered_unconnected_leg_of_an_empty_session_is_done_at_once() {
    let mut h = H::new(cfg());
    let (sid, _snd, legs) = h.session(2);
    h.answer(legs[0], "msrp://d0.example:1/never0;tcp");
    // The never-answered branch: the control plane removes it on the
    // sender's BYE.
    h.eng.remove_leg(legs[1], h.now).unwrap();
    h.eng.end_session(sid, h.now).unwrap();
    h.run();
    assert!(
        h.events.contains(&Event::LegDone {
            leg: legs[0],
            bytes: 0
        }),
        "{:?}",
        h.events
    );
    assert!(h.events.contains(&Event::SessionEnded { session: sid }));
    let done = h
        .events
        .iter()
        .position(|e| matches!(e, Event::LegDone { .. }));
    let ended = h
        .events
        .iter()
        .position(|e| matches!(e, Event::SessionEnded { .. }));
    assert!(
        done < ended,
        "leg-done before session-ended: {:?}",
        h.events
    );
}

/// PF-LMM-BYE: once the sender sent content, an answered leg whose device
/// has not connected yet keeps the session: the device connects after the
/// sender's BYE, gets every byte, and only then is the leg done.
#[test]
fn pf_lmm_bye_answered_unconnected_leg_with_content_waits_and_drains() {
    let mut h = H::new(cfg());
    let (sid, snd, legs) = h.session(1);
    let uri = "msrp://d0.example:1/late0;tcp";
    h.answer(legs[0], uri);
    let data = file(20_000);
    h.send_file(snd, "late0001", &data, 8_000);
    h.eng.end_session(sid, h.now).unwrap();
    h.run();
    assert!(h.done_legs().is_empty(), "{:?}", h.events);
    assert!(!h.events.contains(&Event::SessionEnded { session: sid }));
    let dev = h.connect_peer(legs[0], uri);
    h.run();
    assert_eq!(h.peers[&dev].messages()[&b"late0001".to_vec()].0, data);
    assert!(h.events.contains(&Event::LegDone {
        leg: legs[0],
        bytes: data.len() as u64
    }));
    assert!(h.events.contains(&Event::SessionEnded { session: sid }));
}
