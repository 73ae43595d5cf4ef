//! The ng commands, each a thin adapter onto the JSON protocol's command
//! of the same name, executed by the same session table
//! ([`Core::handle`]): no session logic lives here, only the mapping of
//! ng's keys (and its tag conventions) onto the table's.
//!
//! | ng | table | notes |
//! | --- | --- | --- |
//! | `ping` | – | `result: pong` |
//! | `offer` | `offer` | `via-branch` absent: the branch [`DEFAULT_BRANCH`]; `kind` from the `kind` key, else `file-transfer` when the SDP has `a=file-selector`, else `chat`; a new session refused for want of room or by the drain is [`SESSION_LIMIT`] |
//! | `answer` | `answer` | the reply always carries the sender's `sdp`; `forward`/`close` as in JSON |
//! | `delete` | `delete` | see [`resolve_delete`]; what it cannot apply (an unknown call) is `ok` with a `warning`, as rtpengine does, or an error with the flag `fatal` |
//! | `query`, `list`, `statistics` | same | the JSON fields as bencode |
//!
//! Keys a relay of MSRP cannot honour (ICE, DTLS, SDES, codecs, RTCP,
//! `media-address`, `address-family`, `direction`, `received-from`,
//! `replace`, recording) are ignored. `transport-protocol`, when given,
//! must name an MSRP transport; in an `offer` it sets the branch's leg's
//! (`TCP/TLS/MSRP`: msrps on the relay's TLS port).

use std::time::Instant;

use super::bencode::{Value, dict};
use super::convert::{self, KeyError, Keys};
use crate::policy::RequestKind;
use crate::protocol::{
    Answer, Command, Delete, Event, List, MsrpProtocol, Offer, OkReply, Query, Reply, ReplyBody,
    Request,
};
use crate::table::{ConnId, Core, TableError};

/// The `via-branch` of an `offer` or `answer` without one (a front end
/// that does not fork, or a module configured without `via-branch=`).
pub const DEFAULT_BRANCH: &str = "ng-default";

/// The `error-reason` of an `offer` whose new session the relay will not
/// take: `max-sessions` reached, draining, shutting down. Kamailio's and
/// OpenSIPS's `rtpengine` modules compare it verbatim
/// (`RTPENGINE_SESS_LIMIT_MSG`) and then try the next relay of the set at
/// once, without waiting for a timeout or disabling this one.
pub const SESSION_LIMIT: &str = "Parallel session limit reached";

/// The reply and the events of one ng request.
#[derive(Debug)]
pub struct Executed {
    /// The bencoded reply dictionary.
    pub reply: Value,
    /// The events to publish to the JSON socket's subscribers.
    pub events: Vec<Event>,
    /// The command, for the log.
    pub command: String,
}

/// Executes one decoded ng request from `conn` at `now`.
pub fn execute(core: &mut Core, conn: ConnId, msg: &Value, now: Instant) -> Executed {
    let mut events = Vec::new();
    let (command, reply) = match run(core, conn, msg, now, &mut events) {
        Ok((c, r)) => (c, r),
        Err((c, why)) => {
            tracing::debug!(command = %c, error = %why, "ng command refused");
            (c, convert::error(why))
        }
    };
    Executed {
        reply,
        events,
        command,
    }
}

type Failed = (String, String);

fn run(
    core: &mut Core,
    conn: ConnId,
    msg: &Value,
    now: Instant,
    events: &mut Vec<Event>,
) -> Result<(String, Value), Failed> {
    let keys = Keys::of(msg).map_err(|e| (String::new(), e.to_string()))?;
    let command = keys.opt_str("command").ok().flatten().ok_or_else(|| {
        (
            String::new(),
            "Dictionary contains no key \"command\"".into(),
        )
    })?;
    match dispatch(core, conn, &command, &keys, now, events) {
        Ok(reply) => Ok((command, reply)),
        Err(why) => Err((command, why)),
    }
}

