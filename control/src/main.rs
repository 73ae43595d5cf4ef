//! `msrp-relay`: the relay process, and `msrp-relay ctl` to talk to it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use msrp_control::config::{Config, LogFormat};
use msrp_control::{ctl, daemon, log_filter};

/// MSRP media relay for multi-device OMA CPM / RCS messaging.
///
/// Without a subcommand: run the relay (MSRP workers and the control
/// socket) until SIGINT or SIGTERM.
#[derive(Debug, Parser)]
#[command(name = "msrp-relay", version)]
struct Cli {
    /// TOML configuration file (every key optional; see
    /// docs/configuration.md).
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Sub>,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Send one control command to a running relay and print its reply
    /// (exit status 0 when "result" is "ok", 1 on an error reply, 2 when
    /// the relay cannot be reached).
    Ctl {
        /// Control socket; default: from --config, else the default path.
        #[arg(long, short)]
        socket: Option<PathBuf>,
        /// Seconds to wait for the reply.
        #[arg(long, default_value_t = 10)]
        timeout: u64,
        /// Command name: ping, offer, answer, reject, delete, query, list,
        /// statistics, register, plan, subscribe, drain (`enable=false`
        /// to leave it).
        command: String,
        /// Fields: `key=value` (value parsed as JSON when it can be, else a
        /// string) or a JSON object.
        args: Vec<String>,
    },
}

fn load(path: Option<&PathBuf>) -> Result<Config, String> {
    match path {
        Some(p) => Config::load(p).map_err(|e| e.to_string()),
        None => Ok(Config::default()),
    }
}

fn init_logs(log: &msrp_control::config::Log) {
    // RUST_LOG, when set and not empty, wins over the file (log_filter).
    let from_env = log_filter::env_overrides()
        .then(tracing_subscriber::EnvFilter::try_from_default_env)
        .and_then(Result::ok);
    let filter = from_env
        .or_else(|| tracing_subscriber::EnvFilter::try_new(&log.filter).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // The reload handle's type differs per format: one hook each.
    macro_rules! hook {
        ($builder:expr) => {{
            let handle = $builder.reload_handle();
            log_filter::install(Box::new(move |text: &str| {
                let f = tracing_subscriber::EnvFilter::try_new(text)
                    .map_err(|e| format!("{text:?}: {e}"))?;
                handle.reload(f).map_err(|e| e.to_string())
            }));
        }};
    }
    match log.format {
        LogFormat::Text => {
            let b = fmt
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_filter_reloading();
            hook!(b);
            b.init();
        }
        LogFormat::Json => {
            let b = fmt
                .json()
                .with_current_span(true)
                .with_span_list(false)
                .with_filter_reloading();
            hook!(b);
            b.init();
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cfg = match load(cli.config.as_ref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("msrp-relay: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        None => {
            init_logs(&cfg.log);
            match daemon::run_from(&cfg, cli.config.as_deref()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "msrp-relay failed");
                    eprintln!("msrp-relay: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Sub::Ctl {
            socket,
            timeout,
            command,
            args,
        }) => {
            let socket = socket.unwrap_or_else(|| cfg.socket());
            let result = ctl::build_request(&command, &args).and_then(|req| {
                ctl::run(
                    &socket,
                    &req,
                    Duration::from_secs(timeout),
                    &mut std::io::stdout(),
                )
            });
            match result {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(1),
                Err(e) => {
                    eprintln!("msrp-relay ctl: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
