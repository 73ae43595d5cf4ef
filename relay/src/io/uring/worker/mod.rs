//! One io_uring worker: its ring, buffer ring, engine, listener and
//! connections, and the loop (see the module docs of [`super`]).

mod conns;
mod drain;
mod rw;

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

use io_uring::types::{SubmitArgs, Timespec};
use io_uring::{IoUring, opcode, squeue, types};

use super::bufring::BufRing;
use super::ops::{Op, Ops};
use super::{EventFd, Features};
use crate::fanout::{ConnId, Engine, Event, Output, READ_SIZE, SessionId};
use crate::io::command::{Command, WorkerLink, end_all, forward_event, next_command};
use crate::io::config::UringConfig;
use crate::io::counters::Counters;
use crate::io::deadlines::Timed;
use crate::io::setup::{SockOpts, TlsSeed};
use crate::io::tls::TlsContext;
use conns::{Conn, Phase};

/// After our FIN, how long a closing connection waits for the peer's.
const LINGER: Duration = Duration::from_secs(2);
/// How long the exit waits for cancelled operations to complete.
const EXIT_DRAIN: Duration = Duration::from_secs(5);
/// Buffer group id of the worker's ring (one group per ring).
const BGID: u16 = 0;

/// What a worker is built from, on its own thread.
#[derive(Debug)]
pub(crate) struct Parts {
    pub(crate) index: usize,
    /// Taken by the worker.
    pub(crate) listener: Option<TcpListener>,
    /// The TLS listener and context, if configured; taken by the worker.
    pub(crate) tls: Option<TlsSeed>,
    pub(crate) engine: Engine,
    pub(crate) rx: Receiver<Command>,
    pub(crate) links: Arc<[WorkerLink]>,
    pub(crate) events: Sender<Event>,
    pub(crate) opts: SockOpts,
    pub(crate) counters: Arc<Counters>,
    pub(crate) wake: Arc<EventFd>,
    pub(crate) features: Features,
    pub(crate) cfg: UringConfig,
}

/// A listener and its accept.
#[derive(Debug, Default)]
struct Acceptor {
    /// Closed only when `op` is gone.
    listener: Option<TcpListener>,
    /// The accept in flight.
    op: Option<u64>,
    /// Re-arm after a failed accept (EMFILE and the like) at this time.
    retry: Option<Instant>,
}

/// A worker thread's state; nothing in it is shared but the channels, the
/// counters and the buffer pool's return stack.
pub(crate) struct Worker {
    p: Parts,
    ring: IoUring,
    bufs: Option<BufRing>,
    ops: Ops,
    /// The plain listener (`[0]`) and the TLS one (`[1]`).
    acceptors: [Acceptor; 2],
    tls: Option<TlsContext>,
    wake_op: Option<u64>,
    multishot: bool,
    zc: Option<usize>,
    conns: HashMap<ConnId, Conn>,
    /// Connections to service this turn: what a completion, a close or a
    /// send queued last turn touched (the engine names the rest,
    /// [`Engine::take_ready`]).
    active: HashSet<ConnId>,
    /// Connections the engine would not let read (backpressure, parked,
    /// no buffer to receive into): asked again every turn.
    paused: HashSet<ConnId>,
    /// Connections with a closing deadline.
    closing: Timed,
    next_conn: u64,
    sessions: HashSet<SessionId>,
    shutdown: Option<Instant>,
    /// A receive could not be armed for want of buffers.
    starved: bool,
    /// Received bytes wait to be fed: the next enter must not block.
    more: bool,
    cqes: Vec<(u64, i32, u32)>,
    ids: Vec<ConnId>,
    /// `io_uring_enter` calls so far (see `Conn::send_turn`).
    turn: u64,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("index", &self.p.index)
            .field("conns", &self.conns.len())
            .field("ops", &self.ops.live())
            .finish_non_exhaustive()
    }
}

fn build_ring(cfg: &UringConfig, f: &Features) -> std::io::Result<IoUring> {
    let entries = cfg.entries.max(8);
    let mut b = IoUring::builder();
    b.setup_cqsize(entries.saturating_mul(4));
    if f.defer_taskrun {
        // Completions are posted only when this thread enters the ring:
        // no task-work interrupts while the engine runs.
        b.setup_single_issuer().setup_defer_taskrun();
    } else {
        b.setup_coop_taskrun();
    }
    b.build(entries).or_else(|e| {
        tracing::debug!(error = %e, "io_uring with task-run flags refused; plain ring");
        IoUring::builder()
            .setup_cqsize(entries.saturating_mul(4))
            .build(entries)
    })
}

