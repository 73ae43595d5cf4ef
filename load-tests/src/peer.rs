//! MSRP endpoints on blocking sockets, built on the project's codec: the
//! senders and devices of every scenario.
//!
//! One reader thread per connection decodes with [`Decoder`] from large
//! reads into [`Bytes`] (body pieces are slices of the read buffer, never
//! copied), hands the events to a [`Handler`] and answers `200` to every
//! request that wants one. Writers send `[head, body, end-line]` with one
//! vectored write; the body is one shared [`Bytes`] for every connection.
//! A connection is a [`Wire`]: plain TCP or TLS, the same code above it.

use std::io::{IoSlice, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use msrp_relay::msrp::encode::{self, SendHead};
use msrp_relay::msrp::{ByteRange, Decoder, Event, Flag, Limits, Method, RequestHead, StatusCode};

use crate::error::{Context, LoadError, Result};
use crate::net::write_all_vectored;
use crate::rate::RateLimiter;
use crate::sync::lock;
use crate::wire::Wire;

/// A connection's write side, shared by the thread that sends content and
/// the reader thread that answers requests (writes never interleave).
pub type SharedWriter = Arc<Mutex<Wire>>;

/// One side of an MSRP session: its own URI, the peer's, and transaction
/// ids.
#[derive(Debug)]
pub struct Endpoint {
    /// This endpoint's URI (From-Path).
    pub local_uri: String,
    /// The peer's URI (To-Path).
    pub remote_uri: String,
    prefix: String,
    next: u64,
}

impl Endpoint {
    /// An endpoint whose transaction ids start with `prefix` (alphanumeric).
    pub fn new(prefix: &str, local_uri: &str, remote_uri: &str) -> Endpoint {
        Endpoint {
            local_uri: local_uri.into(),
            remote_uri: remote_uri.into(),
            // Transaction ids are 4 to 32 characters (RFC 4975 §9).
            prefix: prefix
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(20)
                .collect(),
            next: 1,
        }
    }

    /// A fresh transaction id.
    pub fn tid(&mut self) -> String {
        self.next += 1;
        format!("{}x{:03}", self.prefix, self.next)
    }

    /// A bodiless SEND that binds the connection (RFC 4975 §5.4); returns
    /// its tid and the bytes.
    pub fn bind_frame(&mut self) -> (String, BytesMut) {
        let tid = self.tid();
        let mut b = BytesMut::with_capacity(256);
        self.head(&tid, b"bind", None, None).encode(&mut b);
        encode::end_line(&mut b, tid.as_bytes(), Flag::Complete, false);
        (tid, b)
    }

    fn head<'a>(
        &'a self,
        tid: &'a str,
        mid: &'a [u8],
        range: Option<ByteRange>,
        ct: Option<&'a [u8]>,
    ) -> SendHead<'a> {
        SendHead {
            tid: tid.as_bytes(),
            to_path: self.remote_uri.as_bytes(),
            from_path: self.local_uri.as_bytes(),
            message_id: mid,
            byte_range: range,
            success_report: None,
            failure_report: None,
            content_type: ct,
            extra: &[],
        }
    }

    /// Head and end-line of one chunk `[from, to)` of a message of `total`
    /// bytes; the body goes between them.
    pub fn chunk_frame(
        &mut self,
        mid: &[u8],
        ct: &[u8],
        from: u64,
        to: u64,
        total: u64,
    ) -> (BytesMut, BytesMut) {
        let tid = self.tid();
        let range = ByteRange {
            start: from + 1,
            end: Some(to),
            total: Some(total),
        };
        let mut head = BytesMut::with_capacity(256);
        self.head(&tid, mid, Some(range), Some(ct))
            .encode(&mut head);
        let mut tail = BytesMut::with_capacity(64);
        let flag = if to >= total {
            Flag::Complete
        } else {
            Flag::More
        };
        encode::end_line(&mut tail, tid.as_bytes(), flag, true);
        (head, tail)
    }

    /// A whole one-chunk message into `dst`.
    pub fn message(&mut self, dst: &mut BytesMut, mid: &[u8], ct: &[u8], body: &[u8]) {
        let (head, tail) = self.chunk_frame(mid, ct, 0, body.len() as u64, body.len() as u64);
        dst.extend_from_slice(&head);
        dst.extend_from_slice(body);
        dst.extend_from_slice(&tail);
    }

    /// [`Endpoint::message`] with `Success-Report: yes`.
    pub fn reported_message(&mut self, dst: &mut BytesMut, mid: &[u8], ct: &[u8], body: &[u8]) {
        let tid = self.tid();
        let n = body.len() as u64;
        let range = ByteRange {
            start: 1,
            end: Some(n),
            total: Some(n),
        };
        let mut head = self.head(&tid, mid, Some(range), Some(ct));
        head.success_report = Some(true);
        head.encode(dst);
        dst.extend_from_slice(body);
        encode::end_line(dst, tid.as_bytes(), Flag::Complete, true);
    }

    /// A success REPORT (`000 200`) for all `len` bytes of message `mid`,
    /// to `to` (the first From-Path URI of the reported SEND).
    pub fn success_report(&mut self, dst: &mut BytesMut, to: &[u8], mid: &[u8], len: u64) {
        let tid = self.tid();
        encode::Report {
            tid: tid.as_bytes(),
            to_path: to,
            from_path: self.local_uri.as_bytes(),
            message_id: mid,
            byte_range: ByteRange {
                start: 1,
                end: Some(len),
                total: Some(len),
            },
            status: StatusCode::OK,
        }
        .encode(dst);
    }
}

