//! Which devices a request goes to (seed 001 §6.6 "Suitable CPM Clients",
//! seed 002 deferral/interworking).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::auth::{AuthDecision, AuthPolicy, check_originator};
use super::registry::{Capability, Connectivity, UserDevices};

/// The kind of request being delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RequestKind {
    /// CPM Session invitation (CPM-MLD-006).
    Chat,
    /// CPM File Transfer invitation (CPM-MLD-019).
    FileTransfer,
    /// Large Message Mode standalone message: an INVITE with MSRP
    /// (CPM-MLD-001, seed 003).
    LargeMessage,
    /// Pager Mode standalone message: a SIP MESSAGE (CPM-MLD-001).
    Pager,
}

impl RequestKind {
    /// The capability a client must declare to be suitable (§6.6 bullet 1).
    pub fn capability(self) -> Capability {
        match self {
            RequestKind::Chat => Capability::Chat,
            RequestKind::FileTransfer => Capability::FileTransfer,
            RequestKind::LargeMessage => Capability::LargeMessage,
            RequestKind::Pager => Capability::Pager,
        }
    }

    /// Can the request wait in storage for a device to appear? Standalone
    /// messages and file transfers can (seed 002 §5.2.2.2.1, CPM deferred
    /// file transfer); a chat invitation is a live dialog and cannot.
    pub fn deferrable(self) -> bool {
        !matches!(self, RequestKind::Chat)
    }
}

/// What the user wants when no device is suitable (seed 002 NOTE 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fallback {
    /// Keep the message for later delivery (PF-DEFER).
    Defer,
    /// Interwork it (e.g. to SMS toward the Primary Device).
    Interwork,
    /// Refuse it.
    Reject,
}

/// The recipient's preferences (User Preferences Profile, from XDMS).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Preferences {
    /// Instance ids that must not get a request of a kind.
    #[serde(default)]
    pub excluded: BTreeMap<RequestKind, BTreeSet<String>>,
    /// What to do when none is suitable; absent means reject (seed 002:
    /// defer only "if the user preferences of the recipient indicate
    /// deferring").
    #[serde(default)]
    pub when_none: Option<Fallback>,
}

/// The operator's delivery policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct OperatorPolicy {
    /// Kinds delivered to the Primary Device only.
    pub primary_only: BTreeSet<RequestKind>,
    /// Most devices one request is forked to (a bound: every branch costs
    /// a SIP transaction and an MSRP leg).
    pub max_devices: usize,
    /// Deferred delivery is offered.
    pub allow_defer: bool,
    /// Interworking is offered.
    pub allow_interwork: bool,
}

impl Default for OperatorPolicy {
    fn default() -> Self {
        OperatorPolicy {
            primary_only: BTreeSet::new(),
            max_devices: 10,
            allow_defer: true,
            allow_interwork: true,
        }
    }
}

/// Why a device does or does not get the request. The checks run in this
/// order and the first that fails is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Suitable and selected.
    Suitable,
    /// No active registration (seed 002 NOTE 3).
    NotRegistered,
    /// Does not declare the capability for the kind (§6.6 bullet 1).
    NotCapable,
    /// Its connectivity does not permit CPM requests (§6.6 bullet 2).
    NoConnectivity,
    /// Operator policy excludes it (§6.6 bullet 3).
    PolicyExcluded,
    /// User preference excludes it (§6.6 bullet 4).
    PreferenceExcluded,
    /// Suitable, but the fork is full ([`OperatorPolicy::max_devices`]).
    ForkLimit,
}

/// The decision for one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct DeviceDecision {
    /// `+sip.instance`.
    pub instance_id: String,
    /// Public GRUU: the Request-URI for this device's INVITE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gruu: Option<String>,
    /// Device name (CPM-MLD-015).
    pub name: String,
    /// Is the Primary Device (CPM-MLD-027).
    pub primary: bool,
    /// Gets the request.
    pub selected: bool,
    /// Why.
    pub reason: Reason,
}

/// What happens to the request as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum Outcome {
    /// Fork to the selected devices (one INVITE/MESSAGE each, PF-LMM-FORK).
    Deliver,
    /// Keep for deferred delivery (PF-DEFER).
    Defer,
    /// Hand to interworking toward the Primary Device.
    Interwork {
        /// Instance id of the Primary Device.
        primary: String,
    },
    /// Refuse with this SIP status (480 Temporarily Unavailable).
    Reject {
        /// SIP status code.
        status: u16,
    },
    /// The originator may not send (PF-AUTH): answer 403 with this
    /// `Warning`. Only [`plan_request`] gives it; no device is considered.
    Forbid {
        /// SIP status code (403).
        status: u16,
        /// `Warning` header value.
        warning: String,
    },
}

