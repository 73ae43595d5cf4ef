//! The session table: SIP names (call-id + from-tag → session, via-branch →
//! leg) over the data plane's sessions and legs, the multi-device policy
//! applied to each response, and the translation of data-plane events into
//! protocol events.
//!
//! [`Core`] is plain state with `&mut self` methods and time as an argument
//! (so expiry is tested without waiting); the server serialises access with
//! one mutex. Every command returns its reply *and* the events it caused,
//! which the server publishes right after the reply.

mod end;
mod ended;
mod events;
mod handle;
mod info;
mod offer;
mod resume;
mod snapshot;
mod store;
#[cfg(test)]
pub(crate) mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use msrp_relay::fanout::{LegId, SessionId, Setup as PlaneSetup};

use crate::plane::{DataPlane, PlaneError};
use crate::policy::{
    AcceptPolicy, AuthPolicy, Fork, OperatorPolicy, PolicyError, Registry, RegistryLimits,
    RequestKind,
};
use crate::protocol::{Event, Reply};
use crate::sdp::SdpError;

pub use handle::ConnId;
pub use snapshot::TableSnapshot;
pub use store::notice_event;

/// What the table needs to know: the relay's advertised address, bounds,
/// timeouts and operator policy.
#[derive(Debug, Clone)]
pub struct TableConfig {
    /// IP literal put in `c=` of every SDP the relay hands out.
    pub relay_host: String,
    /// Port put in `m=` (the MSRP listener's advertised port).
    pub relay_port: u16,
    /// Port put in `m=` of `TCP/TLS/MSRP` legs (the TLS listener's);
    /// `None`: no TLS listener.
    pub relay_tls_port: Option<u16>,
    /// `[msrp] secure`: TLS is terminated in front of the relay, so a
    /// `TCP/TLS/MSRP` leg without a TLS listener is plain TCP here.
    pub relay_secure: bool,
    /// Sessions at most.
    pub max_sessions: usize,
    /// Device legs (branches) per session at most.
    pub max_legs_per_session: usize,
    /// Call-ids `list` returns at most (and its default).
    pub list_limit: usize,
    /// A session whose control connection closed is ended this long after.
    pub orphan_timeout: Duration,
    /// A deleted session whose legs have not all drained by then has the
    /// rest removed (`leg-failed`).
    pub drain_timeout: Duration,
    /// Whether an accept cancels the other invitations.
    pub accept: AcceptPolicy,
    /// Delivery policy for `plan`.
    pub operator: OperatorPolicy,
    /// Originator policy for `plan` (PF-AUTH).
    pub auth: AuthPolicy,
    /// Registry bounds.
    pub registry: RegistryLimits,
    /// Kinds of session recorded into the content store, when there is
    /// one (`[store] kinds`).
    pub store_kinds: Vec<RequestKind>,
}

impl Default for TableConfig {
    fn default() -> Self {
        TableConfig {
            relay_host: "127.0.0.1".into(),
            relay_port: 2855,
            relay_tls_port: None,
            relay_secure: false,
            max_sessions: 10_000,
            max_legs_per_session: 32,
            list_limit: 1000,
            orphan_timeout: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(30),
            accept: AcceptPolicy::default(),
            operator: OperatorPolicy::default(),
            auth: AuthPolicy::default(),
            registry: RegistryLimits::default(),
            store_kinds: vec![RequestKind::FileTransfer, RequestKind::LargeMessage],
        }
    }
}

/// Why a command failed; the text is the reply's `error-reason`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TableError {
    /// No session with this call-id (and from-tag).
    #[error(
        "unknown call-id {call_id:?}{}",
        from_tag.as_ref().map(|t| format!(" with from-tag {t:?}")).unwrap_or_default()
    )]
    UnknownCall {
        /// Call-ID asked for.
        call_id: String,
        /// From tag asked for, if any.
        from_tag: Option<String>,
    },
    /// A via-branch this session does not have.
    #[error("unknown via-branch {0:?}")]
    UnknownBranch(String),
    /// A second `offer` for a branch.
    #[error("via-branch {0:?} already offered in this session")]
    DuplicateBranch(String),
    /// An `offer` whose kind differs from the session's.
    #[error("session is {have}, offer says {got}")]
    KindMismatch {
        /// The session's kind.
        have: String,
        /// The offer's.
        got: String,
    },
    /// A bound was hit.
    #[error("limit reached: {0}")]
    Limit(String),
    /// `max-sessions` sessions live: no new one.
    #[error("limit reached: {0} sessions")]
    SessionLimit(usize),
    /// The relay is draining (the `drain` command, or shutting down) and
    /// takes no new session; the sessions it has go on.
    #[error("draining: the relay takes no new session")]
    Draining,
    /// The session is ending (deleted, failed, expiring) and takes no new
    /// branch.
    #[error("session is ending")]
    Ending,
    /// The relay is shutting down and takes no new session (nor leaves
    /// its drain).
    #[error("relay is shutting down")]
    ShuttingDown,
    /// An SDP that cannot be used.
    #[error(transparent)]
    Sdp(#[from] SdpError),
    /// A peer MSRP path the relay cannot use.
    #[error("{0}")]
    Path(String),
    /// The policy refused.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The data plane refused.
    #[error(transparent)]
    Plane(#[from] PlaneError),
    /// A store command, and the relay has no `[store]`.
    #[error("this relay has no content store ([store])")]
    NoStore,
    /// The content store refused or failed.
    #[error("store: {0}")]
    Store(String),
}

/// A reply and the events the command caused, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// To the requesting connection.
    pub reply: Reply,
    /// To subscribed connections, after the reply.
    pub events: Vec<Event>,
}

