//! What a [`RelayHandle`](super::RelayHandle) asks a worker, and how any
//! driver carries it out against its engine. Driver-neutral: the epoll
//! and io_uring drivers share it.

use std::collections::HashSet;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, SyncSender};
use std::time::Instant;

use bytes::Bytes;

use crate::fanout::{
    Answer, Engine, EngineConfig, EngineError, EngineStats, Event, LegId, LegInfo, LegParams,
    LegRole, SessionId, Transport,
};

/// A control-plane call, executed on the worker that owns the session.
#[derive(Debug)]
pub(crate) enum Control {
    /// A session under identities the handle minted (no reply awaited).
    CreateSessionAs {
        id: SessionId,
        label: String,
        sid: String,
        transport: Transport,
    },
    AddLeg {
        session: SessionId,
        label: String,
    },
    /// A leg under identities the handle minted (no reply awaited).
    AddLegAs {
        session: SessionId,
        index: u32,
        label: String,
        sid: String,
        transport: Transport,
        role: LegRole,
    },
    Answer {
        leg: LegId,
        answer: Answer,
    },
    RemoveLeg {
        leg: LegId,
    },
    EndSession {
        session: SessionId,
    },
    SessionLegs {
        session: SessionId,
    },
    Stats,
    /// A configuration reload ([`Engine::reconfigure`]).
    Reconfigure(Box<EngineConfig>, u64),
}

/// The worker's reply to a [`Control`].
#[derive(Debug)]
pub(crate) enum Reply {
    Leg(LegId, String),
    Done,
    Legs(Vec<LegInfo>),
    Stats(Box<EngineStats>),
    Error(EngineError),
}

/// Everything a worker's command channel carries.
#[derive(Debug)]
pub(crate) enum Command {
    /// A control call and where to send its reply.
    /// A control request; `None`: posted, nobody waits for the reply.
    Control(Control, Option<SyncSender<Reply>>),
    /// A connection accepted by another worker whose first request names a
    /// session of this one, with the bytes read from it so far.
    Handover {
        stream: TcpStream,
        data: Vec<Bytes>,
        /// The connection's TLS state (its handshake is done or under
        /// way); `data` is plaintext.
        tls: Option<Box<crate::io::tls::TlsConn>>,
    },
    /// Stop accepting, end every session, drain until `deadline`, exit.
    Shutdown { deadline: Instant },
}

/// Wakes a worker blocked in its poller.
pub(crate) trait Wake: Send + Sync + std::fmt::Debug {
    fn wake(&self) -> std::io::Result<()>;
}

/// How to reach one worker: its command channel and its waker.
#[derive(Debug, Clone)]
pub(crate) struct WorkerLink {
    pub(crate) tx: Sender<Command>,
    pub(crate) waker: Arc<dyn Wake>,
}

impl WorkerLink {
    /// Queues a command and wakes the worker. `Err` hands the command back
    /// when the worker is gone.
    pub(crate) fn send(&self, cmd: Command) -> Result<(), Command> {
        self.tx.send(cmd).map_err(|e| e.0)?;
        if let Err(e) = self.waker.wake() {
            tracing::warn!(error = %e, "waking a worker failed");
        }
        Ok(())
    }
}

