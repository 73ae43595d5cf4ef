//! Bencode, the ng protocol's encoding (BEP 3): integers `i42e`, byte
//! strings `5:hello`, lists `l…e` and dictionaries `d…e` with byte-string
//! keys. Written by hand and bounded: the decoder refuses nesting deeper
//! than [`Limits::max_depth`] and more than [`Limits::max_items`] values,
//! never allocates more than the input's length for a string, and reports
//! truncated input ([`BencodeError::Incomplete`]) apart from malformed
//! input, so a stream reader can wait for more bytes.
//!
//! The encoder writes dictionary keys sorted (a [`BTreeMap`]), as BEP 3
//! asks; the decoder accepts keys in any order (rtpengine's clients do not
//! all sort) but refuses a key given twice.

use std::collections::BTreeMap;

/// A bencoded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `i<n>e`.
    Int(i64),
    /// `<len>:<bytes>`.
    Bytes(Vec<u8>),
    /// `l…e`.
    List(Vec<Value>),
    /// `d…e`.
    Dict(BTreeMap<Vec<u8>, Value>),
}

/// Decoder bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Lists and dictionaries nested at most this deep (the top level
    /// counts as 1).
    pub max_depth: usize,
    /// Values in one message at most (every integer, string, list and
    /// dictionary counts, keys included).
    pub max_items: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 16,
            max_items: 4096,
        }
    }
}

/// Why bytes are not one bencoded value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BencodeError {
    /// The input ends inside a value.
    #[error("bencode truncated: the input ends inside a value")]
    Incomplete,
    /// A byte that cannot start or continue a value here.
    #[error("bencode: unexpected byte 0x{byte:02x} at offset {at}")]
    Unexpected {
        /// Offset in the input.
        at: usize,
        /// The byte.
        byte: u8,
    },
    /// An integer or length that is not a canonical decimal number, or
    /// does not fit.
    #[error("bencode: bad number at offset {at}")]
    BadNumber {
        /// Offset in the input.
        at: usize,
    },
    /// Nested deeper than the bound.
    #[error("bencode: nested deeper than {max} levels")]
    TooDeep {
        /// The bound.
        max: usize,
    },
    /// More values than the bound.
    #[error("bencode: more than {max} values")]
    TooManyItems {
        /// The bound.
        max: usize,
    },
    /// A dictionary key that is not a byte string.
    #[error("bencode: dictionary key at offset {at} is not a string")]
    KeyNotString {
        /// Offset in the input.
        at: usize,
    },
    /// A dictionary key given twice.
    #[error("bencode: duplicate dictionary key {0:?}")]
    DuplicateKey(String),
    /// Bytes after the value where none may follow.
    #[error("bencode: {0} bytes after the value")]
    Trailing(usize),
}

/// Decodes exactly one value spanning all of `input`.
pub fn decode(input: &[u8], limits: Limits) -> Result<Value, BencodeError> {
    let (v, used) = decode_prefix(input, limits)?;
    if used != input.len() {
        return Err(BencodeError::Trailing(input.len() - used));
    }
    Ok(v)
}

/// Decodes one value at the start of `input`; returns it and the bytes it
/// took (a stream reader's framing).
pub fn decode_prefix(input: &[u8], limits: Limits) -> Result<(Value, usize), BencodeError> {
    let mut d = Decoder {
        input,
        pos: 0,
        items: 0,
        limits,
    };
    let v = d.value(1)?;
    Ok((v, d.pos))
}

struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
    items: usize,
    limits: Limits,
}

