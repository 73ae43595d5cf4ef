//! Command line: one subcommand per scenario, the options every scenario
//! shares, and the hidden `relay` subcommand a spawned relay runs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::stats::parse_size;

/// Load generator and demo for msrp-relay.
///
/// Plays the SIP front end over the control socket and the senders and
/// devices over real MSRP sockets, against a relay it starts itself
/// (default, `--spawn`) or one already running (`--control PATH`).
#[derive(Debug, Parser)]
#[command(name = "msrp-load", version)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The scenarios.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// One file to three devices of one user (one accepts late, one reads
    /// slowly): progress per device, what each got, when each was told to
    /// hang up.
    Demo(DemoArgs),
    /// File transfer: S sessions × M devices; throughput, byte-exact check.
    Fanout(FanoutArgs),
    /// Chat: S sessions × M devices at a message rate; latency to each
    /// device and of the sender's delivery notification.
    Chat(ChatArgs),
    /// offer/answer/delete cycles on one control connection, pipelined.
    Setup(SetupArgs),
    /// Many accepted idle legs: the relay's memory per leg.
    Idle(IdleArgs),
    /// New legs per second (connect, TLS handshake, bind, its 200) over
    /// TLS and over plain TCP, to a one-worker relay by default.
    Handshake(HandshakeArgs),
    /// Sessions for a set time, file transfers and chats mixed, three
    /// devices each (one late or leaving): every byte and notification
    /// checked, the relay's RSS and fds sampled each second.
    Soak(SoakArgs),
    /// A file delivered from the content store (`deliver`) beside the same
    /// file delivered live, in each run: GB/s to one device.
    Deliver(DeliverArgs),
    /// Runs the relay daemon in this process (used by `--spawn`).
    #[command(hide = true)]
    Relay {
        /// The relay's TOML configuration.
        #[arg(long)]
        config: PathBuf,
    },
}

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

fn size(s: &str) -> Result<u64, String> {
    parse_size(s)
}