/// Runs a control call on the engine. `sessions` is the worker's set of
/// live sessions (it ends them all on shutdown); `closing` refuses new
/// sessions.
pub(crate) fn execute(
    engine: &mut Engine,
    sessions: &mut HashSet<SessionId>,
    closing: bool,
    control: Control,
    now: Instant,
) -> Reply {
    let result = match control {
        Control::CreateSessionAs {
            id,
            label,
            sid,
            transport,
        } => {
            if closing {
                return Reply::Error(EngineError::Ending);
            }
            engine
                .create_session_as(
                    id,
                    LegParams {
                        label,
                        transport,
                        role: LegRole::Device,
                    },
                    sid,
                    now,
                )
                .map(|leg| {
                    sessions.insert(id);
                    tracing::info!(session = id.0, "session created");
                    Reply::Leg(leg, String::new())
                })
        }
        Control::AddLegAs {
            session,
            index,
            label,
            sid,
            transport,
            role,
        } => engine
            .add_leg_as(
                session,
                index,
                LegParams {
                    label,
                    transport,
                    role,
                },
                sid,
                now,
            )
            .map(|leg| Reply::Leg(leg, String::new())),
        Control::AddLeg { session, label } => engine
            .add_leg(
                session,
                LegParams {
                    label,
                    transport: Transport::Tcp,
                    role: LegRole::Device,
                },
                now,
            )
            .and_then(|leg| leg_reply(engine, leg)),
        Control::Answer { leg, answer } => engine.answer(leg, answer, now).map(|()| Reply::Done),
        Control::RemoveLeg { leg } => engine.remove_leg(leg, now).map(|()| Reply::Done),
        Control::EndSession { session } => engine.end_session(session, now).map(|()| Reply::Done),
        Control::SessionLegs { session } => engine
            .session_legs(session)
            .map(Reply::Legs)
            .ok_or(EngineError::NoSession),
        Control::Stats => Ok(Reply::Stats(Box::new(engine.stats()))),
        Control::Reconfigure(cfg, memory) => engine.reconfigure(&cfg, memory).map(|()| Reply::Done),
    };
    result.unwrap_or_else(Reply::Error)
}

/// Delivers a reply to whoever waits for it; a posted command's error has
/// nobody to go to but the log (the handle validated what it could before
/// posting, so what is left is a race with the session's end).
pub(crate) fn respond(to: Option<SyncSender<Reply>>, r: Reply) {
    match (to, r) {
        // The caller may have given up waiting: nothing to do.
        (Some(tx), r) => drop(tx.send(r)),
        (None, Reply::Error(e)) => tracing::debug!(error = %e, "posted control command"),
        (None, _) => {}
    }
}

fn leg_reply(engine: &Engine, leg: LegId) -> Result<Reply, EngineError> {
    let uri = engine.local_uri(leg).ok_or(EngineError::NoLeg)?;
    Ok(Reply::Leg(leg, uri))
}

/// Runs the control calls queued for a worker and returns the first
/// command that needs the driver (a handover or a shutdown), or `None`
/// once the queue is empty. `closing` refuses new sessions.
pub(crate) fn next_command(
    rx: &Receiver<Command>,
    engine: &mut Engine,
    sessions: &mut HashSet<SessionId>,
    closing: bool,
    now: Instant,
) -> Option<Command> {
    loop {
        match rx.try_recv().ok()? {
            Command::Control(c, reply) => {
                let r = execute(engine, sessions, closing, c, now);
                respond(reply, r);
            }
            other => return Some(other),
        }
    }
}

/// Logs an engine event, forgets an ended session and passes the event on.
pub(crate) fn forward_event(sessions: &mut HashSet<SessionId>, events: &Sender<Event>, e: Event) {
    match &e {
        Event::LegConnected { leg } => tracing::info!(?leg, "leg connected"),
        Event::LegDone { leg, bytes } => tracing::info!(?leg, bytes, "leg done"),
        Event::LegRemoved { leg, bytes } => tracing::info!(?leg, bytes, "leg removed"),
        Event::LegFailed { leg, reason } => tracing::info!(?leg, %reason, "leg failed"),
        Event::UpstreamEnded { session } => tracing::info!(?session, "upstream ended"),
        Event::SessionEnded { session } => {
            sessions.remove(session);
            tracing::info!(?session, "session ended");
        }
    }
    // Nobody listening (the relay is being dropped) is not an error.
    let _ = events.send(e);
}

/// Shutdown begins: every live session ends, so its device legs drain.
pub(crate) fn end_all(engine: &mut Engine, sessions: &HashSet<SessionId>, now: Instant) {
    tracing::info!(sessions = sessions.len(), "shutting down");
    for &s in sessions {
        let _ = engine.end_session(s, now);
    }
}
