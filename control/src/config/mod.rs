//! The `msrp-relay` configuration file (TOML). Every key is optional and
//! its default runs on a laptop; `docs/configuration.md` lists them all.

mod build;
pub mod reload;
mod store;
mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::policy::{AuthPolicy, OperatorPolicy, RegistryLimits, RequestKind};

pub use build::default_socket;
pub use store::Store;
pub use tls::Tls;

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Not valid TOML, or an unknown key or a value of the wrong type.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said (with the line).
        message: String,
    },
    /// Values that do not go together.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// `[control]`: the control socket and the session table.
    pub control: Control,
    /// `[msrp]`: the MSRP listener and workers.
    pub msrp: Msrp,
    /// `[budgets]`: content log memory and disk.
    pub budgets: Budgets,
    /// `[timeouts]`: data-plane timers and shutdown.
    pub timeouts: Timeouts,
    /// `[pacing]`: `leg-done` (BYE) pacing.
    pub pacing: Pacing,
    /// `[policy]`: multi-device operator policy.
    pub policy: Policy,
    /// `[log]`: logging.
    pub log: Log,
    /// `[metrics]`: the Prometheus endpoint.
    pub metrics: Metrics,
    /// `[ng]`: the rtpengine ng protocol listener (off by default).
    pub ng: Ng,
    /// `[tls]`: MSRP over TLS on its own port (off by default).
    pub tls: Tls,
    /// `[store]`: the content store for absent devices (off by default).
    pub store: Store,
}

/// `[control]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Control {
    /// Socket path; empty: `$XDG_RUNTIME_DIR/msrp-relay.sock`, else
    /// `/tmp/msrp-relay-<uid>.sock`.
    pub socket: PathBuf,
    /// Peer uids allowed; empty: the relay's own uid.
    pub allowed_uids: Vec<u32>,
    /// Control connections at once.
    pub max_connections: usize,
    /// Longest request line.
    pub max_line_bytes: usize,
    /// Replies waiting per connection before it is no longer read.
    pub max_queued_lines: usize,
    /// Sessions at once.
    pub max_sessions: usize,
    /// Device legs per session.
    pub max_legs_per_session: usize,
    /// Most call-ids in a `list` reply.
    pub list_limit: usize,
    /// A session whose control connection closed ends this long after.
    pub orphan_timeout_ms: u64,
    /// A deleted session's undrained legs are removed after this.
    pub drain_timeout_ms: u64,
}

impl Default for Control {
    fn default() -> Self {
        Control {
            socket: PathBuf::new(),
            allowed_uids: Vec::new(),
            max_connections: 16,
            max_line_bytes: crate::protocol::DEFAULT_MAX_LINE,
            max_queued_lines: 1024,
            max_sessions: 10_000,
            max_legs_per_session: 32,
            list_limit: 1000,
            orphan_timeout_ms: 60_000,
            drain_timeout_ms: 30_000,
        }
    }
}

/// `[msrp]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Msrp {
    /// Address the MSRP listener binds; port 0 picks a free port.
    pub listen: SocketAddr,
    /// IP literal put in `c=` and the relay's `a=path` URIs; empty: the
    /// listen address (which must then not be a wildcard).
    pub advertised_host: String,
    /// Port put in `m=` and the URIs; 0: the listen port.
    pub advertised_port: u16,
    /// Worker threads; 0: one per core.
    pub workers: usize,
    /// Use `msrps:` URIs (TLS terminated in front of the relay).
    pub secure: bool,
    /// `SO_SNDBUF` / `SO_RCVBUF` of MSRP connections; 0: system default.
    pub sndbuf: usize,
    /// See `sndbuf`.
    pub rcvbuf: usize,
    /// Largest message a sender may send; 0: no limit (FT-MAXSIZE).
    pub max_message_bytes: u64,
    /// Largest chunk a device may send (it is buffered whole).
    pub max_device_chunk_bytes: u64,
    /// The I/O driver.
    pub io: Io,
    /// io_uring zero-copy sends from this body size; 0: off.
    pub send_zc_min_bytes: usize,
}

/// `msrp.io`: which I/O driver runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Io {
    /// io_uring if usable, else epoll.
    #[default]
    Auto,
    /// io_uring or refuse to start.
    Uring,
    /// epoll.
    Epoll,
}

impl Default for Msrp {
    fn default() -> Self {
        Msrp {
            listen: SocketAddr::from(([127, 0, 0, 1], 2855)),
            advertised_host: String::new(),
            advertised_port: 0,
            workers: 0,
            secure: false,
            sndbuf: 0,
            rcvbuf: 0,
            max_message_bytes: 0,
            max_device_chunk_bytes: 1 << 20,
            io: Io::Auto,
            send_zc_min_bytes: 0,
        }
    }
}

/// `[budgets]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Budgets {
    /// All sessions' content logs together, in memory.
    pub process_memory_bytes: u64,
    /// One session's content log in memory, before it spills.
    pub session_memory_bytes: u64,
    /// One session's spill file.
    pub session_disk_bytes: u64,
    /// Spill directory; empty: the system temporary directory.
    pub spill_dir: PathBuf,
    /// How far the sender may be read ahead of the device legs that write
    /// freely; 0: no window (only the budgets limit reading).
    pub read_ahead_bytes: u64,
}

