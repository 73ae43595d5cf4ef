//! Deterministic engine tests: no sockets, time driven by hand.

mod active_sender;
mod copies;
mod cut_short;
mod harness;
mod in_step;
mod log_held;
mod read_ahead;
mod reconfigure;
mod remove;
mod scan;
mod success_reports;
mod tid_wrap;
mod unconnected;

use std::time::Duration;

use harness::{H, cfg};

use crate::fanout::{ConnId, Event, FailReason, LegId, Output};
use crate::msrp::{Flag, StatusCode};

fn file(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

/// PF-LMM-SEND: one sender, three devices: every device gets every byte of
/// every chunk (re-chunked on its own leg), the sender gets a 200 per chunk.
#[test]
fn pf_lmm_send_three_devices_get_identical_bytes() {
    let mut h = H::new(cfg());
    let (_, snd, legs) = h.session(3);
    let devs = h.connect_devices(&legs, "d", "x");
    let data = file(300_000);
    h.send_file(snd, "file0001", &data, 64 * 1024);
    for d in &devs {
        let msgs = h.peers[d].messages();
        assert_eq!(msgs.len(), 1);
        let (body, flag) = &msgs[&b"file0001".to_vec()];
        assert_eq!(body, &data);
        assert_eq!(*flag, Flag::Complete);
    }
    let oks = h.peers[&snd].responses();
    assert_eq!(oks.len(), 1 + 5, "bind + five chunks");
    assert!(oks.iter().all(|c| *c == StatusCode::OK));
    // One body copy: the log holds it once, whatever the number of legs.
    assert!(h.eng.stats().log_memory <= data.len() as u64);
}

/// CPM-MLD-020: a device that accepts after the content flowed gets every
/// byte from the start.
#[test]
fn cpm_mld_020_late_accept_gets_every_byte() {
    let mut h = H::new(cfg());
    let (_, snd, legs) = h.session(2);
    let d0 = h.connect_and_bind(legs[0], "msrp://a.example:1/a0;tcp");
    let data = file(200_000);
    h.send_file(snd, "late0001", &data, 50_000);
    assert_eq!(h.peers[&d0].messages()[&b"late0001".to_vec()].0, data);
    let d1 = h.connect_and_bind(legs[1], "msrp://b.example:1/b0;tcp");
    assert_eq!(h.peers[&d1].messages()[&b"late0001".to_vec()].0, data);
}

/// PF-LMM-BYE: after the sender's BYE, a device is done only once its last
/// chunk is answered, and done events leave at the paced rate.
#[test]
fn pf_lmm_bye_done_only_after_last_byte_and_paced() {
    let mut c = cfg();
    c.done_pacing = crate::fanout::pacer::PacerConfig {
        max_per_sec: 1,
        burst: 1,
    };
    let mut h = H::new(c);
    let (sid, snd, legs) = h.session(3);
    let devs = h.connect_devices(&legs, "s", "s");
    h.peers.get_mut(&devs[1]).unwrap().auto_ok = false;
    h.send_file(snd, "bye00001", &file(10_000), 4_000);
    h.eng.end_session(sid, h.now).unwrap();
    h.run();
    // Device 0 done at once; device 2 is drained too but paced; device 1
    // has not answered its chunks.
    assert_eq!(h.done_legs(), vec![legs[0]]);
    h.advance(Duration::from_millis(1100));
    assert_eq!(h.done_legs(), vec![legs[0], legs[2]]);
    h.advance(Duration::from_secs(2));
    assert_eq!(h.done_legs().len(), 2, "device 1 still owes its 200s");
    h.answer_all(devs[1], StatusCode::OK);
    h.advance(Duration::from_millis(1100));
    assert_eq!(h.done_legs(), vec![legs[0], legs[2], legs[1]]);
    assert!(h.events.contains(&Event::SessionEnded { session: sid }));
    // Each device's done event comes after its last chunk arrived.
    for (i, d) in devs.iter().enumerate() {
        let got = h
            .log
            .iter()
            .rposition(|l| l.starts_with(&format!("conn {} got", d.0)))
            .unwrap();
        let done = h
            .log
            .iter()
            .position(|l| l.contains(&format!("LegDone {{ leg: {:?}", legs[i])))
            .unwrap();
        assert!(got < done, "device {i}: done before its last byte");
    }
}

/// PF-LMM-BYE: nothing is done while the sender has not ended.
#[test]
fn pf_lmm_bye_no_done_while_sender_lives() {
    let mut h = H::new(cfg());
    let (_, snd, legs) = h.session(1);
    h.connect_and_bind(legs[0], "msrp://d.example:1/q1;tcp");
    h.send_file(snd, "live0001", &file(1000), 1000);
    h.advance(Duration::from_secs(5));
    assert!(h.done_legs().is_empty());
}

fn cpim_imdn(orig: &str, status: &str, kind: &str) -> Vec<u8> {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<imdn xmlns=\"urn:ietf:params:xml:ns:imdn\"><message-id>{orig}</message-id><datetime>2026-11-20T10:00:00Z</datetime><{kind}-notification><status><{status}/></status></{kind}-notification></imdn>"
    );
    format!(
        "From: <sip:bob@example.com>\r\nTo: <sip:alice@example.com>\r\nNS: imdn <urn:ietf:params:imdn>\r\nimdn.Message-ID: n{}\r\nDateTime: 2026-11-20T10:00:00Z\r\n\r\nContent-Type: message/imdn+xml\r\nContent-Disposition: notification\r\nContent-Length: {}\r\n\r\n{xml}",
        orig.len(),
        xml.len()
    )
    .into_bytes()
}

