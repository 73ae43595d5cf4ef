//! The control server: a Unix stream socket speaking the JSON-lines
//! protocol (`docs/control-protocol.md`) to the SIP front end.
//!
//! - The socket is created with mode `0660`; a stale socket file is
//!   removed, a live one (another relay answers) refuses the start.
//! - Each peer's uid is read with `SO_PEERCRED` and checked against the
//!   allowed uids (default: the relay's own); others get one error line and
//!   are closed.
//! - A thread per connection reads and executes requests in order (bounded
//!   connections; bounded line length; at most `max_queued_lines` lines
//!   waiting, after which the connection is not read) and writes the
//!   replies of each read, with the events queued meanwhile, in one write;
//!   a writer thread per connection writes the events that arrive while
//!   its reader is idle (`outbox.rs`). Commands run under one lock over
//!   the session table, so replies and events have one global order.
//! - Data-plane events and timers enter through [`Server::on_plane_events`]
//!   and [`Server::sweep`], called by the process's main loop.
//! - Draining ([`Server::begin_drain`], the `drain` command): no new
//!   session (a new call's `offer` is refused, JSON `draining: …`, ng
//!   `Parallel session limit reached`); connections are still accepted
//!   and every command about the sessions the relay has still runs.

mod conn;
mod gate;
mod hub;
mod outbox;
pub mod peer;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

pub use gate::Gate;
use hub::Hub;
use outbox::Outbox;
use outbox::lock;

use crate::protocol::{DEFAULT_MAX_LINE, Reply, encode_reply};
use crate::table::{ConnId, Core};

/// Server bounds and access.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Path of the Unix socket.
    pub socket: PathBuf,
    /// Peer uids allowed; empty means the relay's own uid.
    pub allowed_uids: Vec<u32>,
    /// Control connections at once.
    pub max_connections: usize,
    /// Longest request line, bytes.
    pub max_line: usize,
    /// Lines waiting to be written to one connection before it is no
    /// longer read (requests in flight); a subscriber with four times as
    /// many waiting is closed.
    pub max_queued_lines: usize,
    /// Commands by name and result, and their durations (for the metrics
    /// exporter).
    pub metrics: crate::metrics::ControlMetrics,
}

impl ServerConfig {
    /// Defaults at this socket path.
    pub fn new(socket: PathBuf) -> ServerConfig {
        ServerConfig {
            socket,
            allowed_uids: Vec::new(),
            max_connections: 16,
            max_line: DEFAULT_MAX_LINE,
            max_queued_lines: 1024,
            metrics: crate::metrics::ControlMetrics::default(),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Another relay answers on the socket.
    #[error("another relay is already listening on {0}")]
    AlreadyRunning(PathBuf),
    /// The path exists and is not a socket; it is left alone.
    #[error("{0} exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    /// Binding, probing or setting the mode failed.
    #[error("control socket {path}: {source}")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

pub(crate) struct Shared {
    pub(crate) core: Mutex<Core>,
    pub(crate) hub: Hub,
    pub(crate) cfg: ServerConfig,
    allowed: Vec<u32>,
    stopping: AtomicBool,
    pub(crate) conns: Mutex<HashMap<ConnId, Arc<Outbox>>>,
    next_conn: AtomicU64,
}

/// The table's counts, read under its lock (see [`Server::table_probe`]).
#[derive(Clone)]
pub struct TableProbe(Arc<Shared>);

impl TableProbe {
    /// The counts now.
    pub fn snapshot(&self) -> crate::table::TableSnapshot {
        lock(&self.0.core).snapshot()
    }
}

impl std::fmt::Debug for TableProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableProbe").finish_non_exhaustive()
    }
}

/// Publishes events from another thread ([`Server::publisher`]).
#[derive(Clone)]
pub struct Publisher(Arc<Shared>);

impl Publisher {
    /// Sends `events` to their subscribers, under the table's lock so that
    /// they take their place in the one global order of events.
    pub fn publish(&self, events: &[crate::protocol::Event]) {
        let _order = lock(&self.0.core);
        self.0.hub.publish(events);
    }
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher").finish_non_exhaustive()
    }
}

/// A running control server. See the module docs.
pub struct Server {
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("socket", &self.shared.cfg.socket)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Binds the socket ([`peer::bind`]) and starts accepting.
    pub fn start(cfg: ServerConfig, core: Core) -> Result<Server, ServerError> {
        let listener = peer::bind(&cfg.socket)?;
        Server::start_on(listener, cfg, core)
    }