/// What a reader thread does with the decoded stream. Every method has a
/// default that ignores the event.
pub trait Handler {
    /// A request head.
    fn request(&mut self, _h: &RequestHead, _now: Instant) {}
    /// A piece of the current request's body.
    fn body(&mut self, _b: &Bytes) {}
    /// The current request's end-line. Bytes put in `out` are written after
    /// the loop's `200` for this request.
    fn end(&mut self, _flag: Flag, _now: Instant, _out: &mut BytesMut) {}
    /// After the responses (and `end` bytes) of one read were written:
    /// bytes put in `out` go in a write of their own (a client that sends
    /// its REPORT apart from its `200`).
    fn after_write(&mut self, _out: &mut BytesMut) {}
    /// A response to one of our requests.
    fn response(&mut self, _tid: &[u8], _code: u16, _now: Instant) {}
    /// A decode error.
    fn error(&mut self, _e: String) {}
}

/// How a reader reads.
#[derive(Debug, Clone, Copy)]
pub struct ReadOpts {
    /// Bytes asked for per `read` (the largest; a rate limit may ask less).
    pub buf: usize,
    /// Read at most this many bytes per second.
    pub rate: Option<u64>,
}

impl Default for ReadOpts {
    fn default() -> ReadOpts {
        ReadOpts {
            buf: 256 << 10,
            rate: None,
        }
    }
}

/// Why a reader stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadEnd {
    /// The peer closed (or we shut the socket down).
    Eof,
    /// A read or write failed, or the stream could not be decoded.
    Error(String),
}

/// The transaction to watch for a bind, and where to say its status.
pub type BindWatch = (String, mpsc::Sender<u16>);

struct Current {
    tid: Bytes,
    from: Bytes,
    respond: bool,
}

/// Reads and decodes until the stream ends; answers `200` to each request
/// that wants one (after the handler saw its end-line). `bind`: a
/// transaction whose response status is sent on the channel.
pub fn read_loop<H: Handler>(
    mut stream: Wire,
    writer: &SharedWriter,
    me: &[u8],
    h: &mut H,
    opts: ReadOpts,
    mut bind: Option<BindWatch>,
) -> ReadEnd {
    let mut dec = Decoder::new(Limits::default());
    let mut limiter = opts
        .rate
        .map(|r| RateLimiter::new(r, (r / 20).max(4096), Instant::now()));
    let want = limiter
        .as_ref()
        .map_or(opts.buf, |l| l.read_size(opts.buf))
        .max(512);
    let mut buf = BytesMut::new();
    let mut cur: Option<Current> = None;
    let mut out = BytesMut::new();
    loop {
        // The buffer stays initialised between reads: what is left after a
        // split is reused as is, so zeroing happens once per allocation.
        if buf.len() < want.min(16 << 10) {
            buf.clear();
            buf.reserve(want.max(opts.buf));
            buf.resize(want.max(opts.buf), 0);
        }
        let room = buf.len().min(want);
        let n = match stream.read(&mut buf[..room]) {
            Ok(0) => return ReadEnd::Eof,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return ReadEnd::Eof,
            Err(e) => return ReadEnd::Error(format!("read: {e}")),
        };
        dec.feed(buf.split_to(n).freeze());
        let now = Instant::now();
        loop {
            match dec.poll() {
                Ok(None) => break,
                Ok(Some(Event::Request(head))) => {
                    h.request(&head, now);
                    cur = Some(Current {
                        tid: Bytes::copy_from_slice(head.tid.as_bytes()),
                        from: head.from_path.first().raw().clone(),
                        respond: head.wants_response(),
                    });
                }
                Ok(Some(Event::Body(b))) => h.body(&b),
                Ok(Some(Event::End(flag))) => {
                    let mut extra = BytesMut::new();
                    h.end(flag, now, &mut extra);
                    if let Some(c) = cur.take().filter(|c| c.respond) {
                        encode::transaction_response(
                            &mut out,
                            &c.tid,
                            StatusCode::OK,
                            None,
                            &c.from,
                            me,
                        );
                    }
                    out.extend_from_slice(&extra);
                }
                Ok(Some(Event::Response(r))) => {
                    if let Some((tid, tx)) = &bind
                        && tid.as_bytes() == r.tid.as_bytes()
                    {
                        let _ = tx.send(r.code.0);
                        bind = None;
                        continue;
                    }
                    h.response(r.tid.as_bytes(), r.code.0, now);
                }
                // A decoder event this peer does not act on.
                Ok(Some(_)) => {}
                Err(e) => {
                    let fatal = matches!(e, msrp_relay::msrp::DecodeError::Fatal(_));
                    h.error(e.to_string());
                    cur = None;
                    if fatal {
                        return ReadEnd::Error(format!("decode: {e}"));
                    }
                }
            }
        }
        if !out.is_empty() {
            if let Err(e) = lock(writer).write_all(&out) {
                return ReadEnd::Error(format!("write: {e}"));
            }
            out.clear();
        }
        h.after_write(&mut out);
        if !out.is_empty() {
            if let Err(e) = lock(writer).write_all(&out) {
                return ReadEnd::Error(format!("write: {e}"));
            }
            out.clear();
        }
        if let Some(l) = limiter.as_mut() {
            let wait = l.take(n as u64, Instant::now());
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
        }
    }
}

