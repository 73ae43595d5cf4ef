//! The io_uring driver, on the `io-uring` crate: one ring per worker
//! thread, the same thread-per-core and session-to-worker model, the same
//! `SO_REUSEPORT` listeners and handover channel as the epoll driver
//! (shared in `io::setup` and `io::command`).
//!
//! - **Batched submission.** A loop turn handles every CQE that is ready,
//!   lets the engine react, then queues the sends it caused on every leg
//!   that has output (one send in flight per connection) together with
//!   any receive to re-arm, and submits all of them with the wait for the
//!   next CQE in **one** `io_uring_enter` (`EXT_ARG` carries the engine's
//!   timer as the wait's timeout). [`Relay::counters`] counts the enters.
//! - **Receive** with a provided-buffer ring and multishot `RECV` where the
//!   kernel has them (buffers, lending, return and the anti-starvation
//!   policy: [`bufring`]); plain `RECV` with a buffer per operation where it
//!   has not. Backpressure: when [`Engine::can_read`] says no, a multishot
//!   receive is cancelled and what it still delivers waits in the
//!   connection's queue; it is re-armed when the engine has room.
//! - **Send** is `SENDMSG` (`MSG_NOSIGNAL`) of up to 64 pieces of
//!   [`Engine::output`] (leg head, shared body, end-line, …) whose `Bytes`
//!   are cloned into the operation ([`ops`]); the completion's count goes
//!   to [`Engine::consume_output`], so a short write resumes at the exact
//!   byte. `SENDMSG_ZC` for sends carrying a piece of at least
//!   `UringConfig::send_zc_min` bytes (off by default); the `Bytes` then
//!   live until the kernel's notification.
//! - **Accept** (multishot), **connect** (with a linked timeout), `shutdown`
//!   and `close` go through the ring; the timers are the wait's timeout.
//!   Closing a connection cancels its operations and waits for their last
//!   CQEs before the descriptor is closed and their buffers freed.
//!
//! All `unsafe` of the project is in this module; each block says why the
//! memory or descriptor it hands the kernel outlives the SQE.
//!
//! [`Relay::counters`]: crate::io::Relay::counters
//! [`Engine::can_read`]: crate::fanout::Engine::can_read
//! [`Engine::output`]: crate::fanout::Engine::output
//! [`Engine::consume_output`]: crate::fanout::Engine::consume_output
#![allow(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod bufring;
mod ops;
mod probe;
mod worker;

use std::fs::File;
use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::mpsc::{self, Sender};

use super::command::{Command, Wake, WorkerLink};
use super::config::RelayConfig;
use super::counters::Counters;
use super::error::IoError;
use super::setup::{self, Runner, SockOpts, Started};
use crate::fanout::Event;
pub use probe::Unavailable;
pub(crate) use probe::{Features, probe};

/// Whether the io_uring driver can run here with `cfg` (what
/// [`IoMode::Auto`](crate::io::IoMode) would find), and if not, why.
pub fn check(cfg: &crate::io::config::UringConfig) -> Result<(), Unavailable> {
    probe(cfg).map(drop)
}

/// Whether this kernel has the zero-copy `SENDMSG_ZC` the driver uses for
/// large sends when [`UringConfig::send_zc_min`](crate::io::config::UringConfig)
/// is set.
pub fn has_zero_copy_send(cfg: &crate::io::config::UringConfig) -> bool {
    probe(cfg).is_ok_and(|f| f.send_zc)
}
use worker::{Parts, Worker};

/// The waker of a uring worker: an eventfd the worker keeps a read on.
#[derive(Debug)]
pub(crate) struct EventFd(File);

impl EventFd {
    fn new() -> std::io::Result<EventFd> {
        // SAFETY: plain syscall with constant flags; no pointers.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `eventfd` just returned this descriptor; nothing else
        // owns it.
        Ok(EventFd(File::from(unsafe { OwnedFd::from_raw_fd(fd) })))
    }

    fn raw(&self) -> i32 {
        use std::os::fd::AsRawFd;
        self.0.as_raw_fd()
    }
}

impl Wake for EventFd {
    fn wake(&self) -> std::io::Result<()> {
        (&self.0).write_all(&1u64.to_ne_bytes())
    }
}

/// Starts one io_uring worker per configured worker. Each worker creates
/// its ring on its own thread (`SINGLE_ISSUER` binds a ring to its
/// creator) and reports back before `start` returns.
pub(crate) fn start(
    cfg: &RelayConfig,
    features: Features,
    events: Sender<Event>,
) -> Result<Started, IoError> {
    let (seeds, bound) = setup::seeds(cfg)?;
    let workers = seeds.len();
    let mut links = Vec::with_capacity(workers);
    let mut pending = Vec::with_capacity(workers);
    let mut counters = Vec::with_capacity(workers);
    for seed in seeds {
        let wake = Arc::new(EventFd::new()?);
        let (tx, rx) = mpsc::channel();
        links.push(WorkerLink {
            tx,
            waker: wake.clone(),
        });
        let c = Arc::new(Counters::default());
        counters.push(c.clone());
        pending.push((seed, wake, rx, c));
    }
    let opts = SockOpts::of(cfg);
    let (ready_tx, ready_rx) = mpsc::channel();
    let started = setup::spawn(
        "msrp-uring",
        links,
        pending,
        bound,
        counters,
        |(seed, wake, rx, counters), links| {
            let parts = Parts {
                index: seed.index,
                listener: Some(seed.listener),
                tls: seed.tls,
                engine: seed.engine,
                rx,
                links,
                events: events.clone(),
                opts,
                counters,
                wake,
                features,
                cfg: cfg.uring.clone(),
            };
            let ready = ready_tx.clone();
            Ok(Box::new(move || match Worker::new(parts) {
                Ok(w) => {
                    let _ = ready.send(Ok(()));
                    w.run();
                }
                Err(e) => {
                    let _ = ready.send(Err(e));
                }
            }) as Runner)
        },
    )?;
    for _ in 0..workers {
        let r = ready_rx
            .recv()
            .unwrap_or_else(|_| Err(std::io::ErrorKind::BrokenPipe.into()));
        if let Err(e) = r {
            stop(&started);
            return Err(IoError::Setup(e));
        }
    }
    let (local_addr, tls_addr) = (bound.local_addr, bound.tls_addr);
    tracing::info!(%local_addr, ?tls_addr, workers, ?features, "relay listening (io_uring driver)");
    Ok(started)
}

/// Stops the workers of a start that failed half-way.
fn stop(started: &Started) {
    let deadline = std::time::Instant::now();
    for l in &started.links {
        let _ = l.send(Command::Shutdown { deadline });
    }
}