    /// Starts accepting on a socket already bound with [`peer::bind`] at
    /// `cfg.socket` (the process binds it first, so that a second relay
    /// gives up before starting its data plane).
    pub fn start_on(
        listener: UnixListener,
        cfg: ServerConfig,
        core: Core,
    ) -> Result<Server, ServerError> {
        let shared = Arc::new(Shared {
            core: Mutex::new(core),
            hub: Hub::default(),
            allowed: peer::allowed_uids(&cfg.allowed_uids),
            cfg,
            stopping: AtomicBool::new(false),
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
        });
        let s = shared.clone();
        let acceptor = std::thread::Builder::new()
            .name("ctl-accept".into())
            .spawn(move || accept_loop(&s, listener))
            .map_err(|source| ServerError::Io {
                path: shared.cfg.socket.clone(),
                source,
            })?;
        tracing::info!(socket = %shared.cfg.socket.display(), allowed_uids = ?shared.allowed, "control server listening");
        Ok(Server {
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// A door to this server's table for another protocol (the ng
    /// listener).
    pub fn gate(&self) -> Gate {
        Gate {
            shared: self.shared.clone(),
        }
    }

    /// A data-plane event: translated and published.
    pub fn on_plane_event(&self, ev: msrp_relay::fanout::Event) {
        self.on_plane_events(std::iter::once(ev));
    }

    /// Data-plane events, in order: translated and published under one
    /// acquisition of the table's lock.
    pub fn on_plane_events(&self, evs: impl IntoIterator<Item = msrp_relay::fanout::Event>) {
        let mut core = lock(&self.shared.core);
        let now = Instant::now();
        let mut events = Vec::new();
        for ev in evs {
            events.extend(core.on_plane_event(ev, now));
        }
        core.wake_plane();
        self.shared.hub.publish(&events);
    }

    /// Timers (orphan expiry, stuck drains); call about once a second.
    pub fn sweep(&self) {
        let mut core = lock(&self.shared.core);
        let events = core.sweep(Instant::now());
        core.wake_plane();
        self.shared.hub.publish(&events);
    }

    /// Gives the session table a reloaded configuration
    /// ([`Core::reconfigure`]).
    pub fn reconfigure_table(&self, cfg: crate::table::TableConfig) {
        lock(&self.shared.core).reconfigure(cfg);
    }

    /// Publishes events raised outside a command or a plane event (the
    /// content store's), in the table's order.
    pub fn publisher(&self) -> Publisher {
        Publisher(self.shared.clone())
    }

    /// Reads the table's counts from another thread (the metrics
    /// exporter), each read under the table's lock.
    pub fn table_probe(&self) -> TableProbe {
        TableProbe(self.shared.clone())
    }

    /// Sessions in the table.
    pub fn sessions(&self) -> usize {
        lock(&self.shared.core).len()
    }

    /// Shutdown, first step: drain. No new session from now on, for good
    /// (`drain` with `enable: false` is refused); the socket, its
    /// connections and every command about the live sessions go on, so
    /// that they can end by themselves. Returns the sessions live.
    pub fn begin_drain(&self) -> usize {
        let mut core = lock(&self.shared.core);
        core.begin_shutdown_drain();
        core.len()
    }

    /// No new session is taken (the `drain` command or
    /// [`Server::begin_drain`]).
    pub fn draining(&self) -> bool {
        lock(&self.shared.core).draining()
    }

    /// Shutdown, after the drain: stop accepting connections and new
    /// sessions; every session left ends as after the sender's BYE
    /// (devices drain, and subscribers still get their `leg-done`s).
    pub fn begin_shutdown(&mut self) {
        self.stop_accepting();
        let mut core = lock(&self.shared.core);
        let events = core.begin_shutdown(Instant::now());
        core.wake_plane();
        self.shared.hub.publish(&events);
    }

    fn stop_accepting(&mut self) {
        if self.shared.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake the blocking accept.
        let _ = UnixStream::connect(&self.shared.cfg.socket);
        if let Some(a) = self.acceptor.take()
            && a.join().is_err()
        {
            tracing::error!("control acceptor panicked");
        }
        if let Err(e) = std::fs::remove_file(&self.shared.cfg.socket) {
            tracing::warn!(error = %e, "removing control socket");
        }
    }

    /// Last step: close every control connection (queued lines are still
    /// written) and remove the socket file.
    pub fn close(mut self) {
        self.stop_accepting();
        let conns: Vec<Arc<Outbox>> = lock(&self.shared.conns).values().cloned().collect();
        for c in conns {
            c.abort();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop_accepting();
    }
}

fn accept_loop(shared: &Arc<Shared>, listener: UnixListener) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "control accept failed");
                continue;
            }
        };
        admit(shared, stream);
    }
}

/// Checks the peer and the connection bound, then serves it on a thread.
fn admit(shared: &Arc<Shared>, mut stream: UnixStream) {
    use std::io::Write;
    let refuse = |stream: &mut UnixStream, why: String| {
        tracing::warn!(reason = %why, "control connection refused");
        let _ =
            stream.write_all(encode_reply(&Reply::error(serde_json::Value::Null, why)).as_bytes());
    };
    match peer::peer_uid(&stream) {
        Ok(uid) if peer::uid_allowed(uid, &shared.allowed) => {}
        Ok(uid) => {
            return refuse(
                &mut stream,
                format!("uid {uid} is not allowed on this socket"),
            );
        }
        Err(e) => return refuse(&mut stream, format!("cannot read peer credentials: {e}")),
    }
    {
        let mut core = lock(&shared.core);
        if core.control_connections >= shared.cfg.max_connections as u64 {
            drop(core);
            return refuse(
                &mut stream,
                format!(
                    "limit reached: {} control connections",
                    shared.cfg.max_connections
                ),
            );
        }
        core.control_connections += 1;
    }
    let id = ConnId(shared.next_conn.fetch_add(1, Ordering::Relaxed));
    let s = shared.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("ctl-r{}", id.0))
        .spawn(move || conn::serve(s, stream, id));
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start control connection thread");
        let mut core = lock(&shared.core);
        core.control_connections = core.control_connections.saturating_sub(1);
    }
}
