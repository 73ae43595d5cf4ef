//! The streaming MSRP decoder.
//!
//! Feed it [`Bytes`] segments as they come off a socket; poll it for
//! [`Event`]s. A request yields `Request`, then any number of `Body` pieces
//! as the bytes arrive, then exactly one `End`; a response yields one
//! `Response`. Nothing waits for a whole chunk, so a 100 MiB chunk streams
//! through in pieces the size of the reads.
//!
//! **Zero copy.** Body pieces are slices of the segments fed in. The one
//! exception is an end-line candidate that straddles two segments: its
//! first bytes (at most the length of an end-line, 44 bytes) are copied
//! into a small buffer together with the start of the next segment, so
//! that the match can be decided without joining whole segments. Head
//! bytes are copied into the decoder's head buffer (bounded by
//! [`Limits::max_head_bytes`]); heads are small and parsed anyway.
//!
//! **Framing.** The body of a request ends at `CRLF "-------" tid flag CRLF`
//! (RFC 4975 §9 `content-stuff` and `end-line`). The search is for the
//! fixed prefix `CRLF "-------"` with one precomputed SIMD finder
//! (`memchr::memmem`); the tid and flag are compared at each hit, so a
//! body that contains another transaction's end-line is passed through
//! (§7.1.1 only forbids the sender this transaction's end-line).

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};
use memchr::memmem;

use super::error::{DecodeError, FatalError, MessageError};
use super::header::TransactionId;
use super::message::{
    Flag, RequestHead, ResponseHead, StartLine, build_request, build_response, parse_fields,
    parse_start_line,
};
use super::status::StatusCode;

/// The decoder's bounds. Every one of them is enforced; see the error each
/// gives in [`DecodeError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest head (start line and headers) in bytes. Default 16 KiB.
    pub max_head_bytes: usize,
    /// Most header fields in one head. Default 64.
    pub max_headers: usize,
    /// Largest body of one chunk (one SEND). Default 1 GiB: chunks are
    /// streamed, so this bounds no buffer; it is the policy limit at which
    /// the receiver answers `413`.
    pub max_chunk_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_head_bytes: 16 * 1024,
            max_headers: 64,
            max_chunk_bytes: 1 << 30,
        }
    }
}

/// What the decoder found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A request's head; `Body` pieces and one `End` follow.
    Request(Box<RequestHead>),
    /// A piece of the current request's body (a slice of a fed segment).
    Body(Bytes),
    /// The current request's end-line.
    End(Flag),
    /// A complete response.
    Response(Box<ResponseHead>),
}

const MARK: &[u8] = b"\r\n-------";

#[derive(Debug)]
enum State {
    /// Reading a head. `skip` is set when the message is already known to
    /// be bad and is being discarded up to its end.
    Head {
        skip: bool,
    },
    /// Inside a body.
    Body {
        tid: TransactionId,
        received: u64,
        skip: bool,
    },
    Failed(FatalError),
}

/// The outcome of comparing bytes at a `CRLF -------` hit with the end-line.
enum EndLine {
    Match(Flag),
    NoMatch,
    Partial,
    Truncated,
}

fn check_end_line(buf: &[u8], tid: &[u8]) -> EndLine {
    // buf starts with MARK (or a prefix of it when called on a tail).
    let want = MARK.iter().chain(tid);
    for (i, w) in want.enumerate() {
        match buf.get(i) {
            None => return EndLine::Partial,
            Some(b) if b != w => return EndLine::NoMatch,
            Some(_) => {}
        }
    }
    let f = MARK.len() + tid.len();
    let Some(&fb) = buf.get(f) else {
        return EndLine::Partial;
    };
    let Some(flag) = Flag::from_byte(fb) else {
        return EndLine::NoMatch;
    };
    match (buf.get(f + 1), buf.get(f + 2)) {
        (Some(b'\r'), Some(b'\n')) => EndLine::Match(flag),
        (Some(b'\r'), None) | (None, _) => EndLine::Partial,
        _ => EndLine::Truncated,
    }
}

/// A streaming MSRP decoder for one connection. See the module docs.
#[derive(Debug)]
pub struct Decoder {
    limits: Limits,
    queue: VecDeque<Bytes>,
    head: BytesMut,
    line_start: usize,
    fields_start: usize,
    nfields: usize,
    start: Option<StartLine>,
    state: State,
    pending_end: Option<Flag>,
    finder: memmem::Finder<'static>,
}

