//! Three relays behind one real Kamailio (issue 10, item 3): the stock
//! `rtpengine` module with three `udp:` entries in `rtpengine_sock` picks
//! a relay per Call-ID and keeps every command of a call on it; sessions
//! spread over all three and each completes byte for byte. One relay is
//! stopped with SIGTERM while a call is live on it: that call goes on to
//! its last byte and its BYE, new calls go to the other two (the draining
//! relay answers their `offer` with "Parallel session limit reached",
//! which the module takes as "try the next relay"), the stopped relay
//! exits by itself once its last session ended, and `rtpengine.ping`
//! marks it down.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;

use support::RelayProcess;
use support::kamailio::Kamailio;
use support::msrp_peer::sha256_hex;
use support::notify::Notify;
use support::sdp;
use support::sip::Ua;
use support::sipcall::{Call, bye, call, devices};

const CHUNK: usize = 8 * 1024;
const CALLS: usize = 30;

struct Relay {
    process: Option<RelayProcess>,
    msrp: SocketAddr,
    ng: String,
    notify: Notify,
}

/// A relay with its ng UDP listener and a systemd notify socket of our
/// own, so that the test knows when a SIGTERM has turned into a drain.
fn relay() -> Relay {
    let notify = Notify::bind();
    let p = RelayProcess::start_with(
        "epoll",
        "",
        "[ng]\nlisten-udp = \"127.0.0.1:0\"\n",
        None,
        &[notify.env()],
    );
    let r = Relay {
        msrp: p.msrp.parse().unwrap(),
        ng: p.ready_word("ng-udp").expect("ng-udp in the ready line"),
        process: Some(p),
        notify,
    };
    r.notify.expect("READY=1");
    r
}

fn body(seed: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 131 + seed * 7) % 251) as u8)
        .collect()
}

/// Sends `body[from..to]` in chunks of a file of `body.len()` bytes.
fn send(c: &Call, body: &[u8], from: usize, to: usize) {
    for at in (from..to).step_by(CHUNK) {
        c.sender.send_chunk(body, at, (at + CHUNK).min(to));
    }
}

/// Both devices got `body` whole; the bytes verified.
fn verify(c: &Call, body: &[u8]) -> usize {
    for d in &c.devices {
        let st = d.wait("the whole file", |s| s.complete);
        assert_eq!(st.digest(), sha256_hex(body), "every byte, in order");
    }
    body.len() * c.devices.len()
}

fn hang_up(alice: &mut Ua, devs: &mut [Ua], c: &Call) {
    for (d, dialog) in devs.iter_mut().zip(&c.dialogs) {
        bye(alice, d, dialog);
    }
}

/// One call `id` from set-up to BYE with a `len`-byte file (`seed`):
/// the relay it landed on and the bytes verified on the devices.
fn whole_call(
    msrp: &[SocketAddr],
    alice: &mut Ua,
    devs: &mut [Ua],
    id: &str,
    seed: usize,
    len: usize,
) -> (usize, usize) {
    let c = call(msrp, Some(id), alice, devs, &offer(seed), sdp::answer);
    let b = body(seed, len);
    send(&c, &b, 0, len);
    let verified = verify(&c, &b);
    hang_up(alice, devs, &c);
    (c.relay, verified)
}

fn offer(i: usize) -> String {
    sdp::offer(
        &format!("msrp://127.0.0.1:7654/r3x{i}x{};tcp", std::process::id()),
        "a=file-selector:name:\"f.jpg\" type:image/jpeg size:20000\r\n",
    )
}

/// Issue 10 item 3; PF-LMM-FORK and PF-LMM-BYE on each relay.
#[test]
fn kamailio_three_relays_spread_by_call_id_sigterm_drains_without_loss() {
    let mut relays: Vec<Relay> = (0..3).map(|_| relay()).collect();
    let ngs: Vec<String> = relays.iter().map(|r| r.ng.clone()).collect();
    let msrp: Vec<SocketAddr> = relays.iter().map(|r| r.msrp).collect();
    let k = Kamailio::start(&ngs);
    let mut devs = devices(&k);
    let mut alice = Ua::new("alice", k.sip);
    let len = 20_000;
    let (mut per_relay, mut verified) = ([0usize; 3], 0usize);

    // 1. Spread: calls one after another, each on the relay the module
    //    picked for its Call-ID, each byte-exact on both devices.
    for i in 0..CALLS {
        let id = format!("spread-{i}@alice.example");
        let (relay, bytes) = whole_call(&msrp, &mut alice, &mut devs, &id, i, len);
        verified += bytes;
        per_relay[relay] += 1;
    }
    assert!(
        per_relay.iter().all(|&n| n > 0),
        "every relay took calls: {per_relay:?}"
    );

    // 2. A call live on one relay; that relay gets SIGTERM mid-transfer.
    let live = call(
        &msrp,
        Some("live@alice.example"),
        &mut alice,
        &mut devs,
        &offer(99),
        sdp::answer,
    );
    let victim = live.relay;
    let live_body = body(99, len);
    send(&live, &live_body, 0, len / 2);
    let stopped = relays[victim].process.take().unwrap();
    stopped.signal(nix::sys::signal::Signal::SIGTERM);
    relays[victim].notify.expect("STOPPING=1");

    // 3. New calls while it drains: none lands on it, all complete.
    let mut after = [0usize; 3];
    for i in 0..CALLS / 2 {
        let id = format!("during-drain-{i}@alice.example");
        let (relay, bytes) = whole_call(&msrp, &mut alice, &mut devs, &id, 100 + i, len);
        assert_ne!(relay, victim, "{id}: a new call on the draining relay");
        verified += bytes;
        after[relay] += 1;
    }

    assert!(
        k.log_text().contains("Parallel session limit reached"),
        "the module was turned away by the draining relay and tried the next"
    );

    // 4. The live call goes on after the signal, to its last byte.
    send(&live, &live_body, len / 2, len);
    verified += verify(&live, &live_body);
    // The extra dialog first (that device's leg), then the first one
    // (the session): the relay's last ng command.
    for (d, dialog) in devs.iter_mut().zip(&live.dialogs).rev() {
        bye(&mut alice, d, dialog);
    }
    let status = stopped.terminate_wait();
    assert!(
        status.success(),
        "the drained relay exits 0 by itself: {status}"
    );

    // 5. The module finds it dead.
    let ping = k.kamcmd(&["rtpengine.ping", "all"]);
    let show = k.kamcmd(&["rtpengine.show", "all"]);
    let dead = format!("udp:{}", relays[victim].ng);
    let block = show
        .split("url:")
        .find(|b| b.trim_start().starts_with(&dead))
        .unwrap_or_else(|| panic!("{dead} not in rtpengine.show: {show}"));
    assert!(
        block.contains("disabled: 1"),
        "{dead} should be down after ping ({ping}): {block}"
    );

    eprintln!(
        "three relays: calls per relay before the drain {per_relay:?}, during it {after:?} \
         (relay {victim} stopped), bytes verified {verified}, sessions lost at the drain 0"
    );
}
