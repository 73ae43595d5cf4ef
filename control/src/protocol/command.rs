//! Requests and their fields.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::event::EventName;
use crate::policy::{Preferences, Registration, RequestKind, Response};

/// A request: an id chosen by the front end (any JSON, echoed verbatim in
/// the reply, so it can match pipelined replies) and a command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Echoed in the reply.
    pub id: Value,
    /// The command and its fields.
    #[serde(flatten)]
    pub command: Command,
}

/// A command, tagged by the `command` member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Command {
    /// Liveness check.
    Ping,
    /// The sender's SDP for one forked branch (one device).
    Offer(Offer),
    /// A device's 200 OK SDP.
    Answer(Answer),
    /// A device's non-2xx final response.
    Reject(Reject),
    /// End a session (sender's BYE/CANCEL) or one leg (device's BYE).
    Delete(Delete),
    /// A session's legs, states, bytes and timings.
    Query(Query),
    /// Sessions present.
    List(List),
    /// Process-wide counters.
    Statistics,
    /// A user's devices from the registration event package.
    Register(Registration),
    /// Which devices a request of a kind goes to.
    Plan(Plan),
    /// Receive events on this connection.
    Subscribe(Subscribe),
    /// Take no new session (draining), or take them again.
    Drain(Drain),
    /// Deliver a stored item to one device (PF-DEFER).
    Deliver(Deliver),
    /// The content store's items.
    StoreList,
    /// Delete a stored item.
    StoreDelete(StoreDelete),
}

/// `deliver`: set up a session toward one device whose sender is the
/// content store (the device registered again after missing a session).
/// The reply is the SDP offer for the front end's INVITE to that device;
/// the device's 200 is an `answer` of this `call-id` and `from-tag` as
/// usual.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Deliver {
    /// Call-ID of the front end's new INVITE toward the device.
    pub call_id: String,
    /// Its From tag.
    pub from_tag: String,
    /// Its branch.
    pub via_branch: String,
    /// The stored item (from the `stored` event or `store-list`).
    pub item: String,
    /// The device, as the item lists it in `pending` (its instance-id, or
    /// the via-branch it was invited on when it had none).
    pub device: String,
    /// The device leg's transport; absent: the original sender's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<MsrpProtocol>,
}

/// `store-delete`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct StoreDelete {
    /// The item.
    pub item: String,
}

/// `offer`: the sender's INVITE is forked; one `offer` per branch. The first
/// offer of a `call-id` + `from-tag` creates the session and the leg
/// toward the sender; later ones (other `via-branch`) add device legs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Offer {
    /// SIP Call-ID of the sender's dialog.
    pub call_id: String,
    /// Sender's From tag.
    pub from_tag: String,
    /// Branch of the forked INVITE toward this device (its top Via).
    pub via_branch: String,
    /// The sender's SDP offer.
    pub sdp: String,
    /// What is being set up: `chat`, `file-transfer`, `large-message`.
    pub kind: RequestKind,
    /// The target device's `+sip.instance`, if known (for events and
    /// `query`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// The MSRP transport of this device's leg, when it differs from the
    /// sender's: `"TCP/TLS/MSRP"` (msrps, on the relay's TLS port) or
    /// `"TCP/MSRP"`. Absent: the sender's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<MsrpProtocol>,
}

/// An MSRP media protocol (RFC 4975 §8.1, the `m=` line's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MsrpProtocol {
    /// `TCP/MSRP`: plain TCP, `msrp:` URIs.
    #[serde(rename = "TCP/MSRP")]
    Tcp,
    /// `TCP/TLS/MSRP`: TLS, `msrps:` URIs.
    #[serde(rename = "TCP/TLS/MSRP")]
    Tls,
}

impl MsrpProtocol {
    /// The `m=` line's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            MsrpProtocol::Tcp => "TCP/MSRP",
            MsrpProtocol::Tls => "TCP/TLS/MSRP",
        }
    }
}

/// `answer`: a device's 200 OK.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Answer {
    /// SIP Call-ID of the sender's dialog.
    pub call_id: String,
    /// Sender's From tag.
    pub from_tag: String,
    /// The device's To tag.
    pub to_tag: String,
    /// The branch the 200 OK came on.
    pub via_branch: String,
    /// The device's SDP answer.
    pub sdp: String,
    /// The client answered automatically (CPM-MLD-026).
    #[serde(default)]
    pub auto_answer: bool,
}

/// `reject`: a device's final non-2xx response (or the front end's timer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Reject {
    /// SIP Call-ID of the sender's dialog.
    pub call_id: String,
    /// Sender's From tag.
    pub from_tag: String,
    /// The branch.
    pub via_branch: String,
    /// SIP status: 603 = the user declined (cancels the others,
    /// CPM-MLD-008a); 408 = no answer; anything else = this device failed.
    pub code: u16,
}

