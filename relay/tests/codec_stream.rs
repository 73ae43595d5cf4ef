//! MSRP-CHUNK: streaming decode. Any split of a valid byte stream decodes
//! to the same messages as the stream fed whole; bodies are slices of the
//! segments fed (zero copy) and are never held back beyond an end-line's
//! length.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use bytes::{Bytes, BytesMut};
use common::{Msg, decode_segments, decode_whole, reencode, rfc_fixtures, split_at};
use msrp_relay::msrp::{Decoder, Event, Flag, Limits, encode};
use proptest::prelude::*;

/// A generated message: tid, body (None = no content-stuff), flag.
#[derive(Debug, Clone)]
struct Gen {
    tid: String,
    body: Option<Vec<u8>>,
    flag: Flag,
    response: bool,
}

fn tid() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9.+%=-]{3,31}"
}

/// Bodies full of hazards: CRs, LFs, dashes, the end-line mark with other
/// tids or with this tid followed by a non-flag byte.
fn body(own: String) -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        Just(b"\r\n".to_vec()),
        Just(b"\r\n-------".to_vec()),
        Just(b"-------".to_vec()),
        tid().prop_map(|t| format!("\r\n-------{t}$\r\n").into_bytes()),
        Just(format!("\r\n-------{own}x").into_bytes()),
        Just(format!("-------{own}$\r\n").into_bytes()),
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

/// RFC 4975 §7.1.1: the sender must not put its own end-line in a body;
/// concatenated hazard pieces can form one, so break every occurrence.
fn without_end_line(mut b: Vec<u8>, tid: &str) -> Vec<u8> {
    let mark = format!("\r\n-------{tid}");
    let mut i = 0;
    while let Some(p) = b[i..]
        .windows(mark.len())
        .position(|w| w == mark.as_bytes())
    {
        let at = i + p + mark.len();
        if matches!(b.get(at), Some(b'$' | b'+' | b'#')) {
            b.insert(i + p + 2, b'x');
        }
        i += p + 1;
    }
    b
}

fn message() -> impl Strategy<Value = Gen> {
    (
        tid(),
        any::<bool>(),
        prop_oneof![Just(Flag::Complete), Just(Flag::More), Just(Flag::Aborted)],
        any::<u8>(),
    )
        .prop_flat_map(|(tid, has_body, flag, kind)| {
            let b = body(tid.clone());
            (Just(tid), b, Just(has_body), Just(flag), Just(kind))
        })
        .prop_map(|(tid, body, has_body, flag, kind)| {
            let response = kind % 5 == 0;
            let body = has_body.then(|| without_end_line(body, &tid));
            Gen {
                tid,
                body: if response { None } else { body },
                flag: if response { Flag::Complete } else { flag },
                response,
            }
        })
}

fn wire(msgs: &[Gen]) -> Bytes {
    let mut w = BytesMut::new();
    for m in msgs {
        if m.response {
            encode::transaction_response(
                &mut w,
                m.tid.as_bytes(),
                msrp_relay::msrp::StatusCode::OK,
                None,
                b"msrp://a.example:1/x;tcp",
                b"msrp://b.example:2/y;tcp",
            );
            continue;
        }
        w.extend_from_slice(format!("MSRP {} SEND\r\nTo-Path: msrp://a.example:1/x;tcp\r\nFrom-Path: msrp://b.example:2/y;tcp\r\nMessage-ID: {}\r\n", m.tid, m.tid).as_bytes());
        if let Some(b) = &m.body {
            w.extend_from_slice(b"Content-Type: application/octet-stream\r\n\r\n");
            w.extend_from_slice(b);
        }
        encode::end_line(&mut w, m.tid.as_bytes(), m.flag, m.body.is_some());
    }
    w.freeze()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// MSRP-CHUNK: any split of a stream decodes to the same messages, and
    /// those are exactly the messages that were encoded.
    #[test]
    fn msrp_chunk_any_split_decodes_the_same(
        msgs in proptest::collection::vec(message(), 1..6),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..40),
    ) {
        let bytes = wire(&msgs);
        let whole = decode_whole(&bytes);
        prop_assert_eq!(whole.len(), msgs.len());
        for (got, want) in whole.iter().zip(&msgs) {
            match got {
                Msg::Request { head, body, flag } => {
                    prop_assert!(!want.response);
                    prop_assert_eq!(head.tid.as_bytes(), want.tid.as_bytes());
                    prop_assert_eq!(body, want.body.as_deref().unwrap_or_default());
                    prop_assert_eq!(*flag, want.flag);
                }
                Msg::Response(r) => prop_assert!(want.response && r.tid.as_bytes() == want.tid.as_bytes()),
                Msg::Error(e) => prop_assert!(false, "error {:?}", e),
            }
        }
        let cuts: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        let split = decode_segments(&split_at(&bytes, &cuts), Limits::default());
        prop_assert_eq!(&split, &whole);
        prop_assert_eq!(reencode(&split), bytes.to_vec());
    }

    /// MSRP-FRAME: the RFC example streams decode the same under any split.
    #[test]
    fn msrp_frame_rfc_streams_any_split(
        which in any::<prop::sample::Index>(),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..30),
    ) {
        let fixtures = rfc_fixtures();
        let (name, bytes) = &fixtures[which.index(fixtures.len())];
        let bytes = Bytes::copy_from_slice(bytes);
        let cuts: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        let whole = decode_whole(&bytes);
        let split = decode_segments(&split_at(&bytes, &cuts), Limits::default());
        prop_assert_eq!(split, whole, "{}", name);
    }
}

