//! Message heads: start lines and header blocks (RFC 4975 §7, §9).

use bytes::Bytes;

use super::error::{DecodeError, FatalError, MessageError};
use super::fields::Fields;
use super::header::{
    ByteRange, FailureReport, HeaderError, StatusHeader, TransactionId, is_ident,
    parse_success_report, three_digits,
};
use super::status::StatusCode;
use super::uri::{Path, is_token_char};

/// A request method. `SEND` and `REPORT` are RFC 4975's, `AUTH` RFC 4976's;
/// any other all-caps word is kept so the receiver can answer `501`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// `SEND`: carries message content.
    Send,
    /// `REPORT`: end-to-end delivery status.
    Report,
    /// `AUTH`: a client authenticating to a relay (RFC 4976 §5).
    Auth,
    /// Any other method (`1*UPALPHA`).
    Other(Bytes),
}

impl Method {
    /// The wire word.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Method::Send => b"SEND",
            Method::Report => b"REPORT",
            Method::Auth => b"AUTH",
            Method::Other(m) => m,
        }
    }
}

/// The continuation flag of an end-line (RFC 4975 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// `$`: the last chunk of the message.
    Complete,
    /// `+`: more chunks of the message follow.
    More,
    /// `#`: the sender aborted the message.
    Aborted,
}

impl Flag {
    /// Maps a wire byte to a flag.
    pub fn from_byte(b: u8) -> Option<Flag> {
        match b {
            b'$' => Some(Flag::Complete),
            b'+' => Some(Flag::More),
            b'#' => Some(Flag::Aborted),
            _ => None,
        }
    }

    /// The wire byte.
    pub fn as_byte(self) -> u8 {
        match self {
            Flag::Complete => b'$',
            Flag::More => b'+',
            Flag::Aborted => b'#',
        }
    }
}

/// A request's head. `fields` holds every header in wire order (typed ones
/// included) so the head re-encodes byte for byte; the typed fields are
/// what the relay's logic reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// Transaction id.
    pub tid: TransactionId,
    /// Method.
    pub method: Method,
    /// To-Path (first URI: the next hop).
    pub to_path: Path,
    /// From-Path (last URI: the sender).
    pub from_path: Path,
    /// Message-ID, if present.
    pub message_id: Option<Bytes>,
    /// Byte-Range, if present (absent means the whole message in one chunk).
    pub byte_range: Option<ByteRange>,
    /// Success-Report, if present (absent means `no`).
    pub success_report: Option<bool>,
    /// Failure-Report, if present (absent means `yes`).
    pub failure_report: Option<FailureReport>,
    /// Status (REPORT requests).
    pub status: Option<StatusHeader>,
    /// Content-Type (present whenever a body follows).
    pub content_type: Option<Bytes>,
    /// Every header in wire order.
    pub fields: Fields,
    /// Whether the head ended with a blank line and a body follows.
    pub has_body: bool,
}

impl RequestHead {
    /// Failure-Report with the default of §7.1.2 applied.
    pub fn failure_report(&self) -> FailureReport {
        self.failure_report.unwrap_or(FailureReport::Yes)
    }

    /// Whether the sender wants a hop-by-hop transaction response: only if
    /// `Failure-Report` is `yes` (RFC 4975 §7.1.2; `partial` and `no` want
    /// none). REPORTs are never answered (§7.1.2).
    pub fn wants_response(&self) -> bool {
        self.method != Method::Report && self.failure_report() == FailureReport::Yes
    }

    /// Success-Report with the default (`no`) applied.
    pub fn wants_success_report(&self) -> bool {
        self.success_report.unwrap_or(false)
    }
}

/// A response (responses never carry a body, RFC 4975 §9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// The transaction id of the request answered.
    pub tid: TransactionId,
    /// The status code.
    pub code: StatusCode,
    /// The comment after the code, if any.
    pub comment: Option<Bytes>,
    /// To-Path.
    pub to_path: Path,
    /// From-Path.
    pub from_path: Path,
    /// Every header in wire order.
    pub fields: Fields,
}

