//! # msrp-relay
//!
//! The data plane of a multi-device MSRP relay (RFC 4975) for OMA CPM / RCS
//! messaging: one sender's MSRP stream enters once and leaves on N device
//! connections, each at its own pace, with nothing a device accepted lost.
//!
//! ## Contract
//!
//! - [`msrp`] is the wire codec. It does **no I/O and reads no clock**: it
//!   takes bytes (as [`bytes::Bytes`] segments, exactly as they came off a
//!   socket) and returns request/response heads and body pieces; bodies are
//!   slices of the segments it was fed, never copies. Its encoder writes heads
//!   and end-lines into a [`bytes::BytesMut`] and never touches a body.
//! - The fan-out engine (`fanout`) and the I/O drivers (`io`) are built on it
//!   (see `docs/` and the design in the shared folder).
//!
//! Every input that can come off the wire is handled without panicking: bad
//! input yields an error that names the MSRP status to answer with, or says
//! that the stream cannot be resynchronised and the connection must close.

pub mod fanout;
pub mod io;
pub mod msrp;
