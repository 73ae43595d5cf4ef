//! The SIP front end's side of the control socket: requests with replies
//! matched by id (several may be in flight), events collected as they
//! come, and the SDP the front end would forward.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::error::{Context, LoadError, Result};
use crate::sync::lock;

type Pending = Arc<Mutex<HashMap<u64, mpsc::Sender<Value>>>>;

/// Events pushed by the relay, with the time each arrived.
#[derive(Debug, Default)]
pub struct Events {
    log: Mutex<Vec<(Instant, Value)>>,
    cv: Condvar,
    closed: std::sync::atomic::AtomicBool,
}

impl Events {
    fn push(&self, v: Value) {
        lock(&self.log).push((Instant::now(), v));
        self.cv.notify_all();
    }

    /// Every event so far.
    pub fn all(&self) -> Vec<(Instant, Value)> {
        lock(&self.log).clone()
    }

    /// Waits until `pred` holds over the events so far; false at the
    /// deadline.
    pub fn wait(
        &self,
        within: Duration,
        mut pred: impl FnMut(&[(Instant, Value)]) -> bool,
    ) -> bool {
        let deadline = Instant::now() + within;
        let mut g = lock(&self.log);
        while !pred(&g) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            g = self
                .cv
                .wait_timeout(g, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// Whether the relay closed the control connection (it is gone).
    pub fn closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Forgets the events so far.
    pub fn clear(&self) {
        lock(&self.log).clear();
    }
}

/// Counts the events named `name` for session `call_id`.
pub fn count(events: &[(Instant, Value)], name: &str, call_id: &str) -> usize {
    events
        .iter()
        .filter(|(_, e)| e["event"] == name && e["call-id"] == call_id)
        .count()
}

/// A control connection: requests may be issued from several threads.
#[derive(Debug)]
pub struct Control {
    w: Mutex<UnixStream>,
    pending: Pending,
    next: AtomicU64,
    /// Events, once subscribed.
    pub events: Arc<Events>,
    /// The pid of the relay (`SO_PEERCRED`).
    pub relay_pid: Option<u32>,
    timeout: Duration,
}

impl Control {
    /// Connects and starts the reader.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Control> {
        let s = UnixStream::connect(path)
            .context(|| format!("connect to the control socket {}", path.display()))?;
        let relay_pid = crate::sys::peer_pid(&s);
        let r = s.try_clone().context(|| "clone control socket".into())?;
        let pending: Pending = Arc::default();
        let events: Arc<Events> = Arc::default();
        let (p, e) = (pending.clone(), events.clone());
        std::thread::Builder::new()
            .name("control-reader".into())
            .spawn(move || reader(r, &p, &e))
            .context(|| "spawn control reader".into())?;
        Ok(Control {
            w: Mutex::new(s),
            pending,
            next: AtomicU64::new(1),
            events,
            relay_pid,
            timeout,
        })
    }

    /// Sends a request (`fields` plus a fresh id); returns the reply.
    pub fn call(&self, mut fields: Value) -> Result<Value> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        fields["id"] = json!(id);
        let (tx, rx) = mpsc::channel();
        lock(&self.pending).insert(id, tx);
        let line = format!("{fields}\n");
        lock(&self.w)
            .write_all(line.as_bytes())
            .context(|| "write to the control socket".into())?;
        rx.recv_timeout(self.timeout).map_err(|e| {
            lock(&self.pending).remove(&id);
            match e {
                mpsc::RecvTimeoutError::Disconnected => LoadError::Relay(format!(
                    "the relay closed the control connection (no reply to {})",
                    fields["command"]
                )),
                mpsc::RecvTimeoutError::Timeout => {
                    LoadError::Timeout(format!("no reply to {}", fields["command"]))
                }
            }
        })
    }

    /// Like [`Control::call`]; an error reply is an error.
    pub fn ok(&self, fields: Value) -> Result<Value> {
        let r = self.call(fields.clone())?;
        if r["result"] == "ok" {
            Ok(r)
        } else {
            Err(LoadError::Control(format!(
                "{} refused: {}",
                fields["command"],
                r["error-reason"].as_str().unwrap_or("(no reason)")
            )))
        }
    }

    /// Subscribes this connection to every event.
    pub fn subscribe(&self) -> Result<()> {
        self.ok(json!({"command": "subscribe"})).map(drop)
    }
}

fn reader(s: UnixStream, pending: &Pending, events: &Events) {
    let mut r = BufReader::with_capacity(64 << 10, s);
    let mut line = Vec::new();
    loop {
        line.clear();
        match r.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let Ok(v) = serde_json::from_slice::<Value>(&line) else {
            continue;
        };
        if v.get("event").is_some() {
            events.push(v);
        } else if let Some(tx) = v["id"].as_u64().and_then(|id| lock(pending).remove(&id)) {
            let _ = tx.send(v);
        }
    }
    // Wake every waiter: the relay is gone (flagged first, so that a
    // caller woken by the cleared request already sees it closed).
    events.closed.store(true, Ordering::Release);
    lock(pending).clear();
    events.cv.notify_all();
}

/// The MSRP media protocol of a path: `TCP/TLS/MSRP` for an `msrps:`
/// URI (a TLS leg), `TCP/MSRP` otherwise.
pub fn media_proto(path: &str) -> &'static str {
    if path
        .get(..6)
        .is_some_and(|s| s.eq_ignore_ascii_case("msrps:"))
    {
        "TCP/TLS/MSRP"
    } else {
        "TCP/MSRP"
    }
}

