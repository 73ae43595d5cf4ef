//! The MSRP wire codec (RFC 4975): no I/O, no clock.
//!
//! - [`Decoder`] turns a byte stream, fed as [`bytes::Bytes`] segments,
//!   into [`Event`]s: request and response heads, body pieces that are
//!   slices of the fed segments, and end-lines.
//! - [`encode`] writes heads, end-lines, responses and REPORTs into a
//!   [`bytes::BytesMut`] and never touches a body: a relay writes
//!   `[head, body, end-line]` as one vectored write, the body shared by
//!   every leg.
//! - [`uri`] and [`header`] hold the typed values (URIs compared per §6.1,
//!   Byte-Range, report headers, Status).
#![forbid(unsafe_code)]

pub mod decode;
pub mod encode;
pub mod error;
pub mod fields;
pub mod header;
pub mod message;
pub mod status;
pub mod uri;

pub use decode::{Decoder, Event, Limits};
pub use error::{DecodeError, Disposition, FatalError, MessageError};
pub use fields::Fields;
pub use header::TransactionId;
pub use header::{ByteRange, FailureReport, HeaderField, StatusHeader};
pub use message::{Flag, Method, RequestHead, ResponseHead};
pub use status::StatusCode;
pub use uri::{MsrpUri, Path, UriError};
