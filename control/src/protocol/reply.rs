//! Replies and events.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::EventName;
use super::{CommandName, DecodeError};
use crate::policy::{Plan, RequestKind};

/// A reply: the request's id and ok-with-fields or error.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The request's id, verbatim (`null` if it could not be read).
    pub id: Value,
    /// Outcome.
    pub body: ReplyBody,
}

/// `"result": "ok"` with the command's fields, or `"result": "error"`.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyBody {
    /// Success.
    Ok(OkReply),
    /// Failure, with `error-reason`.
    Error(String),
}

/// The fields of a successful reply, per command.
#[derive(Debug, Clone, PartialEq)]
pub enum OkReply {
    /// `ping`: no fields.
    Ping,
    /// `offer`
    Offer(OfferReply),
    /// `answer`
    Answer(AnswerReply),
    /// `reject`
    Reject(RejectReply),
    /// `delete`
    Delete(DeleteReply),
    /// `query`
    Query(QueryReply),
    /// `list`
    List(ListReply),
    /// `statistics`
    Statistics(StatisticsReply),
    /// `register`
    Register(RegisterReply),
    /// `plan`
    Plan(Plan),
    /// `subscribe`
    Subscribe(SubscribeReply),
    /// `drain`
    Drain(DrainReply),
    /// `deliver`: the SDP offer toward the device (`created` is `true`).
    Deliver(OfferReply),
    /// `store-list`
    StoreList(StoreListReply),
    /// `store-delete`
    StoreDelete(StoreDeleteReply),
}

/// `store-list` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct StoreListReply {
    /// Every item with its metadata, oldest first.
    pub items: Vec<StoredItem>,
}

/// One stored item as `store-list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct StoredItem {
    /// Body bytes stored, all messages.
    pub bytes: u64,
    /// The session it was recorded from.
    pub call_id: String,
    /// Every message ended (`$`); `false`: one was cut short.
    pub complete: bool,
    /// Unix time it was created, ms.
    pub created_ms: u64,
    /// Devices that got it already.
    pub delivered: usize,
    /// Its From tag.
    pub from_tag: String,
    /// The item's id (for `deliver`, `store-delete`).
    pub item: String,
    /// `chat`, `file-transfer`, `large-message`.
    pub kind: String,
    /// Messages in it.
    pub messages: usize,
    /// Devices it is for (instance-id, else via-branch).
    pub pending: Vec<String>,
    /// `recording`, `stored`.
    pub state: String,
}

/// `store-delete` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct StoreDeleteReply {
    /// There was such an item.
    pub deleted: bool,
}

/// `offer` reply: the SDP to put in this branch's INVITE (PF-LMM-FORK).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct OfferReply {
    // Fields in key order: the encoder writes them as declared, and the
    // wire keeps sorted keys.
    /// This offer created the session (first branch).
    pub created: bool,
    /// The content store serves this offer (FT-RESUME: a pull with
    /// `a=file-range` for a file the relay holds): [`sdp`](Self::sdp) is
    /// the SDP *answer* for the offerer's 200 OK; fork nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_store: bool,
    /// The sender's SDP with the relay's address, port, `a=path` and
    /// `a=setup:actpass`; or, `from-store`, the answer to the offerer.
    pub sdp: String,
}

/// `answer` reply (PF-LMM-FIRST200).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct AnswerReply {
    // Fields in key order, as in `OfferReply`.
    /// Policy closed this leg at once (a 200 that crossed a CANCEL): send
    /// ACK then BYE.
    #[serde(default)]
    pub close: bool,
    /// Send a 200 OK with [`sdp`](Self::sdp) to the sender: this is the
    /// first accept. `false`: keep quiet; the device still gets everything.
    pub forward: bool,
    /// The SDP answer for the sender (relay's path; for a large message
    /// `recvonly` and `message/cpim`); present when `forward`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp: Option<String>,
}

/// `reject` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RejectReply {
    /// When every branch is over without an accept: the status to send the
    /// sender (603, 480 or 408).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_status: Option<u16>,
}

/// `delete` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct DeleteReply {
    /// Device legs now draining; each ends with a `leg-done` event.
    pub draining: usize,
    /// The session had already ended, for this reason (`sender-ended`,
    /// `deleted`, `expired`, …): the `delete` changed nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<String>,
}

