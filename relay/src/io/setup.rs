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
use super::config::RelayConfig;
use super::counters::Counters;
use super::error::IoError;
use super::tls::TlsContext;
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
    pub(crate) tls_addr: Option<SocketAddr>,
    pub(crate) counters: Vec<Arc<Counters>>,
}

/// What one worker starts from: its index, listener and engine.
#[derive(Debug)]
pub(crate) struct Seed {
    pub(crate) index: usize,
    pub(crate) listener: TcpListener,
    /// The TLS listener and context, when TLS is configured.
    pub(crate) tls: Option<TlsSeed>,
    pub(crate) engine: Engine,
}

/// A worker's TLS listener and the shared context.
#[derive(Debug)]
pub(crate) struct TlsSeed {
    pub(crate) listener: TcpListener,
    pub(crate) context: TlsContext,
}

/// Where the listeners are bound.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bound {
    pub(crate) local_addr: SocketAddr,
    pub(crate) tls_addr: Option<SocketAddr>,
}

/// The number of workers `cfg` asks for (`0`: one per core), at most 256.
pub(crate) fn worker_count(cfg: &RelayConfig) -> Result<usize, IoError> {
    let workers = match cfg.workers {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    if workers > 256 {
        return Err(IoError::TooManyWorkers(workers));
    }
    Ok(workers)
}

/// Binds one listener per worker on `addr` (the first one picks the port
/// when it is 0, the others join it with `SO_REUSEPORT`).
fn listeners(addr: SocketAddr, workers: usize) -> Result<(Vec<TcpListener>, SocketAddr), IoError> {
    let first = listen(addr)?;
    let bound = first
        .local_addr()
        .map_err(|source| IoError::Listen { addr, source })?;
    let mut all = vec![first];
    for _ in 1..workers {
        all.push(listen(bound)?);
    }
    Ok((all, bound))
}

/// Binds the listeners (plain, and TLS when configured) and builds the
/// engines.
pub(crate) fn seeds(cfg: &RelayConfig) -> Result<(Vec<Seed>, Bound), IoError> {
    let workers = worker_count(cfg)?;
    let (plain, local_addr) = listeners(cfg.listen, workers)?;
    let mut tls = match &cfg.tls {
        Some(t) => {
            if t.ktls {
                super::tls::ktls::announce();
            }
            let (l, a) = listeners(t.listen, workers)?;
            Some((l.into_iter(), a, t.context.clone()))
        }
        None => None,
    };
    let tls_addr = tls.as_ref().map(|t| t.1);
    let budget = MemoryBudget::new(cfg.process_memory_budget);
    let mut seeds = Vec::with_capacity(workers);
    for (index, listener) in plain.into_iter().enumerate() {
        let mut ec = cfg.engine.clone();
        ec.worker = u8::try_from(index).map_err(IoError::WorkerIndex)?;
        ec.workers = u16::try_from(workers).map_err(IoError::WorkerIndex)?;
        if cfg.listen.port() == 0 {
            ec.port = local_addr.port();
        }
        ec.tls_port = tls_addr.map(|a| a.port());
        let engine = Engine::new(ec, budget.clone(), Instant::now()).map_err(IoError::Engine)?;
        let tls = tls.as_mut().and_then(|(ls, _, ctx)| {
            ls.next().map(|listener| TlsSeed {
                listener,
                context: ctx.clone(),
            })
        });
        seeds.push(Seed {
            index,
            listener,
            tls,
            engine,
        });
    }
    Ok((
        seeds,
        Bound {
            local_addr,
            tls_addr,
        },
    ))
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
    bound: Bound,
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
        local_addr: bound.local_addr,
        tls_addr: bound.tls_addr,
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
