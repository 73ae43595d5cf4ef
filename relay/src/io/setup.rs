//! Start-up shared by the drivers: the worker count, the `SO_REUSEPORT`
//! listeners, one engine per worker, socket options, and spawning the
//! worker threads (stopping those already started if one fails).

use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use socket2::{Domain, Protocol, SockRef, Socket, Type};

use super::command::{Command, WorkerLink};
use super::counters::Counters;
use super::error::IoError;
use super::handle::RelayConfig;
use crate::fanout::{ConnId, Engine, MemoryBudget};

/// Receives of one connection handed to the engine per loop turn, before
/// the other connections get their turn (both drivers).
pub(crate) const READS_PER_TURN: usize = 16;

/// The workers a relay started.
#[derive(Debug)]
pub(crate) struct Started {
    pub(crate) links: Vec<WorkerLink>,
    pub(crate) threads: Vec<JoinHandle<()>>,
    pub(crate) local_addr: SocketAddr,
    pub(crate) counters: Vec<Arc<Counters>>,
}

/// What one worker starts from: its index, listener and engine.
#[derive(Debug)]
pub(crate) struct Seed {
    pub(crate) index: usize,
    pub(crate) listener: TcpListener,
    pub(crate) engine: Engine,
}

/// The number of workers `cfg` asks for (`0`: one per core), at most 256.
pub(crate) fn worker_count(cfg: &RelayConfig) -> Result<usize, IoError> {
    let workers = match cfg.workers {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    if workers > 256 {
        return Err(IoError::Config(format!(
            "{workers} workers: at most 256 (a session id's top byte)"
        )));
    }
    Ok(workers)
}

/// Binds the listeners (the first one picks the port when `listen` has
/// port 0, the others join it with `SO_REUSEPORT`) and builds the engines.
pub(crate) fn seeds(cfg: &RelayConfig) -> Result<(Vec<Seed>, SocketAddr), IoError> {
    let workers = worker_count(cfg)?;
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
    let mut seeds = Vec::with_capacity(workers);
    for (index, listener) in listeners.into_iter().enumerate() {
        let mut ec = cfg.engine.clone();
        ec.worker = u8::try_from(index).map_err(|e| IoError::Config(e.to_string()))?;
        ec.workers = u16::try_from(workers).map_err(|e| IoError::Config(e.to_string()))?;
        if cfg.listen.port() == 0 {
            ec.port = local_addr.port();
        }
        let engine = Engine::new(ec, budget.clone(), Instant::now()).map_err(IoError::Engine)?;
        seeds.push(Seed {
            index,
            listener,
            engine,
        });
    }
    Ok((seeds, local_addr))
}

/// A worker, built on the calling thread, ready to run on its own.
pub(crate) type Runner = Box<dyn FnOnce() + Send>;

/// Builds every worker with `build` (which gets all workers' links, for
/// handovers) and starts one thread per worker, named `{driver}-{i}`. If
/// one cannot be built or started, those already running are stopped.
pub(crate) fn spawn<P>(
    driver: &str,
    links: Vec<WorkerLink>,
    pending: Vec<P>,
    local_addr: SocketAddr,
    counters: Vec<Arc<Counters>>,
    mut build: impl FnMut(P, Arc<[WorkerLink]>) -> std::io::Result<Runner>,
) -> Result<Started, IoError> {
    let shared: Arc<[WorkerLink]> = links.clone().into();
    let mut threads = Vec::with_capacity(pending.len());
    for (i, p) in pending.into_iter().enumerate() {
        let spawned = build(p, shared.clone()).and_then(|run| {
            std::thread::Builder::new()
                .name(format!("{driver}-{i}"))
                .spawn(run)
        });
        match spawned {
            Ok(t) => threads.push(t),
            Err(e) => {
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
    Ok(Started {
        links,
        threads,
        local_addr,
        counters,
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
    Ok(TcpListener::from(s))
}

/// Socket options set on every accepted or connected socket.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SockOpts {
    pub(crate) sndbuf: Option<usize>,
    pub(crate) rcvbuf: Option<usize>,
}

impl SockOpts {
    pub(crate) fn of(cfg: &RelayConfig) -> SockOpts {
        SockOpts {
            sndbuf: cfg.sndbuf,
            rcvbuf: cfg.rcvbuf,
        }
    }

    /// `TCP_NODELAY` (heads and end-lines are small writes that must not
    /// wait for Nagle) and the configured buffer sizes. A failure is
    /// logged: the connection still works with the kernel's defaults.
    pub(crate) fn apply(&self, s: &impl AsFd, conn: ConnId) {
        let sock = SockRef::from(s);
        let mut res = sock.set_tcp_nodelay(true);
        if let (Ok(()), Some(n)) = (&res, self.sndbuf) {
            res = sock.set_send_buffer_size(n);
        }
        if let (Ok(()), Some(n)) = (&res, self.rcvbuf) {
            res = sock.set_recv_buffer_size(n);
        }
        if let Err(e) = res {
            tracing::warn!(conn = conn.0, error = %e, "socket options");
        }
    }
}
