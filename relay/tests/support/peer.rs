//! An MSRP endpoint on a blocking std `TcpStream`: the sender or a device
//! of the loopback tests. A reader thread decodes with the project's own
//! `msrp::Decoder`, answers `200` to every SEND that wants a response,
//! and records what arrived; the test waits on it with deadlines.

use std::collections::HashMap;
use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use msrp_relay::msrp::encode::{self, SendHead};
use msrp_relay::msrp::{ByteRange, Flag};
use sha2::{Digest, Sha256};

/// A process-wide sequence: orders observations across threads without
/// the wall clock.
pub fn next_seq() -> u64 {
    static SEQ: AtomicU64 = AtomicU64::new(1);
    SEQ.fetch_add(1, Ordering::SeqCst)
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

pub(super) fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// How a peer reads.
#[derive(Debug, Clone, Copy, Default)]
pub struct PeerOpts {
    /// Read at most this many bytes per second.
    pub rate: Option<u64>,
    /// `SO_RCVBUF`, set before connecting (a small window makes a slow
    /// reader push back on the relay at once).
    pub rcvbuf: Option<usize>,
    /// How the peer answers `Success-Report: yes` (RFC 4975 §7.1.3).
    pub reports: Reports,
}

/// How a peer sends success REPORTs for chunks that ask for them. Like the
/// third-party clients seen in the field, a REPORT always leaves in a
/// write of its own, after the chunk's `200` (never coalesced with it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Reports {
    /// Never (a client that ignores Success-Report).
    #[default]
    Off,
    /// One REPORT for the whole message, after its last chunk.
    Whole {
        /// Written this long after the `200` (a client that reports late).
        delay: Duration,
    },
    /// One REPORT per chunk, covering just that chunk's bytes.
    PerChunk {
        /// Written this long after the chunk's `200`.
        delay: Duration,
        /// Held until the message's last chunk, then written last chunk
        /// first, each twice: out of order and duplicated.
        shuffle: bool,
    },
}

/// One message as received, chunks joined by Byte-Range.
#[derive(Debug)]
pub struct RxMsg {
    pub message_id: String,
    pub content_type: String,
    pub len: u64,
    pub(super) hasher: Sha256,
    /// SHA-256 of the whole body, once the `$` end-line arrived.
    pub digest: Option<String>,
    /// The first 64 KiB of the body (chat text, CPIM).
    pub body: Vec<u8>,
    /// Flag of the last end-line.
    pub flag: Option<Flag>,
    /// [`next_seq`] when the `$` arrived (taken before answering it).
    pub done_seq: Option<u64>,
}

impl RxMsg {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What a peer got so far.
#[derive(Debug, Default)]
pub struct PeerState {
    pub msgs: Vec<RxMsg>,
    /// Transaction id → status code of responses to our requests.
    pub responses: HashMap<String, u16>,
    /// (Message-ID, status) of REPORTs received.
    pub reports: Vec<(String, u16)>,
    /// Byte-Range of each REPORT received, in the order of `reports`.
    pub report_ranges: Vec<ByteRange>,
    /// REPORTs this peer has decided to send, and has written (see
    /// [`Reports`]).
    pub reports_queued: usize,
    pub reports_sent: usize,
    pub body_bytes: u64,
    pub eof: bool,
    pub errors: Vec<String>,
}

impl PeerState {
    pub fn msg(&self, message_id: &str) -> Option<&RxMsg> {
        self.msgs.iter().find(|m| m.message_id == message_id)
    }
    /// Whether the message ended with `$` and has this digest.
    pub fn has_file(&self, message_id: &str, digest: &str) -> bool {
        self.msg(message_id)
            .is_some_and(|m| m.digest.as_deref() == Some(digest))
    }
    pub fn complete(&self) -> impl Iterator<Item = &RxMsg> {
        self.msgs.iter().filter(|m| m.flag == Some(Flag::Complete))
    }
    /// Bodies of complete messages of a content type.
    pub fn texts(&self, content_type: &str) -> Vec<String> {
        self.complete()
            .filter(|m| m.content_type.eq_ignore_ascii_case(content_type))
            .map(RxMsg::text)
            .collect()
    }
}

#[derive(Debug, Default)]
pub(super) struct Shared {
    pub(super) state: Mutex<PeerState>,
    pub(super) cv: Condvar,
}

/// An MSRP peer connected to the relay.
#[derive(Debug)]
pub struct Peer {
    pub name: String,
    pub local_uri: String,
    pub relay_uri: String,
    writer: Arc<Mutex<TcpStream>>,
    shared: Arc<Shared>,
    tids: AtomicU64,
    reader: Option<JoinHandle<()>>,
}

impl Peer {
    /// Connects to the relay (the peer as active side).
    pub fn connect(
        name: &str,
        addr: SocketAddr,
        local_uri: &str,
        relay_uri: &str,
        opts: PeerOpts,
    ) -> Peer {
        let sock =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        if let Some(n) = opts.rcvbuf {
            sock.set_recv_buffer_size(n).unwrap();
        }
        sock.connect(&addr.into()).unwrap();
        sock.set_tcp_nodelay(true).unwrap();
        Peer::from_stream(name, sock.into(), local_uri, relay_uri, opts)
    }