/// MSRP-CHUNK: every byte-at-a-time feed of the RFC streams decodes the same.
#[test]
fn msrp_chunk_one_byte_segments() {
    for (name, bytes) in rfc_fixtures() {
        let b = Bytes::from(bytes);
        let cuts: Vec<usize> = (1..b.len()).collect();
        assert_eq!(
            decode_segments(&split_at(&b, &cuts), Limits::default()),
            decode_whole(&b),
            "{name}"
        );
    }
}

fn big_send(tid: &str, body: &[u8]) -> Bytes {
    let mut w = BytesMut::new();
    w.extend_from_slice(format!("MSRP {tid} SEND\r\nTo-Path: msrp://r.example:2855/s1;tcp\r\nFrom-Path: msrp://a.example:7777/a1;tcp\r\nMessage-ID: big1\r\nByte-Range: 1-{0}/{0}\r\nContent-Type: application/octet-stream\r\n\r\n", body.len()).as_bytes());
    w.extend_from_slice(body);
    encode::end_line(&mut w, tid.as_bytes(), Flag::Complete, true);
    w.freeze()
}

/// MSRP-CHUNK: a body comes out as slices of the segment that was fed:
/// not one byte of it is copied.
#[test]
fn msrp_chunk_body_is_a_slice_of_the_receive_buffer() {
    let body: Vec<u8> = (0..65536u32).map(|i| (i * 7 % 251) as u8).collect();
    let seg = big_send("zc01", &body);
    let range = seg.as_ptr() as usize..seg.as_ptr() as usize + seg.len();
    let mut d = Decoder::default();
    d.feed(seg.clone());
    let mut got = Vec::new();
    while let Some(ev) = d.poll().unwrap() {
        if let Event::Body(b) = ev {
            let p = b.as_ptr() as usize;
            assert!(
                range.contains(&p) && range.contains(&(p + b.len() - 1)),
                "body copied"
            );
            got.extend_from_slice(&b);
        }
    }
    assert_eq!(got, body);
    assert!(d.is_idle());
}

/// MSRP-CHUNK: a 16 MiB chunk fed in 1500-byte reads streams out in pieces
/// while it arrives; the decoder never holds more than an end-line's worth
/// of it.
#[test]
fn msrp_chunk_large_body_streams_without_buffering() {
    let body: Vec<u8> = (0..16 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let wire = big_send("big2", &body);
    let mut d = Decoder::default();
    let mut seen = 0usize;
    let mut ends = 0;
    for seg in wire.chunks(1500) {
        d.feed(wire.slice_ref(seg));
        while let Some(ev) = d.poll().unwrap() {
            match ev {
                Event::Body(b) => {
                    assert_eq!(&b[..], &body[seen..seen + b.len()]);
                    seen += b.len();
                }
                Event::End(f) => {
                    assert_eq!(f, Flag::Complete);
                    ends += 1;
                }
                _ => {}
            }
        }
        assert!(d.buffered() <= 44, "decoder holds {} bytes", d.buffered());
    }
    assert_eq!((seen, ends), (body.len(), 1));
}

/// MSRP-CHUNK: an interrupted message (`+` chunk then `#`) decodes with
/// the flags as sent (RFC 4975 §7.1.1).
#[test]
fn msrp_chunk_interrupted_message_flags() {
    let mut w = BytesMut::new();
    for (tid, range, flag) in [
        ("ch01", "1-4/10", Flag::More),
        ("ch02", "5-8/10", Flag::Aborted),
    ] {
        w.extend_from_slice(format!("MSRP {tid} SEND\r\nTo-Path: msrp://a:1/x;tcp\r\nFrom-Path: msrp://b:2/y;tcp\r\nMessage-ID: m1234\r\nByte-Range: {range}\r\nContent-Type: text/plain\r\n\r\nabcd").as_bytes());
        encode::end_line(&mut w, tid.as_bytes(), flag, true);
    }
    let flags: Vec<Flag> = decode_whole(&w)
        .into_iter()
        .map(|m| match m {
            Msg::Request { flag, .. } => flag,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(flags, [Flag::More, Flag::Aborted]);
}
