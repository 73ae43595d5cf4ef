//! JSON-lines framing and decoding with bounds.

use serde_json::Value;

use super::{Command, CommandName, DecodeError, Event, OkReply, Reply, ReplyBody, Request};

/// Default bound on one control line: 64 KiB holds an SDP with a long
/// file-selector many times over.
pub const DEFAULT_MAX_LINE: usize = 64 * 1024;

/// Decodes one request line (without its newline). The order of checks
/// decides what the error reply can echo: length, JSON, object, `id`, then
/// `command`; from `id` on, the error carries the id.
pub fn decode_request(line: &[u8], max_line: usize) -> Result<Request, DecodeError> {
    if line.len() > max_line {
        return Err(DecodeError::LineTooLong {
            len: line.len(),
            max: max_line,
        });
    }
    if let Some(request) = decode_setup(line) {
        return Ok(request);
    }
    let value: Value =
        serde_json::from_slice(line).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    let Value::Object(map) = value else {
        return Err(DecodeError::NotAnObject);
    };
    let id = map.get("id").cloned().ok_or(DecodeError::MissingId)?;
    let Some(name) = map.get("command").and_then(Value::as_str) else {
        return Err(DecodeError::MissingCommand { id });
    };
    let Some(command) = CommandName::parse(name) else {
        return Err(DecodeError::UnknownCommand {
            id,
            command: name.to_owned(),
        });
    };
    let parsed: Command =
        serde_json::from_value(Value::Object(map)).map_err(|e| DecodeError::InvalidFields {
            id: id.clone(),
            command,
            detail: e.to_string(),
        })?;
    Ok(Request {
        id,
        command: parsed,
    })
}

/// The id and command name of a request, the rest skipped.
#[derive(serde::Deserialize)]
struct Head<'a> {
    id: Value,
    #[serde(borrow)]
    command: &'a str,
}

/// The setup path's commands (`offer`, `answer`, `reject`, `delete`)
/// without the intermediate [`Value`] tree: the head, then the command's
/// own struct from the same line (it ignores `id` and `command` as it
/// ignores any unknown field). `None` for anything else and for any line
/// either step refuses; [`decode_request`] then goes the long way, which
/// finds the documented error and its id, or decodes the other commands.
fn decode_setup(line: &[u8]) -> Option<Request> {
    let head: Head<'_> = serde_json::from_slice(line).ok()?;
    let command = match head.command {
        "offer" => Command::Offer(serde_json::from_slice(line).ok()?),
        "answer" => Command::Answer(serde_json::from_slice(line).ok()?),
        "reject" => Command::Reject(serde_json::from_slice(line).ok()?),
        "delete" => Command::Delete(serde_json::from_slice(line).ok()?),
        _ => return None,
    };
    Some(Request {
        id: head.id,
        command,
    })
}

/// A request as one line, newline included (the client side).
pub fn encode_request(request: &Request) -> Result<String, serde_json::Error> {
    let mut s = serde_json::to_string(request)?;
    s.push('\n');
    Ok(s)
}

/// A reply as one line, newline included, with `id` and `result` first so
/// that a human reading a capture sees them at once, then the fields in
/// key order.
///
/// The replies of the setup path (`ping`, `offer`, `answer`, `reject`,
/// `delete`: flat structs whose fields are declared in key order) are
/// written straight from their types; the others go through a
/// [`Value`] map, which sorts their keys.
pub fn encode_reply(reply: &Reply) -> String {
    let mut out = Vec::with_capacity(256);
    encode_reply_into(reply, &mut out);
    String::from_utf8(out).unwrap_or_else(|_| {
        String::from("{\"id\":null,\"result\":\"error\",\"error-reason\":\"internal\"}\n")
    })
}

/// [`encode_reply`], appended to `out`.
pub fn encode_reply_into(reply: &Reply, out: &mut Vec<u8>) {
    let start = out.len();
    if encode_fields(reply, out).is_err() {
        // Serialising these types does not fail; if it ever did, the
        // front end still gets a line with its id.
        out.truncate(start);
        let err = Reply::error(reply.id.clone(), "internal: reply could not be encoded");
        let _ = encode_fields(&err, out);
    }
    out.extend_from_slice(b"}\n");
}