impl Default for Budgets {
    fn default() -> Self {
        Budgets {
            process_memory_bytes: 256 << 20,
            session_memory_bytes: 64 << 20,
            session_disk_bytes: 1 << 30,
            spill_dir: PathBuf::new(),
            read_ahead_bytes: 1 << 20,
        }
    }
}

/// `[timeouts]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Timeouts {
    /// A leg with work and no progress fails after this.
    pub leg_ms: u64,
    /// An accepted MSRP connection must bind to a leg within this.
    pub bind_ms: u64,
    /// A complete message waits this long for a device's success REPORT.
    pub report_wait_ms: u64,
    /// On SIGINT/SIGTERM, live sessions may end by themselves (no new one
    /// is taken) for at most this; then the rest are cut.
    pub shutdown_drain_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            leg_ms: 30_000,
            bind_ms: 30_000,
            report_wait_ms: 30_000,
            shutdown_drain_ms: 300_000,
        }
    }
}

/// `[pacing]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Pacing {
    /// `leg-done` events (BYEs) per second, sustained, per worker.
    pub bye_per_sec: u32,
    /// Back to back after a quiet period.
    pub bye_burst: u32,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing {
            bye_per_sec: 200,
            bye_burst: 20,
        }
    }
}

/// `[policy]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Policy {
    /// A chat accept cancels the other invitations (CPM-MLD-007a).
    pub chat_accept_cancels_others: bool,
    /// A file-transfer accept cancels the others (CPM-MLD-020).
    pub file_transfer_accept_cancels_others: bool,
    /// Kinds delivered to the primary device only.
    pub primary_only: Vec<RequestKind>,
    /// Devices one request is forked to at most.
    pub max_devices: usize,
    /// Deferred delivery is offered.
    pub allow_defer: bool,
    /// Interworking is offered.
    pub allow_interwork: bool,
    /// Anonymous originators may send.
    pub allow_anonymous: bool,
    /// Originators refused with 403 (PF-AUTH).
    pub blocked_originators: Vec<String>,
    /// `warn-agent` of the 403's `Warning`.
    pub warn_agent: String,
    /// Users in the registry at most.
    pub max_users: usize,
    /// Devices per user at most.
    pub max_devices_per_user: usize,
    /// CPM-MLD-003b: a device's delivery or read notification, the one
    /// the sender gets, is also copied to the user's other devices of the
    /// session.
    pub notification_copies: bool,
}

impl Default for Policy {
    fn default() -> Self {
        let op = OperatorPolicy::default();
        let auth = AuthPolicy::default();
        let reg = RegistryLimits::default();
        Policy {
            chat_accept_cancels_others: false,
            file_transfer_accept_cancels_others: false,
            primary_only: Vec::new(),
            max_devices: op.max_devices,
            allow_defer: op.allow_defer,
            allow_interwork: op.allow_interwork,
            allow_anonymous: auth.allow_anonymous,
            blocked_originators: Vec::new(),
            warn_agent: auth.warn_agent,
            max_users: reg.max_users,
            max_devices_per_user: reg.max_devices_per_user,
            notification_copies: false,
        }
    }
}

/// `[ng]`: the rtpengine ng protocol listener for Kamailio's and
/// OpenSIPS's `rtpengine` modules. Off unless an address is set.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Ng {
    /// UDP address, e.g. `127.0.0.1:2223`; empty: no UDP listener.
    pub listen_udp: String,
    /// TCP address; empty: no TCP listener.
    pub listen_tcp: String,
    /// Longest message (datagram, or message on a TCP stream).
    pub max_message_bytes: usize,
    /// TCP connections at once.
    pub max_tcp_connections: usize,
    /// Replies remembered for retransmissions, at most.
    pub cache_entries: usize,
    /// How long a reply is remembered.
    pub cache_ttl_ms: u64,
    /// Bencode lists and dictionaries nested at most this deep.
    pub max_depth: usize,
}

impl Default for Ng {
    fn default() -> Self {
        let d = crate::ng::NgConfig::default();
        Ng {
            listen_udp: String::new(),
            listen_tcp: String::new(),
            max_message_bytes: d.max_message_bytes,
            max_tcp_connections: d.max_tcp_connections,
            cache_entries: d.cache_entries,
            cache_ttl_ms: u64::try_from(d.cache_ttl.as_millis()).unwrap_or(u64::MAX),
            max_depth: d.limits.max_depth,
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Log {
    /// `tracing` filter (`RUST_LOG` syntax); `RUST_LOG` overrides it.
    pub filter: String,
    /// Line format on stderr.
    pub format: LogFormat,
}

/// `[log] format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// Human-readable lines (`tracing-subscriber`'s default format).
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`,
    /// `fields` (the message and its fields), `spans`.
    Json,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            filter: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// `[metrics]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Metrics {
    /// `host:port` of the Prometheus endpoint (`GET /metrics`); empty
    /// (the default): no endpoint.
    pub listen: String,
}

impl Metrics {
    /// The address to bind, if any.
    pub fn listen_addr(&self) -> Result<Option<std::net::SocketAddr>, ConfigError> {
        if self.listen.is_empty() {
            return Ok(None);
        }
        self.listen.parse().map(Some).map_err(|_| {
            ConfigError::Invalid(format!(
                "[metrics] listen = {:?}: not an address (host:port, e.g. 127.0.0.1:9464)",
                self.listen
            ))
        })
    }
}
