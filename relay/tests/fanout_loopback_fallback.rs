//! Driver selection: `io = auto` falls back to epoll when the io_uring
//! probe fails (forced here with `UringConfig::force_unavailable`) and the
//! relay still serves; `io = uring` refuses to start instead; the zero-copy
//! send path and the no-multishot path of the io_uring driver deliver the
//! same bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use msrp_relay::io::{Driver as Running, IoError, IoMode, Relay, Unavailable};
use support::*;

/// 1 → 3 devices, 1 MiB in 64 KiB chunks, every copy checked.
fn serves(relay: &Relay) {
    let (session, snd) = sender(relay, "sender");
    let devs: Vec<_> = devices(relay, session, 3, PeerOpts::default());
    let body = file(1 << 20, 99);
    let digest = sha256_hex(&body);
    let codes = send_file(&snd, "file-1", &body, 64 << 10);
    assert!(codes.iter().all(|&c| c == 200), "sender got {codes:?}");
    for (_, d) in &devs {
        d.wait("the whole file", WAIT, |s| s.has_file("file-1", &digest));
    }
}

#[test]
fn io_auto_falls_back_to_epoll_when_the_probe_fails_and_serves() {
    let relay = start_relay(Driver::Epoll, 2, |c| {
        c.io = IoMode::Auto;
        c.uring.force_unavailable = true;
    });
    assert_eq!(relay.driver(), Running::Epoll);
    serves(&relay);
    relay.shutdown(std::time::Duration::from_secs(5));
}

#[test]
fn io_uring_mode_refuses_to_start_when_the_probe_fails() {
    let mut cfg = msrp_relay::io::RelayConfig {
        workers: 1,
        listen: ([127, 0, 0, 1], 0).into(),
        io: IoMode::Uring,
        ..Default::default()
    };
    cfg.uring.force_unavailable = true;
    match Relay::start(cfg) {
        Err(IoError::Uring(Unavailable::Forced)) => {}
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn io_auto_picks_uring_where_the_kernel_allows() {
    let relay = start_relay(Driver::Epoll, 1, |c| c.io = IoMode::Auto);
    let expect = match msrp_relay::io::uring::check(&Default::default()) {
        Ok(()) => Running::Uring,
        Err(why) => {
            eprintln!("io_uring unavailable here ({why}): auto must pick epoll");
            Running::Epoll
        }
    };
    assert_eq!(relay.driver(), expect);
}

#[test]
fn uring_zero_copy_sends_and_single_shot_receives_deliver_the_same_bytes() {
    if !drivers().contains(&Driver::Uring) {
        return;
    }
    let zc = start_relay(Driver::Uring, 2, |c| c.uring.send_zc_min = Some(16 << 10));
    serves(&zc);
    let zc_sends = zc.counters().zc_sends;
    zc.shutdown(std::time::Duration::from_secs(5));
    // 1 MiB to 3 devices in 64 KiB chunks, over the 16 KiB threshold:
    // zero-copy where the kernel has it, plain sends where not.
    if msrp_relay::io::uring::has_zero_copy_send(&Default::default()) {
        assert!(zc_sends > 0, "SENDMSG_ZC available, yet no zero-copy send");
    } else {
        assert_eq!(zc_sends, 0, "no SENDMSG_ZC here, yet zero-copy sends");
    }
    let single = start_relay(Driver::Uring, 2, |c| c.uring.multishot = false);
    serves(&single);
    single.shutdown(std::time::Duration::from_secs(5));
}
