//! The library API: start a relay, drive sessions through a cloneable
//! handle, receive the engines' events, shut down.
//!
//! Every [`RelayHandle`] call goes to the worker that owns the session
//! (the top byte of a [`SessionId`]) over that worker's command channel
//! and waker: a blocking request/reply for calls that return data, a post
//! for the rest (whose wakes can be deferred and coalesced,
//! [`RelayHandle::with_deferred_wakes`]); it never touches the data path's
//! state from another thread.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::command::{Command, Control, Reply, WorkerLink};
use super::config::RelayConfig;
use super::counters::{Counters, DriverCounters};
use super::error::{IoError, RelayError};
use super::select::Driver;
use crate::fanout::ids::{IdSource, local_uri, mint_session_id};
use crate::fanout::{
    Answer, EngineConfig, EngineError, EngineStats, Event, LegId, LegInfo, LegRole, SessionId,
    Transport,
};
use crate::msrp::MsrpUri;

/// A running relay: its worker threads, listeners and event stream.
/// Dropping it shuts it down without draining.
#[derive(Debug)]
pub struct Relay {
    handle: RelayHandle,
    threads: Vec<JoinHandle<()>>,
    local_addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    tls: Option<super::tls::TlsContext>,
    events: Receiver<Event>,
    driver: Driver,
    counters: Vec<Arc<Counters>>,
}

impl Relay {
    /// Binds the listeners and starts the workers on the driver
    /// `cfg.io` selects.
    pub fn start(cfg: RelayConfig) -> Result<Relay, IoError> {
        let (tx, events) = mpsc::channel();
        let (started, driver) = super::select::start(&cfg, tx)?;
        Ok(Relay {
            handle: RelayHandle {
                mint: Arc::new(Mint {
                    sessions: started.links.iter().map(|_| AtomicU64::new(1)).collect(),
                    uris: {
                        let mut e = cfg.engine.clone();
                        if cfg.listen.port() == 0 {
                            e.port = started.local_addr.port();
                        }
                        e.tls_port = started.tls_addr.map(|a| a.port());
                        e
                    },
                }),
                workers: started.links.into(),
                next: Arc::new(AtomicUsize::new(0)),
                deferred: None,
            },
            threads: started.threads,
            local_addr: started.local_addr,
            tls_addr: started.tls_addr,
            tls: cfg.tls.as_ref().map(|t| t.context.clone()),
            events,
            driver,
            counters: started.counters,
        })
    }

    /// The driver running underneath.
    pub fn driver(&self) -> Driver {
        self.driver
    }

    /// The drivers' syscall and operation counters, summed over workers.
    pub fn counters(&self) -> DriverCounters {
        let mut d = DriverCounters::default();
        for c in &self.counters {
            d.add(c);
        }
        d
    }

    /// Each worker's counters, readable from another thread.
    pub fn counter_probe(&self) -> super::counters::CounterProbe {
        super::counters::CounterProbe(self.counters.clone())
    }

    /// A handle for control calls; cheap to clone, usable from any thread.
    pub fn handle(&self) -> RelayHandle {
        self.handle.clone()
    }

    /// The address the listeners are bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address the TLS listeners are bound to, if TLS is configured.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// The TLS context the workers share: [`TlsContext::reload`] swaps the
    /// certificate for the next handshakes.
    ///
    /// [`TlsContext::reload`]: super::tls::TlsContext::reload
    pub fn tls_context(&self) -> Option<&super::tls::TlsContext> {
        self.tls.as_ref()
    }

    /// Every worker's engine events, in the order each worker raised them.
    pub fn events(&self) -> &Receiver<Event> {
        &self.events
    }

    /// Stops accepting, ends every session so that each device leg drains
    /// to its last byte (its `LegDone` is raised), waits up to `drain`,
    /// then closes every connection and joins the workers.
    pub fn shutdown(mut self, drain: Duration) {
        self.stop(drain);
    }

    fn stop(&mut self, drain: Duration) {
        let deadline = Instant::now() + drain;
        for w in self.handle.workers.iter() {
            // A worker that is gone already needs no telling.
            let _ = w.send(Command::Shutdown { deadline });
        }
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                tracing::error!("a worker thread panicked");
            }
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.stop(Duration::ZERO);
        }
    }
}

/// Control access to a running relay. `Send + Sync`; clones share the
/// round-robin counter that spreads new sessions over the workers.
#[derive(Debug, Clone)]
pub struct RelayHandle {
    workers: Arc<[WorkerLink]>,
    next: Arc<AtomicUsize>,
    mint: Arc<Mint>,
    /// `Some`: posts leave waking their worker to
    /// [`RelayHandle::wake_deferred`] (one flag per worker: posted to,
    /// not woken yet).
    deferred: Option<Arc<[AtomicBool]>>,
}

