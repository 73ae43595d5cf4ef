//! Decoder errors, each with what the connection must do about it.

use super::header::{HeaderError, TransactionId};
use super::status::StatusCode;
use super::uri::UriError;

/// What a receiver does with a bad message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Answer the request `tid` with `status` (unless its Failure-Report
    /// says otherwise); the decoder has skipped the message and the stream
    /// goes on.
    Reply(StatusCode),
    /// Drop the message silently (a bad response cannot be answered); the
    /// stream goes on.
    Ignore,
    /// The framing is lost: nothing after this point can be trusted. Close
    /// the connection (RFC 4975 §7.3 leaves no way to resynchronise a stream
    /// whose transaction id is unknown).
    Close,
}

/// Errors after which the stream cannot be resynchronised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FatalError {
    /// The first line of a message does not start with `MSRP `.
    #[error("message does not start with \"MSRP \"")]
    BadStartLine,
    /// The transaction id is not an `ident` (4 to 32 characters), so its
    /// end-line cannot be found.
    #[error("bad transaction id")]
    BadTransactionId,
    /// The head (start line and headers) exceeds the configured limit.
    #[error("head exceeds {0} bytes")]
    HeadTooLarge(usize),
    /// The head has more header fields than the configured limit.
    #[error("more than {0} header fields")]
    TooManyHeaders(usize),
    /// A head line ends in a bare LF; MSRP lines end in CRLF.
    #[error("line not terminated by CRLF")]
    BareLineFeed,
    /// A head line starts with `-------` but is not this transaction's
    /// end-line.
    #[error("line looks like an end-line but is not this transaction's")]
    BadEndLine,
    /// `-------<tid>` and a continuation flag not followed by CRLF.
    #[error("end-line not followed by CRLF")]
    TruncatedEndLine,
    /// The peer closed the connection in the middle of a message.
    #[error("stream ended inside a message")]
    Truncated,
}

/// What is wrong with a message whose transaction id is known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The start line has no valid method or status code.
    #[error("bad method or status code")]
    BadMethod,
    /// A mandatory header is missing.
    #[error("missing {0}")]
    Missing(&'static str),
    /// A header that may appear once appears twice.
    #[error("duplicate {0}")]
    Duplicate(&'static str),
    /// A header line has no `name:` or an invalid name.
    #[error("malformed header line")]
    BadHeaderLine,
    /// The head is not UTF-8 (RFC 4975 §9 `utf8text`).
    #[error("head is not UTF-8")]
    NotUtf8,
    /// A header value does not match its grammar.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// A To-Path or From-Path does not parse.
    #[error("bad {0}: {1}")]
    Path(&'static str, UriError),
    /// A body follows but no Content-Type precedes it (§9 `content-stuff`).
    #[error("body without Content-Type")]
    MissingContentType,
    /// The end-line appeared inside a header line.
    #[error("end-line inside a header")]
    EndLineInHeader,
    /// The chunk's body is larger than the configured maximum.
    #[error("chunk exceeds {0} bytes")]
    ChunkTooLarge(u64),
    /// A response carries a body, which §9 does not allow.
    #[error("response with a body")]
    ResponseWithBody,
}

/// An error from the decoder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The connection must close.
    #[error("{0}")]
    Fatal(#[from] FatalError),
    /// A request was skipped; answer it with `status`.
    #[error("request {tid}: {reason} (answer {status})")]
    Request {
        /// The request's transaction id.
        tid: TransactionId,
        /// The status to answer with.
        status: StatusCode,
        /// What was wrong.
        reason: MessageError,
    },
    /// A response was skipped.
    #[error("response {tid}: {reason}")]
    Response {
        /// The response's transaction id.
        tid: TransactionId,
        /// What was wrong.
        reason: MessageError,
    },
}

impl DecodeError {
    /// What the connection must do.
    pub fn disposition(&self) -> Disposition {
        match self {
            DecodeError::Fatal(_) => Disposition::Close,
            DecodeError::Request { status, .. } => Disposition::Reply(*status),
            DecodeError::Response { .. } => Disposition::Ignore,
        }
    }

    /// The transaction id of the message at fault, where known.
    pub fn transaction_id(&self) -> Option<&TransactionId> {
        match self {
            DecodeError::Fatal(_) => None,
            DecodeError::Request { tid, .. } | DecodeError::Response { tid, .. } => Some(tid),
        }
    }
}
