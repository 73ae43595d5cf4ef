//! MSRP URIs and paths (RFC 4975 §6, §9), compared by the rules of §6.1.
//!
//! A URI keeps its wire bytes (`raw`) and the positions of its parts, so that
//! parsing allocates nothing and re-encoding is byte-exact.

use bytes::Bytes;
use std::ops::Range;

/// Why a URI or path did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    /// The scheme is neither `msrp` nor `msrps`.
    #[error("scheme is not msrp:// or msrps://")]
    Scheme,
    /// The authority has no host.
    #[error("empty host")]
    EmptyHost,
    /// The port is not a number in 0..=65535.
    #[error("bad port")]
    Port,
    /// An IPv6 literal lacks its closing bracket.
    #[error("unterminated IPv6 literal")]
    Ipv6,
    /// The session-id has a character outside `unreserved / + = /`.
    #[error("bad session-id")]
    SessionId,
    /// The mandatory transport parameter (`;tcp`) is missing or empty.
    #[error("missing transport parameter")]
    Transport,
    /// A URI parameter is not `token [= token]`.
    #[error("bad URI parameter")]
    Param,
    /// A path is empty or has empty elements (double spaces).
    #[error("empty path or path element")]
    EmptyPath,
    /// The URI is not US-ASCII (RFC 4975 §6).
    #[error("non-ASCII character in URI")]
    NonAscii,
}

/// One MSRP URI, e.g. `msrp://relay.example.net:2855/s8d7f6g;tcp`.
#[derive(Clone)]
pub struct MsrpUri {
    raw: Bytes,
    secure: bool,
    host: Range<usize>,
    port: Option<u16>,
    session_id: Option<Range<usize>>,
    transport: Range<usize>,
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// RFC 4975 §9 `token`.
pub(crate) fn is_token_char(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x27 | 0x2A..=0x2B | 0x2D..=0x2E | 0x30..=0x39 | 0x41..=0x5A | 0x5E..=0x7E)
}

impl MsrpUri {
    /// Parses one URI; `raw` must hold exactly the URI (no spaces).
    pub fn parse(raw: Bytes) -> Result<MsrpUri, UriError> {
        let s: &[u8] = &raw;
        if !s.is_ascii() {
            return Err(UriError::NonAscii);
        }
        let (secure, mut pos) = if starts_with_ci(s, b"msrps://") {
            (true, 8)
        } else if starts_with_ci(s, b"msrp://") {
            (false, 7)
        } else {
            return Err(UriError::Scheme);
        };
        // Userinfo (ignored in comparison, §6.1 rule 2) ends at an '@' that
        // comes before the first '/' or ';'.
        let auth_end = s[pos..]
            .iter()
            .position(|&b| b == b'/' || b == b';')
            .map_or(s.len(), |i| pos + i);
        if let Some(at) = s[pos..auth_end].iter().rposition(|&b| b == b'@') {
            pos += at + 1;
        }
        let host_start = pos;
        let host_end = if s.get(pos) == Some(&b'[') {
            let close = s[pos..auth_end]
                .iter()
                .position(|&b| b == b']')
                .ok_or(UriError::Ipv6)?;
            pos + close + 1
        } else {
            s[pos..auth_end]
                .iter()
                .position(|&b| b == b':')
                .map_or(auth_end, |i| pos + i)
        };
        if host_end == host_start {
            return Err(UriError::EmptyHost);
        }
        let port = if host_end < auth_end {
            if s[host_end] != b':' {
                return Err(UriError::Port);
            }
            Some(parse_port(&s[host_end + 1..auth_end])?)
        } else {
            None
        };
        pos = auth_end;
        let mut session_id = None;
        if s.get(pos) == Some(&b'/') {
            let end = s[pos..]
                .iter()
                .position(|&b| b == b';')
                .map_or(s.len(), |i| pos + i);
            let sid = &s[pos + 1..end];
            if sid.is_empty()
                || !sid
                    .iter()
                    .all(|&b| is_unreserved(b) || matches!(b, b'+' | b'=' | b'/'))
            {
                return Err(UriError::SessionId);
            }
            session_id = Some(pos + 1..end);
            pos = end;
        }
        if s.get(pos) != Some(&b';') {
            return Err(UriError::Transport);
        }
        let mut params = s[pos + 1..].split(|&b| b == b';');
        let transport_len = params.next().map_or(0, <[u8]>::len);
        let transport = pos + 1..pos + 1 + transport_len;
        if transport.is_empty() || !s[transport.clone()].iter().all(u8::is_ascii_alphanumeric) {
            return Err(UriError::Transport);
        }
        for p in params {
            let (name, value) = match p.iter().position(|&b| b == b'=') {
                Some(i) => (&p[..i], Some(&p[i + 1..])),
                None => (p, None),
            };
            let ok = |t: &[u8]| !t.is_empty() && t.iter().all(|&b| is_token_char(b));
            if !ok(name) || value.is_some_and(|v| !ok(v)) {
                return Err(UriError::Param);
            }
        }
        Ok(MsrpUri {
            raw,
            secure,
            host: host_start..host_end,
            port,
            session_id,
            transport,
        })
    }

