//! Per-leg pace over real sockets: a slow device never slows the others
//! and still gets every byte while the log spills (PF-LMM-SEND,
//! CPM-MLD-020); a device that accepts late gets the whole file
//! (CPM-MLD-020).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::mpsc;
use std::time::Duration;

use msrp_relay::fanout::Setup;
use support::*;

const MEMORY_LIMIT: u64 = 1 << 20;

fn slow_device(driver: Driver) {
    let relay = start_relay(driver, 2, |c| {
        c.engine.log.memory_limit = MEMORY_LIMIT;
        // A leg queue well below the budget, so that what the slow device
        // still needs is in the log (where the budget counts it) rather
        // than referenced from its queue (`EngineConfig::leg_low_water`).
        c.engine.leg_low_water = 256 << 10;
        c.process_memory_budget = 2 * MEMORY_LIMIT;
        c.sndbuf = Some(32 << 10);
    });
    let h = relay.handle();
    let (session, snd) = sender(&relay, "sender");
    let fast: Vec<_> = (0..2)
        .map(|i| device(&relay, session, &format!("fast{i}"), PeerOpts::default()).1)
        .collect();
    let slow_opts = PeerOpts {
        rate: Some(1_000_000),
        rcvbuf: Some(16 << 10),
        ..PeerOpts::default()
    };
    let (_, slow) = device(&relay, session, "slow", slow_opts);
    let body = file(3 << 20, 42);
    let digest = sha256_hex(&body);
    let codes = send_file(&snd, "file-1", &body, 64 << 10);
    assert!(codes.iter().all(|&c| c == 200), "sender got {codes:?}");
    for d in &fast {
        d.wait("the whole file", WAIT, |s| s.has_file("file-1", &digest));
    }
    slow.wait("the whole file", WAIT, |s| {
        s.msg("file-1").is_some_and(|m| m.digest.is_some())
    });
    assert!(
        slow.state().has_file("file-1", &digest),
        "slow device's copy differs"
    );
    // The engines' counters, not samples: the most one log held in
    // memory (its high-water mark) stayed within the session budget, and
    // the rest went to disk (bytes ever spilled, however briefly).
    let stats = h.stats().unwrap();
    let max_memory = stats.iter().map(|s| s.log_memory_peak).max().unwrap_or(0);
    let spilled: u64 = stats.iter().map(|s| s.log_spilled_total).sum();
    assert!(max_memory > 0, "the log never held content");
    assert!(
        max_memory <= MEMORY_LIMIT,
        "log held {max_memory} bytes in memory"
    );
    assert!(
        spilled > 0,
        "{driver:?}: the log never spilled (max memory {max_memory})"
    );
    let slow_done = slow.state().msg("file-1").unwrap().done_seq.unwrap();
    for d in &fast {
        let done = d.state().msg("file-1").unwrap().done_seq.unwrap();
        assert!(
            done < slow_done,
            "{} finished after the slow device",
            d.name
        );
    }
    relay.shutdown(Duration::from_secs(5));
}

#[test]
fn cpm_mld_020_pf_lmm_send_slow_device_1mbps_others_finish_first_memory_bounded() {
    for d in drivers() {
        slow_device(d);
    }
}

fn late_accept(driver: Driver) {
    let relay = start_relay(driver, 2, |_| {});
    let h = relay.handle();
    let (session, snd) = sender(&relay, "sender");
    let (_, early) = device(&relay, session, "early", PeerOpts::default());
    // Invited now, answered only after half the file went through.
    let (late_leg, late_relay_uri) = h.add_leg(session, "late").unwrap();
    let body = file(4 << 20, 7);
    let digest = sha256_hex(&body);
    let half = body.len() as u64 / 2;
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::channel();
        let sending = s.spawn(|| {
            let tids = snd.send_message(
                "file-1",
                "application/octet-stream",
                &body,
                64 << 10,
                move |n| {
                    let _ = tx.send(n);
                },
            );
            tids.iter()
                .map(|t| snd.response(t, WAIT))
                .collect::<Vec<_>>()
        });
        while rx.recv_timeout(WAIT).expect("sender progress") < half {}
        early.wait("half the file", WAIT, |s| s.body_bytes >= half);
        let uri = peer_uri("late");
        answer(&h, late_leg, &uri, Setup::Passive);
        let late = Peer::connect(
            "late",
            relay.local_addr(),
            &uri,
            &late_relay_uri,
            PeerOpts::default(),
        );
        let tid = late.send_bind();
        assert_eq!(late.response(&tid, WAIT), 200);
        let codes = sending.join().unwrap();
        assert!(codes.iter().all(|&c| c == 200), "sender got {codes:?}");
        early.wait("the whole file", WAIT, |s| s.has_file("file-1", &digest));
        late.wait("the whole file", WAIT, |s| {
            s.msg("file-1").is_some_and(|m| m.digest.is_some())
        });
        let st = late.state();
        assert_eq!(st.msg("file-1").unwrap().len, body.len() as u64);
        assert!(st.has_file("file-1", &digest), "late device's copy differs");
        assert!(st.errors.is_empty(), "{:?}", st.errors);
    });
    relay.shutdown(Duration::from_secs(5));
}

#[test]
fn cpm_mld_020_late_accept_gets_whole_file() {
    for d in drivers() {
        late_accept(d);
    }
}
