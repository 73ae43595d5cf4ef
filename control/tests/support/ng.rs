//! An ng client for the tests, over UDP (retransmitting on a timeout, as
//! the rtpengine module does) and TCP (either framing).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use msrp_control::ng::bencode::{self, Limits, Value};
use msrp_control::ng::wire::{self, Framing};

use super::WAIT;

/// How long a UDP request waits before it is sent again (retransmission,
/// not synchronisation: the reply cache makes it safe).
const RETRANSMIT: Duration = Duration::from_millis(500);

/// A request dictionary from text pairs.
pub fn req(pairs: &[(&str, &str)]) -> Value {
    Value::Dict(
        pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), Value::str(*v)))
            .collect(),
    )
}

/// A text key of a reply.
pub fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no {key} in {v:?}"))
}

/// An ng client over UDP.
#[derive(Debug)]
pub struct NgUdp {
    sock: UdpSocket,
    to: SocketAddr,
    next: u64,
}

impl NgUdp {
    /// A socket toward `to`.
    pub fn new(to: &str) -> NgUdp {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(RETRANSMIT)).unwrap();
        NgUdp {
            sock,
            to: to.parse().unwrap(),
            next: 1,
        }
    }

    /// A fresh cookie.
    pub fn cookie(&mut self) -> String {
        self.next += 1;
        format!("{}_{}", std::process::id(), self.next)
    }

    /// Sends `msg` (whole, as bytes) and returns the reply carrying
    /// `cookie`, sending `msg` again each time the reply is late.
    pub fn exchange(&self, msg: &[u8], cookie: &str) -> Vec<u8> {
        let mut buf = vec![0u8; 70_000];
        let rounds = WAIT.as_millis() / RETRANSMIT.as_millis();
        for _ in 0..rounds {
            self.sock.send_to(msg, self.to).unwrap();
            while let Ok((n, _)) = self.sock.recv_from(&mut buf) {
                let (c, _) = wire::split(&buf[..n]).unwrap();
                if c == cookie.as_bytes() {
                    return buf[..n].to_vec();
                }
            }
        }
        panic!("no reply to cookie {cookie}");
    }

    /// The next datagram (used after sending what the relay must drop).
    pub fn recv_any(&self) -> Vec<u8> {
        let mut buf = vec![0u8; 70_000];
        let rounds = WAIT.as_millis() / RETRANSMIT.as_millis();
        for _ in 0..rounds {
            if let Ok((n, _)) = self.sock.recv_from(&mut buf) {
                return buf[..n].to_vec();
            }
        }
        panic!("nothing received");
    }

    /// Sends without waiting.
    pub fn send(&self, msg: &[u8]) {
        self.sock.send_to(msg, self.to).unwrap();
    }

    /// One request with `cookie`; the decoded reply.
    pub fn call_with(&self, cookie: &str, body: &Value) -> Value {
        let msg = message(cookie, body);
        decode_reply(&self.exchange(&msg, cookie))
    }

    /// One request with a fresh cookie.
    pub fn call(&mut self, body: &Value) -> Value {
        let c = self.cookie();
        self.call_with(&c, body)
    }
}

/// `<cookie> <bencode>`.
pub fn message(cookie: &str, body: &Value) -> Vec<u8> {
    let mut m = format!("{cookie} ").into_bytes();
    m.extend(bencode::encode(body));
    m
}

/// The dictionary of a reply message.
pub fn decode_reply(msg: &[u8]) -> Value {
    let (_, body) = wire::split(msg).unwrap();
    bencode::decode(body, Limits::default()).unwrap()
}

/// An ng client over TCP.
#[derive(Debug)]
pub struct NgTcp {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl NgTcp {
    /// Connects.
    pub fn connect(addr: &str) -> NgTcp {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        NgTcp {
            stream,
            buf: Vec::new(),
        }
    }

    /// Writes raw bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// The next reply message (framing, `<cookie> <dict>`); `None` when
    /// the relay closed the connection.
    pub fn read(&mut self) -> Option<(Framing, Vec<u8>)> {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(c) = wire::cut(&self.buf, 1 << 20, Limits::default()).unwrap() {
                self.buf.drain(..c.consumed);
                return Some((c.framing, c.message));
            }
            let n = self.stream.read(&mut chunk).unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// One request in `framing`; the decoded reply (asserting its cookie
    /// and framing).
    pub fn call(&mut self, framing: Framing, cookie: &str, body: &Value) -> Value {
        self.write(&wire::frame(framing, &message(cookie, body)));
        let (f, msg) = self.read().expect("connection closed");
        assert_eq!(f, framing);
        let (c, _) = wire::split(&msg).unwrap();
        assert_eq!(c, cookie.as_bytes());
        decode_reply(&msg)
    }
}