impl Reject {
    /// The policy's view of the status code.
    pub fn response(&self) -> Response {
        match self.code {
            603 => Response::Reject,
            408 => Response::Timeout,
            _ => Response::Fail,
        }
    }
}

/// `delete`: without `via-branch` the whole session (the sender's BYE:
/// drain every device leg, then paced `leg-done`); with it, one device leg
/// (that device's BYE, or a CANCEL of its branch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Delete {
    /// SIP Call-ID.
    pub call_id: String,
    /// Sender's From tag.
    pub from_tag: String,
    /// One leg only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via_branch: Option<String>,
}

/// `query`: one session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Query {
    /// SIP Call-ID.
    pub call_id: String,
    /// Sender's From tag; when absent, the first session of the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_tag: Option<String>,
}

/// `list`: sessions present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct List {
    /// At most this many call-ids (default: the server's bound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// `plan`: which devices of `user` a request of `kind` goes to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Plan {
    /// The recipient's address, as registered.
    pub user: String,
    /// `chat`, `file-transfer`, `large-message`, `pager`.
    pub kind: RequestKind,
    /// The recipient's preferences (from XDMS).
    #[serde(default)]
    pub preferences: Preferences,
    /// The Authenticated Originator's address; when given, PF-AUTH runs
    /// first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub originator: Option<String>,
    /// The originator asked for anonymity.
    #[serde(default)]
    pub anonymous: bool,
}

/// `subscribe`: events wanted on this connection; empty = all.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Subscribe {
    /// Event names.
    #[serde(default)]
    pub events: Vec<EventName>,
}

/// `drain`: with `enable` (default `true`) the relay takes no new session
/// (a new call's `offer` is refused) while everything about the sessions
/// it has goes on, so that it can be taken out of service without losing
/// one; `enable: false` takes new sessions again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Drain {
    /// Enter (`true`) or leave (`false`) the drain.
    #[serde(default = "yes")]
    pub enable: bool,
}

impl Default for Drain {
    fn default() -> Self {
        Drain { enable: true }
    }
}

fn yes() -> bool {
    true
}

/// The name of a command, for errors and for decoding replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommandName {
    /// `ping`
    Ping,
    /// `offer`
    Offer,
    /// `answer`
    Answer,
    /// `reject`
    Reject,
    /// `delete`
    Delete,
    /// `query`
    Query,
    /// `list`
    List,
    /// `statistics`
    Statistics,
    /// `register`
    Register,
    /// `plan`
    Plan,
    /// `subscribe`
    Subscribe,
    /// `drain`
    Drain,
    /// `deliver`
    Deliver,
    /// `store-list`
    StoreList,
    /// `store-delete`
    StoreDelete,
}

impl CommandName {
    /// Every command.
    pub const ALL: [CommandName; 15] = [
        CommandName::Ping,
        CommandName::Offer,
        CommandName::Answer,
        CommandName::Reject,
        CommandName::Delete,
        CommandName::Query,
        CommandName::List,
        CommandName::Statistics,
        CommandName::Register,
        CommandName::Plan,
        CommandName::Subscribe,
        CommandName::Drain,
        CommandName::Deliver,
        CommandName::StoreList,
        CommandName::StoreDelete,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            CommandName::Ping => "ping",
            CommandName::Offer => "offer",
            CommandName::Answer => "answer",
            CommandName::Reject => "reject",
            CommandName::Delete => "delete",
            CommandName::Query => "query",
            CommandName::List => "list",
            CommandName::Statistics => "statistics",
            CommandName::Register => "register",
            CommandName::Plan => "plan",
            CommandName::Subscribe => "subscribe",
            CommandName::Drain => "drain",
            CommandName::Deliver => "deliver",
            CommandName::StoreList => "store-list",
            CommandName::StoreDelete => "store-delete",
        }
    }

    /// Looks a wire name up (exact, lower case).
    pub fn parse(name: &str) -> Option<CommandName> {
        CommandName::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl fmt::Display for CommandName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Command {
    /// The command's name.
    pub fn name(&self) -> CommandName {
        match self {
            Command::Ping => CommandName::Ping,
            Command::Offer(_) => CommandName::Offer,
            Command::Answer(_) => CommandName::Answer,
            Command::Reject(_) => CommandName::Reject,
            Command::Delete(_) => CommandName::Delete,
            Command::Query(_) => CommandName::Query,
            Command::List(_) => CommandName::List,
            Command::Statistics => CommandName::Statistics,
            Command::Register(_) => CommandName::Register,
            Command::Plan(_) => CommandName::Plan,
            Command::Subscribe(_) => CommandName::Subscribe,
            Command::Drain(_) => CommandName::Drain,
            Command::Deliver(_) => CommandName::Deliver,
            Command::StoreList => CommandName::StoreList,
            Command::StoreDelete(_) => CommandName::StoreDelete,
        }
    }
}
