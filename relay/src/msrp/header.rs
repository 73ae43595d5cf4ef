//! Typed MSRP header values (RFC 4975 §9) and the transaction id / ident.

use bytes::Bytes;

use super::status::StatusCode;

/// A transaction id: an `ident` of 4 to 32 characters (RFC 4975 §9).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TransactionId(Bytes);

impl TransactionId {
    /// Validates `raw` as an ident.
    pub fn new(raw: Bytes) -> Option<TransactionId> {
        is_ident(&raw).then_some(TransactionId(raw))
    }

    /// A transaction id from static text, checked.
    pub fn from_static(s: &'static str) -> Option<TransactionId> {
        TransactionId::new(Bytes::from_static(s.as_bytes()))
    }

    /// The wire bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for TransactionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", String::from_utf8_lossy(&self.0))
    }
}

impl std::fmt::Display for TransactionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", String::from_utf8_lossy(&self.0))
    }
}

/// A header value that does not match its grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad {0} header value")]
pub struct HeaderError(pub &'static str);

/// RFC 4975 §9 `ident`: `ALPHANUM 3*31ident-char`, 4 to 32 characters.
/// Used for transaction ids and Message-IDs.
pub fn is_ident(s: &[u8]) -> bool {
    (4..=32).contains(&s.len())
        && s[0].is_ascii_alphanumeric()
        && s[1..]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+' | b'%' | b'='))
}

/// A `Byte-Range: start-end/total` value (RFC 4975 §7.1.1). `end` and
/// `total` are `None` where the wire says `*` (not yet known).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte of this chunk in the whole message, counting from 1.
    pub start: u64,
    /// Last byte of this chunk, if known.
    pub end: Option<u64>,
    /// Size of the whole message, if known.
    pub total: Option<u64>,
}

impl ByteRange {
    /// Parses `1-25/25`, `1-*/*`, `26-50/*` and the like. Rejects a start of
    /// 0, an end before `start - 1` (an empty chunk is `n-(n-1)`), and an end
    /// past a known total.
    pub fn parse(v: &[u8]) -> Result<ByteRange, HeaderError> {
        const E: HeaderError = HeaderError("Byte-Range");
        let dash = v.iter().position(|&b| b == b'-').ok_or(E)?;
        let slash = v.iter().position(|&b| b == b'/').ok_or(E)?;
        if slash < dash {
            return Err(E);
        }
        let start = parse_u64(&v[..dash]).ok_or(E)?;
        let end = star_or_u64(&v[dash + 1..slash]).ok_or(E)?;
        let total = star_or_u64(&v[slash + 1..]).ok_or(E)?;
        if start == 0 {
            return Err(E);
        }
        if let Some(end) = end
            && (end + 1 < start || total.is_some_and(|t| end > t))
        {
            return Err(E);
        }
        if total.is_some_and(|t| start > t.saturating_add(1)) {
            return Err(E);
        }
        Ok(ByteRange { start, end, total })
    }

    /// The chunk's length if its end is known.
    pub fn len(&self) -> Option<u64> {
        self.end.map(|e| (e + 1).saturating_sub(self.start))
    }

    /// True if the end is known and the chunk is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
}

fn parse_u64(d: &[u8]) -> Option<u64> {
    if d.is_empty() || d.len() > 19 || !d.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(d.iter().fold(0u64, |n, &c| n * 10 + u64::from(c - b'0')))
}

fn star_or_u64(d: &[u8]) -> Option<Option<u64>> {
    if d == b"*" {
        Some(None)
    } else {
        parse_u64(d).map(Some)
    }
}

/// `Failure-Report` (RFC 4975 §7.1.2): `yes` is the default when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReport {
    /// Responses and failure REPORTs are wanted.
    Yes,
    /// No response and no failure REPORT.
    No,
    /// Only failure REPORTs, no responses (only for negative outcomes).
    Partial,
}

impl FailureReport {
    /// Parses `yes`, `no`, `partial`.
    pub fn parse(v: &[u8]) -> Result<FailureReport, HeaderError> {
        // ABNF literals are case-insensitive (RFC 4234 §2.3).
        if v.eq_ignore_ascii_case(b"yes") {
            Ok(FailureReport::Yes)
        } else if v.eq_ignore_ascii_case(b"no") {
            Ok(FailureReport::No)
        } else if v.eq_ignore_ascii_case(b"partial") {
            Ok(FailureReport::Partial)
        } else {
            Err(HeaderError("Failure-Report"))
        }
    }

    /// The wire word.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReport::Yes => "yes",
            FailureReport::No => "no",
            FailureReport::Partial => "partial",
        }
    }
}

/// Parses a `Success-Report` value (`yes` / `no`; absent means `no`).
pub fn parse_success_report(v: &[u8]) -> Result<bool, HeaderError> {
    if v.eq_ignore_ascii_case(b"yes") {
        Ok(true)
    } else if v.eq_ignore_ascii_case(b"no") {
        Ok(false)
    } else {
        Err(HeaderError("Success-Report"))
    }
}

