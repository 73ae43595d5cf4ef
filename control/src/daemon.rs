//! The `msrp-relay` process: data-plane workers, the control server, the
//! event pump and timers, and the shutdown sequence.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use msrp_relay::io::{IoError, Relay};

use sd_notify::NotifyState;

use crate::config::{Config, ConfigError, reload};
use crate::metrics::{Exporter, Sources};
use crate::ng::NgListener;
use crate::server::{Server, ServerError};
use crate::table::Core;

/// Why the relay stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data plane could not start.
    #[error("data plane: {0}")]
    Relay(#[from] IoError),
    /// The control server could not start.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// The data plane refused a reloaded configuration.
    #[error("data plane refused the reload: {0}")]
    Reload(msrp_relay::io::RelayError),
    /// The metrics endpoint could not start.
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
    /// The ng listener could not start.
    #[error(transparent)]
    Ng(#[from] crate::ng::NgError),
    /// The content store could not start.
    #[error("content store: {0}")]
    Store(crate::store::StoreError),
    /// Signal handlers could not be installed.
    #[error("signal handlers: {0}")]
    Signals(std::io::Error),
}

/// How often the event pump wakes to look at signals and timers.
const TICK: Duration = Duration::from_millis(200);
/// Data-plane events handled under one acquisition of the table's lock.
const PUMP_BATCH: usize = 256;
/// How often sessions are swept for expiry.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// After the drain's deadline, the sessions left end as after the
/// sender's BYE; their devices get this long to take what they are owed
/// and their paced `leg-done`s, then every connection closes.
pub const BYE_GRACE: Duration = Duration::from_secs(5);

/// Runs until SIGINT or SIGTERM, then shuts down without losing a
/// session that can end in time:
///
/// 1. **Drain**: no new session (a new call's `offer` is refused: JSON
///    `draining: …`, ng `Parallel session limit reached`, so the front
///    end's other relays take the new calls); the control socket, the ng
///    listener and the data plane go on as before, so the live sessions
///    carry on and end by themselves (the sender's BYE, the front end's
///    `delete`), until none is left or `timeouts.shutdown-drain-ms` has
///    passed. One log line at its start (sessions live, deadline), one at
///    its end (ended by themselves, cut at the deadline).
/// 2. **Cut**: stop accepting control connections; every session left
///    ends as after the sender's BYE (devices drain and their `leg-done`
///    events still reach subscribers) for at most [`BYE_GRACE`]; then
///    every connection closes and the process exits 0.
///
/// A second signal exits at once.
///
/// Once ready, one line goes to stdout:
/// `msrp-relay ready control=<socket path> msrp=<listen address>`, followed
/// by ` ng-udp=<address>` and ` ng-tcp=<address>` when the ng listener
/// (`[ng]`) serves them, and ` metrics=<address>` when the metrics
/// endpoint is on.
pub fn run(cfg: &Config) -> Result<(), DaemonError> {
    run_from(cfg, None)
}

/// [`run`], with the file `cfg` came from: SIGHUP reloads it (the keys
/// [`crate::config::reload`] lists as live apply at once; one log line
/// says what changed and what needs a restart). Under systemd
/// (`NOTIFY_SOCKET` set) the relay sends `READY=1` once ready,
/// `RELOADING=1` … `READY=1` around a reload and `STOPPING=1` when the
/// drain begins.
pub fn run_from(cfg: &Config, path: Option<&Path>) -> Result<(), DaemonError> {
    let term = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())
        .map_err(DaemonError::Signals)?;
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // The second signal (flag already set) exits immediately.
        signal_hook::flag::register_conditional_shutdown(sig, 1, term.clone())
            .map_err(DaemonError::Signals)?;
        signal_hook::flag::register(sig, term.clone()).map_err(DaemonError::Signals)?;
    }
    let socket = cfg.socket();
    let relay_cfg = cfg.relay()?;
    // The control socket first: a second relay gives up before it starts
    // its data plane.
    let listener = crate::server::peer::bind(&socket)?;
    let relay = match Relay::start(relay_cfg) {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&socket);
            return Err(e.into());
        }
    };
    let local = relay.local_addr();
    // Deferred wakes: the server wakes each worker once per batch of
    // commands instead of once per posted command.
    let plane = Arc::new(relay.handle().with_deferred_wakes());
    let tls_port = relay.tls_addr().map(|a| a.port());
    let mut core = Core::new(cfg.table(local.port(), tls_port)?, plane);
    let store = match cfg.store.backend()? {
        Some(store_cfg) => {
            let svc = crate::store::Store::open(&store_cfg)
                .and_then(crate::store::StoreService::start)
                .map_err(DaemonError::Store)?;
            core.set_recorder(svc.clone());
            Some(svc)
        }
        None => None,
    };
    let server_cfg = cfg.server();
    let control_metrics = server_cfg.metrics.clone();
    let mut server = Server::start_on(listener, server_cfg, core)?;
    if let Some(svc) = &store {
        let publisher = server.publisher();
        svc.on_notice(Box::new(move |n| {
            publisher.publish(&[crate::table::notice_event(n)]);
        }));
    }
    let mut ng = match cfg.ng()? {
        Some(ng_cfg) => Some(NgListener::start(ng_cfg, server.gate())?),
        None => None,
    };
    let exporter = match cfg.metrics.listen_addr()? {
        Some(addr) => Some(Exporter::start(
            addr,
            Sources {
                control: control_metrics,
                table: server.table_probe(),
                plane: Arc::new(relay.handle()),
                drivers: Some(relay.counter_probe()),
            },
        )?),
        None => None,
    };
    tracing::info!(control = %socket.display(), msrp = %local, "msrp-relay ready");
    {
        let mut line = format!("msrp-relay ready control={} msrp={local}", socket.display());
        if let Some(a) = relay.tls_addr() {
            line.push_str(&format!(" msrps={a}"));
        }
        if let Some(a) = ng.as_ref().and_then(NgListener::udp_addr) {
            line.push_str(&format!(" ng-udp={a}"));
        }
        if let Some(a) = ng.as_ref().and_then(NgListener::tcp_addr) {
            line.push_str(&format!(" ng-tcp={a}"));
        }
        let mut out = std::io::stdout().lock();
        if let Some(e) = &exporter {
            line.push_str(&format!(" metrics={}", e.local_addr()));
        }
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
    notify(&[NotifyState::Ready]);

    let mut ticker = Ticker {
        relay: &relay,
        server: &server,
        path,
        hup: &hup,
        current: cfg.clone(),
        last_sweep: Instant::now(),
    };
    let mut up = true;
    while up && !term.load(Ordering::SeqCst) {
        up = ticker.tick(TICK);
    }
    if up {
        drain(&mut ticker);
    } else {
        notify(&[NotifyState::Stopping]);
    }
    drop(ticker);

    // The cut: what is left ends as after the sender's BYE.
    let grace = Instant::now() + BYE_GRACE;
    server.begin_shutdown();
    while server.sessions() > 0 {
        let left = grace.saturating_duration_since(Instant::now());
        if left.is_zero() || !pump(&relay, &server, left.min(TICK)) {
            break;
        }
        server.sweep();
    }
    let left = server.sessions();
    if left > 0 {
        tracing::warn!(sessions = left, "closing sessions not drained in the grace");
    }
    drop(exporter);
    relay.shutdown(grace.saturating_duration_since(Instant::now()));
    if let Some(ng) = ng.as_mut() {
        ng.stop();
    }
    server.close();
    tracing::info!("msrp-relay stopped");
    Ok(())
}

