//! Helpers of the end-to-end tests: the real `msrp-relay` binary as a
//! child process (always killed, even when a test fails), a control client
//! and an event log. Waits use condition variables with a safety bound;
//! nothing sleeps to synchronise.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod kamailio;
pub mod metrics;
pub mod msrp_peer;
pub mod ng;
pub mod notify;
pub mod s3;
pub mod sdp;
pub mod sip;
pub mod sipcall;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Safety bound of any single wait.
pub const WAIT: Duration = Duration::from_secs(60);

/// A `[store]` table on local disk at `dir`.
#[allow(dead_code)] // not every test binary has a store
pub fn local_store(dir: &Path) -> String {
    format!("[store]\npath = {:?}\n", dir.display().to_string())
}

/// `ids` (a call's keys) with `extra`'s fields added: one command.
#[allow(dead_code)] // not every test binary sends keyed commands
pub fn with(ids: &Value, extra: Value) -> Value {
    let mut v = ids.clone();
    if let (Some(o), Some(x)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(x.clone());
    }
    v
}

/// The `msrp.io` values to run the data-path tests with: `uring` (skipped,
/// with the reason printed, where the kernel refuses io_uring) and
/// `epoll`; `MSRP_TEST_DRIVERS=epoll` (or `uring`) restricts the set.
pub fn drivers() -> Vec<&'static str> {
    let only = std::env::var("MSRP_TEST_DRIVERS").unwrap_or_default();
    let wanted = |name: &str| only.is_empty() || only.split(',').any(|d| d.trim() == name);
    let mut v = Vec::new();
    if wanted("uring") {
        match msrp_relay::io::uring::check(&msrp_relay::io::UringConfig::default()) {
            Ok(()) => v.push("uring"),
            Err(why) => eprintln!("io_uring driver skipped: {why}"),
        }
    }
    if wanted("epoll") {
        v.push("epoll");
    }
    v
}

/// The relay process. Dropping it kills it (SIGKILL) and reaps it.
#[derive(Debug)]
pub struct RelayProcess {
    child: Child,
    /// Control socket path.
    pub socket: PathBuf,
    /// MSRP listen address as the relay reported it.
    pub msrp: String,
    /// The metrics endpoint's address, when `[metrics] listen` was set.
    pub metrics: Option<String>,
    /// The whole ready line (`ng-udp=`, `ng-tcp=` when configured).
    pub ready: String,
    _dir: tempfile::TempDir,
}

impl RelayProcess {
    /// Starts the binary with `msrp.io = io` and a config that puts the
    /// socket in a temp dir and the MSRP listener on an ephemeral port, plus
    /// `control` (more `[control]` keys) and `extra` (other tables); returns
    /// once the relay printed its ready line.
    pub fn start_io(io: &str, control: &str, extra: &str) -> RelayProcess {
        RelayProcess::start_logged(io, control, extra, None)
    }

    /// [`start_io`](Self::start_io), with the relay's stderr piped (read it
    /// with [`take_stderr`](Self::take_stderr)) and `RUST_LOG = filter`.
    pub fn start_logged(
        io: &str,
        control: &str,
        extra: &str,
        filter: Option<&str>,
    ) -> RelayProcess {
        RelayProcess::start_with(io, control, extra, filter, &[])
    }

