//! Codec micro-benchmarks (issue 2, item 5): decoding and encoding of MSRP
//! SEND requests, with `Throughput::Bytes`.
//!
//! - `decode/<input>/whole`: the message fed as one `Bytes`;
//!   `decode/<input>/1500B`: fed as 1500-byte slices of one buffer (cut
//!   before measuring). Each iteration decodes one complete message, from
//!   the `Request` event to the `End` event, on a decoder reused across
//!   iterations as a connection's decoder is; body pieces are counted, not
//!   copied. Throughput is the message's wire size.
//!   `decode/chat_200B/whole_new_decoder` adds building the decoder.
//! - `encode/<input>/leg_head_end_line`: the head a relay writes for one
//!   leg's copy of the chunk (`encode::SendHead`) plus the end-line, into a
//!   reused `BytesMut` cleared each iteration. Throughput is the bytes
//!   written (head + end-line; the body is never touched).
//!
//! Inputs are built in `msrp_benches` (`benches/src/lib.rs`).

// Bench code: a panic is a failed run, so unwrap/expect are fine here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use msrp_benches::{
    CHAT_BODY, CHUNK_2K, CHUNK_64K, LEG_TID, PIECE, chat_send, file_chunk, leg_head, pieces,
};
use msrp_relay::msrp::{Decoder, Event, Flag, encode};

/// Feeds one message's segments and polls to its `End`; returns the body
/// length seen (so the compiler cannot drop the work).
fn decode_one(d: &mut Decoder, segments: &[Bytes]) -> usize {
    let mut body = 0;
    for seg in segments {
        d.feed(seg.clone());
        loop {
            match d.poll() {
                Ok(Some(Event::Body(b))) => body += b.len(),
                Ok(Some(Event::End(flag))) => {
                    black_box(flag);
                    return body;
                }
                Ok(Some(ev)) => {
                    black_box(ev);
                }
                Ok(None) => break,
                Err(e) => panic!("bench input does not decode: {e}"),
            }
        }
    }
    panic!("bench input has no end-line")
}

fn inputs() -> [(&'static str, Bytes, usize); 3] {
    [
        ("chunk_64KiB", file_chunk(CHUNK_64K), CHUNK_64K),
        ("chunk_2KiB", file_chunk(CHUNK_2K), CHUNK_2K),
        ("chat_200B", chat_send(), CHAT_BODY),
    ]
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    for (name, msg, body_len) in inputs() {
        g.throughput(Throughput::Bytes(msg.len() as u64));
        let whole = vec![msg.clone()];
        let split = pieces(&msg, PIECE);
        // Check the inputs once, outside the measurement.
        let mut d = Decoder::default();
        assert_eq!(decode_one(&mut d, &whole), body_len);
        assert_eq!(decode_one(&mut d, &split), body_len);
        assert!(d.is_idle());

        g.bench_function(format!("{name}/whole"), |b| {
            let mut d = Decoder::default();
            b.iter(|| decode_one(&mut d, black_box(&whole)));
        });
        g.bench_function(format!("{name}/{PIECE}B"), |b| {
            let mut d = Decoder::default();
            b.iter(|| decode_one(&mut d, black_box(&split)));
        });
        if name == "chat_200B" {
            g.bench_function(format!("{name}/whole_new_decoder"), |b| {
                b.iter(|| decode_one(&mut Decoder::default(), black_box(&whole)));
            });
        }
    }
    g.finish();
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    for (name, len, chat) in [
        ("chunk_64KiB", CHUNK_64K, false),
        ("chat_200B", CHAT_BODY, true),
    ] {
        let head = leg_head(len, chat);
        let flag = if chat { Flag::Complete } else { Flag::More };
        let mut dst = BytesMut::with_capacity(1024);
        head.encode(&mut dst);
        encode::end_line(&mut dst, LEG_TID, flag, true);
        g.throughput(Throughput::Bytes(dst.len() as u64));
        g.bench_function(format!("{name}/leg_head_end_line"), |b| {
            b.iter(|| {
                dst.clear();
                black_box(&head).encode(&mut dst);
                encode::end_line(&mut dst, black_box(LEG_TID), flag, true);
                black_box(dst.len())
            });
        });
    }
    g.finish();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);