impl Worker {
    pub(crate) fn new(p: Parts) -> std::io::Result<Worker> {
        let ring = build_ring(&p.cfg, &p.features)?;
        let bufs = BufRing::new(p.cfg.buffers, p.cfg.buffer_size.clamp(1, READ_SIZE), BGID)
            .and_then(|b| match b.register(&ring.submitter()) {
                Ok(()) => Some(b),
                Err(e) => {
                    tracing::info!(error = %e, "no provided-buffer ring: receives use own buffers");
                    None
                }
            });
        let multishot = p.features.multishot_recv && bufs.is_some();
        let zc = p.cfg.send_zc_min.filter(|_| p.features.send_zc);
        let mut p = p;
        let listener = p.listener.take();
        let (tls_listener, tls) = match p.tls.take() {
            Some(t) => (Some(t.listener), Some(t.context)),
            None => (None, None),
        };
        let mut w = Worker {
            p,
            ring,
            bufs,
            ops: Ops::default(),
            acceptors: [
                Acceptor {
                    listener,
                    ..Acceptor::default()
                },
                Acceptor {
                    listener: tls_listener,
                    ..Acceptor::default()
                },
            ],
            tls,
            wake_op: None,
            multishot,
            zc,
            conns: HashMap::new(),
            active: HashSet::new(),
            paused: HashSet::new(),
            closing: Timed::default(),
            next_conn: 1,
            sessions: HashSet::new(),
            shutdown: None,
            starved: false,
            more: false,
            cqes: Vec::with_capacity(1024),
            ids: Vec::new(),
            turn: 0,
        };
        w.arm_accept(false);
        w.arm_accept(true);
        w.arm_wake();
        Ok(w)
    }

    /// The loop: one `io_uring_enter` submits what the last turn queued and
    /// waits; then completions, returned buffers, commands, timers, and
    /// the connections' reads and writes.
    pub(crate) fn run(mut self) {
        let _span = tracing::debug_span!("uring worker", index = self.p.index).entered();
        let mut woke: Option<Instant> = None;
        loop {
            let before = Instant::now();
            if let Some(t) = woke.take() {
                self.p.counters.busy(before - t);
            }
            if let Err(e) = self.enter(before) {
                tracing::error!(error = %e, "io_uring_enter failed; worker stops");
                break;
            }
            self.turn += 1;
            let now = Instant::now();
            woke = Some(now);
            self.complete(now);
            if let Some(b) = &mut self.bufs {
                b.reclaim();
            }
            self.commands(now);
            if self.p.engine.poll_timeout().is_some_and(|t| t <= now) {
                self.p.engine.handle_timeout(now);
            }
            self.expire(now);
            self.outputs(now);
            self.service(now);
            if self.starved && self.bufs.as_mut().is_some_and(|b| b.reclaim() > 0) {
                self.service(now);
            }
            if self.finished(now) {
                break;
            }
        }
        self.exit();
    }