/// A parsed start line.
#[derive(Debug, Clone)]
pub(crate) enum StartLine {
    Request(TransactionId, Method),
    Response(TransactionId, StatusCode, Option<Bytes>),
}

impl StartLine {
    pub(crate) fn tid(&self) -> &TransactionId {
        match self {
            StartLine::Request(t, _) | StartLine::Response(t, ..) => t,
        }
    }
}

/// Parses `MSRP <tid> <METHOD>` or `MSRP <tid> <code>[ <comment>]`; `line`
/// excludes the CRLF.
pub(crate) fn parse_start_line(line: Bytes) -> Result<StartLine, DecodeError> {
    if !line.starts_with(b"MSRP ") {
        return Err(FatalError::BadStartLine.into());
    }
    let rest = line.slice(5..);
    let sp = memchr::memchr(b' ', &rest).ok_or(FatalError::BadStartLine)?;
    let tid = TransactionId::new(rest.slice(..sp)).ok_or(FatalError::BadTransactionId)?;
    let word_end = memchr::memchr(b' ', &rest[sp + 1..]).map_or(rest.len(), |i| sp + 1 + i);
    let word = rest.slice(sp + 1..word_end);
    if let Some(code) = three_digits(&word) {
        let comment = (word_end < rest.len()).then(|| rest.slice(word_end + 1..));
        return Ok(StartLine::Response(tid, StatusCode(code), comment));
    }
    if word.is_empty() || word_end != rest.len() || !word.iter().all(u8::is_ascii_uppercase) {
        return Err(DecodeError::Request {
            tid,
            status: StatusCode::BAD_REQUEST,
            reason: MessageError::BadMethod,
        });
    }
    let method = match &word[..] {
        b"SEND" => Method::Send,
        b"REPORT" => Method::Report,
        b"AUTH" => Method::Auth,
        _ => Method::Other(word),
    };
    Ok(StartLine::Request(tid, method))
}

/// Splits a block of CRLF-terminated header lines into fields (offsets;
/// no per-field allocation or reference count).
pub(crate) fn parse_fields(block: Bytes) -> Result<Fields, MessageError> {
    if std::str::from_utf8(&block).is_err() {
        return Err(MessageError::NotUtf8);
    }
    let mut spans = smallvec::SmallVec::new();
    let mut start = 0;
    while start < block.len() {
        let nl = memchr::memchr(b'\n', &block[start..]).map_or(block.len(), |i| start + i);
        let line_end = nl.saturating_sub(1).max(start); // drop the CR
        let colon = memchr::memchr(b':', &block[start..line_end])
            .map(|i| start + i)
            .ok_or(MessageError::BadHeaderLine)?;
        let name = &block[start..colon];
        // §9: hname = ALPHA *token
        if !name.first().is_some_and(u8::is_ascii_alphabetic)
            || !name.iter().all(|&b| is_token_char(b))
        {
            return Err(MessageError::BadHeaderLine);
        }
        let mut vstart = colon + 1;
        while vstart < line_end && matches!(block[vstart], b' ' | b'\t') {
            vstart += 1;
        }
        spans.push([start as u32, colon as u32, vstart as u32, line_end as u32]);
        start = nl + 1;
    }
    Ok(Fields::new(block, spans))
}

/// The header names the relay reads, recognised by length first: a head
/// has a handful of fields and this runs once per field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    ToPath,
    FromPath,
    MessageId,
    ByteRange,
    SuccessReport,
    FailureReport,
    Status,
    ContentType,
    Other,
}

