//! Helpers shared by the codec integration tests: decode a stream into
//! whole messages and encode them back.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use bytes::{Bytes, BytesMut};
use msrp_relay::msrp::{
    DecodeError, Decoder, Event, Flag, Limits, RequestHead, ResponseHead, encode,
};

/// One whole message as the decoder reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    Request {
        head: RequestHead,
        body: Vec<u8>,
        flag: Flag,
    },
    Response(ResponseHead),
    Error(DecodeError),
}

/// Feeds `segments` one by one, polling after each, and collects messages.
/// Per-message errors are recorded and decoding goes on; a fatal error
/// stops it.
pub fn decode_segments(segments: &[Bytes], limits: Limits) -> Vec<Msg> {
    let mut d = Decoder::new(limits);
    let mut out = Vec::new();
    let mut cur: Option<(RequestHead, Vec<u8>)> = None;
    for seg in segments {
        d.feed(seg.clone());
        loop {
            match d.poll() {
                Ok(None) => break,
                Ok(Some(Event::Request(h))) => {
                    assert!(cur.is_none(), "request inside a request");
                    cur = Some((*h, Vec::new()));
                }
                Ok(Some(Event::Body(b))) => {
                    assert!(!b.is_empty(), "empty body event");
                    cur.as_mut()
                        .expect("body outside a request")
                        .1
                        .extend_from_slice(&b);
                }
                Ok(Some(Event::End(flag))) => {
                    let (head, body) = cur.take().expect("end outside a request");
                    out.push(Msg::Request { head, body, flag });
                }
                Ok(Some(Event::Response(h))) => out.push(Msg::Response(*h)),
                Ok(Some(other)) => panic!("an event this helper does not know: {other:?}"),
                Err(e) => {
                    cur = None;
                    let fatal = matches!(e, DecodeError::Fatal(_));
                    out.push(Msg::Error(e));
                    if fatal {
                        return out;
                    }
                }
            }
        }
    }
    if let Err(e) = d.finish() {
        out.push(Msg::Error(e));
    }
    out
}

/// Decodes a stream fed whole.
pub fn decode_whole(bytes: &[u8]) -> Vec<Msg> {
    decode_segments(&[Bytes::copy_from_slice(bytes)], Limits::default())
}

/// Encodes messages back to wire bytes.
pub fn reencode(msgs: &[Msg]) -> Vec<u8> {
    let mut dst = BytesMut::new();
    for m in msgs {
        match m {
            Msg::Request { head, body, flag } => {
                encode::request_head(&mut dst, head);
                dst.extend_from_slice(body);
                encode::end_line(&mut dst, head.tid.as_bytes(), *flag, head.has_body);
            }
            Msg::Response(h) => encode::response(&mut dst, h),
            Msg::Error(e) => panic!("cannot re-encode an error: {e}"),
        }
    }
    dst.to_vec()
}

/// Splits `bytes` at the given cut points (sorted, deduplicated, in range).
pub fn split_at(bytes: &Bytes, cuts: &[usize]) -> Vec<Bytes> {
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(bytes.len())).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::new();
    let mut prev = 0;
    for c in cuts.into_iter().chain(std::iter::once(bytes.len())) {
        if c > prev {
            out.push(bytes.slice(prev..c));
            prev = c;
        }
    }
    out
}

/// Every fixture file under `tests/fixtures/rfc`, with its name.
pub fn rfc_fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rfc");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("fixture dir")
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "msrp").then(|| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(&p).expect("fixture"))
            })
        })
        .collect();
    out.sort();
    out
}
