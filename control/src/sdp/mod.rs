//! SDP for MSRP media: parse, inspect and rewrite (RFC 4975 §8, RFC 6135,
//! RFC 5547).
//!
//! The relay is a B2BUA at the MSRP layer: every leg is its own MSRP
//! session, so the SDP the front end forwards to the other side must carry
//! the *relay's* address, port and MSRP URI instead of the peer's. Nothing
//! else may change. A file-transfer offer carries its file name, size, type,
//! hash and thumbnail reference in `a=file-selector`, `a=file-transfer-id`,
//! `a=file-disposition` and `a=file-icon` (RFC 5547 §5, §6); a recipient's
//! client decides on those bytes whether to accept, so they travel untouched
//! (FT-SELECTOR). For the same reason `o=`, `s=`, `t=`, unknown attributes
//! and non-MSRP media lines are kept byte for byte, line endings included.
//!
//! - [`Sdp::parse`] splits a body into lines kept verbatim and finds the
//!   session-level `c=` and the media sections.
//! - [`Sdp::msrp_media`] reads the MSRP attributes of each MSRP media line.
//! - [`Sdp::rewrite`] replaces exactly the MSRP media's address, port,
//!   `a=path`, `a=setup` and (on request) direction and `a=accept-types`.
//! - [`negotiate_setup`] decides the answer's `a=setup` (RFC 6135 §4.2).

mod media;
mod parse;
mod rewrite;
mod selector;
mod setup;

pub use media::{Direction, FileRange, MsrpMedia};
pub use parse::{LineEnding, MediaSection, Sdp, SdpLine};
pub use rewrite::Rewrite;
pub use selector::FileSelector;
pub use setup::{ConnectionRole, Negotiated, Setup, negotiate_setup, offer_setup};

/// Why an SDP body could not be used for an MSRP leg.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The body is not UTF-8; SDP is text (RFC 4566 §5 allows other
    /// charsets only inside `a=charset`-tagged fields, never for MSRP).
    #[error("SDP is not valid UTF-8 (first bad byte at offset {offset})")]
    NotUtf8 {
        /// Byte offset of the first invalid sequence.
        offset: usize,
    },
    /// The first line is not `v=` (RFC 4566 §5: a session description
    /// starts with the protocol version line).
    #[error("SDP does not start with a v= line")]
    NoVersion,
    /// No `m=message <port> TCP/MSRP *` or `TCP/TLS/MSRP` line with a
    /// non-zero port.
    #[error("SDP has no MSRP media line (m=message <port> TCP/MSRP or TCP/TLS/MSRP)")]
    NoMsrpMedia,
    /// More than one active MSRP media line: each would need its own relay
    /// URI (RFC 4975 §8.2: a URI identifies exactly one session); one leg
    /// of this relay carries one MSRP session.
    #[error("SDP has {count} active MSRP media lines; one per leg is supported")]
    MultipleMsrpMedia {
        /// How many active MSRP media lines were found.
        count: usize,
    },
    /// An active MSRP media line has no `a=path` (RFC 4975 §8.2: MUST).
    #[error("MSRP media line {media} has no a=path attribute")]
    MissingPath {
        /// Index of the media section (0 = first `m=` line).
        media: usize,
    },
    /// `a=path` is present but not a list of `msrp:`/`msrps:` URIs with
    /// explicit ports, or appears twice.
    #[error("MSRP media line {media} has an invalid a=path: {reason}")]
    InvalidPath {
        /// Index of the media section.
        media: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// An `m=` line that does not have `<media> <port> <proto> <fmt>...`.
    #[error("bad m= line {line}: {text:?}")]
    BadMediaLine {
        /// 1-based line number in the body.
        line: usize,
        /// The line as received (without its ending).
        text: String,
    },
    /// The port of an `m=` line is not a number in 0..=65535.
    #[error("bad port {port:?} in m= line {line}")]
    BadPort {
        /// 1-based line number in the body.
        line: usize,
        /// The port field as received.
        port: String,
    },
    /// An MSRP attribute with a value that does not parse (e.g.
    /// `a=max-size:lots`).
    #[error("bad a={name} value {value:?} on media line {media}")]
    BadAttribute {
        /// Index of the media section.
        media: usize,
        /// Attribute name.
        name: String,
        /// Value as received.
        value: String,
    },
    /// The relay address given to [`Sdp::rewrite`] is not an IP address.
    #[error("relay address {0:?} is not an IPv4 or IPv6 address")]
    BadRelayAddress(String),
    /// The relay URI given to [`Sdp::rewrite`] is not an MSRP URI with a port.
    #[error("relay MSRP URI {uri:?} is invalid: {reason}")]
    BadRelayUri {
        /// The URI given.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
}
