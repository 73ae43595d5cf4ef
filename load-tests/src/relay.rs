//! The relay under test: started by the tool as a child process with a
//! temporary configuration (`--spawn`), or one already running
//! (`--control PATH`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::error::{Context, LoadError, Result};

/// Settings of a spawned relay.
#[derive(Debug, Clone)]
pub struct SpawnOpts {
    /// `[msrp] workers` (0: one per core).
    pub workers: usize,
    /// More TOML appended to the generated file (e.g. `[budgets]` keys).
    pub extra_toml: String,
    /// `[log] filter`.
    pub log: String,
}

impl Default for SpawnOpts {
    fn default() -> SpawnOpts {
        SpawnOpts {
            workers: 0,
            extra_toml: String::new(),
            // Errors only: a drained shutdown logs a warning per session.
            log: "error".into(),
        }
    }
}

/// A relay to drive.
#[derive(Debug)]
pub struct Target {
    /// Control socket.
    pub socket: PathBuf,
    /// The relay's pid, when known.
    pub pid: Option<u32>,
    /// The ng UDP listener (`ng-udp=` of a spawned relay's ready line).
    pub ng_udp: Option<std::net::SocketAddr>,
    /// The TLS listener (`msrps=` of a spawned relay's ready line).
    pub msrps: Option<std::net::SocketAddr>,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

/// The generated configuration of a spawned relay: socket and spill
/// files in `dir`, MSRP on an ephemeral loopback port, bounds raised so
/// that the load, not a limit, is what is measured. `opts.extra_toml` is
/// merged key by key over it, so `[msrp] io = "epoll"` sets one key of the
/// generated `[msrp]` table instead of repeating the table (which TOML
/// refuses).
pub fn spawn_config(dir: &Path, opts: &SpawnOpts) -> Result<String> {
    let socket = dir.join("relay.sock");
    let base = format!(
        "[control]\nsocket = {:?}\nmax-connections = 64\nmax-queued-lines = 4096\nmax-sessions = 100000\nmax-legs-per-session = 4096\n\n[msrp]\nlisten = \"127.0.0.1:0\"\nworkers = {}\n\n[log]\nfilter = {:?}\n",
        socket.display().to_string(),
        opts.workers,
        opts.log,
    );
    let parse = |what: &str, text: &str| {
        text.parse::<toml::Table>()
            .map_err(|e| LoadError::Args(format!("{what}: {e}")))
    };
    let mut table = parse("generated relay configuration", &base)?;
    merge(&mut table, parse("--relay-config", &opts.extra_toml)?);
    Ok(table.to_string())
}

/// Overlays `over` on `base`: tables merge recursively, any other value
/// in `over` replaces the one in `base`.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

impl Target {
    /// Runs the relay as a child process: this same executable with the
    /// hidden `relay --config FILE` subcommand. Returns once the relay
    /// printed its ready line.
    pub fn spawn(opts: &SpawnOpts, wait: Duration) -> Result<Target> {
        let dir = tempfile::Builder::new()
            .prefix("msrp-load-")
            .tempdir()
            .context(|| "create a temporary directory".into())?;
        let config = dir.path().join("relay.toml");
        std::fs::write(&config, spawn_config(dir.path(), opts)?)
            .context(|| format!("write {}", config.display()))?;
        let exe = std::env::current_exe().context(|| "find this executable".into())?;
        let mut child = Command::new(exe)
            .arg("relay")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context(|| "start the relay".into())?;
        let pid = child.id();
        let stdout = child.stdout.take();
        let mut t = Target {
            socket: dir.path().join("relay.sock"),
            pid: Some(pid),
            ng_udp: None,
            msrps: None,
            child: Some(child),
            _dir: Some(dir),
        };
        let Some(stdout) = stdout else {
            return Err(LoadError::Relay("no stdout from the relay".into()));
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut line = String::new();
            let _ = tx.send(r.read_line(&mut line).map(|_| line.clone()));
            // Keep draining so the relay never blocks on stdout.
            while matches!(r.read_line(&mut line), Ok(n) if n > 0) {
                line.clear();
            }
        });
        match rx.recv_timeout(wait) {
            Ok(Ok(line)) if line.starts_with("msrp-relay ready ") => {
                if let Some(s) = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("control="))
                {
                    t.socket = PathBuf::from(s);
                }
                t.ng_udp = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("ng-udp="))
                    .and_then(|a| a.parse().ok());
                t.msrps = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("msrps="))
                    .and_then(|a| a.parse().ok());
                Ok(t)
            }
            Ok(Ok(line)) => {
                t.stop();
                Err(LoadError::Relay(format!(
                    "the relay did not start (said {line:?})"
                )))
            }
            Ok(Err(e)) => Err(LoadError::Relay(format!(
                "reading the relay's ready line: {e}"
            ))),
            Err(_) => Err(LoadError::Timeout("the relay's ready line".into())),
        }
    }

    /// A relay already running on `socket`; its pid is learnt from the
    /// control connection.
    pub fn external(socket: &Path) -> Target {
        Target {
            socket: socket.to_owned(),
            pid: None,
            ng_udp: None,
            msrps: None,
            child: None,
            _dir: None,
        }
    }

    /// Whether the tool started this relay.
    pub fn spawned(&self) -> bool {
        self.child.is_some()
    }

    /// Stops a spawned relay: SIGTERM (it drains), a second SIGTERM after
    /// 3 s (it exits at once), SIGKILL after 2 s more.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let term = |c: &Child| {
            if let Ok(pid) = i32::try_from(c.id()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        };
        term(&child);
        for i in 0..100 {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            if i == 60 {
                term(&child);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The hidden `relay` subcommand: runs the daemon in this process.
pub fn run_daemon(config: &Path) -> Result<()> {
    crate::sys::raise_nofile(1 << 20)?;
    let cfg =
        msrp_control::config::Config::load(config).map_err(|e| LoadError::Relay(e.to_string()))?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&cfg.log.filter))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    msrp_control::daemon::run(&cfg).map_err(|e| LoadError::Relay(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawn_config_parses_as_a_relay_config() {
        let dir = tempfile::tempdir().unwrap();
        let opts = SpawnOpts {
            workers: 2,
            extra_toml: "[pacing]\nbye-per-sec = 1000\n[msrp]\nio = \"epoll\"\nworkers = 3\n"
                .into(),
            log: "warn".into(),
        };
        let p = dir.path().join("c.toml");
        std::fs::write(&p, spawn_config(dir.path(), &opts).unwrap()).unwrap();
        let cfg = msrp_control::config::Config::load(&p).unwrap();
        // The extra `[msrp]` overrides one key and keeps the others.
        assert_eq!(cfg.msrp.workers, 3);
        assert_eq!(cfg.msrp.io, msrp_control::config::Io::Epoll);
        assert_eq!(cfg.msrp.listen.to_string(), "127.0.0.1:0");
        assert_eq!(cfg.pacing.bye_per_sec, 1000);
        assert_eq!(cfg.socket(), dir.path().join("relay.sock"));
    }

    /// The `[tls]` section `--tls` adds is one the relay takes, and its
    /// files load.
    #[test]
    fn tls_section_parses_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let pki = crate::tls::Pki::generate().unwrap();
        let opts = SpawnOpts {
            extra_toml: pki.relay_toml(),
            ..SpawnOpts::default()
        };
        let p = dir.path().join("c.toml");
        std::fs::write(&p, spawn_config(dir.path(), &opts).unwrap()).unwrap();
        let cfg = msrp_control::config::Config::load(&p).unwrap();
        assert_eq!(cfg.tls.listen, "127.0.0.1:0");
        assert_eq!(cfg.tls.cert, pki.cert);
        assert_eq!(cfg.tls.ca, pki.ca);
        assert!(cfg.tls.listener().unwrap().is_some());
    }
}
