//! Splitting an SDP body into verbatim lines and sections (RFC 4566 §5).

use std::fmt;

use super::SdpError;

/// How a line ended on the wire. Kept so that a rewritten body differs from
/// the original only in the lines that were rewritten: RFC 4566 §5 mandates
/// CRLF but tells parsers to accept a bare LF, and some clients send LF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEnding {
    /// `\r\n`
    CrLf,
    /// `\n`
    Lf,
    /// Last line of a body without a trailing line break.
    None,
}

impl LineEnding {
    /// The bytes of this ending.
    pub fn as_str(self) -> &'static str {
        match self {
            LineEnding::CrLf => "\r\n",
            LineEnding::Lf => "\n",
            LineEnding::None => "",
        }
    }
}

/// One line of the body, without its ending, plus the ending it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpLine {
    pub(super) text: String,
    pub(super) ending: LineEnding,
}

impl SdpLine {
    pub(super) fn new(text: String, ending: LineEnding) -> Self {
        SdpLine { text, ending }
    }

    /// The line without its ending, e.g. `a=path:msrp://...`.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The ending the line came with.
    pub fn ending(&self) -> LineEnding {
        self.ending
    }

    /// The type letter (`v`, `o`, `c`, `m`, `a`, ...) when the line has the
    /// `<type>=<value>` form.
    pub fn kind(&self) -> Option<u8> {
        match self.text.as_bytes() {
            [kind, b'=', ..] => Some(*kind),
            _ => None,
        }
    }

    /// For an `a=` line: the attribute name and, for a value attribute
    /// (`a=<name>:<value>`), its value.
    pub fn attribute(&self) -> Option<(&str, Option<&str>)> {
        let rest = self.text.strip_prefix("a=")?;
        Some(match rest.split_once(':') {
            Some((name, value)) => (name, Some(value)),
            None => (rest, None),
        })
    }
}

/// One media section: the `m=` line and the lines up to the next `m=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSection {
    /// Index of this section among the `m=` lines (0 = first).
    pub index: usize,
    /// Line index of the `m=` line.
    pub m_line: usize,
    /// One past the last line index of the section.
    pub end: usize,
    /// Media type (`message` for MSRP).
    pub media: String,
    /// Port of the `m=` line (0 = stream rejected/disabled, RFC 3264 §6).
    pub port: u16,
    /// Transport protocol (`TCP/MSRP`, `TCP/TLS/MSRP`, `RTP/AVP`, ...).
    pub proto: String,
    /// Format list (`*` for MSRP, RFC 4975 §8.1).
    pub formats: Vec<String>,
    /// Line index of the media-level `c=`, if any.
    pub connection: Option<usize>,
    /// Byte range of the port field (without `/count`) in the `m=` line.
    pub(super) port_span: (usize, usize),
}

impl MediaSection {
    /// `m=message <port> TCP/MSRP *` or `TCP/TLS/MSRP` (RFC 4975 §8.1).
    /// The protocol is compared case-insensitively: RFC 4566 tokens are
    /// case-sensitive, but being lenient here costs nothing and some
    /// clients send `tcp/msrp`.
    pub fn is_msrp(&self) -> bool {
        self.media == "message"
            && (self.proto.eq_ignore_ascii_case("TCP/MSRP")
                || self.proto.eq_ignore_ascii_case("TCP/TLS/MSRP"))
    }

    /// `TCP/TLS/MSRP`: the session runs over TLS (`msrps:` URIs).
    pub fn is_tls(&self) -> bool {
        self.proto.eq_ignore_ascii_case("TCP/TLS/MSRP")
    }
}

/// A parsed SDP body. Serialising it ([`fmt::Display`]) gives back the
/// input byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdp {
    pub(super) lines: Vec<SdpLine>,
    /// Line index of the session-level `c=`, if any.
    pub(super) session_connection: Option<usize>,
    pub(super) media: Vec<MediaSection>,
}

impl Sdp {
    /// Parses a body as received in a SIP message.
    pub fn parse(body: &[u8]) -> Result<Sdp, SdpError> {
        let text = std::str::from_utf8(body).map_err(|e| SdpError::NotUtf8 {
            offset: e.valid_up_to(),
        })?;
        Sdp::parse_str(text)
    }