fn cpim_chat(id: &str, text: &str) -> Vec<u8> {
    format!(
        "From: <sip:alice@example.com>\r\nTo: <sip:bob@example.com>\r\nNS: imdn <urn:ietf:params:imdn>\r\nimdn.Message-ID: {id}\r\nimdn.Disposition-Notification: positive-delivery, display\r\nDateTime: 2026-11-20T10:00:00Z\r\n\r\nContent-Type: text/plain\r\n\r\n{text}"
    )
    .into_bytes()
}

/// CPM-MLD-024/025 (and CPM-MLD-004, CPM-MLD-005 for the same rule on
/// one-to-one delivery): delivered and displayed notifications from three
/// devices reach the sender exactly once each.
#[test]
fn cpm_mld_024_025_three_devices_one_notification_upstream() {
    let mut h = H::new(cfg());
    let (_, snd, legs) = h.session(3);
    let devs = h.connect_devices(&legs, "c", "c");
    let msg = h.peer_send(
        snd,
        "chat0001",
        Some("message/cpim"),
        &cpim_chat("imdnA1", "hi"),
    );
    h.send_raw(snd, &msg);
    for d in &devs {
        assert_eq!(
            h.peers[d].messages().len(),
            1,
            "every device shows the message"
        );
    }
    for (n, d) in devs.iter().enumerate() {
        for kind in [("delivered", "delivery"), ("displayed", "display")] {
            let m = h.peer_send(
                *d,
                &format!("imdn{n}{}", kind.0),
                Some("message/cpim"),
                &cpim_imdn("imdnA1", kind.0, kind.1),
            );
            h.send_raw(*d, &m);
        }
    }
    let up = h.peers[&snd].messages();
    let delivered = up
        .values()
        .filter(|(b, _)| String::from_utf8_lossy(b).contains("<delivered/>"))
        .count();
    let displayed = up
        .values()
        .filter(|(b, _)| String::from_utf8_lossy(b).contains("<displayed/>"))
        .count();
    assert_eq!((delivered, displayed), (1, 1));
    // Notifications are not mirrored to the other devices.
    for d in &devs {
        assert_eq!(h.peers[d].messages().len(), 1);
    }
}