/// A REPORT's `Status: namespace code [comment]` header (RFC 4975 §7.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusHeader {
    /// Three digits; `000` for RFC 4975 codes.
    pub namespace: u16,
    /// The status code reported.
    pub code: StatusCode,
    /// The optional comment text.
    pub comment: Option<Bytes>,
}

impl StatusHeader {
    /// Parses `000 200 OK`.
    pub fn parse(v: &Bytes) -> Result<StatusHeader, HeaderError> {
        const E: HeaderError = HeaderError("Status");
        let ns = three_digits(v.get(..3).ok_or(E)?).ok_or(E)?;
        if v.get(3) != Some(&b' ') {
            return Err(E);
        }
        let code = three_digits(v.get(4..7).ok_or(E)?).ok_or(E)?;
        let comment = match v.get(7) {
            None => None,
            Some(b' ') => Some(v.slice(8..)),
            Some(_) => return Err(E),
        };
        Ok(StatusHeader {
            namespace: ns,
            code: StatusCode(code),
            comment,
        })
    }
}

/// Parses exactly three ASCII digits.
pub(crate) fn three_digits(d: &[u8]) -> Option<u16> {
    match d {
        [a, b, c] if d.iter().all(u8::is_ascii_digit) => {
            Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => None,
    }
}

/// One header field as it appeared on the wire: `name: value`. Every
/// field of a head is kept in order, including the typed ones, so that a
/// head re-encodes byte for byte and extension headers pass through.
#[derive(Clone, PartialEq, Eq)]
pub struct HeaderField {
    /// The field name, as sent (names compare case-insensitively).
    pub name: Bytes,
    /// The value after `": "`, without the CRLF.
    pub value: Bytes,
}

impl HeaderField {
    /// Builds a field from static text (for heads the relay generates).
    pub fn from_static(name: &'static str, value: &'static str) -> HeaderField {
        HeaderField {
            name: Bytes::from_static(name.as_bytes()),
            value: Bytes::from_static(value.as_bytes()),
        }
    }

    /// True if the name matches, ignoring ASCII case.
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name.as_bytes())
    }
}

impl std::fmt::Debug for HeaderField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}",
            String::from_utf8_lossy(&self.name),
            String::from_utf8_lossy(&self.value)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idents_are_4_to_32_chars() {
        assert!(is_ident(b"a786hjs2"));
        assert!(is_ident(b"d93kswow"));
        assert!(is_ident(b"ab.-+%="));
        assert!(!is_ident(b"abc"));
        assert!(!is_ident(b".abcd"));
        assert!(!is_ident(&[b'a'; 33]));
        assert!(is_ident(&[b'a'; 32]));
        assert!(!is_ident(b"ab cd"));
    }

    #[test]
    fn msrp_chunk_byte_ranges_with_stars() {
        let r = ByteRange::parse(b"1-25/25").unwrap();
        assert_eq!(
            (r.start, r.end, r.total, r.len()),
            (1, Some(25), Some(25), Some(25))
        );
        let r = ByteRange::parse(b"1-*/*").unwrap();
        assert_eq!((r.end, r.total, r.len()), (None, None, None));
        let r = ByteRange::parse(b"26-50/*").unwrap();
        assert_eq!(r.len(), Some(25));
        assert!(ByteRange::parse(b"11-10/10").unwrap().is_empty());
        for bad in [
            &b"0-1/1"[..],
            b"5-3/10",
            b"1-11/10",
            b"1-10",
            b"1/10-5",
            b"a-1/1",
            b"1-1/x",
            b"-1/1",
            b"1-1/",
            b"99999999999999999999-1/1",
        ] {
            assert!(
                ByteRange::parse(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn status_header() {
        let s = StatusHeader::parse(&Bytes::from_static(b"000 200 OK")).unwrap();
        assert_eq!((s.namespace, s.code), (0, StatusCode::OK));
        assert_eq!(s.comment.as_deref(), Some(&b"OK"[..]));
        assert!(
            StatusHeader::parse(&Bytes::from_static(b"000 413"))
                .unwrap()
                .comment
                .is_none()
        );
        for bad in [&b"00 200"[..], b"000-200", b"000 2x0", b"000 200x"] {
            assert!(StatusHeader::parse(&Bytes::copy_from_slice(bad)).is_err());
        }
    }

    #[test]
    fn report_flags() {
        assert_eq!(FailureReport::parse(b"partial"), Ok(FailureReport::Partial));
        assert!(FailureReport::parse(b"maybe").is_err());
        assert_eq!(parse_success_report(b"yes"), Ok(true));
        assert_eq!(parse_success_report(b"YES"), Ok(true));
        assert!(parse_success_report(b"yes please").is_err());
    }
}