/// What the main loop and the drain do each turn.
struct Ticker<'a> {
    relay: &'a Relay,
    server: &'a Server,
    path: Option<&'a Path>,
    hup: &'a AtomicBool,
    current: Config,
    last_sweep: Instant,
}

impl Ticker<'_> {
    /// A reload when SIGHUP came, the data plane's events for up to
    /// `wait`, the sweep once a second. `false` when the workers are gone.
    fn tick(&mut self, wait: Duration) -> bool {
        if self.hup.swap(false, Ordering::SeqCst) {
            notify(&[NotifyState::Reloading]);
            if let Some(next) = reload(&self.current, self.path, self.relay, self.server) {
                self.current = next;
            }
            notify(&[NotifyState::Ready]);
        }
        if !pump(self.relay, self.server, wait) {
            tracing::error!("data plane workers stopped");
            return false;
        }
        if self.last_sweep.elapsed() >= SWEEP_EVERY {
            self.server.sweep();
            self.last_sweep = Instant::now();
        }
        true
    }
}

/// The shutdown's drain (see [`run`]): runs as usual, new sessions
/// refused, until no session is left or `shutdown-drain-ms` has passed.
fn drain(t: &mut Ticker<'_>) {
    let wait = Duration::from_millis(t.current.timeouts.shutdown_drain_ms);
    let started = Instant::now();
    let deadline = started + wait;
    let live = t.server.begin_drain();
    // After the state changed: from STOPPING=1 on, new calls are refused.
    notify(&[NotifyState::Stopping]);
    let created_before = t.server.table_probe().snapshot().sessions_total;
    tracing::info!(
        sessions = live,
        deadline_s = wait.as_secs_f64(),
        "shutting down: draining; no new session, the live ones go on until they end or the deadline"
    );
    let mut up = true;
    while up && t.server.sessions() > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        up = t.tick(left.min(TICK));
    }
    let cut = t.server.sessions() as u64;
    // Sessions of calls the relay had may still have started meanwhile.
    let created = t
        .server
        .table_probe()
        .snapshot()
        .sessions_total
        .saturating_sub(created_before);
    let ended = (live as u64 + created).saturating_sub(cut);
    let elapsed_s = started.elapsed().as_secs_f64();
    if cut == 0 {
        tracing::info!(
            ended,
            cut,
            elapsed_s,
            "drain finished: every session ended by itself"
        );
    } else {
        tracing::warn!(
            ended,
            cut,
            elapsed_s,
            "drain deadline: cutting the sessions left"
        );
    }
}

