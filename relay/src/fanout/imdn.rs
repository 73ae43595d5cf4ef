//! IMDN recognition (RFC 5438 inside `message/cpim`, RFC 3862) and
//! exactly-once aggregation (CPM-MLD-004/005/024/025, CPM-MLD-022/023).
//!
//! A multi-device recipient's phone, tablet and PC each answer a chat
//! message with their own `delivered` (and later `displayed`) notification;
//! the sender must see exactly one of each. The engine hands every complete
//! `message/cpim` body coming from a device to [`parse_cpim`]; a
//! [`Notification`] then goes through the session's [`ImdnAggregator`],
//! which says whether to forward it upstream. Ordinary chat messages yield
//! the `imdn.Message-ID` and the requested dispositions instead.
//!
//! Bad input never panics: a malformed body gives an [`ImdnError`] and the
//! engine forwards the body as ordinary content.
//!
//! Leniency, deliberately (each avoids a duplicate reaching the sender):
//! - CPIM header *names* are compared ignoring ASCII case, although RFC 3862
//!   §3 makes them case-sensitive; namespace prefixes compare exactly.
//! - The MIME headers of the encapsulated part may follow the CPIM headers
//!   without the blank line of RFC 3862 §2 (that is how the examples of
//!   RFC 5438 §7.1.1.3 and §7.2.1 are printed): a `Content-Type` among the
//!   message headers ends the metadata.
//! - `Content-Disposition: notification` (RFC 5438 §9) is not required; if
//!   present with another value, the body is not an IMDN.
//! - `Content-Length` is ignored: MSRP framing delimits the body.

mod aggregator;
#[cfg(test)]
mod tests;
mod xml;

pub use aggregator::{ImdnAggregator, SuppressReason, Verdict};

/// The MSRP `Content-Type` of a CPIM body.
pub const CPIM_CONTENT_TYPE: &str = "message/cpim";
/// The MIME type of an IMDN payload (RFC 5438 §11.1.8).
pub const IMDN_CONTENT_TYPE: &str = "message/imdn+xml";
/// The CPIM header namespace of IMDN (RFC 5438 §6.1).
pub const IMDN_HEADER_NAMESPACE: &str = "urn:ietf:params:imdn";
/// The XML namespace of an IMDN document (RFC 5438 §11.1).
pub const IMDN_XML_NAMESPACE: &str = "urn:ietf:params:xml:ns:imdn";
/// The default CPIM header namespace (RFC 3862 §7.2).
const CPIM_DEFAULT_NAMESPACE: &str = "urn:ietf:params:cpim-headers:";

/// Longest accepted message id (IMDN `<message-id>` or `imdn.Message-ID`):
/// ids are kept by the aggregator, so they must be bounded.
pub const MAX_ID_LEN: usize = 256;
/// Most header lines accepted in each header block.
pub const MAX_HEADERS: usize = 64;

/// Why a `message/cpim` body could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum ImdnError {
    /// A header line is not UTF-8.
    #[error("header is not UTF-8")]
    Utf8,
    /// A header line has no `name: value` shape.
    #[error("malformed header line {0}")]
    MalformedHeader(usize),
    /// An `NS` header has no `[prefix] <uri>` shape (RFC 3862 §4.6).
    #[error("malformed NS header")]
    MalformedNs,
    /// A header block is not terminated by a blank line.
    #[error("header block not terminated")]
    UnterminatedHeaders,
    /// More than [`MAX_HEADERS`] lines in a header block.
    #[error("too many headers")]
    TooManyHeaders,
    /// A header that must be unique appears twice.
    #[error("duplicate {0} header")]
    DuplicateHeader(&'static str),
    /// A value is longer than the bound kept for it.
    #[error("{0} too long")]
    TooLong(&'static str),
    /// The IMDN payload is not well-formed XML.
    #[error("IMDN XML: {0}")]
    Xml(#[from] quick_xml::Error),
    /// The XML is not an `<imdn>` document of RFC 5438 §11.
    #[error("not an IMDN document: {0}")]
    NotImdn(&'static str),
    /// Notification kind and status do not go together (RFC 5438 §11.1.7).
    #[error("status {status:?} is not valid in a {kind:?} notification")]
    InvalidStatus {
        /// The notification element.
        kind: NotificationKind,
        /// The status element.
        status: Status,
    },
}

/// Which disposition an IMDN reports (RFC 5438 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotificationKind {
    /// `<delivery-notification>`.
    Delivery,
    /// `<display-notification>`.
    Display,
    /// `<processing-notification>` (intermediaries only, §7.2.1, §8).
    Processing,
}

/// The `<status>` of an IMDN (RFC 5438 §11.1.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// `<delivered/>` (delivery).
    Delivered,
    /// `<displayed/>` (display).
    Displayed,
    /// `<processed/>` (processing).
    Processed,
    /// `<stored/>` (processing).
    Stored,
    /// `<failed/>` (delivery).
    Failed,
    /// `<forbidden/>`: the disposition was denied (any kind).
    Forbidden,
    /// `<error/>`: internal error (any kind).
    Error,
}

impl Status {
    /// Whether the status reports success (the disposition happened).
    pub fn is_success(self) -> bool {
        matches!(
            self,
            Self::Delivered | Self::Displayed | Self::Processed | Self::Stored
        )
    }
}

/// A recognised IMDN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// `<message-id>`: the `imdn.Message-ID` of the message reported on.
    pub original_message_id: String,
    /// Which disposition is reported.
    pub kind: NotificationKind,
    /// The reported status.
    pub status: Status,
    /// `<datetime>` of the original message, if present.
    pub datetime: Option<String>,
    /// `<recipient-uri>`, if present.
    pub recipient_uri: Option<String>,
}