/// The control plane's view of one device leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeviceStatus {
    /// Offered, no answer.
    Invited,
    /// Answered; the engine binds or connects it.
    Answered,
    /// MSRP connection bound.
    Connected,
    /// Drained and told (`leg-done` drained).
    Done,
    /// Failed (`leg-failed`).
    Failed,
    /// Being removed by the control plane with a `leg-done` of this
    /// reason owed to the front end (the front end's delete, a policy
    /// close): the removal is posted to the data plane, and the `leg-done`
    /// goes out, once, when the plane reports the leg removed (with the
    /// bytes the device got), drained just before, or its session freed.
    Removing(crate::protocol::DoneReason),
    /// Removed from the data plane by the control plane (reject, CANCEL,
    /// policy close, the front end's delete), and told if owed.
    Removed,
}

impl DeviceStatus {
    /// Still a leg in the data plane that the control plane has not
    /// removed.
    pub(crate) fn live(self) -> bool {
        matches!(
            self,
            DeviceStatus::Invited | DeviceStatus::Answered | DeviceStatus::Connected
        )
    }
}

#[derive(Debug, Clone)]
pub(crate) struct DeviceLeg {
    pub(crate) via_branch: String,
    /// Offered as `TCP/TLS/MSRP`.
    pub(crate) tls: bool,
    pub(crate) to_tag: Option<String>,
    pub(crate) instance_id: Option<String>,
    pub(crate) leg: LegId,
    pub(crate) status: DeviceStatus,
    pub(crate) created: Instant,
    pub(crate) connected_at: Option<Instant>,
    /// Rejected with 603: the user declined on this device, so it is not
    /// kept a stored copy.
    pub(crate) declined: bool,
}

/// The leg toward the sender, and how to answer it when the first device
/// accepts (worked out at the first offer, so a bad sender SDP fails then).
#[derive(Debug, Clone)]
pub(crate) struct Upstream {
    pub(crate) leg: LegId,
    /// The sender offered `TCP/TLS/MSRP`.
    pub(crate) tls: bool,
    pub(crate) uri: String,
    pub(crate) peer_path: Vec<Bytes>,
    pub(crate) plane_setup: PlaneSetup,
    pub(crate) answer_setup: crate::sdp::Setup,
    pub(crate) answered: bool,
    pub(crate) created: Instant,
    pub(crate) connected_at: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Ending {
    pub(crate) reason: &'static str,
    pub(crate) since: Instant,
    pub(crate) forced: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) key: Key,
    pub(crate) id: SessionId,
    pub(crate) kind: RequestKind,
    pub(crate) owner: Option<ConnId>,
    pub(crate) orphaned_at: Option<Instant>,
    pub(crate) upstream: Upstream,
    pub(crate) devices: Vec<DeviceLeg>,
    /// The data-plane index the next device leg gets (the upstream leg is
    /// 0; indexes are never reused).
    pub(crate) next_leg: u32,
    pub(crate) fork: Fork,
    pub(crate) ending: Option<Ending>,
    /// The store leg, when the session is recorded.
    pub(crate) store: Option<store::StoreLeg>,
    /// The stored item this session delivers (`deliver`).
    pub(crate) replay: Option<store::ReplayOf>,
}

impl Entry {
    /// A command from `conn` about this session: it owns it now (a front
    /// end that reconnected takes its sessions back).
    pub(crate) fn adopt(&mut self, conn: ConnId) {
        self.owner = Some(conn);
        self.orphaned_at = None;
    }

    pub(crate) fn device(&self, branch: &str) -> Result<usize, TableError> {
        self.devices
            .iter()
            .position(|d| d.via_branch == branch)
            .ok_or_else(|| TableError::UnknownBranch(branch.to_owned()))
    }
}