fn known(name: &[u8]) -> Known {
    // Senders write the canonical case almost always: try the exact bytes
    // (a short memcmp) before the case-insensitive compare ABNF asks for.
    let is = |n: &str| name == n.as_bytes() || name.eq_ignore_ascii_case(n.as_bytes());
    match name.len() {
        6 if is("Status") => Known::Status,
        7 if is("To-Path") => Known::ToPath,
        9 if is("From-Path") => Known::FromPath,
        10 if is("Message-ID") => Known::MessageId,
        10 if is("Byte-Range") => Known::ByteRange,
        12 if is("Content-Type") => Known::ContentType,
        14 if is("Success-Report") => Known::SuccessReport,
        14 if is("Failure-Report") => Known::FailureReport,
        _ => Known::Other,
    }
}

fn once<T>(slot: &mut Option<T>, name: &'static str, v: T) -> Result<(), MessageError> {
    if slot.replace(v).is_some() {
        return Err(MessageError::Duplicate(name));
    }
    Ok(())
}

fn path(fields: &Fields, i: usize, name: &'static str) -> Result<Path, MessageError> {
    let raw = fields.value_bytes(i).unwrap_or_default();
    Path::parse(raw).map_err(|e| MessageError::Path(name, e))
}

/// Builds a request head from its header fields.
pub(crate) fn build_request(
    tid: TransactionId,
    method: Method,
    fields: Fields,
    has_body: bool,
) -> Result<RequestHead, MessageError> {
    let (mut to, mut from) = (None, None);
    let (mut message_id, mut byte_range, mut success_report) = (None, None, None);
    let (mut failure_report, mut status, mut content_type) = (None, None, None);
    for (i, (name, value)) in fields.iter().enumerate() {
        match known(name) {
            Known::ToPath => once(&mut to, "To-Path", path(&fields, i, "To-Path")?)?,
            Known::FromPath => once(&mut from, "From-Path", path(&fields, i, "From-Path")?)?,
            Known::MessageId => {
                if !is_ident(value) {
                    return Err(HeaderError("Message-ID").into());
                }
                once(
                    &mut message_id,
                    "Message-ID",
                    fields.value_bytes(i).unwrap_or_default(),
                )?;
            }
            Known::ByteRange => once(&mut byte_range, "Byte-Range", ByteRange::parse(value)?)?,
            Known::SuccessReport => once(
                &mut success_report,
                "Success-Report",
                parse_success_report(value)?,
            )?,
            Known::FailureReport => once(
                &mut failure_report,
                "Failure-Report",
                FailureReport::parse(value)?,
            )?,
            Known::Status => {
                let v = StatusHeader::parse(&fields.value_bytes(i).unwrap_or_default())?;
                once(&mut status, "Status", v)?
            }
            Known::ContentType => {
                if value.is_empty() || !value.contains(&b'/') {
                    return Err(HeaderError("Content-Type").into());
                }
                once(
                    &mut content_type,
                    "Content-Type",
                    fields.value_bytes(i).unwrap_or_default(),
                )?;
            }
            Known::Other => {}
        }
    }
    if has_body && content_type.is_none() {
        return Err(MessageError::MissingContentType);
    }
    Ok(RequestHead {
        tid,
        method,
        to_path: to.ok_or(MessageError::Missing("To-Path"))?,
        from_path: from.ok_or(MessageError::Missing("From-Path"))?,
        message_id,
        byte_range,
        success_report,
        failure_report,
        status,
        content_type,
        fields,
        has_body,
    })
}

/// Builds a response head from its header fields.
pub(crate) fn build_response(
    tid: TransactionId,
    code: StatusCode,
    comment: Option<Bytes>,
    fields: Fields,
) -> Result<ResponseHead, MessageError> {
    let (mut to, mut from) = (None, None);
    for (i, (name, _)) in fields.iter().enumerate() {
        match known(name) {
            Known::ToPath => once(&mut to, "To-Path", path(&fields, i, "To-Path")?)?,
            Known::FromPath => once(&mut from, "From-Path", path(&fields, i, "From-Path")?)?,
            _ => {}
        }
    }
    Ok(ResponseHead {
        tid,
        code,
        comment,
        to_path: to.ok_or(MessageError::Missing("To-Path"))?,
        from_path: from.ok_or(MessageError::Missing("From-Path"))?,
        fields,
    })
}
