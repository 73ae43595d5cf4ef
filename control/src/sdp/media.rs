//! Reading the MSRP attributes of a media section (RFC 4975 §8, RFC 5547 §6).

use super::{Sdp, SdpError, Setup};

/// SDP direction attribute (RFC 4566 §6). For MSRP it governs SEND requests
/// with message payload only; REPORTs and IMDNs flow regardless (RFC 4975
/// §8.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `a=sendrecv` (the default when none is given).
    SendRecv,
    /// `a=sendonly`
    SendOnly,
    /// `a=recvonly`
    RecvOnly,
    /// `a=inactive`
    Inactive,
}

impl Direction {
    /// Parses an attribute name (`sendrecv`, ...).
    pub fn parse(name: &str) -> Option<Direction> {
        Some(match name {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
    }

    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

/// What an MSRP media section says, values kept as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsrpMedia {
    /// Index of the media section (0 = first `m=` line).
    pub index: usize,
    /// `m=` port; 0 means the stream was rejected (RFC 3264 §6).
    pub port: u16,
    /// `TCP/TLS/MSRP`.
    pub tls: bool,
    /// Address of the `c=` that applies (media-level, else session-level).
    pub connection: Option<String>,
    /// `a=path` URIs, leftmost (adjacent hop) first; the rightmost is the
    /// peer's session URI (RFC 4975 §8.2, §8.3).
    pub path: Vec<String>,
    /// `a=setup`; `holdconn` is reported as received, see
    /// [`negotiate_setup`](super::negotiate_setup) for its meaning.
    pub setup: Option<Setup>,
    /// Direction attribute at media level, else at session level; `None`
    /// when neither has one (which means `sendrecv`, RFC 4566 §6).
    pub direction: Option<Direction>,
    /// `a=accept-types` entries (RFC 4975 §8.6).
    pub accept_types: Vec<String>,
    /// `a=accept-wrapped-types` entries.
    pub accept_wrapped_types: Vec<String>,
    /// `a=max-size` in octets.
    pub max_size: Option<u64>,
    /// `a=file-selector` value, verbatim (RFC 5547 §5).
    pub file_selector: Option<String>,
    /// `a=file-transfer-id` value (RFC 5547 §6).
    pub file_transfer_id: Option<String>,
    /// `a=file-disposition` value (`render`, `attachment`, ...).
    pub file_disposition: Option<String>,
    /// An `a=file-icon` (thumbnail `cid:` reference) is present.
    pub file_icon: bool,
    /// `a=file-range` (RFC 5547 §6): the part of the file asked for.
    pub file_range: Option<FileRange>,
}

/// `a=file-range:<start>-<stop>` (RFC 5547 §6): octets `start` to `stop`
/// of the file, both inclusive, counted from 1; `stop` `None` is `*` (to
/// the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRange {
    /// First octet, from 1.
    pub start: u64,
    /// Last octet, inclusive; `None`: `*`.
    pub stop: Option<u64>,
}

impl FileRange {
    /// Parses `start-stop`: `start` ≥ 1, `stop` ≥ `start` or `*`.
    pub fn parse(v: &str) -> Option<FileRange> {
        let (a, b) = v.trim().split_once('-')?;
        let num = |x: &str| {
            (!x.is_empty() && x.bytes().all(|c| c.is_ascii_digit()))
                .then(|| x.parse::<u64>().ok())
                .flatten()
        };
        let start = num(a).filter(|s| *s >= 1)?;
        let stop = match b {
            "*" => None,
            b => Some(num(b).filter(|s| *s >= start)?),
        };
        Some(FileRange { start, stop })
    }
}

impl MsrpMedia {
    /// The direction in force: the explicit one or `sendrecv`.
    pub fn effective_direction(&self) -> Direction {
        self.direction.unwrap_or(Direction::SendRecv)
    }

    /// The peer's session URI: the rightmost `a=path` entry (RFC 4975 §8.2).
    pub fn peer_uri(&self) -> Option<&str> {
        self.path.last().map(String::as_str)
    }