    /// [`start_logged`](Self::start_logged) with more environment
    /// variables for the child.
    pub fn start_with(
        io: &str,
        control: &str,
        extra: &str,
        filter: Option<&str>,
        env: &[(&str, &str)],
    ) -> RelayProcess {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("relay.sock");
        let config = dir.path().join("relay.toml");
        let text = format!(
            "[control]\nsocket = {:?}\n{control}\n\n[msrp]\nlisten = \"127.0.0.1:0\"\nworkers = 2\nio = {io:?}\n\n{extra}\n",
            socket.display().to_string()
        );
        std::fs::write(&config, text).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_msrp-relay"))
            .arg("--config")
            .arg(&config)
            .env(
                "RUST_LOG",
                filter.map_or_else(
                    || std::env::var("MSRP_TEST_RUST_LOG").unwrap_or_else(|_| "warn".into()),
                    str::to_owned,
                ),
            )
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(if filter.is_some() {
                Stdio::piped()
            } else {
                Stdio::inherit()
            })
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        // Built before reading, so a failed start still kills the child.
        let mut p = RelayProcess {
            child,
            socket,
            msrp: String::new(),
            metrics: None,
            ready: String::new(),
            _dir: dir,
        };
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let msrp = line
            .trim()
            .strip_prefix("msrp-relay ready ")
            .and_then(|rest| rest.split(' ').find_map(|w| w.strip_prefix("msrp=")))
            .unwrap_or_else(|| panic!("no ready line from the relay: {line:?}"));
        p.msrp = msrp.to_owned();
        p.metrics = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("metrics="))
            .map(str::to_owned);
        p.ready = line.trim().to_owned();
        p
    }

    /// A `key=value` word of the ready line (`ng-udp`, `ng-tcp`).
    pub fn ready_word(&self, key: &str) -> Option<String> {
        let prefix = format!("{key}=");
        self.ready
            .split(' ')
            .find_map(|w| w.strip_prefix(prefix.as_str()))
            .map(str::to_owned)
    }

    /// The config file used (for `ctl --config`).
    pub fn config(&self) -> PathBuf {
        self.socket.with_file_name("relay.toml")
    }

    /// The piped stderr of [`start_logged`](Self::start_logged).
    pub fn take_stderr(&mut self) -> Option<std::process::ChildStderr> {
        self.child.stderr.take()
    }

    /// Sends a signal.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, sig).unwrap();
    }

    /// Waits for the exit status (after a signal sent with
    /// [`signal`](Self::signal)).
    pub fn terminate_wait(mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
    }

    /// Waits for the process to exit by itself; `bound` is a failure
    /// guard, not a synchronisation: past it the process is killed and
    /// the test fails.
    pub fn wait_exit(mut self, bound: Duration) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        let child = &mut self.child;
        std::thread::scope(|s| {
            s.spawn(move || {
                let _ = tx.send(child.wait());
            });
            match rx.recv_timeout(bound) {
                Ok(status) => status.unwrap(),
                Err(_) => {
                    // Ends the waiting thread too.
                    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                    panic!("the relay did not exit by itself within {bound:?}");
                }
            }
        })
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A control connection used for requests (one at a time).
#[derive(Debug)]
pub struct Control {
    w: UnixStream,
    r: BufReader<UnixStream>,
    next: u64,
}

impl Control {
    /// Connects.
    pub fn connect(path: &Path) -> Control {
        let w = UnixStream::connect(path).unwrap();
        w.set_read_timeout(Some(WAIT)).unwrap();
        let r = BufReader::new(w.try_clone().unwrap());
        Control { w, r, next: 1 }
    }

    /// Sends `fields` + a fresh id; returns the reply (events skipped).
    pub fn call(&mut self, mut fields: Value) -> Value {
        let id = self.next;
        self.next += 1;
        fields["id"] = json!(id);
        self.w.write_all(format!("{fields}\n").as_bytes()).unwrap();
        loop {
            let mut s = String::new();
            assert!(
                self.r.read_line(&mut s).unwrap() > 0,
                "control connection closed"
            );
            let v: Value = serde_json::from_str(&s).unwrap();
            if v["id"] == json!(id) {
                return v;
            }
        }
    }

    /// Like [`Control::call`], and asserts `"result": "ok"`.
    pub fn ok(&mut self, fields: Value) -> Value {
        let r = self.call(fields.clone());
        assert_eq!(r["result"], "ok", "{fields} → {r}");
        r
    }
}

/// Events so far, each with its hook's snapshot.
type Log = Mutex<Vec<(Value, Value)>>;

/// Events pushed on a subscribed connection, collected by a thread. Each
/// entry is the event and a hook's result taken when it arrived.
#[derive(Clone)]
pub struct EventLog {
    inner: Arc<(Log, Condvar)>,
}

impl EventLog {
    /// Connects, subscribes to every event and starts collecting. `hook`
    /// runs on each event as it arrives (e.g. to snapshot what a device
    /// had received at that moment).
    pub fn subscribe(path: &Path, hook: impl Fn(&Value) -> Value + Send + 'static) -> EventLog {
        let mut c = Control::connect(path);
        c.ok(json!({"command": "subscribe"}));
        let log = EventLog {
            inner: Arc::new((Mutex::new(Vec::new()), Condvar::new())),
        };
        let l = log.clone();
        std::thread::spawn(move || {
            c.w.set_read_timeout(None).unwrap();
            loop {
                let mut s = String::new();
                if c.r.read_line(&mut s).unwrap_or(0) == 0 {
                    return;
                }
                let v: Value = serde_json::from_str(&s).unwrap();
                let seen = hook(&v);
                l.inner.0.lock().unwrap().push((v, seen));
                l.inner.1.notify_all();
            }
        });
        log
    }

    /// Waits until `pred` holds over all events so far; returns them.
    pub fn wait(
        &self,
        what: &str,
        pred: impl Fn(&[(Value, Value)]) -> bool,
    ) -> Vec<(Value, Value)> {
        let deadline = Instant::now() + WAIT;
        let mut g = self.inner.0.lock().unwrap();
        while !pred(&g) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {what}; events: {:#?}",
                *g
            );
            g = self.inner.1.wait_timeout(g, left).unwrap().0;
        }
        g.clone()
    }

    /// Events named `name`.
    pub fn named(events: &[(Value, Value)], name: &str) -> usize {
        events.iter().filter(|(e, _)| e["event"] == name).count()
    }
}
