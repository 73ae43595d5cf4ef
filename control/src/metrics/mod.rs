//! Prometheus metrics on an HTTP endpoint (`[metrics] listen`, off by
//! default): what an operator graphs and alerts on. Names and meanings are
//! listed in `docs/metrics.md`; `docs/grafana-dashboard.json` is built
//! from them.
//!
//! The exposition format is `prometheus-client`'s OpenMetrics text. What
//! the control server counts as it goes (commands, their durations) lives
//! in [`ControlMetrics`]; everything else is read at each scrape
//! ([`collect`]): the table's counts under its lock, then each worker's
//! engine statistics and driver counters, without the table's lock.

mod collect;
mod commands;
mod http;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use msrp_relay::io::CounterProbe;
use prometheus_client::registry::Registry;

pub use commands::ControlMetrics;

use crate::plane::DataPlane;
use crate::server::TableProbe;

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The listen address could not be bound.
    #[error("metrics listener {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The thread could not be started.
    #[error("metrics thread: {0}")]
    Thread(std::io::Error),
}

/// The registry a scrape encodes: the control server's own metrics and the
/// scrape-time collector.
fn registry(control: &ControlMetrics, scrape: collect::Scrape) -> Registry {
    let mut r = Registry::default();
    r.register(
        "msrp_relay_control_commands",
        "Control commands executed, by command and result",
        control.commands.clone(),
    );
    r.register(
        "msrp_relay_control_command_duration_seconds",
        "Time from a control line decoded to its reply (table lock included); offer and answer are the relay's part of call setup",
        control.durations.clone(),
    );
    r.register(
        "msrp_relay_control_bad_lines",
        "Control lines that were not a valid request",
        control.bad_lines.clone(),
    );
    r.register_collector(Box::new(scrape));
    r
}

/// Renders one scrape as OpenMetrics text.
fn render(r: &Registry) -> String {
    let mut out = String::with_capacity(16 * 1024);
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, r) {
        tracing::warn!(error = %e, "metrics encoding failed");
    }
    out
}

/// What a scrape reads.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The control server's counters.
    pub control: ControlMetrics,
    /// The table's counts.
    pub table: TableProbe,
    /// The data plane (per-worker engine statistics).
    pub plane: Arc<dyn DataPlane>,
    /// The drivers' per-worker counters (busy time), when there is a
    /// real data plane.
    pub drivers: Option<CounterProbe>,
}

impl std::fmt::Debug for dyn DataPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataPlane")
    }
}

impl Sources {
    /// One scrape's text, without HTTP (for tests and the bench).
    pub fn render(&self) -> String {
        render(&self.registry())
    }

    fn registry(&self) -> Registry {
        registry(
            &self.control,
            collect::Scrape {
                table: self.table.clone(),
                plane: self.plane.clone(),
                drivers: self.drivers.clone(),
            },
        )
    }
}

/// A running exporter; stops when dropped.
#[derive(Debug)]
pub struct Exporter {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Exporter {
    /// Binds `addr` and serves scrapes of `sources` on a thread of its own.
    pub fn start(addr: SocketAddr, sources: Sources) -> Result<Exporter, MetricsError> {
        let listener =
            TcpListener::bind(addr).map_err(|source| MetricsError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| MetricsError::Bind { addr, source })?;
        let stop = Arc::new(AtomicBool::new(false));
        let registry = sources.registry();
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || http::serve(listener, flag, || render(&registry)))
            .map_err(MetricsError::Thread)?;
        tracing::info!(%addr, "metrics endpoint listening");
        Ok(Exporter {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The bound address (the port, when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept; it sees the flag and returns.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