/// What a handle needs to mint identities ahead of the workers.
#[derive(Debug)]
struct Mint {
    /// Next session number per worker.
    sessions: Box<[AtomicU64]>,
    /// The engine configuration the URIs are made from.
    uris: EngineConfig,
}

impl RelayHandle {
    /// A handle whose posted commands (everything but the calls that
    /// return data) do not wake their worker until
    /// [`RelayHandle::wake_deferred`]: a caller that posts many commands
    /// in a row wakes each worker once. Calls with a reply wake at once
    /// (the worker then runs the earlier posts first, in order). The
    /// caller must call `wake_deferred` after its posts.
    pub fn with_deferred_wakes(&self) -> RelayHandle {
        RelayHandle {
            deferred: Some(
                self.workers
                    .iter()
                    .map(|_| AtomicBool::new(false))
                    .collect(),
            ),
            ..self.clone()
        }
    }

    /// Wakes every worker posted to since the last wake (through this
    /// handle or its clones). A no-op on a handle without deferred wakes.
    pub fn wake_deferred(&self) {
        let Some(pending) = &self.deferred else {
            return;
        };
        for (link, flag) in self.workers.iter().zip(pending.iter()) {
            if flag.swap(false, Ordering::AcqRel)
                && let Err(e) = link.waker.wake()
            {
                tracing::warn!(error = %e, "waking a worker failed");
            }
        }
    }

    /// Creates a session on the next worker (round-robin) with its upstream
    /// leg over plain TCP; see [`RelayHandle::create_session_on`].
    pub fn create_session(&self, upstream_label: &str) -> Result<(LegId, String), RelayError> {
        self.create_session_on(upstream_label, Transport::Tcp)
    }

    /// Creates a session on the next worker (round-robin) with its upstream
    /// leg over `transport`; returns that leg and the relay's URI on it
    /// (for the SDP `a=path` toward the sender: `msrps:` on the TLS port
    /// for [`Transport::Tls`]). The session is `leg.session`.
    ///
    /// No round trip: the handle mints the session's identities (its id,
    /// and the session-id of the relay's URI, [`mint_session_id`]) and
    /// posts the command to the worker, which processes its commands in
    /// order.
    pub fn create_session_on(
        &self,
        upstream_label: &str,
        transport: Transport,
    ) -> Result<(LegId, String), RelayError> {
        let n = self.workers.len().max(1);
        // Checked before a worker or a session number is taken.
        if transport == Transport::Tls && self.mint.uris.tls_port.is_none() {
            return Err(RelayError::Engine(EngineError::NoTls));
        }
        let w = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let seq = self.mint.sessions[w].fetch_add(1, Ordering::Relaxed);
        let id = SessionId(((w as u64) << 56) | (1 << 40) | seq);
        let sid = mint_session_id(w as u8, &mut IdSource::Os).map_err(RelayError::Engine)?;
        let uri = local_uri(&self.mint.uris, &sid, transport).map_err(RelayError::Engine)?;
        let label = upstream_label.to_owned();
        self.post(
            id,
            Control::CreateSessionAs {
                id,
                label,
                sid,
                transport,
            },
        )?;
        Ok((
            LegId {
                session: id,
                index: 0,
            },
            uri,
        ))
    }

    /// Adds device leg number `index` over plain TCP; see
    /// [`RelayHandle::add_leg_at_on`].
    pub fn add_leg_at(
        &self,
        session: SessionId,
        index: u32,
        label: &str,
    ) -> Result<(LegId, String), RelayError> {
        self.add_leg_at_on(session, index, label, Transport::Tcp)
    }

    /// Adds device leg number `index` (1, 2, … in the order the caller
    /// creates them; the caller numbers its legs) over `transport` without
    /// a round trip, and returns it with the relay's URI on it.
    pub fn add_leg_at_on(
        &self,
        session: SessionId,
        index: u32,
        label: &str,
        transport: Transport,
    ) -> Result<(LegId, String), RelayError> {
        self.add_leg_in_role(session, index, label, transport, LegRole::Device)
    }

    /// [`RelayHandle::add_leg_at_on`] for a leg of `role` (a recorder: the
    /// content store's leg).
    pub fn add_leg_in_role(
        &self,
        session: SessionId,
        index: u32,
        label: &str,
        transport: Transport,
        role: LegRole,
    ) -> Result<(LegId, String), RelayError> {
        let sid =
            mint_session_id(session.worker(), &mut IdSource::Os).map_err(RelayError::Engine)?;
        let uri = local_uri(&self.mint.uris, &sid, transport).map_err(RelayError::Engine)?;
        let label = label.to_owned();
        self.post(
            session,
            Control::AddLegAs {
                session,
                index,
                label,
                sid,
                transport,
                role,
            },
        )?;
        Ok((LegId { session, index }, uri))
    }

