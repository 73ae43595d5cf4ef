//! The options every scenario shares (`Common`, `--tls`), and the values
//! options take: baselines, verification, sizes and fractions.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::stats::parse_size;

/// A baseline run beside the relay, with the same senders and devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Baseline {
    /// Senders straight to the devices, no relay.
    Direct,
    /// A minimal in-tool TCP fan-out of the same bytes (no MSRP parsing).
    Tcp,
}

/// How devices check what they received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Verify {
    /// SHA-256 of the bytes, compared with the file's.
    Sha256,
    /// Every byte compared with the file in memory (byte-exact, cheaper
    /// than hashing, so the tool stays out of the way at GB/s).
    Compare,
    /// Count bytes only.
    None,
}

pub(super) fn size(s: &str) -> Result<u64, String> {
    parse_size(s)
}

pub(super) fn fraction(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("not a number: {s:?}"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not in 0..=1"))
    }
}

/// Options every scenario takes.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Drive the relay already running on this control socket.
    #[arg(long, value_name = "PATH", conflicts_with = "spawn")]
    pub control: Option<PathBuf>,
    /// Start a relay as a child process with a temporary configuration
    /// (the default when --control is not given).
    #[arg(long)]
    pub spawn: bool,
    /// Worker threads of a spawned relay (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// More TOML for a spawned relay's configuration (e.g. budgets).
    #[arg(long, value_name = "FILE")]
    pub relay_config: Option<PathBuf>,
    /// Baselines to run beside the relay, in the same run.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub baseline: Vec<Baseline>,
    /// Repeat the whole measurement; the table shows medians.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub runs: u32,
    /// Write the report as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Draw SVG plots into this directory.
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,
    /// Bound of any single wait, in seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
}

/// `--tls`: the legs the scenario measures run over TLS.
#[derive(Debug, Clone, Default, Args)]
pub struct TlsArgs {
    /// Legs over TLS (`msrps:` URIs, `TCP/TLS/MSRP`): a spawned relay gets
    /// a `[tls]` listener with a throw-away CA and leaf for 127.0.0.1. Each
    /// relay case also runs over plain TCP in the same run, with the TLS /
    /// plain ratio.
    #[arg(long)]
    pub tls: bool,
    /// CA bundle to check a running relay's certificate against (with
    /// `--tls --control`).
    #[arg(long, value_name = "FILE", requires = "tls")]
    pub tls_ca: Option<PathBuf>,
    /// Key exchange group the peers offer first.
    #[arg(long, value_enum, default_value = "x25519")]
    pub tls_kx: crate::tls::Kx,
}
