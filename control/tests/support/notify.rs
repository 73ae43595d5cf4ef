//! A datagram socket standing in for systemd's `NOTIFY_SOCKET`: the
//! relay says READY, RELOADING, STOPPING on it, which tells a test when a
//! start, a SIGHUP reload or a SIGTERM drain has taken effect.

use std::os::unix::net::UnixDatagram;

use super::WAIT;

/// The socket, in a temp dir of its own.
pub struct Notify {
    sock: UnixDatagram,
    path: String,
    _dir: tempfile::TempDir,
}

impl Notify {
    pub fn bind() -> Notify {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(WAIT)).unwrap();
        Notify {
            sock,
            path: path.to_str().unwrap().to_owned(),
            _dir: dir,
        }
    }

    /// The `NOTIFY_SOCKET` environment entry for the relay.
    pub fn env(&self) -> (&'static str, &str) {
        ("NOTIFY_SOCKET", &self.path)
    }

    /// The next notification (within [`WAIT`]).
    pub fn next(&self) -> String {
        let mut buf = [0u8; 512];
        let n = self
            .sock
            .recv(&mut buf)
            .expect("a notification within the wait");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// Skips notifications until one contains `what`.
    pub fn expect(&self, what: &str) {
        while !self.next().contains(what) {}
    }
}
