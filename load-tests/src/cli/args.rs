//! Each subcommand's arguments.

use std::path::PathBuf;

use clap::Args;

use super::common::{Common, TlsArgs, Verify, fraction, size};

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
