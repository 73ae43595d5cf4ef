//! The MSRP encoder: heads, end-lines, responses, REPORTs into a
//! [`BytesMut`]. Bodies are never touched; a writer sends
//! `[head, body, end-line]` as one vectored write.

use bytes::{BufMut, BytesMut};

use super::header::{ByteRange, FailureReport, HeaderField};
use super::message::{Flag, Method, RequestHead, ResponseHead};
use super::status::StatusCode;

fn put_u64(dst: &mut BytesMut, n: u64) {
    dst.put_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn put_field(dst: &mut BytesMut, name: &[u8], value: &[u8]) {
    dst.put_slice(name);
    dst.put_slice(b": ");
    dst.put_slice(value);
    dst.put_slice(b"\r\n");
}

fn put_byte_range(dst: &mut BytesMut, r: ByteRange) {
    dst.put_slice(b"Byte-Range: ");
    put_u64(dst, r.start);
    dst.put_u8(b'-');
    match r.end {
        Some(e) => put_u64(dst, e),
        None => dst.put_u8(b'*'),
    }
    dst.put_u8(b'/');
    match r.total {
        Some(t) => put_u64(dst, t),
        None => dst.put_u8(b'*'),
    }
    dst.put_slice(b"\r\n");
}

/// Writes the end-line of transaction `tid`. `after_body` adds the CRLF
/// that ends the body (RFC 4975 §9 `content-stuff`); a request without
/// content-stuff and every response go straight to the end-line.
pub fn end_line(dst: &mut BytesMut, tid: &[u8], flag: Flag, after_body: bool) {
    if after_body {
        dst.put_slice(b"\r\n");
    }
    dst.put_slice(b"-------");
    dst.put_slice(tid);
    dst.put_u8(flag.as_byte());
    dst.put_slice(b"\r\n");
}

/// Re-encodes a decoded request head as it came: start line, every field
/// in order, and the blank line if a body follows. With the body and
/// [`end_line`] it reproduces the message byte for byte (for heads whose
/// fields used the canonical `name: value` spacing).
pub fn request_head(dst: &mut BytesMut, h: &RequestHead) {
    dst.put_slice(b"MSRP ");
    dst.put_slice(h.tid.as_bytes());
    dst.put_u8(b' ');
    dst.put_slice(h.method.as_bytes());
    dst.put_slice(b"\r\n");
    for (name, value) in h.fields.iter() {
        put_field(dst, name, value);
    }
    if h.has_body {
        dst.put_slice(b"\r\n");
    }
}

/// Re-encodes a decoded response, end-line included.
pub fn response(dst: &mut BytesMut, h: &ResponseHead) {
    put_status_line(dst, h.tid.as_bytes(), h.code, h.comment.as_deref());
    for (name, value) in h.fields.iter() {
        put_field(dst, name, value);
    }
    end_line(dst, h.tid.as_bytes(), Flag::Complete, false);
}

fn put_status_line(dst: &mut BytesMut, tid: &[u8], code: StatusCode, comment: Option<&[u8]>) {
    dst.put_slice(b"MSRP ");
    dst.put_slice(tid);
    dst.put_u8(b' ');
    put_code(dst, code);
    if let Some(comment) = comment {
        dst.put_u8(b' ');
        dst.put_slice(comment);
    }
    dst.put_slice(b"\r\n");
}

/// Writes a whole transaction response (RFC 4975 §7.2). `to_path` is the
/// previous hop's URI (at a B2BUA, the leg peer's path) and `from_path` the
/// relay's own URI for the leg. The comment defaults to the code's reason
/// phrase.
pub fn transaction_response(
    dst: &mut BytesMut,
    tid: &[u8],
    code: StatusCode,
    comment: Option<&[u8]>,
    to_path: &[u8],
    from_path: &[u8],
) {
    let comment = comment.or_else(|| code.reason().map(str::as_bytes));
    put_status_line(dst, tid, code, comment);
    put_field(dst, b"To-Path", to_path);
    put_field(dst, b"From-Path", from_path);
    end_line(dst, tid, Flag::Complete, false);
}

/// The head a relay writes for one leg's copy of a SEND chunk. Paths are
/// the leg's own (cached as wire bytes by the caller); the body that
/// follows is the shared one.
#[derive(Debug, Clone, Copy)]
pub struct SendHead<'a> {
    /// The leg's own transaction id.
    pub tid: &'a [u8],
    /// The leg's To-Path value.
    pub to_path: &'a [u8],
    /// The leg's From-Path value.
    pub from_path: &'a [u8],
    /// Message-ID as the leg knows the message.
    pub message_id: &'a [u8],
    /// This chunk's Byte-Range.
    pub byte_range: Option<ByteRange>,
    /// `Success-Report: yes` when `Some(true)`, `no` when `Some(false)`.
    pub success_report: Option<bool>,
    /// Failure-Report, if not the default.
    pub failure_report: Option<FailureReport>,
    /// Content-Type; `None` for a SEND without content-stuff.
    pub content_type: Option<&'a [u8]>,
    /// Further fields to carry (MIME headers such as Content-Disposition).
    pub extra: &'a [HeaderField],
}