/// CPM-MLD-007a (and CPM-MLD-011, CPM-MLD-018: one address, several
/// devices, one conversation): a device's chat message reaches the sender
/// and the user's other devices, so all show the same conversation.
#[test]
fn cpm_mld_007a_device_chat_mirrored_to_siblings_and_upstream() {
    let mut h = H::new(cfg());
    let (_, snd, legs) = h.session(3);
    let devs = h.connect_devices(&legs, "m", "m");
    let m = h.peer_send(
        devs[1],
        "frmdev01",
        Some("message/cpim"),
        &cpim_chat("fromDev1", "hello from the tablet"),
    );
    h.send_raw(devs[1], &m);
    assert_eq!(h.peers[&snd].messages().len(), 1);
    assert_eq!(h.peers[&devs[0]].messages().len(), 1);
    assert_eq!(h.peers[&devs[2]].messages().len(), 1);
    assert_eq!(
        h.peers[&devs[1]].messages().len(),
        0,
        "not echoed to its origin"
    );
    // isComposing goes upstream only.
    let c = h.peer_send(
        devs[0],
        "compose1",
        Some("application/im-iscomposing+xml"),
        b"<isComposing/>",
    );
    h.send_raw(devs[0], &c);
    assert_eq!(h.peers[&snd].messages().len(), 2);
    assert_eq!(h.peers[&devs[2]].messages().len(), 1);
}

/// CPM-MLD-022, CPM-MLD-023 (and CPM-MLD-003a): the sender's delivery
/// notification or read report about a device's message goes only to the
/// device that originated it.
#[test]
fn cpm_mld_022_023_sender_notification_only_to_originating_device() {
    let mut h = H::new(cfg());
    let (_, snd, legs) = h.session(2);
    let d0 = h.connect_and_bind(legs[0], "msrp://d0.example:1/r0r;tcp");
    let d1 = h.connect_and_bind(legs[1], "msrp://d1.example:1/r1r;tcp");
    let m = h.peer_send(
        d1,
        "dev1msg1",
        Some("message/cpim"),
        &cpim_chat("devOrig9", "ping"),
    );
    h.send_raw(d1, &m);
    assert_eq!(h.peers[&d0].messages().len(), 1, "mirrored");
    let n = h.peer_send(
        snd,
        "sndimdn1",
        Some("message/cpim"),
        &cpim_imdn("devOrig9", "displayed", "display"),
    );
    h.send_raw(snd, &n);
    assert_eq!(
        h.peers[&d1].messages().len(),
        1,
        "originating device gets it"
    );
    assert_eq!(h.peers[&d0].messages().len(), 1, "the sibling does not");
}

/// FT-MAXSIZE: a message over the limit is refused with 413; with an
/// unknown total the devices see it aborted with `#`.
#[test]
fn ft_maxsize_413_and_devices_see_abort() {
    let mut c = cfg();
    c.max_message_size = Some(1000);
    let mut h = H::new(c);
    let (_, snd, legs) = h.session(1);
    let d = h.connect_and_bind(legs[0], "msrp://d.example:1/f1f;tcp");
    let w = h.chunk(
        snd,
        "big00001",
        (1, 500, Some(5000)),
        &file(500),
        Flag::More,
        "",
    );
    h.send_raw(snd, &w);
    assert_eq!(
        h.peers[&snd].responses().last(),
        Some(&StatusCode::STOP_SENDING)
    );
    assert!(
        h.peers[&d].messages().is_empty(),
        "refused before a byte was stored"
    );
    let w = h.chunk(snd, "big00002", (1, 800, None), &file(800), Flag::More, "");
    h.send_raw(snd, &w);
    let w = h.chunk(
        snd,
        "big00002",
        (801, 1600, None),
        &file(800),
        Flag::More,
        "",
    );
    h.send_raw(snd, &w);
    assert_eq!(
        h.peers[&snd].responses().last(),
        Some(&StatusCode::STOP_SENDING)
    );
    let msgs = h.peers[&d].messages();
    let (body, flag) = &msgs[&b"big00002".to_vec()];
    assert_eq!((body.len(), *flag), (800, Flag::Aborted));
}