fn dispatch(
    core: &mut Core,
    conn: ConnId,
    command: &str,
    keys: &Keys<'_>,
    now: Instant,
    events: &mut Vec<Event>,
) -> Result<Value, String> {
    let s = |e: KeyError| e.to_string();
    let cmd = match command {
        "ping" => return Ok(dict([("result", Value::str("pong"))])),
        "answer" => return answer(core, conn, keys, events),
        "offer" => return offer_new(core, conn, offer(keys).map_err(s)?, now),
        "delete" => Command::Delete(resolve_delete(core, keys, now).map_err(s)?),
        "query" => Command::Query(Query {
            call_id: keys.str("call-id").map_err(s)?,
            from_tag: keys.opt_nonempty("from-tag").map_err(s)?,
        }),
        "list" => {
            let limit = keys.opt_uint("limit").map_err(s)?;
            let limit = limit.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
            Command::List(List { limit })
        }
        "statistics" => Command::Statistics,
        other => return Err(format!("Unrecognized command {other:?}")),
    };
    let is_delete = matches!(cmd, Command::Delete(_));
    let out = core.handle(conn, request(cmd), now);
    events.extend(out.events);
    match &out.reply.body {
        // rtpengine answers a `delete` it cannot apply (an unknown
        // call-id) with `ok` and a `warning`, unless the flag `fatal` asks
        // for an error: a proxy sends `delete` on every BYE and CANCEL.
        ReplyBody::Error(e) if is_delete && !keys.list("flags").iter().any(|f| f == "fatal") => {
            Ok(dict([
                ("result", Value::str("ok")),
                ("warning", Value::str(e.clone())),
            ]))
        }
        ReplyBody::Error(e) => Err(e.clone()),
        ReplyBody::Ok(_) => Ok(convert::reply(&out.reply)),
    }
}

fn request(command: Command) -> Request {
    Request {
        id: serde_json::Value::Null,
        command,
    }
}

/// `transport-protocol`, if given: in an `offer`, the transport of the
/// branch's leg (as rtpengine changes the protocol it offers to the
/// callee); in an `answer`, only checked (the sender's leg keeps the
/// sender's protocol).
fn check_transport(keys: &Keys<'_>) -> Result<Option<MsrpProtocol>, KeyError> {
    // rtpengine takes both spellings.
    let given = match keys.opt_str("transport-protocol")? {
        Some(t) => Some(t),
        None => keys.opt_str("transport protocol")?,
    };
    match given.as_deref() {
        None => Ok(None),
        Some(t) if t.eq_ignore_ascii_case("TCP/MSRP") => Ok(Some(MsrpProtocol::Tcp)),
        Some(t) if t.eq_ignore_ascii_case("TCP/TLS/MSRP") => Ok(Some(MsrpProtocol::Tls)),
        Some(_) => Err(KeyError::Type {
            key: "transport-protocol",
            want: "TCP/MSRP or TCP/TLS/MSRP (the relay carries MSRP only)",
        }),
    }
}

fn sdp(keys: &Keys<'_>) -> Result<String, KeyError> {
    keys.str("sdp")
}

fn offer(keys: &Keys<'_>) -> Result<Offer, KeyError> {
    let transport = check_transport(keys)?;
    if keys.opt_nonempty("to-tag")?.is_some() {
        return Err(KeyError::Unsupported(
            "an offer with a to-tag (a re-INVITE): an MSRP session is not renegotiated",
        ));
    }
    let sdp = sdp(keys)?;
    let kind = match keys.opt_str("kind")? {
        Some(k) => serde_json::from_value::<RequestKind>(serde_json::Value::String(k))
            .ok()
            .filter(|k| *k != RequestKind::Pager)
            .ok_or(KeyError::Type {
                key: "kind",
                want: "chat, file-transfer or large-message",
            })?,
        None if sdp.contains("a=file-selector") => RequestKind::FileTransfer,
        None => RequestKind::Chat,
    };
    Ok(Offer {
        call_id: keys.str("call-id")?,
        from_tag: keys.str("from-tag")?,
        via_branch: keys
            .opt_nonempty("via-branch")?
            .unwrap_or_else(|| DEFAULT_BRANCH.into()),
        sdp,
        kind,
        instance_id: keys.opt_nonempty("instance-id")?,
        transport,
    })
}