/// A connection with its reader thread; the thread returns the handler
/// when the stream ends.
#[derive(Debug)]
pub struct Conn<H> {
    /// The write side.
    pub writer: SharedWriter,
    thread: Option<JoinHandle<(H, ReadEnd)>>,
}

impl<H: Handler + Send + 'static> Conn<H> {
    /// Starts a reader on `stream`. With `bind`, first writes a bodiless
    /// SEND and waits (at most `wait`) for its `200`.
    pub fn start(
        name: &str,
        stream: impl Into<Wire>,
        ep: &mut Endpoint,
        mut handler: H,
        opts: ReadOpts,
        bind: bool,
        wait: Duration,
    ) -> Result<Conn<H>> {
        let stream = stream.into();
        let writer: SharedWriter = Arc::new(Mutex::new(
            stream
                .try_clone()
                .context(|| format!("{name}: clone socket"))?,
        ));
        let (tx, rx) = mpsc::channel();
        let mut watch = None;
        if bind {
            let (tid, frame) = ep.bind_frame();
            lock(&writer)
                .write_all(&frame)
                .context(|| format!("{name}: bind"))?;
            watch = Some((tid, tx));
        }
        let (w, me) = (writer.clone(), ep.local_uri.clone().into_bytes());
        let stack = if opts.buf > (64 << 10) {
            512 << 10
        } else {
            256 << 10
        };
        let thread = std::thread::Builder::new()
            .name(format!("peer-{name}"))
            .stack_size(stack)
            .spawn(move || {
                let end = read_loop(stream, &w, &me, &mut handler, opts, watch);
                (handler, end)
            })
            .context(|| format!("{name}: spawn reader"))?;
        let conn = Conn {
            writer,
            thread: Some(thread),
        };
        if bind {
            match rx.recv_timeout(wait) {
                Ok(200) => {}
                Ok(code) => return Err(LoadError::Msrp(format!("{name}: bind answered {code}"))),
                Err(_) => {
                    return Err(LoadError::Timeout(format!(
                        "{name}: no response to its bind"
                    )));
                }
            }
        }
        Ok(conn)
    }

    /// Writes raw bytes.
    pub fn write(&self, bytes: &[u8]) -> Result<()> {
        lock(&self.writer)
            .write_all(bytes)
            .context(|| "MSRP write".into())
    }

    /// Shuts the socket down (both ways), which ends the reader.
    pub fn shutdown(&self) {
        let _ = lock(&self.writer).shutdown(Shutdown::Both);
    }

    /// Waits for the reader to end; returns the handler and why it ended.
    pub fn join(mut self) -> Result<(H, ReadEnd)> {
        self.thread
            .take()
            .ok_or_else(|| LoadError::Msrp("reader joined twice".into()))?
            .join()
            .map_err(|_| LoadError::Msrp("a reader thread panicked".into()))
    }
}

impl<H> Drop for Conn<H> {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = lock(&self.writer).shutdown(Shutdown::Both);
        }
    }
}

/// Counts responses to our chunks: the sender's window.
#[derive(Debug, Default)]
pub struct Acks {
    done: Mutex<(u64, u64)>,
    cv: Condvar,
}

impl Acks {
    /// Records one response.
    pub fn record(&self, ok: bool) {
        let mut g = lock(&self.done);
        if ok {
            g.0 += 1
        } else {
            g.1 += 1
        }
        self.cv.notify_all();
    }

    /// (answered 200, answered otherwise).
    pub fn counts(&self) -> (u64, u64) {
        *lock(&self.done)
    }

