//! A tiny MSRP endpoint on a blocking `TcpStream`, built on the project's
//! own codec: the sender or a device of the end-to-end test. A reader
//! thread decodes, records what arrived and answers `200` to every request
//! that wants a response, *after* recording it, so that a `leg-done` (which
//! the relay raises only once every chunk of the leg is answered) can be
//! checked against the record without any race.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use msrp_relay::msrp::encode::{self, SendHead};
use msrp_relay::msrp::{ByteRange, Decoder, Event, Flag, Limits, Method, StatusCode};
use sha2::{Digest, Sha256};

/// What a peer got so far.
#[derive(Debug, Default)]
pub struct Received {
    /// Body bytes of SEND requests, in order.
    pub body: Vec<u8>,
    /// A SEND chunk ended with `$`.
    pub complete: bool,
    /// Transaction ids of responses to our requests, with their codes.
    pub responses: Vec<(String, u16)>,
    /// SEND requests received (bodiless binds included).
    pub sends: usize,
    /// The relay closed the connection.
    pub eof: bool,
    /// Decode errors.
    pub errors: Vec<String>,
    /// The Byte-Range of each SEND that had one, in order.
    pub ranges: Vec<ByteRange>,
}

impl Received {
    /// SHA-256 of the body received.
    pub fn digest(&self) -> String {
        hex(&Sha256::digest(&self.body))
    }
}

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<Received>,
    cv: Condvar,
}

/// An MSRP peer on one connection.
#[derive(Debug)]
pub struct MsrpPeer {
    name: String,
    local_uri: String,
    relay_uri: String,
    writer: Mutex<TcpStream>,
    shared: Arc<Shared>,
    next_tid: Mutex<u64>,
    _reader: JoinHandle<()>,
}

impl MsrpPeer {
    /// Connects to the relay (this peer is the active side).
    pub fn connect(name: &str, addr: SocketAddr, local_uri: &str, relay_uri: &str) -> MsrpPeer {
        let s = TcpStream::connect(addr).unwrap();
        MsrpPeer::on(name, s, local_uri, relay_uri)
    }

    /// Connects like [`connect`](Self::connect), keeps the first `cut_at`
    /// body bytes and then drops the connection: a device that lost its
    /// transfer part-way.
    pub fn connect_cut(
        name: &str,
        addr: SocketAddr,
        local_uri: &str,
        relay_uri: &str,
        cut_at: usize,
    ) -> MsrpPeer {
        let s = TcpStream::connect(addr).unwrap();
        MsrpPeer::start(name, s, local_uri, relay_uri, Some(cut_at))
    }

    /// Wraps a connected stream (e.g. one the relay opened to us).
    pub fn on(name: &str, stream: TcpStream, local_uri: &str, relay_uri: &str) -> MsrpPeer {
        MsrpPeer::start(name, stream, local_uri, relay_uri, None)
    }

    fn start(
        name: &str,
        stream: TcpStream,
        local_uri: &str,
        relay_uri: &str,
        cut_at: Option<usize>,
    ) -> MsrpPeer {
        stream.set_nodelay(true).unwrap();
        let shared = Arc::new(Shared::default());
        let writer = stream.try_clone().unwrap();
        let reply_writer = stream.try_clone().unwrap();
        let (s, me) = (shared.clone(), Bytes::from(local_uri.to_owned()));
        let reader = std::thread::Builder::new()
            .name(format!("peer-{name}"))
            .spawn(move || read_loop(stream, reply_writer, &s, &me, cut_at))
            .unwrap();
        MsrpPeer {
            name: name.into(),
            local_uri: local_uri.into(),
            relay_uri: relay_uri.into(),
            writer: Mutex::new(writer),
            shared,
            next_tid: Mutex::new(1),
            _reader: reader,
        }
    }

    fn tid(&self) -> String {
        let mut n = self.next_tid.lock().unwrap();
        *n += 1;
        format!("{}{}", self.name, *n)
    }

