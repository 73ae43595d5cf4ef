//! The engine's public vocabulary: identifiers, configuration, events and
//! the outputs a driver acts on.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use super::log::LogConfig;
use super::pacer::{PacerConfig, PacerError};
use crate::msrp::{DecodeError, Limits, StatusCode};

/// A session. Unique for the process's lifetime: the top byte is the
/// worker (engine) that owns it, so a handle can route commands to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

impl SessionId {
    /// The worker that owns the session.
    pub fn worker(self) -> u8 {
        (self.0 >> 56) as u8
    }
}

/// A leg: its session and its index in the session (0 is the upstream
/// leg toward the sender, 1.. the device legs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegId {
    /// The session.
    pub session: SessionId,
    /// Index within the session.
    pub index: u32,
}

impl LegId {
    /// True for the leg toward the sender.
    pub fn is_upstream(self) -> bool {
        self.index == 0
    }
}

/// A connection, named by the driver (its poll token or slab key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// How the relay reaches a leg's peer (RFC 6135, RFC 4975 §5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// The peer connects to the relay (relay `a=setup:passive`).
    Passive,
    /// The relay connects to this address (relay `a=setup:active`).
    Active(SocketAddr),
}

/// How a leg's peer reaches the relay, or the relay its peer: plain TCP
/// (`TCP/MSRP`, `msrp:` URIs) or TLS (`TCP/TLS/MSRP`, `msrps:` URIs,
/// RFC 4975 §14.1) on the relay's TLS port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Plain TCP.
    #[default]
    Tcp,
    /// TLS, terminated by the relay's driver.
    Tls,
}

/// What a leg is to its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LegRole {
    /// The sender (leg 0) or one of the recipient's devices.
    #[default]
    Device,
    /// A recorder, such as the content store's leg (issue 12): it reads
    /// the sender's content like a device, and nothing the devices send
    /// (their chat, copies of their notifications): what it records is
    /// the sender's.
    Recorder,
}

/// What the engine is told about a leg when it is created.
#[derive(Debug, Clone, Default)]
pub struct LegParams {
    /// A label for logs and events (the front end's via-branch, say).
    pub label: String,
    /// Plain TCP or TLS: the scheme and port of the relay's URI on this
    /// leg, and what its connection must be (a TLS leg is not bound over
    /// plain TCP).
    pub transport: Transport,
    /// A device or a recorder.
    pub role: LegRole,
}

/// What the engine is told when a leg's peer answered: its MSRP path (the
/// SDP `a=path`, RFC 4975 §8.2) and who connects.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The peer's `a=path` URIs, in SDP order (the peer's own URI last).
    pub peer_path: Vec<Bytes>,
    /// Who opens the TCP connection.
    pub setup: Setup,
}

