//! A connection's reader: decodes the stream, hands the events to a
//! [`Handler`] and answers `200` to every request that wants one.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use msrp_relay::msrp::encode;
use msrp_relay::msrp::{Decoder, Event, Flag, Limits, Method, RequestHead, StatusCode};

use crate::rate::RateLimiter;
use crate::sync::lock;
use crate::wire::Wire;

/// A connection's write side, shared by the thread that sends content and
/// the reader thread that answers requests (writes never interleave).
pub type SharedWriter = Arc<Mutex<Wire>>;

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

/// Whether a request is a SEND carrying content.
pub fn is_content(h: &RequestHead) -> bool {
    h.method == Method::Send && h.has_body
}