/// The notifications a sender asked for with `imdn.Disposition-Notification`
/// (RFC 5438 §7.1.1.3); unknown values are ignored as §7.2.1 says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DispositionRequest {
    /// `positive-delivery`.
    pub positive_delivery: bool,
    /// `negative-delivery`.
    pub negative_delivery: bool,
    /// `display`.
    pub display: bool,
    /// `processing`.
    pub processing: bool,
}

impl DispositionRequest {
    /// Whether no notification was requested.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    fn parse(value: &str) -> Self {
        let mut request = Self::default();
        for item in value.split(',') {
            let name = item.split(';').next().unwrap_or_default().trim();
            let is = |word: &str| name.eq_ignore_ascii_case(word);
            if is("positive-delivery") {
                request.positive_delivery = true;
            } else if is("negative-delivery") {
                request.negative_delivery = true;
            } else if is("display") {
                request.display = true;
            } else if is("processing") {
                request.processing = true;
            }
        }
        request
    }
}

/// What [`parse_cpim`] found in a `message/cpim` body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CpimMessage {
    /// The CPIM `From` header value, as written.
    pub from: Option<String>,
    /// The CPIM `To` header values, as written.
    pub to: Vec<String>,
    /// The CPIM `DateTime` header value.
    pub datetime: Option<String>,
    /// The IMDN-namespace `Message-ID` (of this message; for an IMDN that is
    /// the IMDN's own id, not the reported one, RFC 5438 §7.2.1).
    pub message_id: Option<String>,
    /// The requested notifications; always empty for an IMDN (§7.2.1: a
    /// request inside an IMDN must be ignored).
    pub disposition: DispositionRequest,
    /// The media type of the encapsulated content (lower case, no
    /// parameters), e.g. `text/plain`.
    pub content_type: Option<String>,
    /// Where the encapsulated content starts in the body.
    pub content_offset: usize,
    /// `Some` when the body is an IMDN (RFC 5438 §9).
    pub notification: Option<Notification>,
}

/// Whether an MSRP `Content-Type` value names a CPIM body.
pub fn is_cpim(content_type: &str) -> bool {
    media_type(content_type).eq_ignore_ascii_case(CPIM_CONTENT_TYPE)
}

/// The media type of a `Content-Type` value without its parameters.
fn media_type(value: &str) -> &str {
    value.split(';').next().unwrap_or_default().trim()
}

/// Parses a complete `message/cpim` body (the MSRP body, starting with the
/// CPIM message headers) and recognises an IMDN in it.
pub fn parse_cpim(body: &[u8]) -> Result<CpimMessage, ImdnError> {
    let mut msg = CpimMessage::default();
    let mut lines = Lines {
        body,
        pos: 0,
        number: 0,
    };
    let mut namespaces: Vec<(String, String)> = Vec::new();
    let mut default_ns = CPIM_DEFAULT_NAMESPACE.to_owned();
    let mut mime: Vec<(&str, String)> = Vec::new();
    let mut count = 0;
    loop {
        let line = lines.next_line()?.ok_or(ImdnError::UnterminatedHeaders)?;
        if line.is_empty() {
            break;
        }
        if let (true, Some((_, value))) = (line.starts_with([' ', '\t']), mime.last_mut()) {
            value.push(' ');
            value.push_str(line.trim());
            continue;
        }
        count += 1;
        if count > MAX_HEADERS {
            return Err(ImdnError::TooManyHeaders);
        }
        let (name, value) = split_header(line, lines.number)?;
        if name == "NS" {
            let (prefix, uri) = parse_ns(value)?;
            match prefix {
                Some(prefix) => namespaces.push((prefix.to_owned(), uri.to_owned())),
                None => default_ns = uri.to_owned(),
            }
            continue;
        }
        // RFC 5438 examples put the MIME headers right after the CPIM ones.
        if is_mime_header(name) || !mime.is_empty() {
            mime.push((name, value.to_owned()));
            continue;
        }
        let (ns, local) = match name.split_once('.') {
            // RFC 3862 §3.4: the latest declaration of a prefix wins; an
            // undeclared prefix cannot be resolved, so the header is skipped.
            Some((prefix, local)) => match namespaces.iter().rev().find(|(p, _)| p == prefix) {
                Some((_, uri)) => (uri.as_str(), local),
                None => continue,
            },
            None => (default_ns.as_str(), name),
        };
        let is = |want_ns: &str, want: &str| {
            ns.eq_ignore_ascii_case(want_ns) && local.eq_ignore_ascii_case(want)
        };
        if is(IMDN_HEADER_NAMESPACE, "Message-ID") {
            if msg.message_id.is_some() {
                return Err(ImdnError::DuplicateHeader("Message-ID"));
            }
            if value.len() > MAX_ID_LEN {
                return Err(ImdnError::TooLong("Message-ID"));
            }
            msg.message_id = Some(value.to_owned());
        } else if is(IMDN_HEADER_NAMESPACE, "Disposition-Notification") {
            msg.disposition = DispositionRequest::parse(value);
        } else if is(CPIM_DEFAULT_NAMESPACE, "From") {
            msg.from = Some(value.to_owned());
        } else if is(CPIM_DEFAULT_NAMESPACE, "To") {
            msg.to.push(value.to_owned());
        } else if is(CPIM_DEFAULT_NAMESPACE, "DateTime") {
            msg.datetime = Some(value.to_owned());
        }
    }
    if mime.is_empty() {
        read_mime_headers(&mut lines, &mut mime)?;
    }
    msg.content_offset = lines.pos;
    let mut disposition = None;
    for (name, value) in &mime {
        if name.eq_ignore_ascii_case("Content-Type") {
            msg.content_type = Some(media_type(value).to_ascii_lowercase());
        } else if name.eq_ignore_ascii_case("Content-Disposition") {
            disposition = Some(media_type(value).to_ascii_lowercase());
        }
    }
    let is_imdn = msg.content_type.as_deref() == Some(IMDN_CONTENT_TYPE)
        && disposition.as_deref().is_none_or(|d| d == "notification");
    if is_imdn {
        let content = body.get(lines.pos..).unwrap_or_default();
        msg.notification = Some(xml::parse_imdn(content)?);
        msg.disposition = DispositionRequest::default();
    }
    Ok(msg)
}

