//! # msrp-load
//!
//! Load generator and demo for msrp-relay. It plays the SIP front end over
//! the control socket and the senders and devices over real MSRP sockets,
//! against a running relay (`--control PATH`) or one it starts itself as
//! a child process (`--spawn`, the default), verifies every byte a device
//! receives and reports throughput and latency against baselines run in
//! the same invocation (`--baseline direct`: senders straight to devices;
//! `--baseline tcp`: a plain TCP fan-out without MSRP parsing).
//!
//! Modules: [`cli`] (arguments), [`peer`] (MSRP endpoints on blocking
//! sockets), [`net`] (their TCP sockets), [`control`] (the front end's
//! side of the control socket), [`relay`] (the relay under test),
//! [`scenario`] (demo, fanout, chat, setup, idle, handshake, soak,
//! deliver), [`tls`] and [`wire`] (peers over TLS with `--tls`),
//! [`rate`], [`stats`], [`report`], [`plot`], [`sync`], [`sys`].
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod cli;
pub mod control;
pub mod error;
pub mod net;
pub mod peer;
pub mod plot;
pub mod rate;
pub mod relay;
pub mod report;
pub mod scenario;
pub mod stats;
pub mod sync;
pub mod sys;
pub mod tls;
pub mod wire;

pub use error::{LoadError, Result};