fn encode_fields(reply: &Reply, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    out.extend_from_slice(b"{\"id\":");
    serde_json::to_writer(&mut *out, &reply.id)?;
    let ok = match &reply.body {
        ReplyBody::Error(reason) => {
            out.extend_from_slice(b",\"result\":\"error\",\"error-reason\":");
            return serde_json::to_writer(&mut *out, reason);
        }
        ReplyBody::Ok(ok) => ok,
    };
    out.extend_from_slice(b",\"result\":\"ok\"");
    match ok {
        OkReply::Ping => Ok(()),
        OkReply::Offer(r) => flat_fields(r, out),
        OkReply::Answer(r) => flat_fields(r, out),
        OkReply::Reject(r) => flat_fields(r, out),
        OkReply::Delete(r) => flat_fields(r, out),
        _ => {
            let Value::Object(mut map) = reply.to_value() else {
                return Ok(());
            };
            map.remove("id");
            map.remove("result");
            for (key, v) in map {
                out.push(b',');
                serde_json::to_writer(&mut *out, &key)?;
                out.push(b':');
                serde_json::to_writer(&mut *out, &v)?;
            }
            Ok(())
        }
    }
}

/// A flat struct's members, after a comma, without its braces.
fn flat_fields<T: serde::Serialize>(r: &T, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    let at = out.len();
    serde_json::to_writer(&mut *out, r)?;
    // `{...}` → `,...`; an empty object leaves nothing.
    if out.len() - at <= 2 {
        out.truncate(at);
    } else {
        out[at] = b',';
        out.pop();
    }
    Ok(())
}

/// An event as one line, newline included.
pub fn encode_event(event: &Event) -> Result<String, serde_json::Error> {
    let mut s = serde_json::to_string(event)?;
    s.push('\n');
    Ok(s)
}

/// Decodes a reply line to a request of `command` (the client side).
pub fn decode_reply(
    line: &[u8],
    command: CommandName,
    max_line: usize,
) -> Result<Reply, DecodeError> {
    if line.len() > max_line {
        return Err(DecodeError::LineTooLong {
            len: line.len(),
            max: max_line,
        });
    }
    let value: Value =
        serde_json::from_slice(line).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    Reply::from_value(value, command)
}

/// Decodes an event line (the client side).
pub fn decode_event(line: &[u8], max_line: usize) -> Result<Event, DecodeError> {
    if line.len() > max_line {
        return Err(DecodeError::LineTooLong {
            len: line.len(),
            max: max_line,
        });
    }
    serde_json::from_slice(line).map_err(|e| DecodeError::InvalidMessage(e.to_string()))
}

/// Splits a byte stream into lines of at most `max` bytes, holding at most
/// `max` bytes meanwhile. An over-long line yields one
/// [`DecodeError::LineTooLong`] and its remaining bytes are skipped up to
/// the next newline, so the connection stays usable. A `\r` before the
/// newline is dropped; empty lines are skipped.
#[derive(Debug, Clone)]
pub struct LineSplitter {
    max: usize,
    buf: Vec<u8>,
    /// Bytes of the current over-long line seen so far, while skipping it.
    skipping: Option<usize>,
}

impl LineSplitter {
    /// A splitter with this bound.
    pub fn new(max: usize) -> Self {
        LineSplitter {
            max,
            buf: Vec::new(),
            skipping: None,
        }
    }

    /// Bytes buffered (never more than the bound).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Feeds received bytes; returns the complete lines (or errors) found.
    pub fn feed(&mut self, mut data: &[u8]) -> Vec<Result<Vec<u8>, DecodeError>> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let nl = data.iter().position(|&b| b == b'\n');
            let chunk = &data[..nl.unwrap_or(data.len())];
            data = nl.map_or(&[][..], |i| &data[i + 1..]);
            if let Some(seen) = &mut self.skipping {
                *seen += chunk.len();
                if nl.is_some() {
                    self.skipping = None;
                }
                continue;
            }
            // A trailing '\r' is not counted against the bound.
            let content = if nl.is_some() {
                chunk.strip_suffix(b"\r").unwrap_or(chunk)
            } else {
                chunk
            };
            if self.buf.len() + content.len() > self.max {
                out.push(Err(DecodeError::LineTooLong {
                    len: self.buf.len() + content.len(),
                    max: self.max,
                }));
                self.buf.clear();
                if nl.is_none() {
                    self.skipping = Some(0);
                }
                continue;
            }
            self.buf.extend_from_slice(content);
            if nl.is_some() {
                let line = std::mem::take(&mut self.buf);
                let line = match line.strip_suffix(b"\r") {
                    Some(l) => l.to_vec(),
                    None => line,
                };
                if !line.is_empty() {
                    out.push(Ok(line));
                }
            }
        }
        out
    }
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
