//! Events pushed to subscribed connections.

use serde::{Deserialize, Serialize};

use crate::policy::CancelReason;

/// Event names, for `subscribe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventName {
    /// [`Event::LegConnected`]
    LegConnected,
    /// [`Event::LegDone`]
    LegDone,
    /// [`Event::LegFailed`]
    LegFailed,
    /// [`Event::CancelBranches`]
    CancelBranches,
    /// [`Event::SessionEnded`]
    SessionEnded,
    /// [`Event::Stored`]
    Stored,
    /// [`Event::StoreFailed`]
    StoreFailed,
}

/// Why a leg is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DoneReason {
    /// The session was deleted and this device got its last byte: send it
    /// its BYE now (PF-LMM-BYE).
    Drained,
    /// Policy closed it (auto-answer elsewhere, CPM-MLD-026, or a 200 that
    /// crossed a CANCEL): send BYE.
    Closed,
    /// The front end deleted this leg (the device's BYE or CANCEL).
    Deleted,
}

/// A pushed event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "event",
    rename_all = "kebab-case",
    rename_all_fields = "kebab-case"
)]
pub enum Event {
    /// A leg's MSRP connection is bound (first request matched, RFC 4975
    /// §5.4).
    LegConnected {
        /// SIP Call-ID.
        call_id: String,
        /// Sender's From tag.
        from_tag: String,
        /// The device leg's branch; absent for the sender leg.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        via_branch: Option<String>,
        /// The device's To tag.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to_tag: Option<String>,
    },
    /// A device leg is finished: send that device its BYE now.
    LegDone {
        /// SIP Call-ID.
        call_id: String,
        /// Sender's From tag.
        from_tag: String,
        /// The device leg's branch.
        via_branch: String,
        /// The device's To tag, if it answered.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to_tag: Option<String>,
        /// Why.
        reason: DoneReason,
        /// Body bytes delivered to the device.
        bytes_sent: u64,
    },
    /// A leg failed; it alone (design.md §6).
    LegFailed {
        /// SIP Call-ID.
        call_id: String,
        /// Sender's From tag.
        from_tag: String,
        /// The device leg's branch; absent for the sender leg.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        via_branch: Option<String>,
        /// The device's To tag.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to_tag: Option<String>,
        /// What happened (e.g. `no connection within 30 s`, `481 from peer`).
        error: String,
    },
    /// Policy: CANCEL these outstanding invitations.
    CancelBranches {
        /// SIP Call-ID.
        call_id: String,
        /// Sender's From tag.
        from_tag: String,
        /// The branches to CANCEL.
        via_branches: Vec<String>,
        /// Why.
        reason: CancelReason,
        /// `Reason` header (RFC 3326) for the CANCELs.
        reason_header: String,
    },
    /// The session is gone, every leg released.
    SessionEnded {
        /// SIP Call-ID.
        call_id: String,
        /// Sender's From tag.
        from_tag: String,
        /// `deleted`, `failed`, `expired` (no control owner), ...
        reason: String,
    },
    /// The session's content is in the store for devices that did not get
    /// it: `deliver` it to each when it registers again (PF-DEFER).
    Stored {
        /// SIP Call-ID of the session it was recorded from.
        call_id: String,
        /// Sender's From tag.
        from_tag: String,
        /// The item, for `deliver`.
        item: String,
        /// The devices it is for (instance-id, else via-branch).
        pending: Vec<String>,
        /// Body bytes stored.
        bytes: u64,
    },
    /// The session's content could not be stored (the backend failed, or
    /// nothing whole was recorded); the live session was not affected.
    StoreFailed {
        /// SIP Call-ID.
        call_id: String,
        /// Sender's From tag.
        from_tag: String,
        /// The item that is not stored.
        item: String,
        /// Why.
        reason: String,
    },
}

impl Event {
    /// The event's name.
    pub fn name(&self) -> EventName {
        match self {
            Event::LegConnected { .. } => EventName::LegConnected,
            Event::LegDone { .. } => EventName::LegDone,
            Event::LegFailed { .. } => EventName::LegFailed,
            Event::CancelBranches { .. } => EventName::CancelBranches,
            Event::SessionEnded { .. } => EventName::SessionEnded,
            Event::Stored { .. } => EventName::Stored,
            Event::StoreFailed { .. } => EventName::StoreFailed,
        }
    }
}
