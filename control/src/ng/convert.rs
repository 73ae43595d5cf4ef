//! Between the ng dictionary and the JSON protocol's types: reading keys of
//! a request, and turning a JSON reply into a bencoded one.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::bencode::Value;
use crate::protocol::{Reply, ReplyBody};

/// Why a request's keys cannot be used; the text is the `error-reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The message is not a dictionary.
    #[error("the message must be a bencoded dictionary")]
    NotADict,
    /// A required key is absent.
    #[error("missing key {0:?}")]
    Missing(&'static str),
    /// A request the relay does not support.
    #[error("not supported: {0}")]
    Unsupported(&'static str),
    /// A key of the wrong type (or a string that is not UTF-8).
    #[error("key {key:?} must be {want}")]
    Type {
        /// The key.
        key: &'static str,
        /// What it must be.
        want: &'static str,
    },
}

/// A request dictionary, read key by key.
#[derive(Debug, Clone, Copy)]
pub struct Keys<'a>(pub &'a BTreeMap<Vec<u8>, Value>);

impl<'a> Keys<'a> {
    /// The dictionary of a message.
    pub fn of(v: &'a Value) -> Result<Keys<'a>, KeyError> {
        match v {
            Value::Dict(m) => Ok(Keys(m)),
            _ => Err(KeyError::NotADict),
        }
    }

    /// An optional text key (a byte string in UTF-8; an integer is read
    /// as its decimal text, as some clients send numbers as integers).
    pub fn opt_str(&self, key: &'static str) -> Result<Option<String>, KeyError> {
        match self.0.get(key.as_bytes()) {
            None => Ok(None),
            Some(Value::Bytes(b)) => {
                std::str::from_utf8(b)
                    .map(|s| Some(s.to_owned()))
                    .map_err(|_| KeyError::Type {
                        key,
                        want: "a UTF-8 string",
                    })
            }
            Some(Value::Int(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(KeyError::Type {
                key,
                want: "a string",
            }),
        }
    }

    /// A required text key.
    pub fn str(&self, key: &'static str) -> Result<String, KeyError> {
        self.opt_str(key)?.ok_or(KeyError::Missing(key))
    }

    /// An optional non-empty text key (an empty string counts as absent:
    /// the module sends `to-tag` empty when the message has none).
    pub fn opt_nonempty(&self, key: &'static str) -> Result<Option<String>, KeyError> {
        Ok(self.opt_str(key)?.filter(|s| !s.is_empty()))
    }

    /// An optional non-negative integer (an integer, or a decimal string).
    pub fn opt_uint(&self, key: &'static str) -> Result<Option<u64>, KeyError> {
        let bad = KeyError::Type {
            key,
            want: "a non-negative integer",
        };
        match self.0.get(key.as_bytes()) {
            None => Ok(None),
            Some(Value::Int(n)) => u64::try_from(*n).map(Some).map_err(|_| bad),
            Some(Value::Bytes(b)) => std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse().ok())
                .map(Some)
                .ok_or(bad),
            Some(_) => Err(bad),
        }
    }

    /// The strings of a list key (`flags`, `replace`); other items are
    /// skipped.
    pub fn list(&self, key: &'static str) -> Vec<String> {
        match self.0.get(key.as_bytes()) {
            Some(Value::List(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Some(v) => v.as_str().map(|s| vec![s.to_owned()]).unwrap_or_default(),
            None => Vec::new(),
        }
    }
}

/// An ng error reply.
pub fn error(reason: impl Into<String>) -> Value {
    super::bencode::dict([
        ("result", Value::str("error")),
        ("error-reason", Value::str(reason)),
    ])
}

/// The ng reply of a JSON protocol reply: `result` and the same keys, the
/// JSON `id` dropped; `true`/`false` become `yes`/`no` (rtpengine's
/// habit), numbers integers, `null`s are left out.
pub fn reply(r: &Reply) -> Value {
    if let ReplyBody::Error(reason) = &r.body {
        return error(reason.clone());
    }
    match json(r.to_value()) {
        Some(Value::Dict(mut m)) => {
            m.remove(&b"id"[..]);
            Value::Dict(m)
        }
        _ => error("internal: reply is not an object"),
    }
}

/// A JSON value as bencode (`None` for `null`).
pub fn json(v: Json) -> Option<Value> {
    Some(match v {
        Json::Null => return None,
        Json::Bool(b) => Value::str(if b { "yes" } else { "no" }),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => match n.as_u64() {
                Some(u) => Value::Int(i64::try_from(u).unwrap_or(i64::MAX)),
                None => Value::str(n.to_string()),
            },
        },
        Json::String(s) => Value::str(s),
        Json::Array(items) => Value::List(items.into_iter().filter_map(json).collect()),
        Json::Object(m) => Value::Dict(
            m.into_iter()
                .filter_map(|(k, v)| json(v).map(|v| (k.into_bytes(), v)))
                .collect(),
        ),
    })
}
