//! A real Kamailio (Debian's package, installed by
//! `control/tests/kamailio/install.sh`) in the foreground on 127.0.0.1,
//! running `control/tests/kamailio/kamailio.cfg` with the relays' ng
//! addresses. Killed with its whole process group when dropped; its log
//! is printed when the test failed.

use std::net::{SocketAddr, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::WAIT;
use super::sip::{SipMsg, token};

/// Fails with the way out when Kamailio is not installed: the test must
/// not pass by skipping itself on the machine that is meant to run it.
pub fn binary() -> PathBuf {
    for dir in ["/usr/sbin", "/usr/local/sbin", "/usr/bin"] {
        let p = PathBuf::from(dir).join("kamailio");
        if p.exists() {
            return p;
        }
    }
    panic!("kamailio not found: run `bash control/tests/kamailio/install.sh` (as .ci/run does)");
}

/// One Kamailio process.
pub struct Kamailio {
    child: Child,
    /// Where SIP reaches it (UDP).
    pub sip: SocketAddr,
    /// Its binrpc control socket, for `kamcmd -s`.
    pub ctl: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Kamailio {
    /// Starts Kamailio with `RELAYS` = one `udp:` entry per ng address
    /// and waits until it answers an OPTIONS.
    pub fn start(ng: &[String]) -> Kamailio {
        let dir = tempfile::tempdir().unwrap();
        let port = {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.local_addr().unwrap().port()
        };
        let sip: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let relays: Vec<String> = ng.iter().map(|a| format!("udp:{a}")).collect();
        let ctl = format!("unix:{}", dir.path().join("ctl").display());
        let cfg = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kamailio/kamailio.cfg");
        let log = dir.path().join("kamailio.log");
        let child = Command::new(binary())
            .arg("-f")
            .arg(&cfg)
            .args(["-DD", "-E", "-n", "2", "-m", "64", "-M", "8"])
            .arg("-l")
            .arg(format!("udp:{sip}"))
            .arg("-Y")
            .arg(dir.path())
            .arg("-w")
            .arg(dir.path())
            .arg("-A")
            .arg(format!("RELAYS=\"{}\"", relays.join(" ")))
            .arg("-A")
            .arg(format!("CTL=\"{ctl}\""))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::options().append(true).open(&log).unwrap())
            .process_group(0)
            .spawn()
            .expect("spawn kamailio");
        let mut k = Kamailio {
            child,
            sip,
            ctl,
            log,
            _dir: dir,
        };
        k.wait_ready();
        k
    }

    /// OPTIONS to the proxy until it answers 200 (SIP's own retransmit
    /// interval, T1 = 500 ms, doubling), bounded by [`WAIT`].
    fn wait_ready(&mut self) {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let me = sock.local_addr().unwrap();
        let deadline = Instant::now() + WAIT;
        let mut t = Duration::from_millis(100);
        let mut buf = vec![0u8; 65_536];
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!(
                    "kamailio exited ({st}) before it was ready:\n{}",
                    self.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "kamailio not ready within {WAIT:?}:\n{}",
                self.log_text()
            );
            let mut m = SipMsg::new(format!("OPTIONS sip:{} SIP/2.0", self.sip));
            m.add(
                "via",
                &format!("SIP/2.0/UDP {me};branch={};rport", token("z9hG4bK-o")),
            )
            .add("max-forwards", "70")
            .add("from", &format!("<sip:probe@{me}>;tag={}", token("p")))
            .add("to", &format!("<sip:{}>", self.sip))
            .add("call-id", &token("probe-"))
            .add("cseq", "1 OPTIONS");
            sock.send_to(&m.bytes(), self.sip).unwrap();
            sock.set_read_timeout(Some(t)).unwrap();
            if let Ok((n, _)) = sock.recv_from(&mut buf)
                && SipMsg::parse(&buf[..n]).status() == Some(200)
            {
                return;
            }
            t = (t * 2).min(Duration::from_secs(2));
        }
    }

    /// What Kamailio logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `kamcmd <args>` against this Kamailio; its stdout.
    pub fn kamcmd(&self, args: &[&str]) -> String {
        let out = Command::new("kamcmd")
            .arg("-s")
            .arg(&self.ctl)
            .args(args)
            .output()
            .expect("run kamcmd");
        assert!(
            out.status.success(),
            "kamcmd {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let pgid = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        }
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- kamailio log ----\n{}", self.log_text());
        }
    }
}