/// Engine configuration. Every default runs on a laptop.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// This engine's (worker's) index: the first byte of every session-id
    /// it mints, so a connection accepted elsewhere can be handed over.
    pub worker: u8,
    /// How many workers the relay runs: a session-id naming a worker at or
    /// above it is unknown (481), not handed over.
    pub workers: u16,
    /// Host part of the relay's own MSRP URIs (an IP literal or name).
    pub host: String,
    /// Port of the relay's own MSRP URIs.
    pub port: u16,
    /// Use `msrps` URIs on plain-TCP legs too (TLS terminated in front of
    /// the relay, which then sees plain TCP).
    pub secure: bool,
    /// Port of the relay's own TLS listener: the port of its `msrps:` URIs
    /// on [`Transport::Tls`] legs. `None`: no TLS listener (such a leg
    /// cannot be created).
    pub tls_port: Option<u16>,
    /// Decoder bounds for every connection.
    pub limits: Limits,
    /// Per-session content log budgets.
    pub log: LogConfig,
    /// Largest body the relay writes in one chunk to a leg.
    pub max_out_chunk: usize,
    /// A leg's queued output is refilled from the log below this mark. The
    /// queue holds references into the log, not copies; a deeper queue lets
    /// each vectored write carry more (in `driver_compare`,
    /// `docs/io-drivers.md`, 1 MiB takes the epoll driver about a third
    /// less CPU per GB than 256 KiB).
    pub leg_low_water: usize,
    /// Read-ahead window: the sender is not read while it is this many
    /// bytes or more ahead of every device leg that writes freely (a leg
    /// whose socket is full does not count; see [`Engine::set_write_blocked`]).
    /// It keeps a relay whose own CPU is the bottleneck from filling (and
    /// spilling) the log with data it cannot write yet; slow devices still
    /// get the whole log budget. `u64::MAX`: only the budget limits reading.
    ///
    /// [`Engine::set_write_blocked`]: crate::fanout::Engine::set_write_blocked
    pub read_ahead: u64,
    /// Largest chunk body a device may send (buffered whole, to classify
    /// IMDNs and mirror chat); above it the device gets `413`.
    pub max_device_chunk: u64,
    /// Largest message a sender may send (Byte-Range total or running
    /// size); above it `413` and the message is aborted (FT-MAXSIZE).
    /// `None`: no limit.
    pub max_message_size: Option<u64>,
    /// A leg with queued output or unanswered chunks and no progress for
    /// this long fails alone.
    pub leg_timeout: Duration,
    /// An accepted connection that has not bound to a leg by then closes.
    pub bind_timeout: Duration,
    /// Pacing of `leg-done` events (PF-LMM-BYE).
    pub done_pacing: PacerConfig,
    /// CPM-MLD-003b: the one delivery or read notification of a message
    /// that goes to the sender also goes, as a copy, to every other device
    /// leg of the session, so the user's other devices learn that the
    /// message was delivered or read (`[policy] notification-copies`;
    /// default off). Applies to sessions created from then on.
    pub notification_copies: bool,
    /// Message ids remembered per session for IMDN de-duplication, for
    /// REPORT routing, and awaiting success REPORTs.
    pub max_tracked_ids: usize,
    /// How long a complete message that asked for success REPORTs waits
    /// for one device to report all of it (RFC 4975 §7.1.2 lets REPORTs
    /// come late); then it is forgotten and a later REPORT is ignored.
    pub report_wait: Duration,
    /// Where the engine's random identities (session-ids, Message-IDs)
    /// come from. `None` (the default, and what the relay runs with): the
    /// kernel's random source, checked when the engine is built (a source
    /// that fails is an error then, never a weaker id). `Some(seed)`: a
    /// deterministic generator, for reproducible tests only (the ids are
    /// then predictable, which RFC 4975 §14.1 forbids in service).
    pub id_seed: Option<u64>,
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            worker: 0,
            workers: 1,
            host: "127.0.0.1".into(),
            port: 2855,
            secure: false,
            tls_port: None,
            limits: Limits::default(),
            log: LogConfig {
                memory_limit: 64 << 20,
                disk_limit: 1 << 30,
                spill_dir: None,
            },
            max_out_chunk: 256 << 10,
            leg_low_water: 1 << 20,
            read_ahead: 1 << 20,
            max_device_chunk: 1 << 20,
            max_message_size: None,
            leg_timeout: Duration::from_secs(30),
            bind_timeout: Duration::from_secs(30),
            done_pacing: PacerConfig {
                max_per_sec: 200,
                burst: 20,
            },
            notification_copies: false,
            max_tracked_ids: 4096,
            report_wait: Duration::from_secs(30),
            id_seed: None,
        }
    }
}

/// Why a leg failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailReason {
    /// The connection closed or broke before the leg was done.
    Disconnected,
    /// Could not connect (relay active side).
    ConnectFailed,
    /// No progress for `leg_timeout`.
    Timeout,
    /// The peer answered with this status (481: it has no such session).
    Refused(StatusCode),
    /// The peer broke MSRP framing; the connection was closed.
    Protocol(DecodeError),
    /// The session ended before the leg connected.
    NeverConnected,
}

impl FailReason {
    /// Every [`FailReason::kind`], in declaration order.
    pub const KINDS: [&'static str; 6] = [
        "disconnected",
        "connect-failed",
        "timeout",
        "refused",
        "protocol-error",
        "never-connected",
    ];

    /// The reason without its detail: one of [`FailReason::KINDS`] (a
    /// bounded set, for metrics labels).
    pub fn kind(&self) -> &'static str {
        match self {
            FailReason::Disconnected => "disconnected",
            FailReason::ConnectFailed => "connect-failed",
            FailReason::Timeout => "timeout",
            FailReason::Refused(_) => "refused",
            FailReason::Protocol(_) => "protocol-error",
            FailReason::NeverConnected => "never-connected",
        }
    }
}

impl std::fmt::Display for FailReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FailReason::Disconnected => f.write_str("disconnected"),
            FailReason::ConnectFailed => f.write_str("connect-failed"),
            FailReason::Timeout => f.write_str("timeout"),
            FailReason::Refused(c) => write!(f, "refused-{c}"),
            FailReason::Protocol(e) => write!(f, "protocol-error: {e}"),
            FailReason::NeverConnected => f.write_str("never-connected"),
        }
    }
}