    fn head<'a>(
        &'a self,
        tid: &'a str,
        range: Option<ByteRange>,
        ct: Option<&'a [u8]>,
        message_id: &'a [u8],
    ) -> SendHead<'a> {
        SendHead {
            tid: tid.as_bytes(),
            to_path: self.relay_uri.as_bytes(),
            from_path: self.local_uri.as_bytes(),
            message_id,
            byte_range: range,
            success_report: None,
            failure_report: None,
            content_type: ct,
            extra: &[],
        }
    }

    /// A bodiless SEND that binds the connection (RFC 4975 §5.4); waits
    /// for its 200.
    pub fn bind(&self) {
        let tid = self.tid();
        let mut b = BytesMut::new();
        self.head(&tid, None, None, b"file-1").encode(&mut b);
        encode::end_line(&mut b, tid.as_bytes(), Flag::Complete, false);
        self.writer.lock().unwrap().write_all(&b).unwrap();
        self.wait_response(&tid);
    }

    /// Sends `body[from..to]` of a message of `total` bytes as one chunk and
    /// waits for its 200.
    pub fn send_chunk(&self, body: &[u8], from: usize, to: usize) {
        self.send_range("file-1", "image/jpeg", body, from, to);
    }

    /// One whole message (`Message-ID: id`, `Content-Type: ct`) in one
    /// chunk; waits for its 200.
    pub fn send_message(&self, id: &str, ct: &str, body: &[u8]) {
        self.send_range(id, ct, body, 0, body.len());
    }

    fn send_range(&self, id: &str, ct: &str, body: &[u8], from: usize, to: usize) {
        let tid = self.tid();
        let total = body.len() as u64;
        let range = ByteRange {
            start: from as u64 + 1,
            end: Some(to as u64),
            total: Some(total),
        };
        let mut b = BytesMut::new();
        self.head(&tid, Some(range), Some(ct.as_bytes()), id.as_bytes())
            .encode(&mut b);
        b.extend_from_slice(&body[from..to]);
        let flag = if to == body.len() {
            Flag::Complete
        } else {
            Flag::More
        };
        encode::end_line(&mut b, tid.as_bytes(), flag, true);
        self.writer.lock().unwrap().write_all(&b).unwrap();
        self.wait_response(&tid);
    }

    fn wait_response(&self, tid: &str) {
        let code = {
            let st = self.wait(&format!("a response to {tid}"), |s| {
                s.responses.iter().any(|(t, _)| t == tid)
            });
            st.responses.iter().find(|(t, _)| t == tid).map(|(_, c)| *c)
        };
        assert_eq!(code, Some(200), "{}: response to {tid}", self.name);
    }

    /// What arrived so far.
    pub fn state(&self) -> MutexGuard<'_, Received> {
        self.shared.state.lock().unwrap()
    }

    /// Waits (condition variable, 60 s safety bound) until `pred` holds.
    pub fn wait(
        &self,
        what: &str,
        mut pred: impl FnMut(&Received) -> bool,
    ) -> MutexGuard<'_, Received> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut st = self.shared.state.lock().unwrap();
        while !pred(&st) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{}: timed out waiting for {what}; got {} bytes, errors {:?}",
                self.name,
                st.body.len(),
                st.errors
            );
            st = self.shared.cv.wait_timeout(st, left).unwrap().0;
        }
        st
    }
}

fn read_loop(
    mut stream: TcpStream,
    mut writer: TcpStream,
    shared: &Shared,
    me: &Bytes,
    cut_at: Option<usize>,
) {
    let mut dec = Decoder::new(Limits::default());
    let mut buf = vec![0u8; 32 << 10];
    // (tid, From-Path of the request, wants a response)
    let mut cur: Option<(Bytes, Bytes, bool)> = None;
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        dec.feed(Bytes::copy_from_slice(&buf[..n]));
        let mut out = BytesMut::new();
        {
            let mut st = shared.state.lock().unwrap();
            loop {
                match dec.poll() {
                    Ok(None) => break,
                    Ok(Some(Event::Request(h))) => {
                        if h.method == Method::Send {
                            st.sends += 1;
                            st.ranges.extend(h.byte_range);
                        }
                        let from = h.from_path.first().raw().clone();
                        cur = Some((
                            Bytes::copy_from_slice(h.tid.as_bytes()),
                            from,
                            h.wants_response(),
                        ));
                    }
                    Ok(Some(Event::Body(b))) => st.body.extend_from_slice(&b),
                    Ok(Some(Event::End(flag))) => {
                        if flag == Flag::Complete && !st.body.is_empty() {
                            st.complete = true;
                        }
                        if let Some((tid, from, true)) = cur.take() {
                            encode::transaction_response(
                                &mut out,
                                &tid,
                                StatusCode::OK,
                                None,
                                &from,
                                me,
                            );
                        }
                    }
                    Ok(Some(Event::Response(r))) => {
                        st.responses.push((
                            String::from_utf8_lossy(r.tid.as_bytes()).into_owned(),
                            r.code.0,
                        ));
                    }
                    Ok(Some(other)) => st.errors.push(format!("unexpected event {other:?}")),
                    Err(e) => st.errors.push(e.to_string()),
                }
            }
            if let Some(cut) = cut_at.filter(|c| st.body.len() >= *c) {
                st.body.truncate(cut);
                let _ = stream.shutdown(std::net::Shutdown::Both);
                break;
            }
            shared.cv.notify_all();
        }
        // Recorded first, answered second.
        if !out.is_empty() && writer.write_all(&out).is_err() {
            break;
        }
    }
    shared.state.lock().unwrap().eof = true;
    shared.cv.notify_all();
}