    pub fn add_leg(&self, session: SessionId, label: &str) -> Result<(LegId, String), RelayError> {
        let label = label.to_owned();
        match self.call_session(session, Control::AddLeg { session, label })? {
            Reply::Leg(leg, uri) => Ok((leg, uri)),
            other => Err(unexpected(other)),
        }
    }

    /// The leg's peer answered (its path and who connects).
    pub fn answer(&self, leg: LegId, answer: Answer) -> Result<(), RelayError> {
        // Validated here, so that posting loses none of the caller's
        // errors; what the worker may still refuse (the leg ended
        // meanwhile) is a race the events report.
        if answer.peer_path.is_empty() {
            return Err(RelayError::Engine(EngineError::BadPath("empty".into())));
        }
        for raw in &answer.peer_path {
            MsrpUri::parse(raw.clone())
                .map_err(|e| RelayError::Engine(EngineError::BadPath(e.to_string())))?;
        }
        self.post(leg.session, Control::Answer { leg, answer })
    }

    /// Removes a leg (a device's BYE, CANCEL or reject).
    pub fn remove_leg(&self, leg: LegId) -> Result<(), RelayError> {
        self.post(leg.session, Control::RemoveLeg { leg })
    }

    /// The sender ended the session: device legs drain, then are done.
    pub fn end_session(&self, session: SessionId) -> Result<(), RelayError> {
        self.post(session, Control::EndSession { session })
    }

    /// Every leg of a session and its state.
    pub fn session_legs(&self, session: SessionId) -> Result<Vec<LegInfo>, RelayError> {
        match self.call_session(session, Control::SessionLegs { session })? {
            Reply::Legs(legs) => Ok(legs),
            other => Err(unexpected(other)),
        }
    }

    /// Gives every worker a new configuration (a reload; see
    /// [`Engine::reconfigure`](crate::fanout::Engine::reconfigure) for what
    /// applies when) and the process-wide content memory budget. Waits for
    /// each worker; the first refusal is returned.
    pub fn reconfigure(
        &self,
        engine: &EngineConfig,
        process_memory: u64,
    ) -> Result<(), RelayError> {
        for w in 0..self.workers.len() {
            let c = Control::Reconfigure(Box::new(engine.clone()), process_memory);
            match self.call(w, c)? {
                Reply::Done => {}
                other => return Err(unexpected(other)),
            }
        }
        Ok(())
    }

    /// One [`EngineStats`] per worker, in worker order.
    pub fn stats(&self) -> Result<Vec<EngineStats>, RelayError> {
        (0..self.workers.len())
            .map(|w| match self.call(w, Control::Stats)? {
                Reply::Stats(s) => Ok(*s),
                other => Err(unexpected(other)),
            })
            .collect()
    }

    /// The number of workers.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    fn call_session(&self, session: SessionId, control: Control) -> Result<Reply, RelayError> {
        self.call(usize::from(session.worker()), control)
    }

    /// Sends a command to the session's worker without waiting: commands
    /// to one worker run in the order they were sent.
    fn post(&self, session: SessionId, control: Control) -> Result<(), RelayError> {
        let w = usize::from(session.worker());
        let link = self
            .workers
            .get(w)
            .ok_or(RelayError::Engine(EngineError::NoSession))?;
        let command = Command::Control(control, None);
        match self.deferred.as_ref().and_then(|d| d.get(w)) {
            // Queued first, flagged after: whoever clears the flag wakes
            // the worker after the command is in its channel.
            Some(flag) => {
                link.tx.send(command).map_err(|_| RelayError::WorkerGone)?;
                flag.store(true, Ordering::Release);
                Ok(())
            }
            None => link.send(command).map_err(|_| RelayError::WorkerGone),
        }
    }

    fn call(&self, worker: usize, control: Control) -> Result<Reply, RelayError> {
        let link = self
            .workers
            .get(worker)
            .ok_or(RelayError::Engine(EngineError::NoSession))?;
        let (tx, rx) = mpsc::sync_channel(1);
        link.send(Command::Control(control, Some(tx)))
            .map_err(|_| RelayError::WorkerGone)?;
        match rx.recv().map_err(|_| RelayError::WorkerGone)? {
            Reply::Error(e) => Err(RelayError::Engine(e)),
            r => Ok(r),
        }
    }
}

/// A reply of the wrong kind: a driver bug, reported rather than panicked.
fn unexpected(r: Reply) -> RelayError {
    tracing::error!(reply = ?r, "unexpected worker reply");
    RelayError::WorkerGone
}