    /// Wraps a connected stream (the relay connected to us, or we to it).
    pub fn from_stream(
        name: &str,
        stream: TcpStream,
        local_uri: &str,
        relay_uri: &str,
        opts: PeerOpts,
    ) -> Peer {
        let shared = Arc::new(Shared::default());
        let writer = Arc::new(Mutex::new(stream.try_clone().unwrap()));
        let (s, w, me) = (
            shared.clone(),
            writer.clone(),
            Bytes::from(local_uri.to_owned()),
        );
        let reader = std::thread::Builder::new()
            .name(format!("peer-{name}"))
            .stack_size(256 << 10)
            .spawn(move || super::reader::read_loop(stream, w, s, me, opts))
            .unwrap();
        Peer {
            name: name.into(),
            local_uri: local_uri.into(),
            relay_uri: relay_uri.into(),
            writer,
            shared,
            tids: AtomicU64::new(1),
            reader: Some(reader),
        }
    }

    fn tid(&self) -> String {
        format!(
            "{}t{}",
            self.name.replace(|c: char| !c.is_ascii_alphanumeric(), ""),
            self.tids.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// A bodiless SEND that binds the connection (RFC 4975 §5.4); returns
    /// its transaction id.
    pub fn send_bind(&self) -> String {
        let tid = self.tid();
        let mut b = BytesMut::new();
        self.head(&tid, "bind", None, None, None).encode(&mut b);
        encode::end_line(&mut b, tid.as_bytes(), Flag::Complete, false);
        self.write(&b);
        tid
    }

    fn head<'a>(
        &'a self,
        tid: &'a str,
        mid: &'a str,
        range: Option<ByteRange>,
        ct: Option<&'a str>,
        _x: Option<()>,
    ) -> SendHead<'a> {
        SendHead {
            tid: tid.as_bytes(),
            to_path: self.relay_uri.as_bytes(),
            from_path: self.local_uri.as_bytes(),
            message_id: mid.as_bytes(),
            byte_range: range,
            success_report: None,
            failure_report: None,
            content_type: ct.map(str::as_bytes),
            extra: &[],
        }
    }

    /// Sends a message in chunks of `chunk` bytes; returns the chunks'
    /// transaction ids. `sent` is called after each chunk with the bytes
    /// sent so far.
    pub fn send_message(
        &self,
        mid: &str,
        ct: &str,
        body: &[u8],
        chunk: usize,
        sent: impl FnMut(u64),
    ) -> Vec<String> {
        self.send_chunks(mid, ct, body, chunk, None, sent)
    }