impl Decoder<'_> {
    fn peek(&self) -> Result<u8, BencodeError> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or(BencodeError::Incomplete)
    }

    fn count(&mut self) -> Result<(), BencodeError> {
        self.items += 1;
        if self.items > self.limits.max_items {
            return Err(BencodeError::TooManyItems {
                max: self.limits.max_items,
            });
        }
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<Value, BencodeError> {
        self.count()?;
        match self.peek()? {
            b'i' => {
                self.pos += 1;
                let n = self.number(b'e', true)?;
                Ok(Value::Int(n))
            }
            b'0'..=b'9' => Ok(Value::Bytes(self.string()?)),
            b'l' | b'd' if depth > self.limits.max_depth => Err(BencodeError::TooDeep {
                max: self.limits.max_depth,
            }),
            b'l' => {
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Ok(Value::List(items))
            }
            b'd' => {
                self.pos += 1;
                let mut map = BTreeMap::new();
                while self.peek()? != b'e' {
                    let at = self.pos;
                    if !self.peek()?.is_ascii_digit() {
                        return Err(BencodeError::KeyNotString { at });
                    }
                    self.count()?;
                    let key = self.string()?;
                    let v = self.value(depth + 1)?;
                    if map.contains_key(&key) {
                        return Err(BencodeError::DuplicateKey(
                            String::from_utf8_lossy(&key).into_owned(),
                        ));
                    }
                    map.insert(key, v);
                }
                self.pos += 1;
                Ok(Value::Dict(map))
            }
            byte => Err(BencodeError::Unexpected { at: self.pos, byte }),
        }
    }

    /// A decimal number up to `end` (consumed). Canonical only: no `+`, no
    /// leading zeros, no `-0`; a sign only when `signed`.
    fn number(&mut self, end: u8, signed: bool) -> Result<i64, BencodeError> {
        let start = self.pos;
        let rest = &self.input[start..];
        let Some(len) = rest.iter().position(|&b| b == end) else {
            // Digits so far must be plausible, else this is malformed, not
            // merely short.
            let ok = rest
                .iter()
                .enumerate()
                .all(|(i, b)| b.is_ascii_digit() || (signed && i == 0 && *b == b'-'));
            return Err(if ok && rest.len() <= 20 {
                BencodeError::Incomplete
            } else {
                BencodeError::BadNumber { at: start }
            });
        };
        let digits = &rest[..len];
        let bad = BencodeError::BadNumber { at: start };
        let (neg, body) = match digits.split_first() {
            Some((b'-', body)) if signed => (true, body),
            _ => (false, digits),
        };
        let canonical = !body.is_empty()
            && body.iter().all(u8::is_ascii_digit)
            && (body == b"0" || body[0] != b'0')
            && !(neg && body == b"0");
        if !canonical {
            return Err(bad);
        }
        let text = std::str::from_utf8(digits).map_err(|_| bad.clone())?;
        let n: i64 = text.parse().map_err(|_| bad)?;
        self.pos = start + len + 1;
        Ok(n)
    }

    fn string(&mut self) -> Result<Vec<u8>, BencodeError> {
        let at = self.pos;
        let len = self.number(b':', false)?;
        let len = usize::try_from(len).map_err(|_| BencodeError::BadNumber { at })?;
        let end = self
            .pos
            .checked_add(len)
            .ok_or(BencodeError::BadNumber { at })?;
        let bytes = self
            .input
            .get(self.pos..end)
            .ok_or(BencodeError::Incomplete)?;
        self.pos = end;
        Ok(bytes.to_vec())
    }
}

/// Appends the encoding of `v` to `out`.
pub fn encode_into(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Int(n) => {
            out.push(b'i');
            out.extend_from_slice(n.to_string().as_bytes());
            out.push(b'e');
        }
        Value::Bytes(b) => put_bytes(b, out),
        Value::List(items) => {
            out.push(b'l');
            for i in items {
                encode_into(i, out);
            }
            out.push(b'e');
        }
        Value::Dict(map) => {
            out.push(b'd');
            for (k, v) in map {
                put_bytes(k, out);
                encode_into(v, out);
            }
            out.push(b'e');
        }
    }
}

/// The encoding of `v`.
pub fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(v, &mut out);
    out
}

fn put_bytes(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

impl Value {
    /// A byte string from text.
    pub fn str(s: impl Into<String>) -> Value {
        Value::Bytes(s.into().into_bytes())
    }

    /// The dictionary's entry `key`, if this is a dictionary.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(m) => m.get(key.as_bytes()),
            _ => None,
        }
    }

    /// This byte string as UTF-8 text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }
}

/// Builds a dictionary from text keys.
pub fn dict<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Dict(
        entries
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v))
            .collect(),
    )
}

#[cfg(test)]
#[path = "bencode_tests.rs"]
mod tests;