/// MSRP-CHUNK: the sender disconnecting inside a chunk aborts the message
/// on every device (`#`), and the session drains and ends.
#[test]
fn msrp_chunk_sender_disconnect_mid_chunk_devices_see_abort() {
    let mut h = H::new(cfg());
    let (sid, snd, legs) = h.session(2);
    let devs = h.connect_devices(&legs, "x", "x");
    let w = h.chunk(
        snd,
        "cut00001",
        (1, 1000, Some(1000)),
        &file(1000),
        Flag::Complete,
        "",
    );
    h.send_raw(snd, &w[..w.len() - 600]);
    h.eng.handle_closed(snd, h.now);
    h.run();
    for d in &devs {
        let (body, flag) = h.peers[d].messages()[&b"cut00001".to_vec()].clone();
        assert_eq!(flag, Flag::Aborted);
        assert!(body.len() < 1000);
    }
    assert!(h.events.contains(&Event::UpstreamEnded { session: sid }));
    h.advance(Duration::from_secs(1));
    assert_eq!(h.done_legs().len(), 2);
    assert!(h.events.contains(&Event::SessionEnded { session: sid }));
}

/// MSRP-BIND: a wrong From-Path gets 481 and the connection closes; the
/// leg stays available for the right peer.
#[test]
fn msrp_bind_wrong_from_path_gets_481() {
    let mut h = H::new(cfg());
    let (_, _, legs) = h.session(1);
    h.answer(legs[0], "msrp://right.example:1/r;tcp");
    let bad = h.connect_peer(legs[0], "msrp://wrong.example:1/w;tcp");
    assert_eq!(h.peers[&bad].responses(), vec![StatusCode::NO_SUCH_SESSION]);
    assert!(h.closes.contains(&bad));
    let good = h.connect_peer(legs[0], "msrp://right.example:1/r;tcp");
    assert_eq!(h.peers[&good].responses(), vec![StatusCode::OK]);
}

/// MSRP-BIND: a second connection naming a leg that is already bound gets
/// 506 (RFC 4975 §5.4) and is closed; the bound connection goes on.
#[test]
fn msrp_bind_already_bound_leg_gets_506() {
    let mut h = H::new(cfg());
    let (_, snd, legs) = h.session(1);
    h.answer(legs[0], "msrp://right.example:1/r;tcp");
    let good = h.connect_peer(legs[0], "msrp://right.example:1/r;tcp");
    assert_eq!(h.peers[&good].responses(), vec![StatusCode::OK]);
    let second = h.connect_peer(legs[0], "msrp://right.example:1/r;tcp");
    assert_eq!(
        h.peers[&second].responses(),
        vec![StatusCode::WRONG_CONNECTION]
    );
    assert!(h.closes.contains(&second));
    assert!(!h.closes.contains(&good));
    let w = h.chunk(
        snd,
        "after506",
        (1, 5, Some(5)),
        b"hello",
        Flag::Complete,
        "",
    );
    h.send_raw(snd, &w);
    h.run();
    let (body, flag) = h.peers[&good].messages()[&b"after506".to_vec()].clone();
    assert_eq!((body.as_slice(), flag), (&b"hello"[..], Flag::Complete));
}

/// MSRP-BIND: an unknown session-id gets 481; one minted by another worker
/// is handed over to it with the bytes read so far.
#[test]
fn msrp_bind_unknown_session_481_and_handover() {
    let mut h = H::new(cfg());
    let (_, snd, _) = h.session(0);
    let raw = h.peer_send(snd, "x0000001", None, b"");
    let other = String::from_utf8(raw.clone()).unwrap().replace(
        &h.peers[&snd].relay_uri,
        "msrp://127.0.0.1:2855/03deadbeefdeadbeefdeadbeef;tcp",
    );
    let c = crate::fanout::ConnId(900);
    h.eng.handle_accepted(c, h.now);
    h.eng.handle_data(c, other.clone().into(), h.now);
    h.run();
    assert!(
        h.outputs
            .iter()
            .any(|o| matches!(o, Output::Close { conn, .. } if *conn == c)),
        "481 + close"
    );
    let foreign = other.replace("/03dead", "/07dead");
    let c2 = crate::fanout::ConnId(901);
    h.eng.handle_accepted(c2, h.now);
    h.eng.handle_data(c2, foreign.clone().into(), h.now);
    h.run();
    assert!(h.outputs.iter().any(|o| matches!(o, Output::Handover { conn, worker: 7, data } if *conn == c2 && data.concat() == foreign.as_bytes())));
}

