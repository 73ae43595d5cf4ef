//! The checks of the `decode` fuzz target: the streaming MSRP decoder on
//! arbitrary bytes, fed whole and in segments chosen by the input. Shared
//! (via `#[path]`) by `fuzz/fuzz_targets/decode.rs` and the regression test
//! `relay/tests/codec_fuzz_regressions.rs`, so that a saved crash input is
//! replayed exactly as the fuzzer ran it. Entry point: [`check`].
//!
//! Input layout (see `docs/fuzzing.md`):
//! - first byte `c < 0x20` (a control byte): bit 4 selects small limits
//!   (head 256 B, 8 headers, chunk 64 B) instead of the defaults; the low
//!   four bits are the number `n` of cut points, read as `n` little-endian
//!   `u16`s (each taken modulo the stream length + 1); `n == 15` instead
//!   means "feed one byte at a time" (and consumes no cut bytes). The rest
//!   of the input is the stream.
//! - any other first byte (a raw capture such as a fixture, which starts
//!   with `M`): the whole input is the stream, default limits, cut into
//!   segments whose sizes cycle through [`RAW_SIZES`].
//!
//! Invariants checked for every input:
//! 1. nothing panics;
//! 2. after a fatal error every `poll` (also after more `feed`s) and
//!    `finish` return that same error;
//! 3. `Body` events are non-empty and come only between `Request` and
//!    `End`; `Request` and `Response` never come inside a request;
//! 4. the split-fed stream decodes to the same messages, errors and
//!    `finish` result as the whole-fed stream (bodies compared as the
//!    concatenation of their pieces);
//! 5. `buffered()` never exceeds `max_head_bytes + 64` plus the segment
//!    just fed, and is at most `max_head_bytes + 64` whenever `poll` says
//!    it needs more;
//! 6. every complete message re-encoded with `encode` decodes to itself.

use bytes::{Bytes, BytesMut};
use msrp_relay::msrp::{
    DecodeError, Decoder, Event, Flag, Limits, RequestHead, ResponseHead, encode,
};

/// Limits small enough for fuzz-sized inputs to hit every one of them.
pub const SMALL: Limits = Limits {
    max_head_bytes: 256,
    max_headers: 8,
    max_chunk_bytes: 64,
};

/// Segment sizes for raw inputs: single bytes, sizes around an end-line's
/// length (44) and a larger one.
const RAW_SIZES: [usize; 8] = [1, 7, 2, 44, 3, 13, 128, 5];

/// Slack over `max_head_bytes` that the decoder may hold back: a partial
/// end-line is at most `CRLF + 7 dashes + 32-char tid + flag + CRLF` = 44.
const SLACK: usize = 64;

/// One message, normalised so that whole and split decoding compare.
#[derive(Debug, PartialEq, Eq)]
enum Msg {
    Request {
        head: Box<RequestHead>,
        body: Vec<u8>,
        flag: Flag,
    },
    /// A request whose head was reported but which an error cut short; its
    /// body pieces so far depend on the segmentation and are dropped.
    Cut(Box<RequestHead>),
    Response(Box<ResponseHead>),
    Error(DecodeError),
}

#[derive(Debug, PartialEq, Eq)]
struct Run {
    msgs: Vec<Msg>,
    finish: Result<(), DecodeError>,
}

fn decode(limits: Limits, segments: &[Bytes]) -> Run {
    let mut d = Decoder::new(limits);
    let idle_bound = limits.max_head_bytes + SLACK;
    let mut msgs = Vec::new();
    let mut cur: Option<(Box<RequestHead>, Vec<u8>)> = None;
    let mut fatal: Option<DecodeError> = None;
    for seg in segments {
        let before = d.buffered();
        d.feed(seg.clone());
        assert_eq!(
            d.buffered(),
            before + seg.len(),
            "feed must queue the segment"
        );
        if let Some(f) = &fatal {
            for _ in 0..2 {
                assert_eq!(d.poll().as_ref(), Err(f), "poll after a fatal error");
            }
            continue;
        }
        let bound = idle_bound + seg.len();
        loop {
            let ev = d.poll();
            if !matches!(ev, Err(DecodeError::Fatal(_))) {
                assert!(
                    d.buffered() <= bound,
                    "buffered {} > {bound} while polling",
                    d.buffered()
                );
            }
            match ev {
                Ok(None) => {
                    assert!(
                        d.buffered() <= idle_bound,
                        "buffered {} > {idle_bound} when idle",
                        d.buffered()
                    );
                    break;
                }
                Ok(Some(Event::Request(h))) => {
                    assert!(cur.is_none(), "Request inside a request");
                    cur = Some((h, Vec::new()));
                }
                Ok(Some(Event::Body(b))) => {
                    assert!(!b.is_empty(), "empty Body event");
                    let (_, body) = cur.as_mut().expect("Body outside a request");
                    body.extend_from_slice(&b);
                }
                Ok(Some(Event::End(flag))) => {
                    let (head, body) = cur.take().expect("End outside a request");
                    msgs.push(Msg::Request { head, body, flag });
                }
                Ok(Some(Event::Response(h))) => {
                    assert!(cur.is_none(), "Response inside a request");
                    msgs.push(Msg::Response(h));
                }
                Ok(Some(other)) => panic!("an event the harness does not know: {other:?}"),
                Err(e) => {
                    if let Some((head, _)) = cur.take() {
                        msgs.push(Msg::Cut(head));
                    }
                    msgs.push(Msg::Error(e.clone()));
                    if matches!(e, DecodeError::Fatal(_)) {
                        for _ in 0..2 {
                            assert_eq!(d.poll().as_ref(), Err(&e), "poll after a fatal error");
                        }
                        fatal = Some(e);
                        break;
                    }
                }
            }
        }
    }
    let finish = d.finish();
    if let Some(f) = &fatal {
        assert_eq!(finish.as_ref(), Err(f), "finish after a fatal error");
    }
    match &finish {
        Ok(()) => {
            assert!(cur.is_none(), "finish Ok inside a request");
            assert_eq!(d.poll(), Ok(None), "poll after a clean finish");
        }
        Err(e) => {
            assert!(
                matches!(e, DecodeError::Fatal(_)),
                "finish gave a non-fatal error"
            );
            assert_eq!(d.poll().as_ref(), Err(e), "poll after finish failed");
            if fatal.is_none()
                && let Some((head, _)) = cur.take()
            {
                msgs.push(Msg::Cut(head));
            }
        }
    }
    Run { msgs, finish }
}