/// Reads the MIME header block of the encapsulated part (RFC 3862 §2.4),
/// with RFC 5322 folding, up to its blank line.
fn read_mime_headers<'a>(
    lines: &mut Lines<'a>,
    mime: &mut Vec<(&'a str, String)>,
) -> Result<(), ImdnError> {
    loop {
        let line = lines.next_line()?.ok_or(ImdnError::UnterminatedHeaders)?;
        if line.is_empty() {
            return Ok(());
        }
        if line.starts_with([' ', '\t']) {
            let (_, value) = mime
                .last_mut()
                .ok_or(ImdnError::MalformedHeader(lines.number))?;
            value.push(' ');
            value.push_str(line.trim());
            continue;
        }
        if mime.len() >= MAX_HEADERS {
            return Err(ImdnError::TooManyHeaders);
        }
        let (name, value) = split_header(line, lines.number)?;
        mime.push((name, value.to_owned()));
    }
}

/// Whether a header name belongs to the encapsulated MIME part.
fn is_mime_header(name: &str) -> bool {
    name.len() > 8
        && name
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("Content-"))
}

/// Splits `Name: value`; RFC 3862 §3 wants exactly one space after the
/// colon, any amount of white space is accepted.
fn split_header(line: &str, number: usize) -> Result<(&str, &str), ImdnError> {
    let (name, value) = line
        .split_once(':')
        .ok_or(ImdnError::MalformedHeader(number))?;
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
    if !valid {
        return Err(ImdnError::MalformedHeader(number));
    }
    Ok((name, value.trim()))
}

/// Parses an `NS` value: `[prefix] <uri>` (RFC 3862 §4.6).
fn parse_ns(value: &str) -> Result<(Option<&str>, &str), ImdnError> {
    let open = value.find('<').ok_or(ImdnError::MalformedNs)?;
    let uri = value
        .get(open + 1..)
        .and_then(|rest| rest.strip_suffix('>'))
        .filter(|uri| !uri.is_empty() && !uri.contains(['<', '>']))
        .ok_or(ImdnError::MalformedNs)?;
    let prefix = value.get(..open).unwrap_or_default().trim();
    if prefix.is_empty() {
        return Ok((None, uri));
    }
    if prefix.contains(|c: char| c.is_whitespace() || c == '.') {
        return Err(ImdnError::MalformedNs);
    }
    Ok((Some(prefix), uri))
}

/// Line iterator over header blocks: CRLF or bare LF, UTF-8 checked.
struct Lines<'a> {
    body: &'a [u8],
    pos: usize,
    number: usize,
}

impl<'a> Lines<'a> {
    fn next_line(&mut self) -> Result<Option<&'a str>, ImdnError> {
        let rest = self.body.get(self.pos..).unwrap_or_default();
        let Some(nl) = memchr::memchr(b'\n', rest) else {
            return Ok(None);
        };
        self.pos += nl + 1;
        self.number += 1;
        let raw = rest.get(..nl).unwrap_or_default();
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        std::str::from_utf8(raw)
            .map(Some)
            .map_err(|_| ImdnError::Utf8)
    }
}