impl Default for Decoder {
    fn default() -> Decoder {
        Decoder::new(Limits::default())
    }
}

impl Decoder {
    /// A decoder with the given limits.
    pub fn new(limits: Limits) -> Decoder {
        Decoder {
            limits,
            queue: VecDeque::with_capacity(4),
            head: BytesMut::with_capacity(512),
            line_start: 0,
            fields_start: 0,
            nfields: 0,
            start: None,
            state: State::Head { skip: false },
            pending_end: None,
            finder: memmem::Finder::new(MARK).into_owned(),
        }
    }

    /// Queues a segment of the byte stream.
    pub fn feed(&mut self, segment: Bytes) {
        if !segment.is_empty() {
            self.queue.push_back(segment);
        }
    }

    /// Bytes fed but not yet decoded.
    pub fn buffered(&self) -> usize {
        self.queue.iter().map(Bytes::len).sum::<usize>() + self.head.len()
    }

    /// True between messages (nothing partial is held): the point where a
    /// connection may close cleanly.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Head { skip: false })
            && self.head.is_empty()
            && self.pending_end.is_none()
            && self.queue.is_empty()
    }

    /// Says the peer closed the stream: an error if a message was cut off.
    pub fn finish(&mut self) -> Result<(), DecodeError> {
        match &self.state {
            State::Failed(e) => Err((*e).into()),
            _ if self.is_idle() => Ok(()),
            _ => {
                self.state = State::Failed(FatalError::Truncated);
                Err(FatalError::Truncated.into())
            }
        }
    }

    /// The next event, `Ok(None)` when more bytes are needed.
    ///
    /// After a [`DecodeError`] whose disposition is not `Close`, the bad
    /// message has been skipped and polling goes on; after a fatal error
    /// every poll returns that error again.
    pub fn poll(&mut self) -> Result<Option<Event>, DecodeError> {
        if let Some(flag) = self.pending_end.take() {
            return Ok(Some(Event::End(flag)));
        }
        loop {
            let step = match &self.state {
                State::Failed(e) => return Err((*e).into()),
                State::Head { .. } => self.poll_head(),
                State::Body { .. } => self.poll_body(),
            };
            match step {
                Ok(Step::Event(e)) => return Ok(Some(e)),
                Ok(Step::NeedMore) => return Ok(None),
                Ok(Step::Continue) => {}
                Err(e) => {
                    if let DecodeError::Fatal(f) = &e {
                        self.state = State::Failed(*f);
                    }
                    return Err(e);
                }
            }
        }
    }

    fn fail(&mut self, e: FatalError) -> Result<Step, DecodeError> {
        self.state = State::Failed(e);
        Err(e.into())
    }

    fn reset_head(&mut self) {
        self.head.clear();
        self.line_start = 0;
        self.fields_start = 0;
        self.nfields = 0;
        self.start = None;
    }

    /// Moves bytes up to and including the next LF into the head buffer and
    /// handles the line; returns `NeedMore` when no LF is queued.
    fn poll_head(&mut self) -> Result<Step, DecodeError> {
        let Some(front) = self.queue.front_mut() else {
            return Ok(Step::NeedMore);
        };
        let take = memchr::memchr(b'\n', front).map(|i| i + 1);
        let n = take.unwrap_or(front.len());
        self.head.extend_from_slice(&front[..n]);
        front.advance(n);
        if front.is_empty() {
            self.queue.pop_front();
        }
        if self.head.len() > self.limits.max_head_bytes {
            return self.fail(FatalError::HeadTooLarge(self.limits.max_head_bytes));
        }
        if take.is_none() {
            return Ok(Step::Continue);
        }
        self.head_line()
    }

    fn head_line(&mut self) -> Result<Step, DecodeError> {
        let skip = matches!(self.state, State::Head { skip: true });
        let line = &self.head[self.line_start..];
        if !line.ends_with(b"\r\n") {
            return self.fail(FatalError::BareLineFeed);
        }
        let Some(start) = &self.start else {
            let line = self.head.split().freeze();
            return match parse_start_line(line.slice(..line.len() - 2)) {
                Ok(sl) => {
                    self.start = Some(sl);
                    Ok(Step::Continue)
                }
                Err(DecodeError::Request {
                    tid,
                    status,
                    reason,
                }) => {
                    // The tid is known: discard the rest of this message.
                    self.start = Some(StartLine::Request(tid.clone(), super::Method::Send));
                    self.state = State::Head { skip: true };
                    Err(DecodeError::Request {
                        tid,
                        status,
                        reason,
                    })
                }
                Err(e) => Err(e),
            };
        };
        let tid = start.tid().as_bytes();
        let end_len = 7 + tid.len() + 3;
        let end_flag = |l: &[u8]| {
            let s = l.len().checked_sub(end_len)?;
            let e = &l[s..];
            (e.starts_with(b"-------") && &e[7..7 + tid.len()] == tid)
                .then(|| Flag::from_byte(e[end_len - 3]))
                .flatten()
        };
        if line == b"\r\n" {
            return self.head_done(None, skip);
        }
        if line.starts_with(b"-------") {
            return match end_flag(line) {
                Some(flag) if line.len() == end_len => self.head_done(Some(flag), skip),
                _ => self.fail(FatalError::BadEndLine),
            };
        }
        if end_flag(line).is_some() {
            // `Header: value-------tid$`: the message ends inside a header.
            return self.message_error(MessageError::EndLineInHeader, false);
        }
        if skip {
            self.head.truncate(self.line_start);
            return Ok(Step::Continue);
        }
        self.nfields += 1;
        if self.nfields > self.limits.max_headers {
            return self.fail(FatalError::TooManyHeaders(self.limits.max_headers));
        }
        self.line_start = self.head.len();
        Ok(Step::Continue)
    }

    /// Reports a bad message whose tid is known and skips the rest of it
    /// (its body too when `body_follows`).
    fn message_error(
        &mut self,
        reason: MessageError,
        body_follows: bool,
    ) -> Result<Step, DecodeError> {
        let Some(start) = self.start.take() else {
            return self.fail(FatalError::BadStartLine);
        };
        self.reset_head();
        let tid = start.tid().clone();
        self.state = if body_follows {
            State::Body {
                tid: tid.clone(),
                received: 0,
                skip: true,
            }
        } else {
            State::Head { skip: false }
        };
        Err(match start {
            StartLine::Request(..) => DecodeError::Request {
                tid,
                status: StatusCode::BAD_REQUEST,
                reason,
            },
            StartLine::Response(..) => DecodeError::Response { tid, reason },
        })
    }

    /// The head ended: with a blank line (`end == None`, a body follows) or
    /// with the end-line.
    fn head_done(&mut self, end: Option<Flag>, skip: bool) -> Result<Step, DecodeError> {
        let Some(start) = self.start.take() else {
            return self.fail(FatalError::BadStartLine);
        };
        let block = self
            .head
            .split()
            .freeze()
            .slice(self.fields_start..self.line_start);
        self.reset_head();
        let tid = start.tid().clone();
        if skip {
            self.state = match end {
                Some(_) => State::Head { skip: false },
                None => State::Body {
                    tid,
                    received: 0,
                    skip: true,
                },
            };
            return Ok(Step::Continue);
        }
        let parsed = parse_fields(block).and_then(|fields| match start.clone() {
            StartLine::Request(tid, method) => build_request(tid, method, fields, end.is_none())
                .map(|h| Event::Request(Box::new(h))),
            StartLine::Response(tid, code, comment) if end.is_some() => {
                build_response(tid, code, comment, fields).map(|h| Event::Response(Box::new(h)))
            }
            StartLine::Response(..) => Err(MessageError::ResponseWithBody),
        });
        match parsed {
            Ok(ev) => {
                if let Event::Request(_) = &ev {
                    match end {
                        Some(flag) => self.pending_end = Some(flag),
                        None => {
                            self.state = State::Body {
                                tid,
                                received: 0,
                                skip: false,
                            }
                        }
                    }
                }
                Ok(Step::Event(ev))
            }
            Err(reason) => {
                self.start = Some(start);
                self.message_error(reason, end.is_none())
            }
        }
    }

    fn poll_body(&mut self) -> Result<Step, DecodeError> {
        let State::Body { tid, .. } = &self.state else {
            return Ok(Step::Continue);
        };
        let tid_len = tid.as_bytes().len();
        let Some(front) = self.queue.front() else {
            return Ok(Step::NeedMore);
        };
        // Where the body ends in `front`, and how.
        let mut from = 0;
        let found = loop {
            let Some(i) = self.finder.find(&front[from..]) else {
                // No full mark: keep back a suffix that could begin one.
                let max = (MARK.len() - 1).min(front.len() - from);
                let keep = (1..=max)
                    .rev()
                    .find(|&k| front.ends_with(&MARK[..k]))
                    .unwrap_or(0);
                break (front.len() - keep, None);
            };
            let c = from + i;
            match check_end_line(&front[c..], tid.as_bytes()) {
                EndLine::Match(flag) => break (c, Some(flag)),
                EndLine::NoMatch => from = c + 1,
                EndLine::Partial => break (c, None),
                // Body before a bad end-line is still body: emit it first, so
                // that any split of the stream decodes the same (the fuzzer's
                // `oversize-body-then-truncated-end-line` case); the bad
                // end-line fails the stream once it is at the front.
                EndLine::Truncated if c > 0 => break (c, None),
                EndLine::Truncated => return self.fail(FatalError::TruncatedEndLine),
            }
        };
        match found {
            (0, Some(flag)) => {
                self.consume(MARK.len() + tid_len + 3);
                let skip = matches!(self.state, State::Body { skip: true, .. });
                self.state = State::Head { skip: false };
                Ok(if skip {
                    Step::Continue
                } else {
                    Step::Event(Event::End(flag))
                })
            }
            (0, None) => self.join_boundary(MARK.len() + tid_len + 3),
            (n, _) => {
                let piece = match self.queue.front_mut() {
                    Some(f) if n == f.len() => self.queue.pop_front(),
                    Some(f) => Some(f.split_to(n)),
                    None => None,
                };
                match piece {
                    Some(p) => self.body_piece(p),
                    None => Ok(Step::NeedMore),
                }
            }
        }
    }

    /// Accounts a body piece against the limits; emits it unless skipping.
    fn body_piece(&mut self, piece: Bytes) -> Result<Step, DecodeError> {
        let State::Body {
            tid,
            received,
            skip,
        } = &mut self.state
        else {
            return Ok(Step::Continue);
        };
        if *skip {
            return Ok(Step::Continue);
        }
        // A Byte-Range that disagrees with the body is not an error here:
        // several of RFC 4975's own examples (§4, §11.1, §11.2, §11.6) carry
        // one, and the relay counts the bytes it actually received.
        *received += piece.len() as u64;
        if *received <= self.limits.max_chunk_bytes {
            return Ok(Step::Event(Event::Body(piece)));
        }
        *skip = true;
        Err(DecodeError::Request {
            tid: tid.clone(),
            status: StatusCode::STOP_SENDING,
            reason: MessageError::ChunkTooLarge(self.limits.max_chunk_bytes),
        })
    }

    /// The front segment is only the start of a possible end-line: copy it
    /// and the start of the following segments (at most `need` bytes in
    /// all) into one small segment so the candidate can be decided.
    fn join_boundary(&mut self, need: usize) -> Result<Step, DecodeError> {
        if self.queue.len() < 2 {
            return Ok(Step::NeedMore);
        }
        let mut joined = BytesMut::with_capacity(need);
        while joined.len() < need {
            let Some(seg) = self.queue.front_mut() else {
                break;
            };
            let n = seg.len().min(need - joined.len());
            joined.extend_from_slice(&seg[..n]);
            seg.advance(n);
            if seg.is_empty() {
                self.queue.pop_front();
            }
        }
        self.queue.push_front(joined.freeze());
        Ok(Step::Continue)
    }

    fn consume(&mut self, mut n: usize) {
        while n > 0 {
            let Some(seg) = self.queue.front_mut() else {
                return;
            };
            let k = seg.len().min(n);
            seg.advance(k);
            n -= k;
            if seg.is_empty() {
                self.queue.pop_front();
            }
        }
    }
}

enum Step {
    Event(Event),
    NeedMore,
    Continue,
}