    /// The URI to connect to: the leftmost `a=path` entry (RFC 4975 §8.3).
    pub fn first_hop(&self) -> Option<&str> {
        self.path.first().map(String::as_str)
    }
}

impl Sdp {
    /// The MSRP media sections with their attributes. Fails if there is no
    /// active (non-zero port) MSRP media line, or one lacks a valid
    /// `a=path`. Rejected MSRP lines (port 0) are returned too, with
    /// whatever they carry: an answer that declines a stream need not
    /// repeat the path.
    pub fn msrp_media(&self) -> Result<Vec<MsrpMedia>, SdpError> {
        let session_dir = self.lines[..self.session_end()].iter().find_map(|l| {
            l.attribute()
                .and_then(|(n, v)| v.is_none().then_some(n))
                .and_then(Direction::parse)
        });
        let mut out = Vec::new();
        for section in self.media.iter().filter(|m| m.is_msrp()) {
            let media = section.index;
            let conn_line = section.connection.or(self.session_connection);
            let mut m = MsrpMedia {
                index: media,
                port: section.port,
                tls: section.is_tls(),
                connection: conn_line
                    .and_then(|l| self.connection_address(l))
                    .map(str::to_owned),
                path: Vec::new(),
                setup: None,
                direction: None,
                accept_types: Vec::new(),
                accept_wrapped_types: Vec::new(),
                max_size: None,
                file_selector: None,
                file_transfer_id: None,
                file_range: None,
                file_disposition: None,
                file_icon: false,
            };
            let mut path_seen = false;
            let mut types_seen = false;
            for line in &self.lines[section.m_line + 1..section.end] {
                let Some((name, value)) = line.attribute() else {
                    continue;
                };
                let bad = |v: &str| SdpError::BadAttribute {
                    media,
                    name: name.to_owned(),
                    value: v.to_owned(),
                };
                match (name, value) {
                    // A bare `a=path` is no path (RFC 4975 §8.2 gives it a
                    // value); it must not hide behind the real one either:
                    // the rewrite would replace it and keep the peer's.
                    ("path", None) => {
                        return Err(SdpError::InvalidPath {
                            media,
                            reason: "a=path without a value".into(),
                        });
                    }
                    ("path", Some(v)) => {
                        if path_seen {
                            return Err(SdpError::InvalidPath {
                                media,
                                reason: "more than one a=path line".into(),
                            });
                        }
                        path_seen = true;
                        m.path = parse_path(v)
                            .map_err(|reason| SdpError::InvalidPath { media, reason })?;
                    }
                    // One `a=setup` per media (RFC 4145 §4): a second one,
                    // or a bare one, would survive the rewrite beside the
                    // relay's and contradict it.
                    ("setup", _) if m.setup.is_some() => {
                        return Err(bad("a second a=setup"));
                    }
                    ("setup", None) => return Err(bad("")),
                    ("setup", Some(v)) => m.setup = Some(Setup::parse(v).ok_or_else(|| bad(v))?),
                    // Once per media, like `a=setup`: the rewrite may set it.
                    ("accept-types", _) if types_seen => {
                        return Err(bad("a second a=accept-types"));
                    }
                    ("accept-types", v) => {
                        types_seen = true;
                        m.accept_types = v.map(words).unwrap_or_default();
                    }
                    ("accept-wrapped-types", Some(v)) => m.accept_wrapped_types = words(v),
                    ("max-size", Some(v)) => {
                        let digits = v.trim();
                        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                            return Err(bad(v));
                        }
                        m.max_size = Some(digits.parse().map_err(|_| bad(v))?);
                    }
                    ("file-selector", Some(v)) => m.file_selector = Some(v.to_owned()),
                    ("file-transfer-id", Some(v)) => m.file_transfer_id = Some(v.to_owned()),
                    // A reversed range, a start of 0 or junk: refused here,
                    // before anything is set up.
                    ("file-range", v) => {
                        let v = v.unwrap_or("");
                        m.file_range = Some(FileRange::parse(v).ok_or_else(|| bad(v))?);
                    }
                    ("file-disposition", Some(v)) => m.file_disposition = Some(v.to_owned()),
                    ("file-icon", _) => m.file_icon = true,
                    (n, None) => {
                        if let Some(d) = Direction::parse(n) {
                            m.direction = Some(d);
                        }
                    }
                    _ => {}
                }
            }
            if m.direction.is_none() {
                m.direction = session_dir;
            }
            if m.port != 0 && m.path.is_empty() {
                return Err(SdpError::MissingPath { media });
            }
            out.push(m);
        }
        if !out.iter().any(|m| m.port != 0) {
            return Err(SdpError::NoMsrpMedia);
        }
        Ok(out)
    }
}

