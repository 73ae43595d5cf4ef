//! Multi-device policy (design.md §5): pure and deterministic, no I/O, no
//! clock. Same inputs, same decisions, in the same order.
//!
//! - [`Registry`]: a user's devices from the registration event package
//!   (RFC 3680 reginfo as stored by the CPM Participating Function, seed
//!   001 §8.1.2), with the primary device identified (CPM-MLD-027) and a
//!   name for each device (CPM-MLD-015).
//! - [`plan`]: which devices a chat, file transfer, large message or pager
//!   message goes to, with the reason for every device (seed 001 §6.6
//!   "Suitable CPM Clients"), and whether to defer, interwork or reject
//!   when none is suitable (seed 002).
//! - [`Fork`]: what each device's response to a forked invitation does to
//!   the sender and to the other devices (CPM-MLD-007a/008a/020/026, seed
//!   003 PF-LMM-FIRST200).
//! - [`check_originator`]: may this originator send at all (PF-AUTH).

mod auth;
mod fork;
mod plan;
mod registry;

pub use auth::{AuthDecision, AuthPolicy, check_originator};
pub use fork::{AcceptPolicy, BranchState, CancelReason, Fork, ForkAction, ForkFailure, Response};
pub use plan::{
    DeviceDecision, Fallback, OperatorPolicy, Outcome, Plan, Preferences, Reason, RequestKind,
    plan, plan_request,
};
pub use registry::{
    Capability, Connectivity, Device, Registration, Registry, RegistryLimits, UserDevices,
};

/// Why a policy input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A registration not newer than the stored one. The reginfo `version`
    /// (RFC 3680) increases with every document sent to a subscriber; an
    /// older or repeated one must not overwrite newer state (PF-REGINFO).
    #[error("registration version {got} for {user} is not newer than stored version {stored}")]
    StaleRegistration {
        /// The user address.
        user: String,
        /// Version already stored.
        stored: u64,
        /// Version received.
        got: u64,
    },
    /// Two devices of one registration carry the same instance id.
    #[error("instance id {0:?} appears twice in one registration")]
    DuplicateInstance(String),
    /// A device without an instance id (`+sip.instance`, RFC 5626 §4.1).
    #[error("a device has an empty instance id")]
    EmptyInstance,
    /// A device without a human-readable name (CPM-MLD-015).
    #[error("device {0:?} has no name")]
    MissingDeviceName(String),
    /// More than one device flagged primary (CPM-MLD-027: one primary).
    #[error("devices {0:?} are all flagged primary; at most one may be")]
    MultiplePrimaries(Vec<String>),
    /// A bound of [`RegistryLimits`] was hit.
    #[error("limit reached: {0}")]
    Limit(String),
    /// No registration stored for this user.
    #[error("no registration for user {0:?}")]
    UnknownUser(String),
    /// A fork with no branches, or two branches with one id.
    #[error("invalid fork: {0}")]
    InvalidFork(String),
    /// Pager Mode messages are not forked as sessions (SIP MESSAGE has no
    /// CANCEL and no media), so they have no [`Fork`].
    #[error("request kind {0:?} has no session fork")]
    NotASession(RequestKind),
    /// A response on a via-branch that is not part of the fork.
    #[error("unknown via-branch {0:?}")]
    UnknownBranch(String),
    /// A second final response on the same branch.
    #[error("via-branch {branch:?} already has a final response ({state:?})")]
    DuplicateResponse {
        /// The branch.
        branch: String,
        /// Its state.
        state: BranchState,
    },
}