/// A delivery plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Plan {
    /// The request kind planned for.
    pub kind: RequestKind,
    /// What to do.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// One decision per device, in registration order.
    pub devices: Vec<DeviceDecision>,
}

impl Plan {
    /// Instance ids of the selected devices, in registration order.
    pub fn targets(&self) -> impl Iterator<Item = &str> {
        self.devices
            .iter()
            .filter(|d| d.selected)
            .map(|d| d.instance_id.as_str())
    }
}

/// Decides who gets a request of `kind` (PF-SUITABLE, CPM-MLD-001/006/019).
///
/// A device is suitable when it is registered, declares the capability,
/// its connectivity permits CPM, operator policy and user preference allow
/// it (seed 001 §6.6). If more are suitable than
/// [`OperatorPolicy::max_devices`], the Primary Device is kept and the rest
/// filled in registration order. If none is suitable: the user's fallback,
/// as far as the operator offers it (PF-DEFER):
/// - `interwork` needs a Primary Device whose connectivity permits
///   interworked requests (§6.6 bullet 2), else it falls back to `defer`;
/// - `defer` needs a deferrable kind (not chat), else `reject`;
/// - nothing set: reject with 480.
pub fn plan(
    kind: RequestKind,
    user: &UserDevices,
    prefs: &Preferences,
    policy: &OperatorPolicy,
) -> Plan {
    let excluded = prefs.excluded.get(&kind);
    let mut devices: Vec<DeviceDecision> = user
        .devices
        .iter()
        .map(|d| {
            let primary = user.is_primary(&d.instance_id);
            let reason = if !d.registered {
                Reason::NotRegistered
            } else if !d.capabilities.contains(&kind.capability()) {
                Reason::NotCapable
            } else if d.connectivity != Connectivity::Cpm {
                Reason::NoConnectivity
            } else if policy.primary_only.contains(&kind) && !primary {
                Reason::PolicyExcluded
            } else if excluded.is_some_and(|set| set.contains(&d.instance_id)) {
                Reason::PreferenceExcluded
            } else {
                Reason::Suitable
            };
            DeviceDecision {
                instance_id: d.instance_id.clone(),
                gruu: d.gruu.clone(),
                name: d.name.clone(),
                primary,
                selected: reason == Reason::Suitable,
                reason,
            }
        })
        .collect();

    let suitable = devices.iter().filter(|d| d.selected).count();
    if suitable > policy.max_devices {
        let primary_kept = devices.iter().any(|d| d.selected && d.primary);
        let mut room = policy.max_devices.saturating_sub(usize::from(primary_kept));
        for d in devices.iter_mut().filter(|d| d.selected && !d.primary) {
            if room == 0 {
                d.selected = false;
                d.reason = Reason::ForkLimit;
            } else {
                room -= 1;
            }
        }
        if policy.max_devices == 0 {
            for d in devices.iter_mut().filter(|d| d.selected) {
                d.selected = false;
                d.reason = Reason::ForkLimit;
            }
        }
    }

    let outcome = if devices.iter().any(|d| d.selected) {
        Outcome::Deliver
    } else {
        fallback(kind, user, prefs, policy)
    };
    Plan {
        kind,
        outcome,
        devices,
    }
}

/// The Participating Function's order for an incoming request (seed 003
/// §8.3.2.1.1): authorise the originator first (PF-AUTH, steps 1 and 3),
/// then [`plan`] the delivery (step 6).
pub fn plan_request(
    kind: RequestKind,
    user: &UserDevices,
    prefs: &Preferences,
    policy: &OperatorPolicy,
    auth: &AuthPolicy,
    originator: &str,
    anonymous: bool,
) -> Plan {
    match check_originator(auth, originator, anonymous) {
        AuthDecision::Allow => plan(kind, user, prefs, policy),
        AuthDecision::Forbid { status, warning } => Plan {
            kind,
            outcome: Outcome::Forbid { status, warning },
            devices: Vec::new(),
        },
    }
}

fn fallback(
    kind: RequestKind,
    user: &UserDevices,
    prefs: &Preferences,
    policy: &OperatorPolicy,
) -> Outcome {
    let defer = || {
        if kind.deferrable() && policy.allow_defer {
            Outcome::Defer
        } else {
            Outcome::Reject { status: 480 }
        }
    };
    match prefs.when_none {
        Some(Fallback::Interwork) if policy.allow_interwork => {
            let reachable = user.primary.as_deref().and_then(|p| {
                user.devices
                    .iter()
                    .find(|d| d.instance_id == p && d.connectivity != Connectivity::None)
            });
            match reachable {
                Some(d) => Outcome::Interwork {
                    primary: d.instance_id.clone(),
                },
                None => defer(),
            }
        }
        Some(Fallback::Interwork) | Some(Fallback::Defer) => defer(),
        Some(Fallback::Reject) | None => Outcome::Reject { status: 480 },
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