    /// Parses a body already known to be text.
    pub fn parse_str(text: &str) -> Result<Sdp, SdpError> {
        let lines = split_lines(text);
        if lines.first().is_none_or(|l| l.kind() != Some(b'v')) {
            return Err(SdpError::NoVersion);
        }
        let mut session_connection = None;
        let mut media: Vec<MediaSection> = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            match line.kind() {
                Some(b'm') => {
                    if let Some(last) = media.last_mut() {
                        last.end = i;
                    }
                    media.push(parse_m_line(media.len(), i, line.text())?);
                }
                Some(b'c') => match media.last_mut() {
                    // RFC 4566 §5.7: at most one c= per level; the first one
                    // wins if a sender repeats it.
                    Some(m) => {
                        if m.connection.is_none() {
                            m.connection = Some(i);
                        }
                    }
                    None => {
                        if session_connection.is_none() {
                            session_connection = Some(i);
                        }
                    }
                },
                _ => {}
            }
        }
        if let Some(last) = media.last_mut() {
            last.end = lines.len();
        }
        Ok(Sdp {
            lines,
            session_connection,
            media,
        })
    }

    /// All lines, in order.
    pub fn lines(&self) -> &[SdpLine] {
        &self.lines
    }

    /// All media sections, in order.
    pub fn media(&self) -> &[MediaSection] {
        &self.media
    }

    /// Line index of the session-level `c=`, if any.
    pub fn session_connection(&self) -> Option<usize> {
        self.session_connection
    }

    /// One past the last session-level line (the first `m=` line).
    pub fn session_end(&self) -> usize {
        self.media.first().map_or(self.lines.len(), |m| m.m_line)
    }

    /// The address of a `c=` line (`c=<nettype> <addrtype> <address>`),
    /// without any `/ttl` or `/count` suffix.
    pub(super) fn connection_address(&self, line: usize) -> Option<&str> {
        let value = self.lines.get(line)?.text.get(2..)?;
        let addr = value.split(' ').nth(2)?;
        addr.split('/').next()
    }
}

impl fmt::Display for Sdp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.lines {
            f.write_str(&line.text)?;
            f.write_str(line.ending.as_str())?;
        }
        Ok(())
    }
}

fn split_lines(text: &str) -> Vec<SdpLine> {
    let mut lines = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        match rest.find('\n') {
            Some(nl) => {
                let (line, ending) = match rest[..nl].strip_suffix('\r') {
                    Some(l) => (l, LineEnding::CrLf),
                    None => (&rest[..nl], LineEnding::Lf),
                };
                lines.push(SdpLine::new(line.to_owned(), ending));
                rest = &rest[nl + 1..];
            }
            None => {
                lines.push(SdpLine::new(rest.to_owned(), LineEnding::None));
                rest = "";
            }
        }
    }
    lines
}

