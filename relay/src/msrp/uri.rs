//! MSRP URIs and paths (RFC 4975 §6, §9), compared by the rules of §6.1.
//!
//! A URI keeps its wire bytes (`raw`) and the positions of its parts, so that
//! parsing allocates nothing and re-encoding is byte-exact.

use bytes::Bytes;
use smallvec::SmallVec;

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
    /// The URI is longer than 64 KiB.
    #[error("URI too long")]
    TooLong,
}

/// One MSRP URI, e.g. `msrp://relay.example.net:2855/s8d7f6g;tcp`.
#[derive(Clone)]
pub struct MsrpUri {
    raw: Bytes,
    secure: bool,
    port: Option<u16>,
    /// Positions in `raw` (URIs are at most 64 KiB; heads are smaller).
    host: (u16, u16),
    session_id: Option<(u16, u16)>,
    transport: (u16, u16),
}

/// Character classes of RFC 3986 / RFC 4975 §9, one table lookup a byte.
const UNRESERVED: u8 = 1;
const SID_EXTRA: u8 = 2; // "+" / "=" / "/" in a session-id
const TOKEN: u8 = 4;
const ALNUM: u8 = 8;

const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let alnum = c.is_ascii_alphanumeric();
        let mut k = 0;
        if alnum || matches!(c, b'-' | b'.' | b'_' | b'~') {
            k |= UNRESERVED;
        }
        if matches!(c, b'+' | b'=' | b'/') {
            k |= SID_EXTRA;
        }
        if matches!(c, 0x21 | 0x23..=0x27 | 0x2A..=0x2B | 0x2D..=0x2E | 0x30..=0x39 | 0x41..=0x5A | 0x5E..=0x7E)
        {
            k |= TOKEN;
        }
        if alnum {
            k |= ALNUM;
        }
        t[b] = k;
        b += 1;
    }
    t
};

fn all_in(s: &[u8], class: u8) -> bool {
    s.iter().all(|&b| CLASS[b as usize] & class != 0)
}

/// RFC 4975 §9 `token`.
pub(crate) fn is_token_char(b: u8) -> bool {
    CLASS[b as usize] & TOKEN != 0
}

fn span(r: std::ops::Range<usize>) -> Result<(u16, u16), UriError> {
    match (u16::try_from(r.start), u16::try_from(r.end)) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        _ => Err(UriError::TooLong),
    }
}

impl MsrpUri {
    /// Parses one URI; `raw` must hold exactly the URI (no spaces). Each
    /// delimiter is found with one `memchr` and each part checked with one
    /// table lookup a byte: this runs for every path of every message.
    pub fn parse(raw: Bytes) -> Result<MsrpUri, UriError> {
        let s: &[u8] = &raw;
        if !s.is_ascii() {
            return Err(UriError::NonAscii);
        }
        let (secure, start) = if starts_with_ci(s, b"msrps://") {
            (true, 8)
        } else if starts_with_ci(s, b"msrp://") {
            (false, 7)
        } else {
            return Err(UriError::Scheme);
        };
        let auth_end = memchr::memchr2(b'/', b';', &s[start..]).map_or(s.len(), |i| start + i);
        // Userinfo (ignored in comparison, §6.1 rule 2) ends at the last '@'
        // of the authority.
        let host_start =
            memchr::memrchr(b'@', &s[start..auth_end]).map_or(start, |i| start + i + 1);
        let host_end = if s.get(host_start) == Some(&b'[') {
            let close = memchr::memchr(b']', &s[host_start..auth_end]).ok_or(UriError::Ipv6)?;
            host_start + close + 1
        } else {
            memchr::memchr(b':', &s[host_start..auth_end]).map_or(auth_end, |i| host_start + i)
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
        let mut pos = auth_end;
        let mut session_id = None;
        if s.get(pos) == Some(&b'/') {
            let end = memchr::memchr(b';', &s[pos..]).map_or(s.len(), |i| pos + i);
            let sid = &s[pos + 1..end];
            if sid.is_empty() || !all_in(sid, UNRESERVED | SID_EXTRA) {
                return Err(UriError::SessionId);
            }
            session_id = Some(span(pos + 1..end)?);
            pos = end;
        }
        if s.get(pos) != Some(&b';') {
            return Err(UriError::Transport);
        }
        let mut params = s[pos + 1..].split(|&b| b == b';');
        let transport_len = params.next().map_or(0, <[u8]>::len);
        let transport = pos + 1..pos + 1 + transport_len;
        if transport.is_empty() || !all_in(&s[transport.clone()], ALNUM) {
            return Err(UriError::Transport);
        }
        for p in params {
            let (name, value) = match memchr::memchr(b'=', p) {
                Some(i) => (&p[..i], Some(&p[i + 1..])),
                None => (p, None),
            };
            let ok = |t: &[u8]| !t.is_empty() && all_in(t, TOKEN);
            if !ok(name) || value.is_some_and(|v| !ok(v)) {
                return Err(UriError::Param);
            }
        }
        Ok(MsrpUri {
            host: span(host_start..host_end)?,
            transport: span(transport)?,
            raw,
            secure,
            port,
            session_id,
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
        &self.raw[usize::from(self.host.0)..usize::from(self.host.1)]
    }

    /// The explicit port, if any.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The session-id, if any (case-sensitive).
    pub fn session_id(&self) -> Option<&[u8]> {
        self.session_id
            .map(|(a, b)| &self.raw[usize::from(a)..usize::from(b)])
    }

    /// The transport parameter (`tcp` for everything RFC 4975 defines).
    pub fn transport(&self) -> &[u8] {
        &self.raw[usize::from(self.transport.0)..usize::from(self.transport.1)]
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
    /// Almost every path has one URI: kept inline, no allocation.
    uris: SmallVec<[MsrpUri; 1]>,
}

impl Path {
    /// Parses a header value such as `msrp://a/1;tcp msrp://b/2;tcp`.
    pub fn parse(raw: Bytes) -> Result<Path, UriError> {
        if raw.is_empty() {
            return Err(UriError::EmptyPath);
        }
        let mut uris = SmallVec::new();
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