    /// The URI as it appeared on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// The URI's wire bytes as a cheap, shareable handle.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// `true` for `msrps` (TLS).
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The host part (an IPv6 literal keeps its brackets).
    pub fn host(&self) -> &[u8] {
        &self.raw[self.host.clone()]
    }

    /// The explicit port, if any.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The session-id, if any (case-sensitive).
    pub fn session_id(&self) -> Option<&[u8]> {
        self.session_id.clone().map(|r| &self.raw[r])
    }

    /// The transport parameter (`tcp` for everything RFC 4975 defines).
    pub fn transport(&self) -> &[u8] {
        &self.raw[self.transport.clone()]
    }
}

fn parse_port(digits: &[u8]) -> Result<u16, UriError> {
    if digits.is_empty() || digits.len() > 5 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(UriError::Port);
    }
    let n = digits
        .iter()
        .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    u16::try_from(n).map_err(|_| UriError::Port)
}

fn starts_with_ci(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Percent-decodes (RFC 3986 §2.1) and lowercases an authority for the
/// comparison of §6.1 rule 2.
fn normalized_host(h: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        let b = *h.get(i)?;
        let hex = |c: u8| (c as char).to_digit(16);
        if b == b'%'
            && let (Some(hi), Some(lo)) = (
                h.get(i + 1).copied().and_then(hex),
                h.get(i + 2).copied().and_then(hex),
            )
        {
            i += 3;
            return Some(((hi << 4) | lo) as u8).map(|c| c.to_ascii_lowercase());
        }
        i += 1;
        Some(b.to_ascii_lowercase())
    })
}

/// Equality is URI equivalence per RFC 4975 §6.1: scheme and host
/// case-insensitive (host percent-decoded), userinfo ignored, ports equal
/// only if both absent or both the same, session-id case-sensitive and
/// present in both or neither, transport case-insensitive. URI parameters
/// other than the transport do not take part.
impl PartialEq for MsrpUri {
    fn eq(&self, other: &MsrpUri) -> bool {
        self.secure == other.secure
            && self.port == other.port
            && self.session_id() == other.session_id()
            && self.transport().eq_ignore_ascii_case(other.transport())
            && normalized_host(self.host()).eq(normalized_host(other.host()))
    }
}

impl Eq for MsrpUri {}

impl std::fmt::Debug for MsrpUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", String::from_utf8_lossy(&self.raw))
    }
}

impl std::fmt::Display for MsrpUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.raw))
    }
}

/// A To-Path or From-Path: one or more URIs separated by single spaces
/// (RFC 4975 §9). The first URI of a To-Path is the next hop's; the last
/// URI of a From-Path is the original sender's.
#[derive(Clone, PartialEq, Eq)]
pub struct Path {
    raw: Bytes,
    uris: Vec<MsrpUri>,
}

impl Path {
    /// Parses a header value such as `msrp://a/1;tcp msrp://b/2;tcp`.
    pub fn parse(raw: Bytes) -> Result<Path, UriError> {
        if raw.is_empty() {
            return Err(UriError::EmptyPath);
        }
        let mut uris = Vec::with_capacity(1);
        let mut start = 0;
        for i in memchr::memchr_iter(b' ', &raw).chain(std::iter::once(raw.len())) {
            if i == start {
                return Err(UriError::EmptyPath);
            }
            uris.push(MsrpUri::parse(raw.slice(start..i))?);
            start = i + 1;
        }
        Ok(Path { raw, uris })
    }

    /// The header value as it appeared on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// The URIs in order (never empty).
    pub fn uris(&self) -> &[MsrpUri] {
        &self.uris
    }

    /// The first URI (the next hop in a To-Path).
    pub fn first(&self) -> &MsrpUri {
        // A Path is never constructed empty (see `parse`).
        &self.uris[0]
    }