/// `m=<media> <port>[/<count>] <proto> <fmt> ...` (RFC 4566 §5.14).
fn parse_m_line(index: usize, line: usize, text: &str) -> Result<MediaSection, SdpError> {
    let bad = || SdpError::BadMediaLine {
        line: line + 1,
        text: text.to_owned(),
    };
    let value = text.get(2..).ok_or_else(bad)?;
    let mut fields = value.split(' ');
    let (Some(media), Some(port_field), Some(proto)) =
        (fields.next(), fields.next(), fields.next())
    else {
        return Err(bad());
    };
    let formats: Vec<String> = fields
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect();
    if media.is_empty() || proto.is_empty() || formats.is_empty() {
        return Err(bad());
    }
    // RFC 4566 §5.14: `<port>` or `<port>/<number of ports>`, digits.
    let (port_str, count) = port_field
        .split_once('/')
        .map_or((port_field, None), |(p, n)| (p, Some(n)));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let port = port_str
        .parse::<u16>()
        .ok()
        .filter(|_| digits(port_str) && count.is_none_or(digits))
        .ok_or_else(|| SdpError::BadPort {
            line: line + 1,
            port: port_field.to_owned(),
        })?;
    let start = 2 + media.len() + 1;
    Ok(MediaSection {
        index,
        m_line: line,
        end: line + 1,
        media: media.to_owned(),
        port,
        proto: proto.to_owned(),
        formats,
        connection: None,
        port_span: (start, start + port_str.len()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHAT: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
        m=audio 4000 RTP/AVP 0\r\nc=IN IP4 192.0.2.9\r\na=sendrecv\r\n\
        m=message 7394 TCP/MSRP *\r\na=path:msrp://192.0.2.1:7394/abc;tcp\r\n";

    #[test]
    fn display_gives_back_the_input_byte_for_byte() {
        for body in [
            CHAT,
            "v=0\nm=message 1 TCP/MSRP *\n",
            "v=0\r\nm=message 1 TCP/MSRP *\na=x",
            "v=0\r\n\r\nx\r\r\n",
        ] {
            assert_eq!(Sdp::parse_str(body).unwrap().to_string(), body);
        }
    }

    #[test]
    fn sections_and_connections_are_found() {
        let sdp = Sdp::parse_str(CHAT).unwrap();
        assert_eq!(sdp.session_connection(), Some(3));
        assert_eq!(sdp.media().len(), 2);
        let audio = &sdp.media()[0];
        assert_eq!((audio.m_line, audio.end, audio.connection), (5, 8, Some(6)));
        assert!(!audio.is_msrp());
        let msrp = &sdp.media()[1];
        assert_eq!((msrp.m_line, msrp.end, msrp.connection), (8, 10, None));
        assert!(msrp.is_msrp() && !msrp.is_tls());
        assert_eq!(msrp.port, 7394);
        assert_eq!(sdp.session_end(), 5);
        assert_eq!(sdp.connection_address(3), Some("192.0.2.1"));
    }

    #[test]
    fn line_endings_are_recorded_per_line() {
        let sdp = Sdp::parse_str("v=0\r\ns=-\nt=0 0").unwrap();
        let endings: Vec<_> = sdp.lines().iter().map(SdpLine::ending).collect();
        assert_eq!(
            endings,
            [LineEnding::CrLf, LineEnding::Lf, LineEnding::None]
        );
    }

    #[test]
    fn errors_are_specific() {
        assert_eq!(
            Sdp::parse(b"v=0\r\n\xff\r\n"),
            Err(SdpError::NotUtf8 { offset: 5 })
        );
        assert_eq!(
            Sdp::parse_str("o=- 1 1 IN IP4 x\r\n"),
            Err(SdpError::NoVersion)
        );
        assert_eq!(Sdp::parse_str(""), Err(SdpError::NoVersion));
        assert!(matches!(
            Sdp::parse_str("v=0\r\nm=message 7394\r\n"),
            Err(SdpError::BadMediaLine { line: 2, .. })
        ));
        assert!(matches!(
            Sdp::parse_str("v=0\r\nm=message 70000 TCP/MSRP *\r\n"),
            Err(SdpError::BadPort { line: 2, .. })
        ));
        assert!(matches!(
            Sdp::parse_str("v=0\r\nm=message +1 TCP/MSRP *\r\n"),
            Err(SdpError::BadPort { .. })
        ));
    }

    #[test]
    fn tls_protocol_and_port_count_are_understood() {
        let sdp = Sdp::parse_str("v=0\r\nm=message 2855/2 tcp/tls/msrp *\r\n").unwrap();
        let m = &sdp.media()[0];
        assert!(m.is_msrp() && m.is_tls());
        assert_eq!(m.port, 2855);
        assert_eq!(&sdp.lines()[1].text()[m.port_span.0..m.port_span.1], "2855");
        // Found by the `sdp` fuzz target: a port count that is no number.
        for bad in ["05/x", "7/", "7/1/2", "7/?TCP/MSRP"] {
            let r = Sdp::parse_str(&format!("v=0\r\nm=message {bad} TCP/MSRP *\r\n"));
            assert!(matches!(r, Err(SdpError::BadPort { .. })), "{bad}: {r:?}");
        }
    }
}