/// MSRP-BIND: a device that connects before the front end's answer is
/// parked, then bound when the answer comes.
#[test]
fn msrp_bind_device_connecting_before_answer_is_parked() {
    let mut h = H::new(cfg());
    let (_, snd, legs) = h.session(1);
    let d = h.connect_peer(legs[0], "msrp://early.example:1/e;tcp");
    assert!(h.peers[&d].responses().is_empty(), "parked, not refused");
    h.send_file(snd, "early001", &file(5000), 5000);
    h.answer(legs[0], "msrp://early.example:1/e;tcp");
    h.run();
    assert_eq!(h.peers[&d].responses(), vec![StatusCode::OK]);
    assert_eq!(h.peers[&d].messages()[&b"early001".to_vec()].0, file(5000));
}

/// A slow leg never stalls the others; the log spills what only it needs.
#[test]
fn cpm_mld_020_slow_leg_does_not_stall_others_and_log_spills() {
    let mut c = cfg();
    c.log.memory_limit = 256 * 1024;
    let mut h = H::new(c);
    let (sid, snd, legs) = h.session(3);
    let devs = h.connect_devices(&legs, "z", "z");
    h.peers.get_mut(&devs[2]).unwrap().paused = true;
    let data = file(4 << 20);
    h.send_file(snd, "slow0001", &data, 64 * 1024);
    assert!(h.eng.stats().log_spilled > 0);
    for d in &devs[..2] {
        assert_eq!(h.peers[d].messages()[&b"slow0001".to_vec()].0, data);
    }
    assert!(h.eng.stats().log_memory <= 256 * 1024);
    h.peers.get_mut(&devs[2]).unwrap().paused = false;
    h.run();
    assert_eq!(h.peers[&devs[2]].messages()[&b"slow0001".to_vec()].0, data);
    // The slow leg caught up: nothing is held any more, but the counter
    // and the high-water mark keep what happened, also once the session
    // is gone.
    let st = h.eng.stats();
    assert_eq!(st.log_spilled, 0);
    let (spilled, peak) = (st.log_spilled_total, st.log_memory_peak);
    assert!(spilled > 0 && peak > 0 && peak <= 256 * 1024, "{st:?}");
    h.eng.end_session(sid, h.now).unwrap();
    h.run();
    assert!(h.events.contains(&Event::SessionEnded { session: sid }));
    let st = h.eng.stats();
    assert_eq!((st.log_spilled_total, st.log_memory_peak), (spilled, peak));
}