impl SendHead<'_> {
    /// Writes the head, ending with the blank line when content follows.
    pub fn encode(&self, dst: &mut BytesMut) {
        self.encode_method(dst, &Method::Send);
    }

    /// Writes the head with another method (REPORT reuses the shape).
    pub fn encode_method(&self, dst: &mut BytesMut, method: &Method) {
        dst.reserve(160 + self.to_path.len() + self.from_path.len());
        start_line(dst, self.tid, method);
        paths(dst, self.to_path, self.from_path);
        self.encode_fields(dst);
    }

    /// Writes what follows the paths: Message-ID, report headers,
    /// Byte-Range, MIME fields, Content-Type and the blank line. Every leg
    /// that sends the same chunk of the same message sends these same
    /// bytes, so a relay encodes them once and shares them.
    pub fn encode_fields(&self, dst: &mut BytesMut) {
        put_field(dst, b"Message-ID", self.message_id);
        if let Some(r) = self.success_report {
            put_field(dst, b"Success-Report", if r { b"yes" } else { b"no" });
        }
        if let Some(f) = self.failure_report {
            put_field(dst, b"Failure-Report", f.as_str().as_bytes());
        }
        if let Some(r) = self.byte_range {
            put_byte_range(dst, r);
        }
        for f in self.extra {
            put_field(dst, &f.name, &f.value);
        }
        if let Some(ct) = self.content_type {
            put_field(dst, b"Content-Type", ct);
            dst.put_slice(b"\r\n");
        }
    }
}

/// Writes a request's start line, `MSRP <tid> <METHOD>` CRLF.
pub fn start_line(dst: &mut BytesMut, tid: &[u8], method: &Method) {
    dst.put_slice(b"MSRP ");
    dst.put_slice(tid);
    dst.put_u8(b' ');
    dst.put_slice(method.as_bytes());
    dst.put_slice(b"\r\n");
}

/// Writes the To-Path and From-Path fields. A relay writes them once per
/// leg and shares the bytes across all its chunks.
pub fn paths(dst: &mut BytesMut, to_path: &[u8], from_path: &[u8]) {
    put_field(dst, b"To-Path", to_path);
    put_field(dst, b"From-Path", from_path);
}

/// A REPORT request (RFC 4975 §7.1.2): no body, so the end-line follows
/// the head directly.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    /// A fresh transaction id.
    pub tid: &'a [u8],
    /// The original sender's path (the REPORT goes back to it).
    pub to_path: &'a [u8],
    /// The reporter's own URI.
    pub from_path: &'a [u8],
    /// The reported message's Message-ID.
    pub message_id: &'a [u8],
    /// The bytes the report covers.
    pub byte_range: ByteRange,
    /// The reported status (`Status: 000 <code> <comment>`).
    pub status: StatusCode,
}

impl Report<'_> {
    /// Writes the whole REPORT, end-line included.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_slice(b"MSRP ");
        dst.put_slice(self.tid);
        dst.put_slice(b" REPORT\r\n");
        put_field(dst, b"To-Path", self.to_path);
        put_field(dst, b"From-Path", self.from_path);
        put_field(dst, b"Message-ID", self.message_id);
        put_byte_range(dst, self.byte_range);
        dst.put_slice(b"Status: 000 ");
        put_status_line_code(dst, self.status);
        end_line(dst, self.tid, Flag::Complete, false);
    }
}

fn put_code(dst: &mut BytesMut, code: StatusCode) {
    let c = code.0.min(999);
    dst.put_slice(&[
        b'0' + (c / 100) as u8,
        b'0' + (c / 10 % 10) as u8,
        b'0' + (c % 10) as u8,
    ]);
}

fn put_status_line_code(dst: &mut BytesMut, code: StatusCode) {
    put_code(dst, code);
    if let Some(reason) = code.reason() {
        dst.put_u8(b' ');
        dst.put_slice(reason.as_bytes());
    }
    dst.put_slice(b"\r\n");
}