/// Re-encodes a complete message and decodes it alone: it must come back
/// unchanged. The head limit is lifted because re-encoding normalises
/// `name:value` to `name: value`, which may lengthen the head.
fn check_reencode(limits: Limits, m: &Msg) {
    let mut dst = BytesMut::new();
    match m {
        Msg::Request { head, body, flag } => {
            encode::request_head(&mut dst, head);
            dst.extend_from_slice(body);
            encode::end_line(&mut dst, head.tid.as_bytes(), *flag, head.has_body);
        }
        Msg::Response(h) => encode::response(&mut dst, h),
        Msg::Cut(_) | Msg::Error(_) => return,
    }
    let limits = Limits {
        max_head_bytes: usize::MAX / 2,
        ..limits
    };
    let again = decode(limits, &[dst.freeze()]);
    assert_eq!(
        again.finish,
        Ok(()),
        "re-encoded message left the decoder busy"
    );
    assert_eq!(again.msgs.len(), 1, "re-encoded message: {:?}", again.msgs);
    assert_eq!(&again.msgs[0], m, "re-encoded message decodes differently");
}

fn cut(stream: &Bytes, mut cuts: Vec<usize>) -> Vec<Bytes> {
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::new();
    let mut prev = 0;
    for c in cuts.into_iter().chain(std::iter::once(stream.len())) {
        if c > prev {
            out.push(stream.slice(prev..c));
            prev = c;
        }
    }
    out
}

fn split_input(data: &[u8]) -> (Limits, Bytes, Vec<Bytes>) {
    match data.first() {
        Some(&c) if c < 0x20 => {
            let limits = if c & 0x10 != 0 {
                SMALL
            } else {
                Limits::default()
            };
            let n = usize::from(c & 0x0f);
            if n == 15 {
                let stream = Bytes::copy_from_slice(&data[1..]);
                let segs = (0..stream.len()).map(|i| stream.slice(i..i + 1)).collect();
                return (limits, stream, segs);
            }
            let table_end = (1 + 2 * n).min(data.len());
            let stream = Bytes::copy_from_slice(&data[table_end..]);
            let cuts = data[1..table_end]
                .chunks_exact(2)
                .map(|p| usize::from(u16::from_le_bytes([p[0], p[1]])) % (stream.len() + 1))
                .collect();
            let segs = cut(&stream, cuts);
            (limits, stream, segs)
        }
        _ => {
            let stream = Bytes::copy_from_slice(data);
            let mut cuts = Vec::new();
            let mut at = 0;
            for size in RAW_SIZES.iter().cycle() {
                at += size;
                if at >= stream.len() {
                    break;
                }
                cuts.push(at);
            }
            let segs = cut(&stream, cuts);
            (Limits::default(), stream, segs)
        }
    }
}

/// Runs every check on one fuzz input; panics on a violated invariant.
pub fn check(data: &[u8]) {
    let (limits, stream, segments) = split_input(data);
    let whole_segs: Vec<Bytes> = if stream.is_empty() {
        Vec::new()
    } else {
        vec![stream.clone()]
    };
    let whole = decode(limits, &whole_segs);
    let split = decode(limits, &segments);
    assert_eq!(whole, split, "split feeding decodes differently");
    for m in &whole.msgs {
        check_reencode(limits, m);
    }
}
