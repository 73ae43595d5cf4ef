//! The ng wire: `<cookie> <bencoded dictionary>`, the reply
//! `<cookie> <bencoded dictionary>` with the request's cookie.
//!
//! Over UDP one datagram is one message. Over TCP the messages follow one
//! another on the stream, each in one of two framings, recognised by its
//! first bytes and answered in the same framing:
//!
//! - **bare**: `<cookie> <dict>`; the dictionary is self-delimiting, so
//!   the message ends where it ends;
//! - **length-prefixed**: `<len>:<cookie> <dict>`, the whole message as
//!   one bencoded byte string (a length, a colon, that many bytes).
//!
//! A cookie is 1 to [`MAX_COOKIE`] bytes without spaces or control
//! characters, so `<digits>:` can only start a length-prefixed message.

use super::bencode::{self, BencodeError, Limits, Value};

/// Longest cookie accepted.
pub const MAX_COOKIE: usize = 128;

/// Why bytes are not an ng message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// No space after a cookie, or an empty or unprintable cookie.
    #[error("no cookie: a message is \"<cookie> <bencoded dictionary>\"")]
    NoCookie,
    /// The cookie is longer than [`MAX_COOKIE`].
    #[error("cookie longer than {MAX_COOKIE} bytes")]
    CookieTooLong,
    /// The message exceeds the bound.
    #[error("message of at least {len} bytes exceeds the limit of {max}")]
    TooLong {
        /// Bytes seen (at least `max + 1`).
        len: usize,
        /// The bound.
        max: usize,
    },
}

/// How a TCP message was framed (the reply uses the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `<cookie> <dict>`.
    Bare,
    /// `<len>:<cookie> <dict>`.
    LengthPrefixed,
}

fn cookie_byte(b: u8) -> bool {
    b.is_ascii_graphic()
}

/// Splits a whole message into its cookie and its body (the bytes after
/// the first space).
pub fn split(msg: &[u8]) -> Result<(&[u8], &[u8]), WireError> {
    let Some(sp) = msg.iter().take(MAX_COOKIE + 1).position(|&b| b == b' ') else {
        return Err(
            if msg.len() > MAX_COOKIE && msg[..MAX_COOKIE].iter().all(|&b| cookie_byte(b)) {
                WireError::CookieTooLong
            } else {
                WireError::NoCookie
            },
        );
    };
    let cookie = &msg[..sp];
    if cookie.is_empty() || !cookie.iter().all(|&b| cookie_byte(b)) {
        return Err(WireError::NoCookie);
    }
    Ok((cookie, &msg[sp + 1..]))
}

/// The reply message: `<cookie> <reply>`.
pub fn reply(cookie: &[u8], reply: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(cookie.len() + 64);
    out.extend_from_slice(cookie);
    out.push(b' ');
    bencode::encode_into(reply, &mut out);
    out
}

/// Wraps a whole message in `framing` for the TCP stream.
pub fn frame(framing: Framing, msg: &[u8]) -> Vec<u8> {
    match framing {
        Framing::Bare => msg.to_vec(),
        Framing::LengthPrefixed => {
            let mut out = Vec::with_capacity(msg.len() + 8);
            out.extend_from_slice(msg.len().to_string().as_bytes());
            out.push(b':');
            out.extend_from_slice(msg);
            out
        }
    }
}

/// One message cut from the front of a TCP stream's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    /// Its framing.
    pub framing: Framing,
    /// The message, `<cookie> <dict>`, without the length prefix.
    pub message: Vec<u8>,
    /// Bytes of the buffer it took.
    pub consumed: usize,
}

/// A message the stream cannot be resynchronised after: the connection is
/// answered (with the cookie, when one could be read) and closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct StreamError {
    /// The cookie, if one could be read.
    pub cookie: Option<Vec<u8>>,
    /// The framing seen.
    pub framing: Framing,
    /// Why.
    pub error: String,
}