/// `offer`: the table's, with [`SESSION_LIMIT`] for a new session the
/// relay does not take.
fn offer_new(core: &mut Core, conn: ConnId, o: Offer, now: Instant) -> Result<Value, String> {
    match core.offer(conn, o, now) {
        Ok(r) => Ok(convert::reply(&Reply::ok(
            serde_json::Value::Null,
            OkReply::Offer(r),
        ))),
        Err(TableError::SessionLimit(_) | TableError::Draining | TableError::ShuttingDown) => {
            Err(SESSION_LIMIT.into())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// `answer`: the table's, with the sender's SDP in every ok reply.
fn answer(
    core: &mut Core,
    conn: ConnId,
    keys: &Keys<'_>,
    events: &mut Vec<Event>,
) -> Result<Value, String> {
    let s = |e: KeyError| e.to_string();
    check_transport(keys).map_err(s)?;
    let a = Answer {
        call_id: keys.str("call-id").map_err(s)?,
        from_tag: keys.str("from-tag").map_err(s)?,
        to_tag: keys.str("to-tag").map_err(s)?,
        via_branch: keys
            .opt_nonempty("via-branch")
            .map_err(s)?
            .unwrap_or_else(|| DEFAULT_BRANCH.into()),
        sdp: sdp(keys).map_err(s)?,
        auto_answer: keys.list("flags").iter().any(|f| f == "auto-answer"),
    };
    let (r, sender_sdp) = core
        .answer_for_sender(conn, a, events)
        .map_err(|e| e.to_string())?;
    let mut out = convert::reply(&Reply::ok(
        serde_json::Value::Null,
        OkReply::Answer(crate::protocol::AnswerReply { sdp: None, ..r }),
    ));
    if let Value::Dict(m) = &mut out {
        m.insert(b"sdp".to_vec(), Value::str(sender_sdp));
    }
    Ok(out)
}

/// Which `delete` an ng `delete` is. The module sends the tags of the
/// SIP message it is called for: on the sender's BYE (or CANCEL)
/// `from-tag` is the sender's, `to-tag` the answering device's; on a
/// device's BYE they are the other way round. So:
///
/// 1. `from-tag` names a session (live or ended lately) and `via-branch`
///    one of its branches: that leg (a device's BYE or CANCEL of its
///    branch, as the JSON `delete` with `via-branch`);
/// 2. `from-tag` names a session and `to-tag` a device whose 200 was not
///    the one forwarded (a proxy relays every 200; the sender hangs up
///    the extra dialogs, RFC 3261 §13.2.2.4): that leg only;
/// 3. `from-tag` names a session: the whole session, the sender's BYE
///    or CANCEL (its `to-tag`, if any, is the device whose 200 was
///    forwarded);
/// 4. `to-tag` names a session and `from-tag` is one of its devices' To
///    tags (or `via-branch` one of its branches): that device's BYE, or
///    its branch's failure as the module reports a reply, that leg only;
/// 5. no `from-tag`: the call's first session, whole;
/// 6. else the table's own answer (`unknown call-id`, or `ok` with
///    `ended` for a session ended lately).
pub fn resolve_delete(core: &Core, keys: &Keys<'_>, now: Instant) -> Result<Delete, KeyError> {
    let call_id = keys.str("call-id")?;
    let from_tag = keys.opt_nonempty("from-tag")?;
    let to_tag = keys.opt_nonempty("to-tag")?;
    let branch = keys.opt_nonempty("via-branch")?;
    let known = |tag: &str| {
        let key = (call_id.clone(), tag.to_owned());
        core.sessions.contains_key(&key) || core.ended.get(&key, now).is_some()
    };
    let whole = |from_tag: String| Delete {
        call_id: call_id.clone(),
        from_tag,
        via_branch: None,
    };
    let Some(from) = from_tag else {
        let first = core
            .sessions
            .keys()
            .find(|(c, _)| *c == call_id)
            .map(|(_, f)| f.clone());
        return Ok(whole(first.unwrap_or_default()));
    };
    if known(&from) {
        let key = (call_id.clone(), from.clone());
        let entry = core.sessions.get(&key);
        let leg = branch
            .filter(|b| entry.is_some_and(|e| e.devices.iter().any(|d| d.via_branch == *b)))
            .or_else(|| {
                let (e, to) = (entry?, to_tag.as_deref()?);
                let d = e.devices.iter().find(|d| d.to_tag.as_deref() == Some(to))?;
                (e.fork.forwarded() != Some(d.via_branch.as_str())).then(|| d.via_branch.clone())
            });
        return Ok(Delete {
            call_id: call_id.clone(),
            from_tag: from,
            via_branch: leg,
        });
    }
    if let Some(to) = to_tag {
        let key = (call_id.clone(), to.clone());
        if let Some(e) = core.sessions.get(&key) {
            let device = e
                .devices
                .iter()
                .find(|d| d.to_tag.as_deref() == Some(from.as_str()))
                .or_else(|| {
                    let b = branch.as_deref()?;
                    e.devices.iter().find(|d| d.via_branch == b)
                })
                .map(|d| d.via_branch.clone());
            if device.is_some() {
                return Ok(Delete {
                    call_id,
                    from_tag: to,
                    via_branch: device,
                });
            }
        }
        if known(&to) {
            // A device's BYE of a session that is gone or whose leg
            // this is not: nothing to end; the table answers ok.
            return Ok(Delete {
                call_id,
                from_tag: to,
                via_branch: Some(from),
            });
        }
    }
    Ok(whole(from))
}

#[cfg(test)]
#[path = "commands_tests.rs"]
mod tests;