/// The sender's SDP offer for a session of `kind` (`chat` or a file of
/// `size` bytes); over TLS when `sender_path` is an `msrps:` URI.
pub fn offer_sdp(sender_path: &str, file_size: Option<u64>) -> String {
    let proto = media_proto(sender_path);
    let mut s = format!(
        "v=0\r\no=alice 2890844526 2890844526 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=message 9 {proto} *\r\na=accept-types:message/cpim text/plain application/octet-stream\r\na=setup:actpass\r\na=path:{sender_path}\r\n"
    );
    if let Some(size) = file_size {
        s.push_str(&format!(
            "a=sendonly\r\na=file-selector:name:\"load.bin\" type:application/octet-stream size:{size}\r\na=file-transfer-id:load{size}\r\n"
        ));
    }
    s
}

/// A device's SDP answer: it connects (`a=setup:active`) from `path`
/// (over TLS for an `msrps:` URI).
pub fn answer_sdp(path: &str, file: bool) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=message 9 {} *\r\n{}a=accept-types:message/cpim text/plain application/octet-stream\r\na=setup:active\r\na=path:{path}\r\n",
        media_proto(path),
        if file { "a=recvonly\r\n" } else { "" }
    )
}

/// The value of the first SDP line starting with `prefix`.
pub fn sdp_attr<'a>(sdp: &'a str, prefix: &str) -> Option<&'a str> {
    sdp.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .map(str::trim_end)
}

/// The relay's `a=path` and its MSRP address (`c=` and `m=` port) in an
/// SDP from the relay.
pub fn relay_endpoint(sdp: &str) -> Result<(String, SocketAddr)> {
    let bad = |what: &str| LoadError::Control(format!("relay SDP without {what}: {sdp:?}"));
    let path = sdp_attr(sdp, "a=path:").ok_or_else(|| bad("a=path"))?;
    let host = sdp_attr(sdp, "c=IN IP4 ")
        .or_else(|| sdp_attr(sdp, "c=IN IP6 "))
        .ok_or_else(|| bad("c="))?;
    let port: u16 = sdp_attr(sdp, "m=message ")
        .and_then(|m| m.split(' ').next())
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| bad("m=message port"))?;
    let ip: std::net::IpAddr = host.parse().map_err(|_| bad("an IP literal in c="))?;
    Ok((path.to_owned(), SocketAddr::new(ip, port)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replies are matched by id, events are collected, and a relay that
    /// goes away is an error, not a hang.
    #[test]
    fn replies_events_and_a_vanishing_relay() {
        use std::os::unix::net::UnixListener;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sock");
        let l = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut w = s;
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let req: Value = serde_json::from_str(&line).unwrap();
            let ev = json!({"event": "leg-done", "call-id": "c1"});
            let rep = json!({"id": req["id"], "result": "ok", "events": []});
            w.write_all(format!("{ev}\n{rep}\n").as_bytes()).unwrap();
            line.clear();
            r.read_line(&mut line).unwrap();
            // Then the relay dies without answering.
        });
        let c = Control::connect(&path, Duration::from_secs(10)).unwrap();
        c.subscribe().unwrap();
        assert!(
            c.events
                .wait(Duration::from_secs(5), |e| count(e, "leg-done", "c1") == 1)
        );
        let e = c.call(json!({"command": "ping"})).unwrap_err();
        assert!(matches!(e, LoadError::Relay(_)), "{e}");
        assert!(c.events.closed());
        server.join().unwrap();
    }

    #[test]
    fn relay_endpoint_from_sdp() {
        let sdp = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=message 40001 TCP/MSRP *\r\na=path:msrp://127.0.0.1:40001/abc;tcp\r\n";
        let (path, addr) = relay_endpoint(sdp).unwrap();
        assert_eq!(path, "msrp://127.0.0.1:40001/abc;tcp");
        assert_eq!(addr, "127.0.0.1:40001".parse().unwrap());
        assert!(relay_endpoint("v=0\r\n").is_err());
    }

    #[test]
    fn offers_and_answers_carry_paths() {
        let o = offer_sdp("msrp://127.0.0.1:9/s1;tcp", Some(10));
        assert_eq!(sdp_attr(&o, "a=path:"), Some("msrp://127.0.0.1:9/s1;tcp"));
        assert!(o.contains("size:10"));
        let a = answer_sdp("msrp://127.0.0.1:9/d1;tcp", false);
        assert_eq!(sdp_attr(&a, "a=setup:"), Some("active"));
        assert_eq!(sdp_attr(&a, "m=message "), Some("9 TCP/MSRP *"));
        // An msrps: path makes a TLS offer and answer.
        let o = offer_sdp("msrps://127.0.0.1:9/s1;tcp", None);
        assert_eq!(sdp_attr(&o, "m=message "), Some("9 TCP/TLS/MSRP *"));
        let a = answer_sdp("MSRPS://127.0.0.1:9/d1;tcp", true);
        assert_eq!(sdp_attr(&a, "m=message "), Some("9 TCP/TLS/MSRP *"));
        assert_eq!(media_proto("msrp"), "TCP/MSRP");
    }
}
