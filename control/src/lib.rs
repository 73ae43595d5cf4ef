//! # msrp-control
//!
//! The control plane of msrp-relay: the contract with the carrier's SIP front
//! end (a B2BUA acting as the CPM Participating Function).
//!
//! ## Contract
//!
//! - The control protocol: JSON objects, one per line, on a Unix stream
//!   socket; requests with an `id` and a `command`, replies that echo the
//!   `id` with `"result": "ok"` or `"result": "error"` and an
//!   `"error-reason"`, and events pushed to subscribed connections. Words
//!   follow rtpengine's ng protocol where one exists (`call-id`, `from-tag`,
//!   `to-tag`, `via-branch`, `sdp`).
//! - SDP rewrite (RFC 4975 §8, RFC 6135, RFC 5547): only the MSRP media
//!   lines' address, port, `a=path`, `a=setup` and direction are touched;
//!   everything else passes byte for byte.
//! - Multi-device policy: a pure, deterministic module that decides which of
//!   a user's devices get a request and what each device's answer does to
//!   the others.
//!
//! The control plane never does socket I/O on MSRP legs; it drives the
//! data plane through `msrp-relay`'s library API.
//!
//! ## Modules
//!
//! - [`protocol`]: request, reply and event types and the JSON-lines codec
//!   (pure).
//! - [`sdp`]: SDP parse and MSRP rewrite, `a=setup` negotiation (pure).
//! - [`policy`]: device registry, delivery plan, fork response state
//!   machine, originator check (pure).
//! - [`table`]: the session table: SIP names over data-plane sessions and
//!   legs, every command's execution, event translation, expiry (no I/O;
//!   time is an argument).
//! - [`plane`]: the data plane's control surface as a trait, implemented
//!   by `msrp_relay::io::RelayHandle`.
//! - [`server`]: the Unix-socket server (`SO_PEERCRED`, bounds, events).
//! - [`ng`]: the rtpengine ng protocol listener (bencode over UDP and
//!   TCP) for Kamailio's and OpenSIPS's stock `rtpengine` modules, over the
//!   same table.
//! - [`store`]: the content store (issue 12): items kept on local disk or
//!   in an S3 bucket for devices that were unavailable, with at-most-once
//!   delivery markers; a blocking API over `object_store`.
//! - [`config`], [`daemon`], [`ctl`]: the `msrp-relay` binary's
//!   configuration file, process loop and shutdown, and `msrp-relay ctl`.

pub mod config;
pub mod ctl;
pub mod daemon;
#[cfg(test)]
pub(crate) mod fake_plane;
pub mod log_filter;
pub mod metrics;
pub mod ng;
pub mod plane;
pub mod policy;
pub mod protocol;
pub mod sdp;
pub mod server;
pub mod store;
pub mod table;