/// MSRP-REPORT: when every device refuses a message, the sender gets one
/// failure REPORT (RFC 4975 §7.1.4); a device failing alone leaves the
/// others untouched.
#[test]
fn msrp_report_failure_only_when_no_device_can_take_it() {
    let mut h = H::new(cfg());
    let (_, snd, legs) = h.session(2);
    let d0 = h.connect_and_bind(legs[0], "msrp://d0.example:1/p0p;tcp");
    let d1 = h.connect_and_bind(legs[1], "msrp://d1.example:1/p1p;tcp");
    for d in [d0, d1] {
        h.peers.get_mut(&d).unwrap().auto_ok = false;
    }
    h.send_file(snd, "fail0001", &file(100), 100);
    h.answer_all(d0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        h.peers[&snd].reports().is_empty(),
        "device 1 may still take it"
    );
    h.answer_all(d1, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let reports = h.peers[&snd].reports();
    assert_eq!(reports.len(), 1);
    assert_eq!(
        reports[0].status.as_ref().unwrap().code,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
}

/// A leg with queued output and no progress fails alone after the leg
/// timeout; the others complete.
#[test]
fn stalled_leg_fails_alone() {
    let mut h = H::new(cfg());
    let (_, snd, legs) = h.session(2);
    let d0 = h.connect_and_bind(legs[0], "msrp://d0.example:1/s0s;tcp");
    let d1 = h.connect_and_bind(legs[1], "msrp://d1.example:1/s1s;tcp");
    h.peers.get_mut(&d1).unwrap().paused = true;
    h.send_file(snd, "stal0001", &file(10_000), 10_000);
    h.advance(Duration::from_secs(31));
    assert!(h.events.contains(&Event::LegFailed {
        leg: legs[1],
        reason: FailReason::Timeout
    }));
    assert_eq!(
        h.peers[&d0].messages()[&b"stal0001".to_vec()].0,
        file(10_000)
    );
    let _: LegId = legs[0];
}

/// Zero copy, counted: one 64 KiB chunk fanned out to 1000 legs; every body
/// byte queued on every leg is a slice of the one receive buffer the
/// chunk arrived in. Bytes copied: 0.
#[test]
fn pf_lmm_send_zero_copy_count_1000_legs() {
    let mut h = H::new(cfg());
    let (_, snd, legs) = h.session(1000);
    let devs = h.connect_devices(&legs, "k", "k");
    for d in &devs {
        h.peers.get_mut(d).unwrap().paused = true;
    }
    let body = file(64 * 1024);
    let wire = bytes::Bytes::from(h.chunk(
        snd,
        "zc000001",
        (1, body.len() as u64, Some(body.len() as u64)),
        &body,
        Flag::Complete,
        "",
    ));
    let range = wire.as_ptr() as usize..wire.as_ptr() as usize + wire.len();
    h.eng.handle_data(snd, wire.clone(), h.now);
    while h.eng.poll_output().is_some() {}
    let (mut shared, mut copied_body) = (0usize, 0usize);
    for d in &devs {
        let out: Vec<bytes::Bytes> = h.eng.output(*d).cloned().collect();
        let mut leg_body = 0;
        for b in &out {
            let p = b.as_ptr() as usize;
            if range.contains(&p) {
                shared += b.len();
                leg_body += b.len();
            } else if b.len() > 512 {
                copied_body += b.len();
            }
        }
        assert_eq!(leg_body, body.len(), "each leg carries the whole body");
    }
    assert_eq!(shared, 1000 * body.len());
    assert_eq!(copied_body, 0, "body bytes copied");
}

/// A session-id naming a worker the relay does not have is unknown (481),
/// not handed over to nowhere.
#[test]
fn msrp_bind_session_of_missing_worker_gets_481() {
    let mut h = H::new(cfg());
    let (_, snd, _) = h.session(0);
    let raw = h.peer_send(snd, "x0000002", None, b"");
    let w = String::from_utf8(raw).unwrap().replace(
        &h.peers[&snd].relay_uri,
        "msrp://127.0.0.1:2855/ffdeadbeefdeadbeefdeadbeef;tcp",
    );
    let c = crate::fanout::ConnId(902);
    h.eng.handle_accepted(c, h.now);
    h.eng.handle_data(c, w.into(), h.now);
    h.run();
    assert!(
        !h.outputs
            .iter()
            .any(|o| matches!(o, Output::Handover { .. }))
    );
    assert!(
        h.outputs
            .iter()
            .any(|o| matches!(o, Output::Close { conn, flush: true } if *conn == c))
    );
}

/// PF-LMM-BYE: a device still invited when the sender ends gets the leg
/// timeout to accept late; after that it fails (never connected) and the
/// session is freed.
#[test]
fn pf_lmm_bye_invited_leg_fails_after_grace_and_session_ends() {
    let mut h = H::new(cfg());
    let (sid, snd, legs) = h.session(2);
    h.connect_and_bind(legs[0], "msrp://d0.example:1/g0g;tcp");
    h.send_file(snd, "grace001", &file(1000), 1000);
    h.eng.end_session(sid, h.now).unwrap();
    h.run();
    h.advance(Duration::from_secs(1));
    assert_eq!(h.done_legs(), vec![legs[0]]);
    assert!(!h.events.contains(&Event::SessionEnded { session: sid }));
    h.advance(Duration::from_secs(31));
    assert!(h.events.contains(&Event::LegFailed {
        leg: legs[1],
        reason: FailReason::NeverConnected
    }));
    assert!(h.events.contains(&Event::SessionEnded { session: sid }));
}

/// FT-TERMINATE: either side may end a transfer, and ending it ends no
/// other transfer or session of the same user: a device leaving one
/// transfer and the sender ending another leave the third untouched.
#[test]
fn ft_terminate_one_transfer_ends_alone() {
    let mut h = H::new(cfg());
    let mut sessions = Vec::new();
    for s in 0..3 {
        let (sid, snd, legs) = h.session(2);
        let devs: Vec<_> = legs
            .iter()
            .enumerate()
            .map(|(i, &l)| h.connect_and_bind(l, &format!("msrp://u{i}.example:1/t{s}x{i};tcp")))
            .collect();
        sessions.push((sid, snd, legs, devs));
    }
    let data = file(50_000);
    for (i, (_, snd, _, _)) in sessions.clone().iter().enumerate() {
        let w = h.chunk(
            *snd,
            &format!("ft{i}00001"),
            (1, 20_000, Some(50_000)),
            &data[..20_000],
            Flag::More,
            "",
        );
        h.send_raw(*snd, &w);
    }
    // The recipient ends transfer 0 on device 0 (its BYE); the sender ends
    // transfer 1 mid-way (its connection goes).
    h.eng.remove_leg(sessions[0].2[0], h.now).unwrap();
    h.eng.handle_closed(sessions[1].1, h.now);
    h.run();
    // The last chunk of transfer `mid` from `snd`.
    let finish = |h: &mut H, snd: ConnId, mid: &str| {
        let range = (20_001, 50_000, Some(50_000));
        let w = h.chunk(snd, mid, range, &data[20_000..], Flag::Complete, "");
        h.send_raw(snd, &w);
    };
    let (_, snd2, _, devs2) = &sessions[2];
    finish(&mut h, *snd2, "ft200001");
    for d in devs2 {
        assert_eq!(
            h.peers[d].messages()[&b"ft200001".to_vec()],
            (data.clone(), Flag::Complete)
        );
    }
    // Transfer 0 goes on for its other device.
    let (_, snd0, _, devs0) = &sessions[0];
    finish(&mut h, *snd0, "ft000001");
    assert_eq!(
        h.peers[&devs0[1]].messages()[&b"ft000001".to_vec()],
        (data.clone(), Flag::Complete)
    );
    // Transfer 1's devices saw it aborted, nothing else.
    for d in &sessions[1].3 {
        assert_eq!(
            h.peers[d].messages()[&b"ft100001".to_vec()].1,
            Flag::Aborted
        );
    }
    assert!(h.events.contains(&Event::UpstreamEnded {
        session: sessions[1].0
    }));
    assert!(
        !h.events
            .iter()
            .any(|e| matches!(e, Event::UpstreamEnded { session } if *session != sessions[1].0))
    );
}

/// MSRP-ACM: the relay's outgoing connection for a leg that failed
/// meanwhile (here: never connected in time) is closed, and the leg stays
/// failed.
#[test]
fn msrp_acm_late_connect_does_not_revive_a_failed_leg() {
    let mut h = H::new(cfg());
    let (_, _, legs) = h.session(1);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 9));
    let path = vec![bytes::Bytes::from_static(b"msrp://127.0.0.1:9/act1;tcp")];
    let answer = crate::fanout::Answer {
        peer_path: path,
        setup: crate::fanout::Setup::Active(addr),
    };
    h.eng.answer(legs[0], answer, h.now).unwrap();
    h.run();
    assert!(
        h.outputs
            .iter()
            .any(|o| matches!(o, Output::Connect { leg, .. } if *leg == legs[0]))
    );
    h.advance(Duration::from_secs(31));
    assert!(h.events.contains(&Event::LegFailed {
        leg: legs[0],
        reason: FailReason::NeverConnected
    }));
    let late = crate::fanout::ConnId(950);
    h.eng.handle_connected(late, legs[0], h.now);
    h.run();
    assert!(
        h.outputs
            .iter()
            .any(|o| matches!(o, Output::Close { conn, .. } if *conn == late))
    );
    assert!(!h.events.contains(&Event::LegConnected { leg: legs[0] }));
}
