//! `msrp-relay ctl`: one command to a running relay, its reply printed.
//!
//! Arguments after the command name become the request's fields: each is
//! either a JSON object (merged in) or `key=value`, where `value` is taken
//! as JSON when it parses (`code=603`, `auto-answer=true`,
//! `devices=[...]`) and as a string otherwise (`call-id=a84b@alice`).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value};

/// Why `ctl` failed before it had a reply.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// An argument is neither `key=value` nor a JSON object.
    #[error("argument {0:?} is neither key=value nor a JSON object")]
    BadArgument(String),
    /// Connecting, writing or reading failed.
    #[error("{path}: {source}")]
    Io {
        /// The socket.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The relay closed the connection without replying (e.g. this uid is
    /// not allowed, and the refusal could not be read).
    #[error("the relay closed the connection without a reply")]
    NoReply,
}

/// Builds the request object. `store list` and `store delete <item>` are
/// spelled as two words too (`store-list`, `store-delete item=<item>`).
pub fn build_request(command: &str, args: &[String]) -> Result<Value, CtlError> {
    let mut map = Map::new();
    map.insert("id".into(), Value::from(1));
    let mut args = args;
    let mut command = command.to_owned();
    if command == "store"
        && let Some((sub, rest)) = args.split_first()
        && (sub == "list" || sub == "delete")
    {
        command = format!("store-{sub}");
        args = rest;
        if let Some((item, rest)) = args.split_first()
            && sub == "delete"
            && !item.contains('=')
        {
            map.insert("item".into(), Value::from(item.as_str()));
            args = rest;
        }
    }
    map.insert("command".into(), Value::from(command));
    for a in args {
        if a.trim_start().starts_with('{') {
            let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(a) else {
                return Err(CtlError::BadArgument(a.clone()));
            };
            map.extend(obj);
        } else if let Some((k, v)) = a.split_once('=') {
            let v = serde_json::from_str(v).unwrap_or_else(|_| Value::from(v));
            map.insert(k.to_owned(), v);
        } else {
            return Err(CtlError::BadArgument(a.clone()));
        }
    }
    Ok(Value::Object(map))
}

/// Sends `request`, writes the reply line to `out`, and returns whether it
/// was `"result": "ok"`. Event lines before the reply are skipped; after a
/// successful `subscribe`, events are written to `out` as they come, until
/// the relay closes the connection.
pub fn run(
    socket: &Path,
    request: &Value,
    timeout: Duration,
    out: &mut dyn Write,
) -> Result<bool, CtlError> {
    let io = |source| CtlError::Io {
        path: socket.display().to_string(),
        source,
    };
    let mut stream = UnixStream::connect(socket).map_err(io)?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    let mut line = request.to_string();
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(io)?;
    let mut reader = BufReader::new(stream.try_clone().map_err(io)?);
    let ok = loop {
        let mut s = String::new();
        if reader.read_line(&mut s).map_err(io)? == 0 {
            return Err(CtlError::NoReply);
        }
        let Ok(v) = serde_json::from_str::<Value>(&s) else {
            continue;
        };
        if v.get("event").is_some() {
            continue;
        }
        out.write_all(s.as_bytes()).map_err(io)?;
        break v.get("result").and_then(Value::as_str) == Some("ok");
    };
    if ok && request.get("command").and_then(Value::as_str) == Some("subscribe") {
        stream.set_read_timeout(None).map_err(io)?;
        let mut s = String::new();
        while reader.read_line(&mut s).map_err(io)? > 0 {
            out.write_all(s.as_bytes()).map_err(io)?;
            out.flush().map_err(io)?;
            s.clear();
        }
    }
    Ok(ok)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn arguments_become_fields() {
        let args: Vec<String> = [
            "call-id=a84b@alice",
            "code=603",
            "auto-answer=true",
            r#"{"sdp":"v=0\r\n"}"#,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        assert_eq!(
            build_request("reject", &args).unwrap(),
            json!({"id":1,"command":"reject","call-id":"a84b@alice","code":603,"auto-answer":true,"sdp":"v=0\r\n"})
        );
        assert!(build_request("x", &["nonsense".into()]).is_err());
        assert!(build_request("x", &["{broken".into()]).is_err());
    }

    /// `ctl store list` / `ctl store delete <item>` (issue 12).
    #[test]
    fn pf_defer_store_words_become_store_commands() {
        let words = |w: &[&str]| w.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            build_request("store", &words(&["list"])).unwrap(),
            json!({"id":1,"command":"store-list"})
        );
        assert_eq!(
            build_request("store", &words(&["delete", "Ab12"])).unwrap(),
            json!({"id":1,"command":"store-delete","item":"Ab12"})
        );
        assert_eq!(
            build_request("store-delete", &words(&["item=Ab12"])).unwrap(),
            json!({"id":1,"command":"store-delete","item":"Ab12"})
        );
    }
}
