//! MSRP endpoints on blocking sockets, built on the project's codec: the
//! senders and devices of every scenario.
//!
//! One reader thread per connection decodes with [`Decoder`] from large
//! reads into [`Bytes`] (body pieces are slices of the read buffer, never
//! copied), hands the events to a [`Handler`] and answers `200` to every
//! request that wants one. Writers send `[head, body, end-line]` with one
//! vectored write; the body is one shared [`Bytes`] for every connection.
//! A connection is a [`Wire`]: plain TCP or TLS, the same code above it.
//!
//! [`Endpoint`] builds what a peer writes, [`read_loop`] reads and
//! answers, [`Conn`] is a connection with its reader thread, and
//! [`send_file`] is a file sender with its window of unanswered chunks;
//! [`make_file`] is the file it sends.
//!
//! [`Decoder`]: msrp_relay::msrp::Decoder
//! [`Bytes`]: bytes::Bytes
//! [`Wire`]: crate::wire::Wire

mod conn;
mod endpoint;
mod file;
mod reader;
mod send;

pub use conn::Conn;
pub use endpoint::Endpoint;
pub use file::make_file;
pub use reader::{BindWatch, Handler, ReadEnd, ReadOpts, SharedWriter, is_content, read_loop};
pub use send::{AckHandler, Acks, send_file};
