//! The control protocol with the SIP front end (design.md §4): JSON
//! objects, one per line. Types and codec only; the socket server is
//! [`crate::server`].
//!
//! - Request: `{"id": <any JSON>, "command": "<name>", ...}`.
//! - Reply: `{"id": <same>, "result": "ok", ...}` or
//!   `{"id": <same>, "result": "error", "error-reason": "..."}`.
//! - Event: `{"event": "<name>", "call-id": ..., ...}` on subscribed
//!   connections.
//!
//! Words follow rtpengine's ng protocol where one exists (`call-id`,
//! `from-tag`, `to-tag`, `via-branch`, `sdp`, `result`, `error-reason`).
//! Unknown fields are ignored (as rtpengine does), so a front end can be
//! upgraded before the relay. `docs/control-protocol.md` is the reference.

mod codec;
mod command;
mod event;
mod reply;

pub use codec::{
    DEFAULT_MAX_LINE, LineSplitter, decode_event, decode_reply, decode_request, encode_event,
    encode_reply, encode_reply_into, encode_request,
};
pub use command::{
    Answer, Command, CommandName, Delete, Deliver, Drain, List, MsrpProtocol, Offer, Plan, Query,
    Reject, Request, StoreDelete, Subscribe,
};
pub use event::{DoneReason, Event, EventName};
pub use reply::{
    AnswerReply, DeleteReply, DrainReply, LegInfo, LegRole, LegState, ListReply, OfferReply,
    OkReply, QueryReply, RegisterReply, RejectReply, Reply, ReplyBody, StatisticsReply,
    StoreDeleteReply, StoreListReply, StoredItem, SubscribeReply,
};

use serde_json::Value;

/// Why a line could not be turned into a request (or reply, or event).
/// Every variant becomes an error reply ([`DecodeError::to_reply`]); the
/// connection stays usable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// The line exceeds the bound; its bytes up to the next newline are
    /// discarded unread, so no id can be echoed.
    #[error("line of {len} bytes exceeds the limit of {max}")]
    LineTooLong {
        /// Bytes seen (at least `max + 1`).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not UTF-8 / not JSON.
    #[error("malformed JSON: {0}")]
    Malformed(String),
    /// Valid JSON, but not an object.
    #[error("a request must be a JSON object")]
    NotAnObject,
    /// No `id` member.
    #[error("missing \"id\"")]
    MissingId,
    /// No `command` member, or not a string.
    #[error("missing or non-string \"command\"")]
    MissingCommand {
        /// The request's id.
        id: Value,
    },
    /// A `command` this relay does not know.
    #[error("unknown command {command:?}")]
    UnknownCommand {
        /// The request's id.
        id: Value,
        /// The command as received.
        command: String,
    },
    /// A known command with missing or ill-typed fields.
    #[error("invalid {command} request: {detail}")]
    InvalidFields {
        /// The request's id.
        id: Value,
        /// The command.
        command: CommandName,
        /// What serde said.
        detail: String,
    },
    /// A reply or event that does not have the documented shape.
    #[error("invalid message: {0}")]
    InvalidMessage(String),
}

impl DecodeError {
    /// The request id, when it could be read.
    pub fn id(&self) -> Option<&Value> {
        match self {
            DecodeError::MissingCommand { id }
            | DecodeError::UnknownCommand { id, .. }
            | DecodeError::InvalidFields { id, .. } => Some(id),
            _ => None,
        }
    }

    /// The error reply for this failure: it echoes the id when one could be
    /// read, else carries `"id": null`.
    pub fn to_reply(&self) -> Reply {
        Reply::error(self.id().cloned().unwrap_or(Value::Null), self.to_string())
    }
}
