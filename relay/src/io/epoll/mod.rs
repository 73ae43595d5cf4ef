//! The epoll driver, on `mio`: one worker thread per configured worker,
//! each with its own [`Engine`], `mio::Poll`, listener and connections.
//!
//! - **Accepting.** Every worker listens on the same address with
//!   `SO_REUSEPORT`, so the kernel spreads accepts over the workers. A
//!   connection whose first request names a session of another worker is
//!   handed over ([`Output::Handover`](crate::fanout::Output)): the socket
//!   is deregistered and sent, with the bytes read so far, through the
//!   owner's command channel and waker.
//! - **Reading** only while [`Engine::can_read`] allows (the sender is not
//!   read while its session's log has no room: TCP pushes back). Since
//!   `mio` is edge-triggered, a connection with unread data stays in a
//!   ready set and is retried every loop turn. Reads land in a shared
//!   `BytesMut` and are frozen into `Bytes` the engine keeps: zero copy.
//! - **Writing** is vectored: what [`Engine::output`] holds (heads, shared
//!   bodies, end-lines) as up to [`MAX_IOV`](conn::MAX_IOV) slices, then
//!   [`Engine::consume_output`] with the count written, so a short write
//!   resumes at the exact byte.
//! - **Fairness.** Each connection gets a bounded number of reads and
//!   writes per turn; leftover work makes the next poll non-blocking.

mod conn;
mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::{self, Sender};
use std::thread::JoinHandle;
use std::time::Instant;

use mio::net::TcpListener;
use mio::{Poll, Waker};
use socket2::{Domain, Protocol, Socket, Type};

use super::command::{Command, Wake, WorkerLink};
use super::error::IoError;
use super::handle::RelayConfig;
use crate::fanout::{Engine, Event, MemoryBudget};
use worker::Worker;

/// The workers a relay started.
#[derive(Debug)]
pub(crate) struct Started {
    pub(crate) links: Vec<WorkerLink>,
    pub(crate) threads: Vec<JoinHandle<()>>,
    pub(crate) local_addr: SocketAddr,
}

impl Wake for Waker {
    fn wake(&self) -> std::io::Result<()> {
        Waker::wake(self)
    }
}

/// Binds the listeners (the first one picks the port when `listen` has
/// port 0, the others join it with `SO_REUSEPORT`), builds the engines and
/// starts one thread per worker.
pub(crate) fn start(cfg: &RelayConfig, events: Sender<Event>) -> Result<Started, IoError> {
    let workers = match cfg.workers {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    if workers > 256 {
        return Err(IoError::Config(format!(
            "{workers} workers: at most 256 (a session id's top byte)"
        )));
    }
    let first = listen(cfg.listen)?;
    let local_addr = first.local_addr().map_err(|source| IoError::Listen {
        addr: cfg.listen,
        source,
    })?;
    let mut listeners = vec![first];
    for _ in 1..workers {
        listeners.push(listen(local_addr)?);
    }
    let budget = MemoryBudget::new(cfg.process_memory_budget);
    let mut links = Vec::with_capacity(workers);
    let mut pending = Vec::with_capacity(workers);
    for (i, listener) in listeners.into_iter().enumerate() {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), worker::WAKER)?);
        let (tx, rx) = mpsc::channel();
        links.push(WorkerLink { tx, waker });
        let mut ec = cfg.engine.clone();
        ec.worker = u8::try_from(i).map_err(|e| IoError::Config(e.to_string()))?;
        ec.workers = u16::try_from(workers).map_err(|e| IoError::Config(e.to_string()))?;
        if cfg.listen.port() == 0 {
            ec.port = local_addr.port();
        }
        let engine = Engine::new(ec, budget.clone(), Instant::now()).map_err(IoError::Engine)?;
        pending.push((i, poll, rx, listener, engine));
    }
    let shared: Arc<[WorkerLink]> = links.clone().into();
    let mut threads = Vec::with_capacity(workers);
    for (i, poll, rx, listener, engine) in pending {
        let opts = conn::SockOpts {
            sndbuf: cfg.sndbuf,
            rcvbuf: cfg.rcvbuf,
        };
        let spawned = Worker::new(
            i,
            poll,
            listener,
            engine,
            rx,
            shared.clone(),
            events.clone(),
            opts,
        )
        .and_then(|w| {
            std::thread::Builder::new()
                .name(format!("msrp-epoll-{i}"))
                .spawn(move || w.run())
        });
        match spawned {
            Ok(t) => threads.push(t),
            Err(e) => {
                // Stop the workers already running before reporting.
                let deadline = Instant::now();
                for l in &links {
                    let _ = l.send(Command::Shutdown { deadline });
                }
                for t in threads {
                    let _ = t.join();
                }
                return Err(IoError::Setup(e));
            }
        }
    }
    tracing::info!(%local_addr, workers, "relay listening (epoll driver)");
    Ok(Started {
        links,
        threads,
        local_addr,
    })
}

/// A non-blocking listener with `SO_REUSEADDR` and `SO_REUSEPORT`.
fn listen(addr: SocketAddr) -> Result<TcpListener, IoError> {
    let err = |source| IoError::Listen { addr, source };
    let s =
        Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(err)?;
    s.set_reuse_address(true).map_err(err)?;
    s.set_reuse_port(true).map_err(err)?;
    s.set_nonblocking(true).map_err(err)?;
    s.bind(&addr.into()).map_err(err)?;
    s.listen(1024).map_err(err)?;
    Ok(TcpListener::from_std(std::net::TcpListener::from(s)))
}