/// Waits up to `wait` for data-plane events and hands those that are
/// there (up to [`PUMP_BATCH`]) to the server at once. `false` when the
/// workers are gone.
fn pump(relay: &Relay, server: &Server, wait: Duration) -> bool {
    let first = match relay.events().recv_timeout(wait) {
        Ok(ev) => ev,
        Err(RecvTimeoutError::Timeout) => return true,
        Err(RecvTimeoutError::Disconnected) => return false,
    };
    // Bounded, so that a flood of events does not hold the table from the
    // control connections; the rest comes with the next call.
    let mut batch = Vec::with_capacity(64);
    batch.push(first);
    batch.extend(relay.events().try_iter().take(PUMP_BATCH - 1));
    server.on_plane_events(batch);
    true
}

/// Tells systemd (when it started us with `Type=notify`); a failure is
/// logged, never fatal.
fn notify(state: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::warn!(error = %e, "sd_notify failed");
    }
}

/// SIGHUP: the TLS certificate and key are read again whether or not the
/// file changed (a renewal rewrites them in place); connections up keep
/// theirs. A failure keeps the running certificate, with one error line.
fn reload_certificate(relay: &Relay, new: &Config) {
    let Some(ctx) = relay.tls_context() else {
        return;
    };
    match ctx.reload(&new.tls.files()) {
        Ok(restart) => {
            tracing::info!(cert = %new.tls.cert.display(), "TLS certificate reloaded");
            if !restart.is_empty() {
                tracing::warn!(keys = ?restart, "changed TLS keys take effect only after a restart");
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "TLS certificate not reloaded; the running one stays");
        }
    }
}

/// SIGHUP: reads the file again and applies its live keys. `None` (the
/// running configuration stays, with one error line) when there is no
/// file, it does not parse, or the data plane refuses it.
fn reload(current: &Config, path: Option<&Path>, relay: &Relay, server: &Server) -> Option<Config> {
    let Some(path) = path else {
        tracing::warn!("SIGHUP: started without --config, nothing to reload");
        return None;
    };
    let new = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "reload refused; the running configuration stays");
            return None;
        }
    };
    reload_certificate(relay, &new);
    let changes = reload::diff(current, &new);
    if changes.is_empty() {
        tracing::info!(path = %path.display(), "reload: nothing changed");
        return None;
    }
    let next = reload::merged(current, &new);
    let applied = next.relay().map_err(DaemonError::from).and_then(|rc| {
        relay
            .handle()
            .reconfigure(&rc.engine, rc.process_memory_budget)
            .map_err(DaemonError::Reload)?;
        Ok(next.table(
            relay.local_addr().port(),
            relay.tls_addr().map(|a| a.port()),
        )?)
    });
    match applied {
        Ok(table) => server.reconfigure_table(table),
        Err(e) => {
            tracing::error!(error = %e, "reload refused; the running configuration stays");
            return None;
        }
    }
    if current.log.filter != next.log.filter {
        match crate::log_filter::apply(&next.log.filter) {
            Ok(()) => tracing::info!(filter = %next.log.filter, "log filter changed"),
            Err(e) => tracing::warn!(error = %e, "log filter not changed"),
        }
    }
    tracing::info!(
        live = ?changes.live,
        restart = ?changes.restart,
        "configuration reloaded"
    );
    if !changes.restart.is_empty() {
        tracing::warn!(
            keys = ?changes.restart,
            "changed keys take effect only after a restart; the running values stay"
        );
    }
    Some(next)
}
