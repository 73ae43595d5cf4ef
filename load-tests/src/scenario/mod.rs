//! The scenarios and what they share: the relay under test and its
//! control connection.

pub mod chat;
pub mod deliver;
pub mod demo;
pub mod fanout;
pub mod handshake;
pub mod idle;
pub mod serial;
pub mod setup;
pub mod soak;
pub mod tcpfan;
pub mod versus;

use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;

use crate::cli::{Common, TlsArgs};
use crate::control::Control;
use crate::error::{Context, LoadError, Result};
use crate::relay::{SpawnOpts, Target};
use crate::report::{Report, render};

/// The relay under test with a subscribed control connection.
#[derive(Debug)]
pub struct Env {
    /// The control connection (subscribed to every event).
    pub ctl: Control,
    /// The relay's pid (for CPU and memory), when known.
    pub pid: Option<u32>,
    /// Bound of any single wait.
    pub timeout: Duration,
    /// With `--tls`: the client side of the peers' TLS legs.
    pub tls: Option<Arc<ClientConfig>>,
    /// The throw-away CA and leaf of a spawned TLS relay.
    pub pki: Option<crate::tls::Pki>,
    /// The relay (kept last: dropping it stops a spawned relay).
    pub target: Target,
}

impl Env {
    /// Starts a relay (or finds the running one) and connects.
    pub fn open(c: &Common) -> Result<Env> {
        Env::open_with(c, "")
    }

    /// [`Env::open`]; a spawned relay also gets `extra` (TOML, merged
    /// under `--relay-config`).
    pub fn open_with(c: &Common, extra: &str) -> Result<Env> {
        let timeout = Duration::from_secs(c.timeout.max(1));
        crate::sys::raise_nofile(1 << 20)?;
        let target = match &c.control {
            Some(p) => Target::external(p),
            None => {
                let extra = match &c.relay_config {
                    Some(p) => format!(
                        "{extra}\n{}",
                        std::fs::read_to_string(p).context(|| format!("read {}", p.display()))?
                    ),
                    None => extra.to_owned(),
                };
                Target::spawn(
                    &SpawnOpts {
                        workers: c.workers,
                        extra_toml: extra,
                        ..SpawnOpts::default()
                    },
                    Duration::from_secs(30),
                )?
            }
        };
        let ctl = Control::connect(&target.socket, timeout)?;
        ctl.subscribe()?;
        let pid = target.pid.or(ctl.relay_pid);
        Ok(Env {
            ctl,
            pid,
            timeout,
            tls: None,
            pki: None,
            target,
        })
    }

    /// [`Env::open_with`], and with `tls` a relay that takes TLS legs: a
    /// spawned one gets a `[tls]` listener with a throw-away CA and leaf
    /// for 127.0.0.1; a running one (`--control`) must have one, and `ca`
    /// is the CA bundle its certificate is checked against.
    pub fn open_tls(c: &Common, extra: &str, tls: &TlsArgs) -> Result<Env> {
        if !tls.tls {
            return Env::open_with(c, extra);
        }
        if c.control.is_some() {
            let ca = tls.tls_ca.as_deref().ok_or_else(|| {
                LoadError::Args("--tls with --control needs --tls-ca (the relay's CA)".into())
            })?;
            let mut env = Env::open_with(c, extra)?;
            env.tls = Some(crate::tls::client_config_file(ca, tls.tls_kx)?);
            return Ok(env);
        }
        let pki = crate::tls::Pki::generate()?;
        let mut env = Env::open_with(c, &format!("{extra}\n{}", pki.relay_toml()))?;
        if env.target.msrps.is_none() {
            return Err(LoadError::Relay(
                "the spawned relay has no TLS listener (no msrps= in its ready line)".into(),
            ));
        }
        env.tls = Some(crate::tls::client_config_file(&pki.ca, tls.tls_kx)?);
        env.pki = Some(pki);
        Ok(env)
    }

    /// The URI scheme of the peers' legs: `msrps` with `--tls`.
    pub fn scheme(&self) -> &'static str {
        crate::tls::scheme(self.tls.is_some())
    }
}

/// Prints the table and writes the JSON the options ask for.
pub fn output(rep: &mut Report, c: &Common) -> Result<()> {
    rep.finish();
    println!("{}", render(rep));
    if let Some(p) = &c.json {
        rep.write_json(p)?;
        println!("  JSON: {}", p.display());
    }
    Ok(())
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub fn bar(len: u64, msg: &str) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new(len);
    let style = indicatif::ProgressStyle::with_template(
        "{msg:>24} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    pb.set_style(style);
    pb.set_message(msg.to_owned());
    pb
}
