//! `msrp-load`: see the library docs and `msrp-load --help`.

use std::process::ExitCode;

use clap::Parser;
use msrp_load::cli::{Cli, Command};
use msrp_load::scenario;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Relay { config } => msrp_load::relay::run_daemon(config),
        Command::Demo(a) => scenario::demo::run(a),
        Command::Fanout(a) => {
            scenario::fanout::run(a).and_then(|mut r| scenario::output(&mut r, &a.common))
        }
        Command::Chat(a) => {
            let r = if a.serial {
                scenario::serial::run(a)
            } else {
                scenario::chat::run(a)
            };
            r.and_then(|mut r| scenario::output(&mut r, &a.common))
        }
        Command::Setup(a) => {
            scenario::setup::run(a).and_then(|mut r| scenario::output(&mut r, &a.common))
        }
        Command::Idle(a) => {
            scenario::idle::run(a).and_then(|mut r| scenario::output(&mut r, &a.common))
        }
        Command::Soak(a) => {
            scenario::soak::run(a).and_then(|mut r| scenario::output(&mut r, &a.common))
        }
        Command::Deliver(a) => {
            scenario::deliver::run(a).and_then(|mut r| scenario::output(&mut r, &a.common))
        }
        Command::Handshake(a) => {
            scenario::handshake::run(a).and_then(|mut r| scenario::output(&mut r, &a.common))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("msrp-load: {e}");
            ExitCode::FAILURE
        }
    }
}