/// Which side a leg faces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LegRole {
    /// Toward the sender.
    Sender,
    /// Toward one device.
    Device,
}

/// A leg's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LegState {
    /// Offered, no answer yet.
    Invited,
    /// Answered, MSRP connection not yet bound.
    Connecting,
    /// MSRP connection bound; data flows.
    Connected,
    /// Session ending; the leg is sending what it still owes.
    Draining,
    /// Finished.
    Done,
    /// Failed.
    Failed,
}

/// One leg in a `query` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct LegInfo {
    /// Sender or device.
    pub role: LegRole,
    /// The device leg's branch (absent for the sender leg).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via_branch: Option<String>,
    /// The device's To tag once answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_tag: Option<String>,
    /// The device's `+sip.instance`, if given in `offer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// State.
    pub state: LegState,
    /// MSRP body bytes received on this leg.
    pub bytes_received: u64,
    /// MSRP body bytes sent on this leg.
    pub bytes_sent: u64,
    /// Bytes of the content log this leg has still to send.
    pub backlog_bytes: u64,
    /// Milliseconds since the leg was created.
    pub age_ms: u64,
    /// Milliseconds from creation to connection, once connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_ms: Option<u64>,
}

/// `query` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct QueryReply {
    /// SIP Call-ID.
    pub call_id: String,
    /// Sender's From tag.
    pub from_tag: String,
    /// The session's kind.
    pub kind: RequestKind,
    /// Sender leg first, then device legs in offer order.
    pub legs: Vec<LegInfo>,
}

/// `list` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ListReply {
    /// Call-ids of the sessions present.
    pub calls: Vec<String>,
}

/// `statistics` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct StatisticsReply {
    /// Sessions now.
    pub sessions: u64,
    /// Legs now.
    pub legs: u64,
    /// Sessions since start.
    pub sessions_total: u64,
    /// Legs that failed since start.
    pub legs_failed: u64,
    /// MSRP body bytes received since start.
    pub bytes_received: u64,
    /// MSRP body bytes sent since start.
    pub bytes_sent: u64,
    /// Content-log bytes now spilled to disk.
    pub spilled_bytes: u64,
    /// Messages now waiting for a device's success REPORT.
    pub awaiting_reports: u64,
    /// Episodes since start in which a session's content log held its
    /// sender (no room; each is logged once).
    pub log_stalls: u64,
    /// Spill-file writes that failed since start (disk full, spill
    /// directory gone); logged at `warn`.
    pub spill_errors: u64,
    /// Control connections now.
    pub control_connections: u64,
    /// The relay takes no new session (`drain`, or shutting down).
    #[serde(default)]
    pub draining: bool,
}

/// `register` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RegisterReply {
    /// The user.
    pub user: String,
    /// The version stored.
    pub version: u64,
    /// Devices stored.
    pub devices: usize,
    /// The Primary Device identified (CPM-MLD-027), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<String>,
}

/// `drain` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct DrainReply {
    /// The relay takes no new session now.
    pub draining: bool,
    /// Sessions live now (in the drain: still to end by themselves).
    pub sessions: usize,
}

/// `subscribe` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SubscribeReply {
    /// The events this connection now receives.
    pub events: Vec<EventName>,
}

impl Reply {
    /// A success reply.
    pub fn ok(id: Value, body: OkReply) -> Reply {
        Reply {
            id,
            body: ReplyBody::Ok(body),
        }
    }

    /// An error reply.
    pub fn error(id: Value, reason: impl Into<String>) -> Reply {
        Reply {
            id,
            body: ReplyBody::Error(reason.into()),
        }
    }

    /// The JSON object: `id`, `result`, then the fields. A payload that
    /// cannot be serialised (impossible for these types, but not a panic)
    /// becomes an error reply.
    pub fn to_value(&self) -> Value {
        let mut map = Map::new();
        map.insert("id".into(), self.id.clone());
        match &self.body {
            ReplyBody::Error(reason) => {
                map.insert("result".into(), "error".into());
                map.insert("error-reason".into(), reason.clone().into());
            }
            ReplyBody::Ok(ok) => match ok_fields(ok) {
                Ok(fields) => {
                    map.insert("result".into(), "ok".into());
                    map.extend(fields);
                }
                Err(e) => {
                    map.insert("result".into(), "error".into());
                    map.insert("error-reason".into(), format!("internal: {e}").into());
                }
            },
        }
        Value::Object(map)
    }