fn fraction(s: &str) -> Result<f64, String> {
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

/// `fanout`.
#[derive(Debug, Clone, Args)]
pub struct FanoutArgs {
    /// Sessions, each with its own sender.
    #[arg(long, short = 's', default_value_t = 1)]
    pub sessions: usize,
    /// Devices per session; a list sweeps (e.g. 1,10,100).
    #[arg(long, short = 'm', value_delimiter = ',', default_value = "3")]
    pub devices: Vec<usize>,
    /// File size (64k, 256M, 1G …).
    #[arg(long, value_parser = size, default_value = "64M")]
    pub size: u64,
    /// Chunk size of the sender's SENDs.
    #[arg(long, value_parser = size, default_value = "64k")]
    pub chunk: u64,
    /// Chunks the sender may have unanswered.
    #[arg(long, default_value_t = 16)]
    pub window: u64,
    /// Devices per session that read slowly.
    #[arg(long, default_value_t = 0)]
    pub slow: usize,
    /// Read rate of a slow device, bytes per second.
    #[arg(long, value_parser = size, default_value = "20M")]
    pub slow_rate: u64,
    /// Devices per session that accept late.
    #[arg(long, default_value_t = 0)]
    pub late: usize,
    /// A late device accepts when the sender has sent this fraction.
    #[arg(long, value_parser = fraction, default_value = "0.5")]
    pub late_at: f64,
    /// How devices check their bytes.
    #[arg(long, value_enum, default_value = "sha256")]
    pub verify: Verify,
    /// A device's read size.
    #[arg(long, value_parser = size, default_value = "256k")]
    pub read_buf: u64,
    /// With --slow: do not also run the case without slow devices.
    #[arg(long)]
    pub no_slow_reference: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub tls: TlsArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
}

/// `chat`.
#[derive(Debug, Clone, Args)]
pub struct ChatArgs {
    /// Sessions, each with its own sender.
    #[arg(long, short = 's', default_value_t = 1)]
    pub sessions: usize,
    /// Devices per session.
    #[arg(long, short = 'm', default_value_t = 3)]
    pub devices: usize,
    /// Messages per second per session.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Text bytes per message (inside the CPIM envelope).
    #[arg(long, value_parser = size, default_value = "200")]
    pub size: u64,
    /// Seconds of sending.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Ask for delivery notifications; every device sends one.
    #[arg(long, default_value = "on", value_parser = ["on", "off"])]
    pub imdn: String,
    /// Serial: each sender sends one message with `Success-Report: yes`
    /// and waits for its REPORT before the next (`--messages` of them;
    /// `--rate`, `--duration` and `--imdn` do not apply). Devices answer
    /// `200`, then the REPORT in a write of its own.
    #[arg(long)]
    pub serial: bool,
    /// Messages per session in `--serial` mode.
    #[arg(long, default_value_t = 2000)]
    pub messages: u64,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub tls: TlsArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
}

/// `setup`.
#[derive(Debug, Clone, Args)]
pub struct SetupArgs {
    /// offer/answer/delete cycles per phase.
    #[arg(long, default_value_t = 20_000)]
    pub cycles: u64,
    /// Also delete the device's branch (its BYE) before the session: the
    /// relay then frees the session at once (otherwise the answered leg
    /// that never connected is done with a paced `leg-done`, so sessions
    /// end at the `[pacing] bye-per-sec` rate).
    #[arg(long)]
    pub device_bye: bool,
    /// Requests in flight on the connection.
    #[arg(long, default_value_t = 256)]
    pub window: u64,
    /// Cycles per second of the latency phase; 0: half the measured
    /// maximum.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Drive the relay over the rtpengine ng protocol (UDP), as
    /// Kamailio's `rtpengine` module does: a cycle is offer ×2 branches,
    /// answer, delete. A spawned relay gets `[ng] listen-udp`; a running
    /// one (`--control`) needs `--ng-addr`.
    #[arg(long)]
    pub ng: bool,
    /// The running relay's ng UDP address (with `--ng --control`).
    #[arg(long, value_name = "ADDR", requires = "ng")]
    pub ng_addr: Option<std::net::SocketAddr>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
}

/// `soak`.
#[derive(Debug, Clone, Args)]
pub struct SoakArgs {
    /// Seconds to run.
    #[arg(long, default_value_t = 600)]
    pub duration: u64,
    /// Sessions at once (each on its own threads of the tool).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Sessions in all (0: as many as the duration allows).
    #[arg(long, default_value_t = 0)]
    pub sessions: u64,
    /// File size of the file-transfer sessions.
    #[arg(long, value_parser = size, default_value = "256k")]
    pub file_size: u64,
    /// Messages per chat session.
    #[arg(long, default_value_t = 20)]
    pub chat_messages: u64,
    /// Text bytes per chat message.
    #[arg(long, value_parser = size, default_value = "200")]
    pub chat_size: u64,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
}

/// `deliver`.
#[derive(Debug, Clone, Args)]
pub struct DeliverArgs {
    /// File size (64k, 256M, 1G …).
    #[arg(long, value_parser = size, default_value = "256M")]
    pub size: u64,
    /// Chunk size of the live sender's SENDs.
    #[arg(long, value_parser = size, default_value = "64k")]
    pub chunk: u64,
    /// Chunks the live sender may have unanswered.
    #[arg(long, default_value_t = 16)]
    pub window: u64,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
}

/// `idle`.
#[derive(Debug, Clone, Args)]
pub struct IdleArgs {
    /// Accepted legs to hold open (senders + devices).
    #[arg(long, default_value_t = 10_000)]
    pub legs: usize,
    /// Devices per session (each session also has its sender leg).
    #[arg(long, short = 'm', default_value_t = 9)]
    pub devices: usize,
    /// Connections opened at once.
    #[arg(long, default_value_t = 4)]
    pub threads: usize,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub tls: TlsArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
}

/// `handshake`.
#[derive(Debug, Clone, Args)]
pub struct HandshakeArgs {
    /// Legs to connect and bind per phase (TLS, then plain TCP).
    #[arg(long, default_value_t = 2000)]
    pub legs: usize,
    /// Device legs per session (each session also has its sender leg).
    #[arg(long, short = 'm', default_value_t = 9)]
    pub devices: usize,
    /// Connecting threads (each connects, handshakes and binds one leg at
    /// a time).
    #[arg(long, default_value_t = 4)]
    pub threads: usize,
    /// CA bundle to check a running relay's certificate against (with
    /// `--control`).
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Key exchange group the peers offer first.
    #[arg(long, value_enum, default_value = "x25519")]
    pub tls_kx: crate::tls::Kx,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: Common,
}

/// `demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// File size.
    #[arg(long, value_parser = size, default_value = "48M")]
    pub size: u64,
    /// The slow device's read rate, bytes per second.
    #[arg(long, value_parser = size, default_value = "6M")]
    pub slow_rate: u64,
    /// Drive the relay already running on this control socket.
    #[arg(long, value_name = "PATH")]
    pub control: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("msrp-load").chain(args.iter().copied()))
    }

    #[test]
    fn fanout_arguments() {
        let c = parse(&[
            "fanout",
            "-m",
            "1,10,100",
            "--size",
            "256M",
            "--chunk",
            "64k",
            "--slow",
            "2",
            "--late-at",
            "0.25",
            "--baseline",
            "direct,tcp",
            "--runs",
            "5",
            "--verify",
            "compare",
        ])
        .unwrap();
        let Command::Fanout(f) = c.command else {
            panic!("not fanout")
        };
        assert_eq!(f.devices, vec![1, 10, 100]);
        assert_eq!(f.size, 256 << 20);
        assert_eq!(f.chunk, 65536);
        assert_eq!(f.slow, 2);
        assert_eq!(f.late_at, 0.25);
        assert_eq!(f.verify, Verify::Compare);
        assert_eq!(f.common.baseline, vec![Baseline::Direct, Baseline::Tcp]);
        assert_eq!(f.common.runs, 5);
        assert!(f.common.control.is_none());
    }

    #[test]
    fn defaults_and_bad_values() {
        let Command::Chat(c) = parse(&["chat"]).unwrap().command else {
            panic!("not chat")
        };
        assert_eq!(
            (c.devices, c.size, c.rate, c.imdn.as_str()),
            (3, 200, 1000.0, "on")
        );
        assert!(parse(&["fanout", "--late-at", "1.5"]).is_err());
        assert!(parse(&["fanout", "--size", "12q"]).is_err());
        assert!(parse(&["fanout", "--runs", "0"]).is_err());
        assert!(parse(&["chat", "--imdn", "maybe"]).is_err());
        assert!(parse(&["setup", "--control", "/x", "--spawn"]).is_err());
        assert!(parse(&["fanout", "--tls-ca", "/ca.pem"]).is_err());
    }

    #[test]
    fn tls_arguments() {
        let Command::Fanout(f) = parse(&["fanout", "--tls"]).unwrap().command else {
            panic!("not fanout")
        };
        assert!(f.tls.tls && f.tls.tls_ca.is_none());
        let Command::Idle(i) = parse(&["idle", "--tls", "--tls-ca", "/ca.pem", "--legs", "10"])
            .unwrap()
            .command
        else {
            panic!("not idle")
        };
        assert_eq!(i.tls.tls_ca, Some(PathBuf::from("/ca.pem")));
        let Command::Handshake(h) = parse(&["handshake", "--legs", "500", "--workers", "1"])
            .unwrap()
            .command
        else {
            panic!("not handshake")
        };
        assert_eq!((h.legs, h.threads, h.common.workers), (500, 4, 1));
        assert_eq!(h.tls_kx, crate::tls::Kx::X25519);
        assert!(parse(&["handshake", "--tls-kx", "p384"]).is_ok());
        assert!(parse(&["chat", "--tls"]).is_ok());
    }

    #[test]
    fn hidden_relay_subcommand() {
        let Command::Relay { config } = parse(&["relay", "--config", "/tmp/r.toml"])
            .unwrap()
            .command
        else {
            panic!("not relay")
        };
        assert_eq!(config, PathBuf::from("/tmp/r.toml"));
    }
}
