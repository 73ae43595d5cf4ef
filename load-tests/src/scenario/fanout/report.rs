//! What a fan-out run yields (each device's outcome and the run's), its
//! rows in the report, and the throughput plot.

use std::path::Path;

use serde::Serialize;

use super::params::{Mode, Role};
use crate::error::Result;
use crate::report::{Compare, Report};
use crate::stats::median;

/// One device's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceResult {
    /// Session index.
    pub session: usize,
    /// Device name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Body bytes received.
    pub bytes: u64,
    /// Every byte arrived and matched.
    pub exact: bool,
    /// SHA-256 it computed (sha256 verification).
    pub sha256: Option<String>,
    /// Seconds from the start to its accept (late devices).
    pub accepted_s: Option<f64>,
    /// Seconds from the start to its last byte.
    pub done_s: Option<f64>,
    /// Seconds from the start to its `leg-done` (relay only).
    pub leg_done_s: Option<f64>,
    /// `leg-done` reason.
    pub leg_done_reason: Option<String>,
    /// File size over time to the last byte (from its accept for a late
    /// device), GB/s.
    pub gbps: f64,
    /// Problems it saw.
    pub errors: Vec<String>,
}

/// One run's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    /// Where the bytes went.
    pub mode: Mode,
    /// Every device.
    pub devices: Vec<DeviceResult>,
    /// Seconds until each sender had every chunk answered.
    pub sender_s: Vec<f64>,
    /// Bytes delivered over the time to the last device's last byte.
    pub aggregate_gbps: f64,
    /// Cores the relay used on average (relay mode).
    pub relay_cores: Option<f64>,
    /// Cores this tool used on average.
    pub tool_cores: Option<f64>,
    /// Relay CPU seconds per GB delivered to the devices (relay mode).
    pub relay_cpu_s_per_gb: Option<f64>,
    /// The relay's legs ran over TLS.
    pub tls: bool,
}

impl RunResult {
    pub(super) fn median_gbps(&self, role: Role) -> Option<f64> {
        let v: Vec<f64> = self
            .devices
            .iter()
            .filter(|d| d.role == role)
            .map(|d| d.gbps)
            .collect();
        median(&v)
    }
}

pub(super) fn finish(
    mode: Mode,
    devices: Vec<DeviceResult>,
    sender_s: Vec<f64>,
    relay_cores: Option<f64>,
    tool_cores: Option<f64>,
) -> RunResult {
    let last = devices.iter().filter_map(|d| d.done_s).fold(0.0, f64::max);
    let total: u64 = devices.iter().map(|d| d.bytes).sum();
    RunResult {
        mode,
        aggregate_gbps: if last > 0.0 {
            total as f64 / last / 1e9
        } else {
            0.0
        },
        devices,
        sender_s,
        relay_cores,
        tool_cores,
        relay_cpu_s_per_gb: None,
        tls: false,
    }
}

pub(super) fn add_rows(rep: &mut Report, case: &str, r: &RunResult) {
    let push = |rep: &mut Report, metric: &str, unit: &str, cmp: Compare, v: Option<f64>| {
        let Some(v) = v else { return };
        let row = rep.row(case, metric, unit, cmp);
        match r.mode {
            Mode::Relay => row.relay.push(v),
            Mode::Direct => row.direct.push(v),
            Mode::Tcp => row.tcp.push(v),
        }
    };
    push(
        rep,
        "aggregate to devices",
        "GB/s",
        Compare::Ratio,
        Some(r.aggregate_gbps),
    );
    push(
        rep,
        "per fast device (median)",
        "GB/s",
        Compare::Ratio,
        r.median_gbps(Role::Fast),
    );
    push(
        rep,
        "per slow device (median)",
        "GB/s",
        Compare::Ratio,
        r.median_gbps(Role::Slow),
    );
    push(
        rep,
        "per late device (median)",
        "GB/s",
        Compare::Ratio,
        r.median_gbps(Role::Late),
    );
    push(rep, "sender done", "s", Compare::Ratio, median(&r.sender_s));
    push(rep, "relay CPU", "cores", Compare::None, r.relay_cores);
    push(
        rep,
        "relay CPU per GB delivered",
        "s/GB",
        Compare::None,
        r.relay_cpu_s_per_gb,
    );
    push(rep, "load tool CPU", "cores", Compare::None, r.tool_cores);
}

/// The `--tls` ratios of a case: aggregate throughput and relay CPU per
/// GB.
pub(super) fn tls_ratios(rep: &mut Report, case: &str, tls: &RunResult, plain: &RunResult) {
    crate::scenario::versus::ratio(
        rep,
        case,
        "aggregate to devices",
        Some(tls.aggregate_gbps),
        Some(plain.aggregate_gbps),
    );
    crate::scenario::versus::ratio(
        rep,
        case,
        "relay CPU per GB delivered",
        tls.relay_cpu_s_per_gb,
        plain.relay_cpu_s_per_gb,
    );
}

/// The modes of the throughput plot, one line each, in drawing order.
const PLOT_LINES: [Mode; 3] = [Mode::Relay, Mode::Direct, Mode::Tcp];

/// `throughput.svg` of (mode, devices, aggregate GB/s, median fast
/// device's GB/s) points.
pub(super) fn plot(dir: &Path, points: &[(Mode, usize, f64, Option<f64>)]) -> Result<()> {
    let names: Vec<String> = PLOT_LINES.iter().map(|m| format!("{m:?}")).collect();
    let lines: Vec<&str> = names.iter().map(String::as_str).collect();
    let runs: Vec<crate::plot::Run> = points
        .iter()
        .filter_map(|&(mode, devices, aggregate, per_device)| {
            Some(crate::plot::Run {
                line: PLOT_LINES.iter().position(|m| *m == mode)?,
                devices,
                aggregate,
                per_device,
            })
        })
        .collect();
    crate::plot::throughput(dir, &lines, &runs)
}
