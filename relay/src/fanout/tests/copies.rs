//! CPM-MLD-003b: by policy, the one delivery or read notification the
//! sender gets is also copied to the user's other devices of the session;
//! a recorder leg (the content store's) gets neither copies nor the
//! devices' chat.

use super::harness::{H, cfg};
use super::{cpim_chat, cpim_imdn};
use crate::fanout::{EngineConfig, LegParams, LegRole};

fn count(h: &H, c: crate::fanout::ConnId, what: &str) -> usize {
    h.peers[&c]
        .messages()
        .values()
        .filter(|(b, _)| String::from_utf8_lossy(b).contains(what))
        .count()
}

fn run(copies: bool) -> (H, crate::fanout::ConnId, Vec<crate::fanout::ConnId>) {
    let mut h = H::new(EngineConfig {
        notification_copies: copies,
        ..cfg()
    });
    let (sid, snd, mut legs) = h.session(3);
    let store = h
        .eng
        .add_leg(
            sid,
            LegParams {
                label: "store".into(),
                role: LegRole::Recorder,
                ..LegParams::default()
            },
            h.now,
        )
        .unwrap();
    legs.push(store);
    let devs = h.connect_devices(&legs, "k", "k");
    let msg = h.peer_send(
        snd,
        "chat0003",
        Some("message/cpim"),
        &cpim_chat("imdn3b", "hi"),
    );
    h.send_raw(snd, &msg);
    // The phone says delivered, then read; the tablet says delivered too.
    for (d, id, kind) in [
        (0, "ph-dlv1", ("delivered", "delivery")),
        (0, "ph-dsp1", ("displayed", "display")),
        (1, "tb-dlv1", ("delivered", "delivery")),
    ] {
        let m = h.peer_send(
            devs[d],
            id,
            Some("message/cpim"),
            &cpim_imdn("imdn3b", kind.0, kind.1),
        );
        h.send_raw(devs[d], &m);
    }
    (h, snd, devs)
}

#[test]
fn cpm_mld_003b_notification_copies_reach_the_other_devices_once() {
    let (mut h, snd, devs) = run(true);
    // The sender: each notification once (CPM-MLD-004/005).
    assert_eq!(count(&h, snd, "<delivered/>"), 1);
    assert_eq!(count(&h, snd, "<displayed/>"), 1);
    // The tablet and the PC learn that the phone got and read it; the
    // tablet's own `delivered` was the second one, dropped for everyone.
    for d in [1, 2] {
        assert_eq!(count(&h, devs[d], "<delivered/>"), 1, "device {d}");
        assert_eq!(count(&h, devs[d], "<displayed/>"), 1, "device {d}");
    }
    assert_eq!(
        count(&h, devs[0], "imdn+xml"),
        0,
        "not echoed to its origin"
    );
    // The recorder has the sender's message and nothing else.
    let store = devs[3];
    assert_eq!(h.peers[&store].messages().len(), 1);
    assert_eq!(count(&h, store, "imdn+xml"), 0);
    // Nor does it get the devices' chat (CPM-MLD-007a goes on for them).
    let m = h.peer_send(
        devs[2],
        "pc-chat1",
        Some("message/cpim"),
        &cpim_chat("fromPc", "on my PC"),
    );
    h.send_raw(devs[2], &m);
    assert_eq!(count(&h, snd, "on my PC"), 1);
    assert_eq!(count(&h, devs[0], "on my PC"), 1);
    assert_eq!(
        h.peers[&store].messages().len(),
        1,
        "the store records the sender only"
    );
}

#[test]
fn cpm_mld_003b_no_copies_when_the_policy_is_off() {
    let (h, snd, devs) = run(false);
    assert_eq!(count(&h, snd, "<delivered/>"), 1);
    assert_eq!(count(&h, snd, "<displayed/>"), 1);
    for d in &devs {
        assert_eq!(count(&h, *d, "imdn+xml"), 0);
    }
}