/// Cuts the first message from `buf`: `Ok(None)` when more bytes are
/// needed; a [`StreamError`] when the stream is unusable.
pub fn cut(buf: &[u8], max: usize, limits: Limits) -> Result<Option<Cut>, StreamError> {
    let digits = buf.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits > 0 && buf.get(digits) == Some(&b':') {
        return cut_prefixed(buf, digits, max);
    }
    if digits == buf.len() && digits <= 20 {
        // Could still become either framing.
        return Ok(None);
    }
    let fail = |cookie: Option<&[u8]>, error: String| StreamError {
        cookie: cookie.map(<[u8]>::to_vec),
        framing: Framing::Bare,
        error,
    };
    let (cookie, body) = match split(buf) {
        Ok(x) => x,
        Err(WireError::NoCookie) if buf.len() <= MAX_COOKIE => {
            if buf.iter().all(|&b| cookie_byte(b)) {
                return Ok(None);
            }
            return Err(fail(None, WireError::NoCookie.to_string()));
        }
        Err(e) => return Err(fail(None, e.to_string())),
    };
    match bencode::decode_prefix(body, limits) {
        Ok((_, used)) => {
            let consumed = cookie.len() + 1 + used;
            if consumed > max {
                return Err(fail(Some(cookie), too_long(consumed, max)));
            }
            Ok(Some(Cut {
                framing: Framing::Bare,
                message: buf[..consumed].to_vec(),
                consumed,
            }))
        }
        Err(BencodeError::Incomplete) if buf.len() <= max => Ok(None),
        Err(BencodeError::Incomplete) => Err(fail(Some(cookie), too_long(buf.len(), max))),
        Err(e) => Err(fail(Some(cookie), e.to_string())),
    }
}

fn too_long(len: usize, max: usize) -> String {
    WireError::TooLong { len, max }.to_string()
}

fn cut_prefixed(buf: &[u8], digits: usize, max: usize) -> Result<Option<Cut>, StreamError> {
    let fail = |error: String| StreamError {
        cookie: None,
        framing: Framing::LengthPrefixed,
        error,
    };
    let len: usize = std::str::from_utf8(&buf[..digits])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| fail("bad message length".into()))?;
    if len > max {
        return Err(fail(too_long(len, max)));
    }
    let start = digits + 1;
    let Some(message) = buf.get(start..start + len) else {
        return Ok(None);
    };
    Ok(Some(Cut {
        framing: Framing::LengthPrefixed,
        message: message.to_vec(),
        consumed: start + len,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn ng_wire_splits_cookie_and_body() {
        assert_eq!(
            split(b"5432_1 d7:command4:pinge"),
            Ok((&b"5432_1"[..], &b"d7:command4:pinge"[..]))
        );
        assert_eq!(split(b"d7:command4:pinge"), Err(WireError::NoCookie));
        assert_eq!(split(b" d7:command4:pinge"), Err(WireError::NoCookie));
        let long = [b'a'; 200];
        assert_eq!(split(&long), Err(WireError::CookieTooLong));
        let r = reply(b"c1", &bencode::dict([("result", Value::str("pong"))]));
        assert_eq!(r, b"c1 d6:result4:ponge");
    }

    #[test]
    fn ng_tcp_cuts_both_framings_across_reads() {
        let l = Limits::default();
        let stream = b"c1 d7:command4:pinge20:c2 d7:command4:pinge3:xyz";
        // Every prefix of the first message asks for more.
        for n in 0..20 {
            assert_eq!(cut(&stream[..n], 1000, l), Ok(None), "{n}");
        }
        let first = cut(stream, 1000, l).unwrap().unwrap();
        assert_eq!(first.framing, Framing::Bare);
        assert_eq!(first.message, b"c1 d7:command4:pinge");
        let rest = &stream[first.consumed..];
        let second = cut(rest, 1000, l).unwrap().unwrap();
        assert_eq!(second.framing, Framing::LengthPrefixed);
        assert_eq!(second.message, b"c2 d7:command4:pinge");
        assert_eq!(
            frame(Framing::LengthPrefixed, &second.message),
            rest[..second.consumed]
        );
    }

    #[test]
    fn ng_bad_input_tcp_stream_errors() {
        let l = Limits::default();
        assert!(cut(b"99999:c1 d", 100, l).is_err());
        let e = cut(b"c1 dx", 100, l).unwrap_err();
        assert_eq!(e.cookie.as_deref(), Some(&b"c1"[..]));
        let e = cut(b"c1 d7:command", 10, l).unwrap_err();
        assert!(e.error.contains("exceeds"), "{e}");
        assert!(cut(b"\x01\x02 d", 100, l).is_err());
    }
}
