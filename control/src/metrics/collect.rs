//! The scrape: the table's counts (under its lock, one pass), then each
//! worker's engine statistics (one call per worker, the table's lock not
//! held) and driver counters, written as constant metrics in the
//! Prometheus conventions (`msrp_relay_…`, base units, `_total` counters).

use std::fmt::Error;
use std::sync::Arc;

use msrp_relay::fanout::{EngineStats, StatusCounts};
use msrp_relay::io::CounterProbe;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::plane::DataPlane;
use crate::server::TableProbe;

/// Reads the relay at each scrape.
pub(crate) struct Scrape {
    pub(crate) table: TableProbe,
    pub(crate) plane: Arc<dyn DataPlane>,
    pub(crate) drivers: Option<CounterProbe>,
}

impl std::fmt::Debug for Scrape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scrape").finish_non_exhaustive()
    }
}

fn gauge(e: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: u64) -> Result<(), Error> {
    let g = ConstGauge::new(v);
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

fn counter(e: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: u64) -> Result<(), Error> {
    let c = ConstCounter::new(v);
    c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)
}

/// One metric with one label, a sample per `(value, n)`.
fn labelled<L: AsRef<str>, M: EncodeMetric>(
    e: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    label: &'static str,
    samples: impl IntoIterator<Item = (L, M)>,
    kind: prometheus_client::metrics::MetricType,
) -> Result<(), Error> {
    let mut m = e.encode_descriptor(name, help, None, kind)?;
    for (value, metric) in samples {
        let labels = [(label, value.as_ref())];
        metric.encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

fn status_samples(s: &StatusCounts) -> Vec<(String, ConstCounter)> {
    s.iter()
        .map(|(code, n)| {
            let c = code.map_or_else(|| "other".to_owned(), |c| c.to_string());
            (c, ConstCounter::new(n))
        })
        .collect()
}

impl Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> Result<(), Error> {
        use prometheus_client::metrics::MetricType::{Counter, Gauge};
        let t = self.table.snapshot();
        let sessions = [
            ("active", ConstGauge::new(t.active)),
            ("orphaned", ConstGauge::new(t.orphaned)),
            ("ending", ConstGauge::new(t.ending)),
        ];
        labelled(
            &mut e,
            "msrp_relay_sessions",
            "Sessions in the control table by state",
            "state",
            sessions,
            Gauge,
        )?;
        counter(
            &mut e,
            "msrp_relay_sessions_created",
            "Sessions created since start",
            t.sessions_total,
        )?;
        let failed = t
            .legs_failed_by
            .iter()
            .map(|(k, n)| (*k, ConstCounter::new(*n)));
        labelled(
            &mut e,
            "msrp_relay_legs_failed",
            "Device legs that failed alone since start, by reason",
            "reason",
            failed,
            Counter,
        )?;
        counter(
            &mut e,
            "msrp_relay_delivered_bytes",
            "Body bytes the finished device legs got (from leg-done), since start",
            t.bytes_delivered,
        )?;
        gauge(
            &mut e,
            "msrp_relay_control_connections",
            "Control connections open",
            t.control_connections,
        )?;
        gauge(
            &mut e,
            "msrp_relay_registered_users",
            "Users in the device registry",
            t.users,
        )?;
        gauge(
            &mut e,
            "msrp_relay_draining",
            "1 while the relay takes no new session (drain command or shutdown)",
            u64::from(t.draining),
        )?;
        let stats = self.plane.stats();
        gauge(
            &mut e,
            "msrp_relay_data_plane_up",
            "1 when every data-plane worker answered this scrape",
            u64::from(stats.is_ok()),
        )?;
        if let Ok(stats) = &stats {
            plane(&mut e, stats)?;
        }
        if let Some(d) = &self.drivers {
            let busy: Vec<(String, ConstCounter<f64>)> = d
                .per_worker()
                .iter()
                .enumerate()
                .map(|(i, c)| (i.to_string(), ConstCounter::new(c.busy_ns as f64 / 1e9)))
                .collect();
            labelled(
                &mut e,
                "msrp_relay_worker_busy_seconds",
                "Time each data-plane worker spent working (not waiting for I/O)",
                "worker",
                busy,
                Counter,
            )?;
        }
        Ok(())
    }
}

/// The data plane's part, summed over workers (per worker where the
/// worker is the point).
fn plane(e: &mut DescriptorEncoder<'_>, stats: &[EngineStats]) -> Result<(), Error> {
    use prometheus_client::metrics::MetricType::{Counter, Gauge};
    let sum = |f: fn(&EngineStats) -> u64| stats.iter().map(f).sum::<u64>();
    let per_worker: Vec<(String, ConstGauge<u64>)> = stats
        .iter()
        .enumerate()
        .map(|(i, s)| (i.to_string(), ConstGauge::new(s.sessions as u64)))
        .collect();
    labelled(
        e,
        "msrp_relay_worker_sessions",
        "Live data-plane sessions on each worker",
        "worker",
        per_worker,
        Gauge,
    )?;
    let legs = [
        ("invited", sum(|s| s.legs_by_state.invited)),
        ("answered", sum(|s| s.legs_by_state.answered)),
        ("connected", sum(|s| s.legs_by_state.connected)),
        ("done", sum(|s| s.legs_by_state.done)),
        ("failed", sum(|s| s.legs_by_state.failed)),
    ];
    labelled(
        e,
        "msrp_relay_legs",
        "Live data-plane legs (the sender's included) by state",
        "state",
        legs.map(|(k, n)| (k, ConstGauge::new(n))),
        Gauge,
    )?;
    let rows: [(&str, &str, u64, bool); 13] = [
        (
            "msrp_relay_msrp_connections",
            "MSRP connections open",
            sum(|s| s.connections as u64),
            false,
        ),
        (
            "msrp_relay_received_bytes",
            "Body bytes received on every leg",
            sum(|s| s.bytes_received),
            true,
        ),
        (
            "msrp_relay_sent_bytes",
            "Body bytes queued to device legs (each leg's copy counts)",
            sum(|s| s.bytes_sent),
            true,
        ),
        (
            "msrp_relay_chunks_received",
            "SEND chunks with a body received on every leg",
            sum(|s| s.chunks_received),
            true,
        ),
        (
            "msrp_relay_chunks_sent",
            "SEND chunks queued to device legs",
            sum(|s| s.chunks_sent),
            true,
        ),
        (
            "msrp_relay_log_memory_bytes",
            "Content held in memory by the sessions' logs",
            sum(|s| s.log_memory),
            false,
        ),
        (
            "msrp_relay_log_session_peak_bytes",
            "The most content one session's log has held in memory since start",
            stats.iter().map(|s| s.log_memory_peak).max().unwrap_or(0),
            false,
        ),
        (
            "msrp_relay_log_spilled_bytes",
            "Content spilled to disk by the sessions' logs",
            sum(|s| s.log_spilled),
            false,
        ),
        (
            "msrp_relay_spill_written_bytes",
            "Content the sessions' logs wrote to spill files (spills read back and released still count)",
            sum(|s| s.log_spilled_total),
            true,
        ),
        (
            "msrp_relay_log_stalls",
            "Episodes in which a full content log held its sender",
            sum(|s| s.log_stalls),
            true,
        ),
        (
            "msrp_relay_spill_errors",
            "Spill-file writes that failed (disk full, directory gone)",
            sum(|s| s.spill_errors),
            true,
        ),
        (
            "msrp_relay_awaiting_reports",
            "Messages waiting for a device's success REPORT",
            sum(|s| s.awaiting_reports as u64),
            false,
        ),
        (
            "msrp_relay_paced_leg_done",
            "Drained legs waiting for their paced leg-done (PF-LMM-BYE)",
            sum(|s| s.paced_done as u64),
            false,
        ),
    ];
    for (name, help, v, is_counter) in rows {
        if is_counter {
            counter(e, name, help, v)?;
        } else {
            gauge(e, name, help, v)?;
        }
    }
    let mut responses = StatusCounts::default();
    let mut reports = StatusCounts::default();
    for s in stats {
        responses += s.responses_sent;
        reports += s.reports_sent;
    }
    labelled(
        e,
        "msrp_relay_msrp_responses_sent",
        "MSRP transaction responses the relay sent, by status code",
        "code",
        status_samples(&responses),
        Counter,
    )?;
    labelled(
        e,
        "msrp_relay_msrp_reports_sent",
        "MSRP REPORTs the relay sent, by status code",
        "code",
        status_samples(&reports),
        Counter,
    )?;
    Ok(())
}
