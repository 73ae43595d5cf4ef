//! The epoll driver, on `mio`: one worker thread per configured worker,
//! each with its own [`Engine`](crate::fanout::Engine), `mio::Poll`,
//! listener and connections.
//!
//! - **Accepting.** Every worker listens on the same address with
//!   `SO_REUSEPORT`, so the kernel spreads accepts over the workers. A
//!   connection whose first request names a session of another worker is
//!   handed over ([`Output::Handover`](crate::fanout::Output)): the socket
//!   is deregistered and sent, with the bytes read so far, through the
//!   owner's command channel and waker.
//! - **Reading** only while [`Engine::can_read`](crate::fanout::Engine::can_read)
//!   allows (the sender is not read while its session's log has no room:
//!   TCP pushes back). Since `mio` is edge-triggered, a connection with
//!   unread data stays in a ready set and is retried every loop turn.
//!   Reads land in a shared `BytesMut` and are frozen into `Bytes` the
//!   engine keeps: zero copy.
//! - **Writing** is vectored: what the engine's `output` holds (heads,
//!   shared bodies, end-lines) as up to [`MAX_IOV`](conn::MAX_IOV) slices,
//!   then `consume_output` with the count written, so a short write
//!   resumes at the exact byte.
//! - **Fairness.** Each connection gets a bounded number of reads and
//!   writes per turn; leftover work makes the next poll non-blocking.

mod conn;
mod worker;

use std::sync::Arc;
use std::sync::mpsc::{self, Sender};

use mio::net::TcpListener;
use mio::{Poll, Waker};

use super::command::{Wake, WorkerLink};
use super::config::RelayConfig;
use super::counters::Counters;
use super::error::IoError;
use super::setup::{self, Runner, SockOpts, Started};
use crate::fanout::Event;
use worker::Worker;

impl Wake for Waker {
    fn wake(&self) -> std::io::Result<()> {
        Waker::wake(self)
    }
}

/// Binds the listeners, builds the engines and starts one thread per
/// worker (see [`setup`]).
pub(crate) fn start(cfg: &RelayConfig, events: Sender<Event>) -> Result<Started, IoError> {
    let (seeds, bound) = setup::seeds(cfg)?;
    let workers = seeds.len();
    let mut links = Vec::with_capacity(workers);
    let mut pending = Vec::with_capacity(workers);
    let mut counters = Vec::with_capacity(workers);
    for seed in seeds {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), worker::WAKER)?);
        let (tx, rx) = mpsc::channel();
        links.push(WorkerLink { tx, waker });
        let c = Arc::new(Counters::default());
        counters.push(c.clone());
        pending.push((seed, poll, rx, c));
    }
    let opts = SockOpts::of(cfg);
    let started = setup::spawn(
        "msrp-epoll",
        links,
        pending,
        bound,
        counters,
        |(seed, poll, rx, counters), links| {
            let listener = TcpListener::from_std(seed.listener);
            let tls = seed
                .tls
                .map(|t| (TcpListener::from_std(t.listener), t.context));
            let w = Worker::new(
                seed.index,
                poll,
                listener,
                tls,
                seed.engine,
                rx,
                links,
                events.clone(),
                opts,
                counters,
            )?;
            Ok(Box::new(move || w.run()) as Runner)
        },
    )?;
    let (local_addr, tls_addr) = (bound.local_addr, bound.tls_addr);
    tracing::info!(%local_addr, ?tls_addr, workers, "relay listening (epoll driver)");
    Ok(started)
}