    /// Waits until at least `n` responses arrived; false on timeout.
    pub fn wait_for(&self, n: u64, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let mut g = lock(&self.done);
        while g.0 + g.1 < n {
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
}

/// A sender's reader: counts responses.
#[derive(Debug)]
pub struct AckHandler(pub Arc<Acks>);

impl Handler for AckHandler {
    fn response(&mut self, _tid: &[u8], code: u16, _now: Instant) {
        self.0.record(code == 200);
    }
}

/// Sends `file` as one message in chunks of `chunk` bytes with at most
/// `window` chunks unanswered; `progress` counts body bytes written.
/// Returns once every chunk is answered.
#[allow(clippy::too_many_arguments)] // one call site per mode; a struct would only rename them
pub fn send_file(
    writer: &SharedWriter,
    ep: &mut Endpoint,
    mid: &[u8],
    file: &Bytes,
    chunk: usize,
    window: u64,
    acks: &Acks,
    progress: &AtomicU64,
    stall: Duration,
) -> Result<()> {
    let total = file.len() as u64;
    let chunk = chunk.max(1);
    let mut at = 0usize;
    let mut sent = 0u64;
    // A clone of the socket for the bulk writes: nothing else writes on a
    // file sender's connection (it receives only responses).
    let mut w = lock(writer)
        .try_clone()
        .context(|| "clone sender socket".into())?;
    while at < file.len() {
        let (ok0, bad0) = acks.counts();
        if sent.saturating_sub(ok0 + bad0) >= window.max(1)
            && !acks.wait_for(sent + 1 - window.max(1), stall)
        {
            return Err(LoadError::Timeout(format!(
                "no response to the sender's chunks for {stall:?}"
            )));
        }
        let end = (at + chunk).min(file.len());
        let (head, tail) = ep.chunk_frame(
            mid,
            b"application/octet-stream",
            at as u64,
            end as u64,
            total,
        );
        let body = &file[at..end];
        let mut iov = [IoSlice::new(&head), IoSlice::new(body), IoSlice::new(&tail)];
        write_all_vectored(&mut w, &mut iov).context(|| "sender write".into())?;
        sent += 1;
        progress.store(end as u64, Ordering::Relaxed);
        at = end;
    }
    if !acks.wait_for(sent, stall) {
        return Err(LoadError::Timeout(
            "the last chunks were not answered".into(),
        ));
    }
    let (_, bad) = acks.counts();
    if bad > 0 {
        return Err(LoadError::Msrp(format!(
            "{bad} chunks answered with an error"
        )));
    }
    Ok(())
}

/// A deterministic file of `size` bytes (not compressible, not periodic at
/// chunk sizes), shared by every sender and every verifier.
pub fn make_file(size: usize) -> Bytes {
    let mut v = Vec::with_capacity(size);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while v.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(size);
    Bytes::from(v)
}

/// Whether a request is a SEND carrying content.
pub fn is_content(h: &RequestHead) -> bool {
    h.method == Method::Send && h.has_body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_frames_decode_back() {
        let mut ep = Endpoint::new(
            "s-1",
            "msrp://127.0.0.1:9/a;tcp",
            "msrp://127.0.0.1:9/b;tcp",
        );
        let (tid, bind) = ep.bind_frame();
        let file = make_file(1000);
        let mut wire = BytesMut::from(&bind[..]);
        for (from, to) in [(0u64, 600u64), (600, 1000)] {
            let (h, t) = ep.chunk_frame(b"msg-1", b"text/plain", from, to, 1000);
            wire.extend_from_slice(&h);
            wire.extend_from_slice(&file[from as usize..to as usize]);
            wire.extend_from_slice(&t);
        }
        let mut dec = Decoder::new(Limits::default());
        dec.feed(wire.freeze());
        let mut body = Vec::new();
        let mut ends = Vec::new();
        let mut tids = Vec::new();
        while let Some(ev) = dec.poll().unwrap() {
            match ev {
                Event::Request(h) => {
                    tids.push(String::from_utf8_lossy(h.tid.as_bytes()).into_owned())
                }
                Event::Body(b) => body.extend_from_slice(&b),
                Event::End(f) => ends.push(f),
                other => panic!("only a request expected, got {other:?}"),
            }
        }
        assert_eq!(tids[0], tid);
        assert_eq!(tids[0], "s1x002");
        assert_eq!(body, &file[..]);
        assert_eq!(ends, vec![Flag::Complete, Flag::More, Flag::Complete]);
    }

    #[test]
    fn file_is_deterministic_and_sized() {
        assert_eq!(make_file(12345).len(), 12345);
        assert_eq!(make_file(100), make_file(100));
        assert_ne!(make_file(64)[..32], make_file(64)[32..]);
    }
}