    /// Reads a reply to a request of `command` (the client side: the `ctl`
    /// tool, tests).
    pub fn from_value(value: Value, command: CommandName) -> Result<Reply, DecodeError> {
        let Value::Object(mut map) = value else {
            return Err(DecodeError::NotAnObject);
        };
        let id = map.remove("id").ok_or(DecodeError::MissingId)?;
        let bad =
            |e: serde_json::Error| DecodeError::InvalidMessage(format!("{command} reply: {e}"));
        match map.remove("result").as_ref().and_then(Value::as_str) {
            Some("error") => {
                let reason = map
                    .remove("error-reason")
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                Ok(Reply::error(id, reason))
            }
            Some("ok") => {
                let v = Value::Object(map);
                let ok = match command {
                    CommandName::Ping => OkReply::Ping,
                    CommandName::Offer => OkReply::Offer(serde_json::from_value(v).map_err(bad)?),
                    CommandName::Answer => OkReply::Answer(serde_json::from_value(v).map_err(bad)?),
                    CommandName::Reject => OkReply::Reject(serde_json::from_value(v).map_err(bad)?),
                    CommandName::Delete => OkReply::Delete(serde_json::from_value(v).map_err(bad)?),
                    CommandName::Query => OkReply::Query(serde_json::from_value(v).map_err(bad)?),
                    CommandName::List => OkReply::List(serde_json::from_value(v).map_err(bad)?),
                    CommandName::Statistics => {
                        OkReply::Statistics(serde_json::from_value(v).map_err(bad)?)
                    }
                    CommandName::Register => {
                        OkReply::Register(serde_json::from_value(v).map_err(bad)?)
                    }
                    CommandName::Plan => OkReply::Plan(serde_json::from_value(v).map_err(bad)?),
                    CommandName::Subscribe => {
                        OkReply::Subscribe(serde_json::from_value(v).map_err(bad)?)
                    }
                    CommandName::Drain => OkReply::Drain(serde_json::from_value(v).map_err(bad)?),
                    CommandName::Deliver => {
                        OkReply::Deliver(serde_json::from_value(v).map_err(bad)?)
                    }
                    CommandName::StoreList => {
                        OkReply::StoreList(serde_json::from_value(v).map_err(bad)?)
                    }
                    CommandName::StoreDelete => {
                        OkReply::StoreDelete(serde_json::from_value(v).map_err(bad)?)
                    }
                };
                Ok(Reply::ok(id, ok))
            }
            _ => Err(DecodeError::InvalidMessage(
                "\"result\" is neither \"ok\" nor \"error\"".into(),
            )),
        }
    }
}

fn ok_fields(ok: &OkReply) -> Result<Map<String, Value>, serde_json::Error> {
    let v = match ok {
        OkReply::Ping => return Ok(Map::new()),
        OkReply::Offer(r) => serde_json::to_value(r),
        OkReply::Answer(r) => serde_json::to_value(r),
        OkReply::Reject(r) => serde_json::to_value(r),
        OkReply::Delete(r) => serde_json::to_value(r),
        OkReply::Query(r) => serde_json::to_value(r),
        OkReply::List(r) => serde_json::to_value(r),
        OkReply::Statistics(r) => serde_json::to_value(r),
        OkReply::Register(r) => serde_json::to_value(r),
        OkReply::Plan(r) => serde_json::to_value(r),
        OkReply::Subscribe(r) => serde_json::to_value(r),
        OkReply::Drain(r) => serde_json::to_value(r),
        OkReply::Deliver(r) => serde_json::to_value(r),
        OkReply::StoreList(r) => serde_json::to_value(r),
        OkReply::StoreDelete(r) => serde_json::to_value(r),
    }?;
    Ok(match v {
        Value::Object(m) => m,
        _ => Map::new(),
    })
}
