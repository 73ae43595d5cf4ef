//! Command line: one subcommand per scenario, the options every scenario
//! shares, and the hidden `relay` subcommand a spawned relay runs.
//!
//! `common`: the options every scenario shares and the values they take;
//! `args`: each subcommand's arguments.

mod args;
mod common;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use args::{
    ChatArgs, DeliverArgs, DemoArgs, FanoutArgs, HandshakeArgs, IdleArgs, SetupArgs, SoakArgs,
};
pub use common::{Baseline, Common, TlsArgs, Verify};

/// Load generator and demo for msrp-relay.
///
/// Plays the SIP front end over the control socket and the senders and
/// devices over real MSRP sockets, against a relay it starts itself
/// (default, `--spawn`) or one already running (`--control PATH`).
#[derive(Debug, Parser)]
#[command(name = "msrp-load", version)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The scenarios.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// One file to three devices of one user (one accepts late, one reads
    /// slowly): progress per device, what each got, when each was told to
    /// hang up.
    Demo(DemoArgs),
    /// File transfer: S sessions × M devices; throughput, byte-exact check.
    Fanout(FanoutArgs),
    /// Chat: S sessions × M devices at a message rate; latency to each
    /// device and of the sender's delivery notification.
    Chat(ChatArgs),
    /// offer/answer/delete cycles on one control connection, pipelined.
    Setup(SetupArgs),
    /// Many accepted idle legs: the relay's memory per leg.
    Idle(IdleArgs),
    /// New legs per second (connect, TLS handshake, bind, its 200) over
    /// TLS and over plain TCP, to a one-worker relay by default.
    Handshake(HandshakeArgs),
    /// Sessions for a set time, file transfers and chats mixed, three
    /// devices each (one late or leaving): every byte and notification
    /// checked, the relay's RSS and fds sampled each second.
    Soak(SoakArgs),
    /// A file delivered from the content store (`deliver`) beside the same
    /// file delivered live, in each run: GB/s to one device.
    Deliver(DeliverArgs),
    /// Runs the relay daemon in this process (used by `--spawn`).
    #[command(hide = true)]
    Relay {
        /// The relay's TOML configuration.
        #[arg(long)]
        config: PathBuf,
    },
}