/// Counters since start.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counters {
    pub(crate) sessions_total: u64,
    pub(crate) legs_failed: u64,
    /// `legs_failed` by [`FailReason::kind`], in the order of
    /// [`FailReason::KINDS`].
    ///
    /// [`FailReason::kind`]: msrp_relay::fanout::FailReason::kind
    /// [`FailReason::KINDS`]: msrp_relay::fanout::FailReason::KINDS
    pub(crate) legs_failed_by: [u64; msrp_relay::fanout::FailReason::KINDS.len()],
    pub(crate) bytes_sent: u64,
}

/// Session key: Call-ID and the sender's From tag.
pub(crate) type Key = (String, String);

/// The session table and registry. See the module docs.
pub struct Core {
    pub(crate) cfg: TableConfig,
    pub(crate) plane: Arc<dyn DataPlane>,
    pub(crate) sessions: BTreeMap<Key, Entry>,
    pub(crate) by_id: HashMap<SessionId, Key>,
    pub(crate) registry: Registry,
    pub(crate) counters: Counters,
    pub(crate) shutting_down: bool,
    /// No new session is taken (see [`Core::set_draining`]).
    pub(crate) draining: bool,
    /// The drain is the process's own (its shutdown): `drain` with
    /// `enable: false` cannot end it.
    pub(crate) drain_locked: bool,
    /// Sessions ended lately, for an idempotent `delete`.
    pub(crate) ended: ended::Ended,
    /// Control connections now (kept by the server, for `statistics`).
    pub control_connections: u64,
    /// The content store, if `[store]` is set.
    pub(crate) recorder: Option<Arc<dyn crate::store::Recorder>>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("sessions", &self.sessions.len())
            .field("users", &self.registry.len())
            .field("shutting_down", &self.shutting_down)
            .field("draining", &self.draining)
            .finish_non_exhaustive()
    }
}

impl Core {
    /// An empty table over this data plane.
    pub fn new(cfg: TableConfig, plane: Arc<dyn DataPlane>) -> Core {
        let registry = Registry::new(cfg.registry);
        Core {
            cfg,
            plane,
            sessions: BTreeMap::new(),
            by_id: HashMap::new(),
            registry,
            counters: Counters::default(),
            shutting_down: false,
            draining: false,
            drain_locked: false,
            ended: ended::Ended::default(),
            control_connections: 0,
            recorder: None,
        }
    }

    /// Records sessions of `[store] kinds` into this store and serves
    /// `deliver` from it.
    pub fn set_recorder(&mut self, r: Arc<dyn crate::store::Recorder>) {
        self.recorder = Some(r);
    }

    /// Takes a reloaded configuration: limits, timers and policy apply to
    /// the next command and sweep; the advertised address stays (it is in
    /// every SDP handed out).
    pub fn reconfigure(&mut self, cfg: TableConfig) {
        self.registry.set_limits(cfg.registry);
        let (host, port) = (
            std::mem::take(&mut self.cfg.relay_host),
            self.cfg.relay_port,
        );
        self.cfg = TableConfig {
            relay_host: host,
            relay_port: port,
            ..cfg
        };
    }

    /// Sessions in the table.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// No session in the table.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Enters (`true`) or leaves the drain: while draining, an `offer`
    /// that would start a session for a call the relay does not have is
    /// refused ([`TableError::Draining`]); everything about the calls it
    /// has goes on (their new branches, answers, deletes, queries, the
    /// data plane). Leaving is refused while the process drains for its
    /// shutdown ([`Core::begin_shutdown_drain`]). Returns whether the
    /// state changed.
    pub fn set_draining(&mut self, on: bool) -> Result<bool, TableError> {
        if !on && self.drain_locked {
            return Err(TableError::ShuttingDown);
        }
        let changed = self.draining != on;
        self.draining = on;
        Ok(changed)
    }

    /// The drain of the process's shutdown: as [`Core::set_draining`]
    /// `(true)`, and it cannot be left.
    pub fn begin_shutdown_drain(&mut self) {
        self.draining = true;
        self.drain_locked = true;
    }

    /// No new session is taken.
    pub fn draining(&self) -> bool {
        self.draining || self.shutting_down
    }

    /// The relay has a session of this call (any from-tag).
    pub(crate) fn has_call(&self, call_id: &str) -> bool {
        self.sessions
            .range((call_id.to_owned(), String::new())..)
            .next()
            .is_some_and(|((c, _), _)| c == call_id)
    }

    /// Wakes the data-plane workers posted to since the last wake
    /// ([`DataPlane::wake`]); the server calls it after each batch.
    pub fn wake_plane(&self) {
        self.plane.wake();
    }

    pub(crate) fn entry_mut(
        &mut self,
        call_id: &str,
        from_tag: &str,
    ) -> Result<&mut Entry, TableError> {
        self.sessions
            .get_mut(&(call_id.to_owned(), from_tag.to_owned()))
            .ok_or_else(|| TableError::UnknownCall {
                call_id: call_id.to_owned(),
                from_tag: Some(from_tag.to_owned()),
            })
    }
}