    /// Submits the queued SQEs; waits for a CQE (or the next timer) unless
    /// one is ready.
    fn enter(&mut self, now: Instant) -> std::io::Result<()> {
        let ready = !self.ring.completion().is_empty() || std::mem::take(&mut self.more);
        let queued = self.ring.submission().len();
        self.p.counters.submitted(queued);
        let r = if ready {
            if queued == 0 {
                return Ok(());
            }
            self.ring.submit()
        } else {
            match self.timeout(now) {
                Some(d) => {
                    let ts = Timespec::from(d);
                    let args = SubmitArgs::new().timespec(&ts);
                    self.ring.submitter().submit_with_args(1, &args)
                }
                None => self.ring.submit_and_wait(1),
            }
        };
        self.p.counters.syscall();
        match r {
            Ok(_) => Ok(()),
            Err(e) => match e.raw_os_error() {
                Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN) => Ok(()),
                _ => Err(e),
            },
        }
    }

    fn timeout(&self, now: Instant) -> Option<Duration> {
        let conn_deadlines = self.closing.next(&self.conns, Conn::deadline);
        self.p
            .engine
            .poll_timeout()
            .into_iter()
            .chain(conn_deadlines)
            .chain(self.shutdown)
            .chain(self.acceptors.iter().filter_map(|a| a.retry))
            .min()
            .map(|t| t.saturating_duration_since(now))
    }

    /// Queues `entry` for `op`; `None` (and `op` dropped) if the
    /// submission queue stays full.
    ///
    /// # Safety
    /// Every pointer in `entry` must point into heap memory owned by `op`
    /// (which stays in [`Ops`] until its last CQE), into the buffer ring,
    /// or into memory that otherwise outlives the operation; its
    /// descriptor must stay open until that last CQE.
    unsafe fn submit(&mut self, op: Op, entry: squeue::Entry) -> Option<u64> {
        let ud = self.ops.insert(op);
        let entry = entry.user_data(ud);
        for _ in 0..4 {
            // SAFETY: the caller's contract; `op` now lives in slot `ud`.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return Some(ud);
            }
            // Full: hand the queue to the kernel and retry.
            self.p.counters.submitted(self.ring.submission().len());
            self.p.counters.syscall();
            if let Err(e) = self.ring.submit() {
                tracing::warn!(error = %e, "io_uring submit");
            }
        }
        tracing::error!("submission queue stays full; operation dropped");
        self.ops.remove(ud);
        None
    }

    fn arm_accept(&mut self, tls: bool) {
        let a = &self.acceptors[usize::from(tls)];
        let Some(l) = &a.listener else { return };
        if a.op.is_some() || self.shutdown.is_some() {
            return;
        }
        let fd = types::Fd(std::os::fd::AsRawFd::as_raw_fd(l));
        let entry = if self.p.features.multishot_accept {
            opcode::AcceptMulti::new(fd)
                .flags(libc::SOCK_CLOEXEC)
                .build()
        } else {
            opcode::Accept::new(fd, std::ptr::null_mut(), std::ptr::null_mut())
                .flags(libc::SOCK_CLOEXEC)
                .build()
        };
        // SAFETY: no pointers (the peer address is not asked for); the
        // listener is closed only once its acceptor's `op` is `None`, i.e.
        // after this operation's last CQE.
        self.acceptors[usize::from(tls)].op = unsafe { self.submit(Op::Accept { tls }, entry) };
    }

    fn arm_wake(&mut self) {
        let mut buf = Box::new([0u8; 8]);
        let entry = opcode::Read::new(types::Fd(self.p.wake.raw()), buf.as_mut_ptr(), 8).build();
        // SAFETY: `buf` is a heap allocation moved into the op (the box's
        // contents do not move); the eventfd is held by `self.p.wake` for
        // the worker's whole life, and the exit drains this op.
        self.wake_op = unsafe { self.submit(Op::Wake { _buf: buf }, entry) };
    }

    /// Handles every ready CQE.
    fn complete(&mut self, now: Instant) {
        self.cqes.clear();
        self.cqes.extend(
            self.ring
                .completion()
                .map(|c| (c.user_data(), c.result(), c.flags())),
        );
        self.p.counters.completions(self.cqes.len());
        let cqes = std::mem::take(&mut self.cqes);
        for &(ud, res, flags) in &cqes {
            self.on_cqe(ud, res, flags, now);
        }
        self.cqes = cqes;
    }

    fn on_cqe(&mut self, ud: u64, res: i32, flags: u32, now: Instant) {
        let Some(op) = self.ops.get_mut(ud) else {
            tracing::warn!(ud, res, "CQE for no operation");
            return;
        };
        if let Op::Recv { conn, .. }
        | Op::Send { conn, .. }
        | Op::Connect { conn, .. }
        | Op::Shutdown { conn } = op
        {
            self.active.insert(*conn);
        }
        match op {
            Op::Recv { .. } => self.on_recv(ud, res, flags, now),
            Op::Send { .. } => self.on_send(ud, res, flags, now),
            Op::Connect { conn, .. } => {
                let conn = *conn;
                self.ops.remove(ud);
                self.on_connect(conn, res, now);
            }
            Op::Shutdown { conn } => {
                let conn = *conn;
                self.ops.remove(ud);
                self.op_done(conn);
            }
            Op::Accept { tls } => {
                let tls = *tls;
                self.on_accept(ud, tls, res, flags, now)
            }
            Op::Wake { .. } => {
                self.ops.remove(ud);
                self.wake_op = None;
                if self.shutdown.is_none_or(|d| now < d) {
                    self.arm_wake();
                }
            }
            Op::ConnectTimeout { .. } | Op::Close | Op::Cancel => {
                self.ops.remove(ud);
            }
        }
    }

    /// Cancels operation `target` (its own CQE follows, `-ECANCELED`).
    fn cancel(&mut self, target: u64) {
        let entry = opcode::AsyncCancel::new(target).build();
        // SAFETY: no pointers, no descriptor: the target is named by its
        // `user_data`.
        let _ = unsafe { self.submit(Op::Cancel, entry) };
    }

    fn commands(&mut self, now: Instant) {
        loop {
            let closing = self.shutdown.is_some();
            let e = &mut self.p.engine;
            match next_command(&self.p.rx, e, &mut self.sessions, closing, now) {
                Some(Command::Handover { stream, data, tls }) => self.adopt(stream, data, tls, now),
                Some(Command::Shutdown { deadline }) => self.begin_shutdown(deadline, now),
                Some(Command::Control(..)) | None => return,
            }
        }
    }

    fn outputs(&mut self, now: Instant) {
        while let Some(o) = self.p.engine.poll_output() {
            match o {
                Output::Connect { leg, addr, tls } => self.connect(leg, addr, tls, now),
                Output::Close { conn, flush } => self.close(conn, flush, now),
                Output::Handover { conn, worker, data } => self.handover(conn, worker, data, now),
                Output::Event(e) => forward_event(&mut self.sessions, &self.p.events, e),
            }
        }
    }

    fn begin_shutdown(&mut self, deadline: Instant, now: Instant) {
        if self.shutdown.is_some() {
            return;
        }
        self.shutdown = Some(deadline);
        for i in 0..self.acceptors.len() {
            match self.acceptors[i].op {
                Some(ud) => self.cancel(ud),
                None => self.acceptors[i].listener = None,
            }
        }
        end_all(&mut self.p.engine, &self.sessions, now);
    }

    /// Shutting down and either past the deadline or drained.
    fn finished(&self, now: Instant) -> bool {
        let Some(deadline) = self.shutdown else {
            return false;
        };
        now >= deadline
            || self.sessions.is_empty()
                && self.conns.iter().all(|(&id, c)| {
                    matches!(c.phase, Phase::Closing { shut: true, .. } | Phase::Dying)
                        || !self.p.engine.has_output(id)
                })
    }
}