    /// The last URI (the originator in a From-Path, the target in a To-Path).
    pub fn last(&self) -> &MsrpUri {
        &self.uris[self.uris.len() - 1]
    }
}

impl std::fmt::Debug for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", String::from_utf8_lossy(&self.raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> MsrpUri {
        MsrpUri::parse(Bytes::copy_from_slice(s.as_bytes())).unwrap()
    }

    #[test]
    fn parses_the_parts() {
        let u = uri("msrp://alice@host.example.com:8493/asfd34;tcp;foo=bar");
        assert!(!u.is_secure());
        assert_eq!(u.host(), b"host.example.com");
        assert_eq!(u.port(), Some(8493));
        assert_eq!(u.session_id(), Some(&b"asfd34"[..]));
        assert_eq!(u.transport(), b"tcp");
        let v6 = uri("msrps://[2001:db8::1]:2855/a+b=c/d;tcp");
        assert!(v6.is_secure());
        assert_eq!(v6.host(), b"[2001:db8::1]");
        assert_eq!(v6.session_id(), Some(&b"a+b=c/d"[..]));
        let relay = uri("msrps://relay.example.net;tcp");
        assert_eq!(relay.session_id(), None);
        assert_eq!(relay.port(), None);
    }

    #[test]
    fn rejects_malformed_uris() {
        for (s, e) in [
            ("sip://a:1/x;tcp", UriError::Scheme),
            ("msrp://:1/x;tcp", UriError::EmptyHost),
            ("msrp://a:99999/x;tcp", UriError::Port),
            ("msrp://a:/x;tcp", UriError::Port),
            ("msrp://[::1:1/x;tcp", UriError::Ipv6),
            ("msrp://a:1/x y;tcp", UriError::SessionId),
            ("msrp://a:1/;tcp", UriError::SessionId),
            ("msrp://a:1/x", UriError::Transport),
            ("msrp://a:1/x;", UriError::Transport),
            ("msrp://a:1/x;tcp;=v", UriError::Param),
            ("msrp://a:1/é;tcp", UriError::NonAscii),
        ] {
            let got = MsrpUri::parse(Bytes::copy_from_slice(s.as_bytes()));
            assert_eq!(got.err(), Some(e), "{s}");
        }
    }

    #[test]
    fn compares_by_rfc4975_section_6_1() {
        // Rule 1 and 2: scheme and host case-insensitive, userinfo ignored,
        // percent-decoding applied to the authority.
        assert_eq!(
            uri("MSRP://Bob@HOST.example:1/s;tcp"),
            uri("msrp://host.EXAMPLE:1/s;tcp")
        );
        assert_eq!(uri("msrp://ho%73t:1/s;tcp"), uri("msrp://host:1/s;tcp"));
        assert_ne!(uri("msrps://h:1/s;tcp"), uri("msrp://h:1/s;tcp"));
        // Rule 3: an explicit port never equals an absent one.
        assert_ne!(uri("msrp://h:2855/s;tcp"), uri("msrp://h/s;tcp"));
        assert_ne!(uri("msrp://h:2855/s;tcp"), uri("msrp://h:2856/s;tcp"));
        // Rule 4: session-id case-sensitive and present in both or neither.
        assert_ne!(uri("msrp://h:1/S;tcp"), uri("msrp://h:1/s;tcp"));
        assert_ne!(uri("msrp://h:1;tcp"), uri("msrp://h:1/s;tcp"));
        // Rule 5: transport case-insensitive, different transports differ.
        assert_eq!(uri("msrp://h:1/s;TCP"), uri("msrp://h:1/s;tcp"));
        assert_ne!(uri("msrp://h:1/s;sctp"), uri("msrp://h:1/s;tcp"));
    }

    #[test]
    fn paths_split_on_single_spaces() {
        let p = Path::parse(Bytes::from_static(b"msrp://a:1/x;tcp msrp://b:2/y;tcp")).unwrap();
        assert_eq!(p.uris().len(), 2);
        assert_eq!(p.first().host(), b"a");
        assert_eq!(p.last().host(), b"b");
        for bad in [
            &b""[..],
            b"msrp://a:1/x;tcp  msrp://b:2/y;tcp",
            b" msrp://a:1/x;tcp",
        ] {
            assert_eq!(
                Path::parse(Bytes::copy_from_slice(bad)).err(),
                Some(UriError::EmptyPath)
            );
        }
    }
}
