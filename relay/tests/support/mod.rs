//! Helpers of the loopback tests: a relay on an ephemeral port, MSRP
//! peers (the sender and devices, see [`peer`]), session set-up through
//! the library API and an event log. Everything waits with deadlines;
//! nothing sleeps to synchronise.
//!
//! The driver is a parameter ([`Driver`]): every test runs on each driver
//! [`drivers`] returns (io_uring where the kernel lets us, and epoll).
//! `MSRP_TEST_DRIVERS=epoll` (or `uring`) restricts the set.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod peer;
mod reader;
pub mod tls;

use std::net::SocketAddr;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use bytes::Bytes;
use msrp_relay::fanout::{Answer, Event, LegId, SessionId, Setup};
use msrp_relay::io::{IoMode, Relay, RelayConfig, RelayHandle, UringConfig};
#[allow(unused_imports)]
pub use peer::{Peer, PeerOpts, Reports, next_seq, sha256_hex};

/// Upper bound of any single wait in these tests: generous, since CI
/// machines are slow and shared; a healthy run takes far less.
pub const WAIT: Duration = Duration::from_secs(60);

/// Which I/O driver runs the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    Epoll,
    Uring,
}

/// The drivers to test on this machine: both, unless io_uring is refused
/// here (then its run is skipped, and that is printed with the reason) or
/// `MSRP_TEST_DRIVERS` names only one.
pub fn drivers() -> Vec<Driver> {
    let only = std::env::var("MSRP_TEST_DRIVERS").unwrap_or_default();
    let wanted = |name: &str| only.is_empty() || only.split(',').any(|d| d.trim() == name);
    let mut v = Vec::new();
    if wanted("uring") {
        match msrp_relay::io::uring::check(&UringConfig::default()) {
            Ok(()) => v.push(Driver::Uring),
            Err(why) => eprintln!("io_uring driver skipped: {why}"),
        }
    }
    if wanted("epoll") {
        v.push(Driver::Epoll);
    }
    v
}

/// A relay on 127.0.0.1 with an ephemeral port and `workers` workers;
/// `tweak` adjusts the configuration.
pub fn start_relay(driver: Driver, workers: usize, tweak: impl FnOnce(&mut RelayConfig)) -> Relay {
    let _ = tracing_init();
    let mut cfg = RelayConfig {
        workers,
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..RelayConfig::default()
    };
    cfg.engine.host = "127.0.0.1".into();
    cfg.io = match driver {
        Driver::Epoll => IoMode::Epoll,
        Driver::Uring => IoMode::Uring,
    };
    tweak(&mut cfg);
    let relay = Relay::start(cfg).unwrap();
    eprintln!("relay on the {:?} driver", relay.driver());
    relay
}

fn tracing_init() -> Option<()> {
    // Logs only when RUST_LOG is set; a second init in the same binary fails
    // harmlessly.
    let filter = std::env::var("RUST_LOG").ok()?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init()
        .ok()
}

/// Deterministic pseudo-random content.
pub fn file(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A URI for a test peer (its `a=path`).
pub fn peer_uri(name: &str) -> String {
    format!("msrp://{name}.test.invalid:2855/{name};tcp")
}

/// The sender: a session created through the handle, its upstream leg
/// answered, connected and bound (its bind SEND answered 200).
pub fn sender(relay: &Relay, name: &str) -> (SessionId, Peer) {
    let h = relay.handle();
    let (leg, relay_uri) = h.create_session(name).unwrap();
    let uri = peer_uri(name);
    answer(&h, leg, &uri, Setup::Passive);
    let p = Peer::connect(
        name,
        relay.local_addr(),
        &uri,
        &relay_uri,
        PeerOpts::default(),
    );
    let tid = p.send_bind();
    assert_eq!(p.response(&tid, WAIT), 200, "sender bind");
    (leg.session, p)
}

pub fn answer(h: &RelayHandle, leg: LegId, uri: &str, setup: Setup) {
    h.answer(
        leg,
        Answer {
            peer_path: vec![Bytes::from(uri.to_owned())],
            setup,
        },
    )
    .unwrap();
}

/// A device leg, answered and connected; bound when `bind`.
pub fn device(relay: &Relay, session: SessionId, name: &str, opts: PeerOpts) -> (LegId, Peer) {
    device_at(&relay.handle(), relay.local_addr(), session, name, opts)
}

/// [`device`] through a handle and the relay's address.
pub fn device_at(
    h: &RelayHandle,
    addr: SocketAddr,
    session: SessionId,
    name: &str,
    opts: PeerOpts,
) -> (LegId, Peer) {
    let (leg, relay_uri) = h.add_leg(session, name).unwrap();
    let uri = peer_uri(name);
    answer(h, leg, &uri, Setup::Passive);
    let p = Peer::connect(name, addr, &uri, &relay_uri, opts);
    let tid = p.send_bind();
    assert_eq!(p.response(&tid, WAIT), 200, "{name} bind");
    (leg, p)
}

/// `n` devices named `dev0..`, set up from a few threads at once.
pub fn devices(relay: &Relay, session: SessionId, n: usize, opts: PeerOpts) -> Vec<(LegId, Peer)> {
    let per = n.div_ceil(8).max(1);
    let (h, addr) = (&relay.handle(), relay.local_addr());
    std::thread::scope(|s| {
        let parts: Vec<_> = (0..n)
            .step_by(per)
            .map(|from| {
                s.spawn(move || {
                    (from..(from + per).min(n))
                        .map(|i| device_at(h, addr, session, &format!("dev{i}"), opts))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts.into_iter().flat_map(|p| p.join().unwrap()).collect()
    })
}

/// Sends `body` as one message and waits until every chunk was answered;
/// returns the chunks' status codes.
pub fn send_file(sender: &Peer, mid: &str, body: &[u8], chunk: usize) -> Vec<u16> {
    let tids = sender.send_message(mid, "application/octet-stream", body, chunk, |_| {});
    tids.iter().map(|t| sender.response(t, WAIT)).collect()
}

/// The relay's events as the test pulled them, each stamped with
/// [`next_seq`] on arrival.
#[derive(Debug, Default)]
pub struct EventLog {
    pub seen: Vec<(u64, Event)>,
}

impl EventLog {
    /// Pulls events until `pred` holds for one of them (already seen ones
    /// included) and returns it; panics after [`WAIT`].
    pub fn wait(
        &mut self,
        relay: &Relay,
        what: &str,
        mut pred: impl FnMut(&Event) -> bool,
    ) -> Event {
        if let Some((_, e)) = self.seen.iter().find(|(_, e)| pred(e)) {
            return e.clone();
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match relay.events().recv_timeout(left) {
                Ok(e) => {
                    self.seen.push((next_seq(), e.clone()));
                    if pred(&e) {
                        return e;
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    panic!("timed out waiting for {what}; events: {:?}", self.seen)
                }
            }
        }
    }

    /// Takes whatever is queued now.
    pub fn drain(&mut self, relay: &Relay) {
        while let Ok(e) = relay.events().try_recv() {
            self.seen.push((next_seq(), e));
        }
    }

    pub fn count(&self, mut pred: impl FnMut(&Event) -> bool) -> usize {
        self.seen.iter().filter(|(_, e)| pred(e)).count()
    }

    /// The arrival stamp of the first event matching `pred`.
    pub fn seq_of(&self, mut pred: impl FnMut(&Event) -> bool) -> Option<u64> {
        self.seen.iter().find(|(_, e)| pred(e)).map(|(s, _)| *s)
    }
}