    /// [`Peer::send_message`] with `Success-Report: yes` on every chunk.
    pub fn send_reported(&self, mid: &str, ct: &str, body: &[u8], chunk: usize) -> Vec<String> {
        self.send_chunks(mid, ct, body, chunk, Some(true), |_| {})
    }

    fn send_chunks(
        &self,
        mid: &str,
        ct: &str,
        body: &[u8],
        chunk: usize,
        success_report: Option<bool>,
        mut sent: impl FnMut(u64),
    ) -> Vec<String> {
        let total = body.len() as u64;
        let mut tids = Vec::new();
        let mut at = 0usize;
        loop {
            let end = (at + chunk).min(body.len());
            let tid = self.tid();
            let range = ByteRange {
                start: at as u64 + 1,
                end: Some(end as u64),
                total: Some(total),
            };
            let mut b = BytesMut::new();
            let mut head = self.head(&tid, mid, Some(range), Some(ct), None);
            head.success_report = success_report;
            head.encode(&mut b);
            b.extend_from_slice(&body[at..end]);
            let flag = if end == body.len() {
                Flag::Complete
            } else {
                Flag::More
            };
            encode::end_line(&mut b, tid.as_bytes(), flag, true);
            self.write(&b);
            tids.push(tid);
            sent(end as u64);
            at = end;
            if at >= body.len() {
                return tids;
            }
        }
    }

    /// Writes a chunk's head and `part` of its body, then nothing more.
    pub fn send_partial(&self, mid: &str, ct: &str, start: u64, total: u64, part: &[u8]) {
        let tid = self.tid();
        let range = ByteRange {
            start,
            end: Some(total),
            total: Some(total),
        };
        let mut b = BytesMut::new();
        self.head(&tid, mid, Some(range), Some(ct), None)
            .encode(&mut b);
        b.extend_from_slice(part);
        self.write(&b);
    }

    /// Raw bytes on the wire.
    pub fn write(&self, bytes: &[u8]) {
        let mut w = self.writer.lock().unwrap();
        // A peer the relay closed may fail to write; tests look at state.
        let _ = w.write_all(bytes);
    }

    /// Closes both directions now.
    pub fn disconnect(&self) {
        let _ = self.writer.lock().unwrap().shutdown(Shutdown::Both);
    }

    pub fn state(&self) -> MutexGuard<'_, PeerState> {
        self.shared.state.lock().unwrap()
    }

    /// Waits until `pred` holds; panics with `what` and a summary after
    /// `within`.
    pub fn wait(&self, what: &str, within: Duration, mut pred: impl FnMut(&PeerState) -> bool) {
        let deadline = Instant::now() + within;
        let mut st = self.state();
        while !pred(&st) {
            let now = Instant::now();
            assert!(
                now < deadline,
                "{}: timed out waiting for {what}; state: {}",
                self.name,
                summary(&st)
            );
            st = self.shared.cv.wait_timeout(st, deadline - now).unwrap().0;
        }
    }

    /// Like [`Peer::wait`], but returns false at the deadline.
    pub fn wait_for(&self, within: Duration, mut pred: impl FnMut(&PeerState) -> bool) -> bool {
        let deadline = Instant::now() + within;
        let mut st = self.state();
        while !pred(&st) {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            st = self.shared.cv.wait_timeout(st, deadline - now).unwrap().0;
        }
        true
    }

    /// Waits for the response to `tid` and returns its code.
    pub fn response(&self, tid: &str, within: Duration) -> u16 {
        self.wait(&format!("response to {tid}"), within, |s| {
            s.responses.contains_key(tid)
        });
        self.state().responses[tid]
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.disconnect();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

fn summary(s: &PeerState) -> String {
    let msgs: Vec<String> = s
        .msgs
        .iter()
        .map(|m| format!("{}:{}B:{:?}", m.message_id, m.len, m.flag))
        .collect();
    format!(
        "msgs={msgs:?} responses={} reports={:?} eof={} errors={:?}",
        s.responses.len(),
        s.reports,
        s.eof,
        s.errors
    )
}