fn words(v: &str) -> Vec<String> {
    v.split_ascii_whitespace().map(str::to_owned).collect()
}

/// `path-list = MSRP-URI *(SP MSRP-URI)` (RFC 4975 §8.2), each URI with an
/// explicit port ("MSRP URIs included in an SDP offer or answer MUST include
/// explicit port numbers").
fn parse_path(value: &str) -> Result<Vec<String>, String> {
    let uris = words(value);
    if uris.is_empty() {
        return Err("empty path".into());
    }
    for uri in &uris {
        check_msrp_uri(uri)?;
    }
    Ok(uris)
}

/// Light syntax check of an MSRP URI (RFC 4975 §9):
/// `msrp[s]://[userinfo@]host:port[/session-id];transport[;params]`.
/// The port must be present (§8.2); the session id is optional in the
/// grammar (a relay's URI has none, RFC 4976) but a session-id, when
/// present, must not be empty.
pub(crate) fn check_msrp_uri(uri: &str) -> Result<(), String> {
    let lower = uri.get(..8).unwrap_or(uri).to_ascii_lowercase();
    let rest = if lower.starts_with("msrps://") {
        &uri[8..]
    } else if lower.starts_with("msrp://") {
        &uri[7..]
    } else {
        return Err(format!("{uri:?} is not an msrp: or msrps: URI"));
    };
    let (before_params, params) = rest.split_once(';').unwrap_or((rest, ""));
    let (authority, session) = match before_params.split_once('/') {
        Some((a, s)) => (a, Some(s)),
        None => (before_params, None),
    };
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let port = if let Some(v6) = hostport.strip_prefix('[') {
        v6.split_once("]:").map(|(_, p)| p)
    } else {
        hostport.rsplit_once(':').map(|(_, p)| p)
    };
    let port_ok = port.is_some_and(|p| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok()
    });
    if !port_ok {
        return Err(format!("{uri:?} has no explicit port"));
    }
    if session == Some("") {
        return Err(format!("{uri:?} has an empty session id"));
    }
    if params.is_empty() {
        return Err(format!("{uri:?} has no transport parameter"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn media(body: &str) -> Result<Vec<MsrpMedia>, SdpError> {
        Sdp::parse_str(body).unwrap().msrp_media()
    }

    #[test]
    fn attributes_are_read() {
        let m = media(
            "v=0\r\nc=IN IP4 198.51.100.7\r\na=recvonly\r\nm=message 7654 TCP/TLS/MSRP *\r\n\
             a=accept-types:message/cpim text/plain\r\na=accept-wrapped-types:*\r\n\
             a=max-size:20000\r\na=setup:actpass\r\n\
             a=path:msrps://relay.example.net:2855/r1;tcp msrps://198.51.100.7:7654/jshA7we;tcp\r\n\
             a=file-selector:name:\"a b.jpg\" type:image/jpeg size:4092\r\n\
             a=file-transfer-id:Q6LM\r\na=file-disposition:render\r\na=file-icon:cid:id2@x\r\n",
        )
        .unwrap();
        let m = &m[0];
        assert_eq!(m.connection.as_deref(), Some("198.51.100.7"));
        assert!(m.tls);
        assert_eq!(m.accept_types, ["message/cpim", "text/plain"]);
        assert_eq!(m.accept_wrapped_types, ["*"]);
        assert_eq!(m.max_size, Some(20000));
        assert_eq!(m.setup, Some(Setup::Actpass));
        assert_eq!(m.first_hop(), Some("msrps://relay.example.net:2855/r1;tcp"));
        assert_eq!(m.peer_uri(), Some("msrps://198.51.100.7:7654/jshA7we;tcp"));
        assert_eq!(
            m.file_selector.as_deref(),
            Some("name:\"a b.jpg\" type:image/jpeg size:4092")
        );
        assert_eq!(m.file_transfer_id.as_deref(), Some("Q6LM"));
        assert_eq!(m.file_disposition.as_deref(), Some("render"));
        assert!(m.file_icon);
        // Session-level a=recvonly applies when the media has none.
        assert_eq!(m.direction, Some(Direction::RecvOnly));
    }

    /// FT-RESUME: `a=file-range` (RFC 5547 §6) parses; a reversed range,
    /// a start of 0 and junk are clear errors.
    #[test]
    fn ft_resume_file_range_parses_and_bad_ranges_are_refused() {
        let sdp = |r: &str| {
            format!(
                "v=0\r\nm=message 1 TCP/MSRP *\r\na=path:msrp://h:1/s;tcp\r\na=file-range:{r}\r\n"
            )
        };
        let m = media(&sdp("31457281-52428800")).unwrap();
        assert_eq!(
            m[0].file_range,
            Some(FileRange {
                start: 31_457_281,
                stop: Some(52_428_800)
            })
        );
        let m = media(&sdp("1-*")).unwrap();
        assert_eq!(
            m[0].file_range,
            Some(FileRange {
                start: 1,
                stop: None
            })
        );
        for bad in ["100-99", "0-10", "-5", "a-b", "5", "1-2-3", ""] {
            let err = media(&sdp(bad)).unwrap_err();
            assert!(
                err.to_string().contains("bad a=file-range value"),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn media_level_direction_overrides_session_level_and_default_is_sendrecv() {
        let m = media("v=0\r\na=recvonly\r\nm=message 1 TCP/MSRP *\r\na=sendonly\r\na=path:msrp://h:1/s;tcp\r\n").unwrap();
        assert_eq!(m[0].direction, Some(Direction::SendOnly));
        let m = media("v=0\r\nm=message 1 TCP/MSRP *\r\na=path:msrp://h:1/s;tcp\r\n").unwrap();
        assert_eq!(m[0].direction, None);
        assert_eq!(m[0].effective_direction(), Direction::SendRecv);
    }

    #[test]
    fn missing_and_invalid_paths_are_errors() {
        // Found by the `sdp` fuzz target: a bare `a=path` before the real
        // one was skipped here but replaced by the rewrite, which then
        // handed out the peer's path beside the relay's.
        let bare = "v=\nm=message 4 TCP/MSRP v\na=path\na=path:msrp://:9;p";
        assert!(matches!(media(bare), Err(SdpError::InvalidPath { .. })));
        assert_eq!(
            media("v=0\r\nm=message 1 TCP/MSRP *\r\n"),
            Err(SdpError::MissingPath { media: 0 })
        );
        for bad in [
            "http://h:1/s;tcp",
            "msrp://h/s;tcp",
            "msrp://h:x/s;tcp",
            "msrp://h:1/;tcp",
            "msrp://h:1/s",
            "",
        ] {
            let body = format!("v=0\r\nm=message 1 TCP/MSRP *\r\na=path:{bad}\r\n");
            assert!(
                matches!(media(&body), Err(SdpError::InvalidPath { media: 0, .. })),
                "{bad}"
            );
        }
        let twice = "v=0\r\nm=message 1 TCP/MSRP *\r\na=path:msrp://h:1/s;tcp\r\na=path:msrp://h:1/t;tcp\r\n";
        assert!(matches!(media(twice), Err(SdpError::InvalidPath { .. })));
        // IPv6 literal with port, user info, relay URI without session id.
        let ok = "v=0\r\nm=message 1 TCP/MSRP *\r\na=path:msrp://u@[2001:db8::1]:2855;tcp msrp://h:1/s;tcp\r\n";
        assert!(media(ok).is_ok());
    }

    #[test]
    fn no_msrp_media_and_bad_attributes_are_errors() {
        assert_eq!(
            media("v=0\r\nm=audio 4000 RTP/AVP 0\r\n"),
            Err(SdpError::NoMsrpMedia)
        );
        // A rejected MSRP stream (port 0) needs no path but is not usable.
        assert_eq!(
            media("v=0\r\nm=message 0 TCP/MSRP *\r\n"),
            Err(SdpError::NoMsrpMedia)
        );
        for (attr, name) in [("max-size:lots", "max-size"), ("setup:sideways", "setup")] {
            let body =
                format!("v=0\r\nm=message 1 TCP/MSRP *\r\na=path:msrp://h:1/s;tcp\r\na={attr}\r\n");
            assert!(
                matches!(media(&body), Err(SdpError::BadAttribute { name: n, .. }) if n == name)
            );
        }
    }
}