/// Where a leg stands ([`LegInfo::state`](crate::fanout::LegInfo)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegState {
    /// Invited, not answered: keeps the whole log for a late accept.
    Invited,
    /// Answered; waiting for its connection.
    Answered,
    /// Connection bound; traffic flows.
    Connected,
    /// Drained after the sender ended; `leg-done` queued or sent.
    Done,
    /// Failed alone.
    Failed(FailReason),
}

impl LegState {
    /// Still a reader of the log (pins what it has not read).
    pub(crate) fn is_reader(&self) -> bool {
        matches!(
            self,
            LegState::Invited | LegState::Answered | LegState::Connected
        )
    }
}

/// `invited`, `answered`, `connected`, `done` or `failed: <reason>`.
impl std::fmt::Display for LegState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LegState::Invited => f.write_str("invited"),
            LegState::Answered => f.write_str("answered"),
            LegState::Connected => f.write_str("connected"),
            LegState::Done => f.write_str("done"),
            LegState::Failed(r) => write!(f, "failed: {r}"),
        }
    }
}

/// What the engine tells the control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The leg's connection is bound and traffic flows.
    LegConnected {
        /// The leg.
        leg: LegId,
    },
    /// The leg got its last byte after the sender ended: BYE it now
    /// (paced, PF-LMM-BYE).
    LegDone {
        /// The leg.
        leg: LegId,
        /// Body bytes delivered to the leg.
        bytes: u64,
    },
    /// The control plane's [`Engine::remove_leg`] took the leg out (a
    /// device's BYE, a CANCEL, a reject, a policy close). Exactly one per
    /// successful call, queued by the call itself, so it comes before the
    /// events the removal causes (`UpstreamEnded`, `SessionEnded`); nothing
    /// more is said about the leg after it. Events about the leg queued
    /// before the call (`LegConnected`, `LegDone`, `LegFailed`) may still
    /// be ahead of it in the stream.
    ///
    /// [`Engine::remove_leg`]: crate::fanout::Engine::remove_leg
    LegRemoved {
        /// The leg.
        leg: LegId,
        /// Body bytes delivered to the leg (queued toward it, as
        /// `LegInfo::bytes` counts them) until its removal.
        bytes: u64,
    },
    /// The leg failed alone; the others go on.
    LegFailed {
        /// The leg.
        leg: LegId,
        /// Why.
        reason: FailReason,
    },
    /// The sender's leg ended (its connection closed, or the session was
    /// ended); device legs drain.
    UpstreamEnded {
        /// The session.
        session: SessionId,
    },
    /// Every leg is done, failed or removed; the session is freed.
    SessionEnded {
        /// The session.
        session: SessionId,
    },
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// Open a TCP connection for `leg` to `addr` and report it with
    /// `handle_connected` or `handle_connect_failed`.
    Connect {
        /// The leg.
        leg: LegId,
        /// Where to.
        addr: SocketAddr,
        /// `Some`: run TLS over it as the client, verifying the peer's
        /// certificate against this name (the host of the peer's `msrps:`
        /// URI, RFC 4975 §14.2).
        tls: Option<String>,
    },
    /// Close the connection (after writing what is queued, if `flush`).
    Close {
        /// The connection.
        conn: ConnId,
        /// Write out queued bytes first.
        flush: bool,
    },
    /// The connection's first request names a session of another worker:
    /// move the socket there and feed it `data` first.
    Handover {
        /// The connection.
        conn: ConnId,
        /// The owning worker.
        worker: u8,
        /// Bytes read so far, to feed on the new worker.
        data: Vec<Bytes>,
    },
    /// A control event.
    Event(Event),
}

/// Errors of the engine's API (control-plane calls, never wire input).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// No such session.
    #[error("no such session")]
    NoSession,
    /// No such leg.
    #[error("no such leg")]
    NoLeg,
    /// The leg was answered already.
    #[error("leg already answered")]
    AlreadyAnswered,
    /// The peer path is empty or not MSRP URIs.
    #[error("bad peer path: {0}")]
    BadPath(String),
    /// The session is ending and takes no new legs.
    #[error("session is ending")]
    Ending,
    /// The leg limit of a session was reached.
    #[error("too many legs")]
    TooManyLegs,
    /// A session or leg with this identity exists already.
    #[error("session or leg exists already")]
    Duplicate,
    /// A configuration the engine cannot take (its `done_pacing`).
    #[error("configuration refused: {0}")]
    Config(#[from] PacerError),
    /// A TLS leg was asked for, but the relay has no TLS listener.
    #[error("TLS leg refused: the relay has no TLS listener ([tls] listen)")]
    NoTls,
    /// The kernel's random source failed: no identity is minted without it.
    #[error("random source failed: {0}")]
    Random(String),
}
