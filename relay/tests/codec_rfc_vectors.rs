//! MSRP-FRAME: every example message of RFC 4975 and RFC 4976 (the wire
//! images in `tests/fixtures/rfc`, see its MANIFEST.md) decodes, and
//! re-encodes byte for byte.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use common::{Msg, decode_whole, reencode, rfc_fixtures};
use msrp_relay::msrp::{ByteRange, Flag, Method, StatusCode};

#[test]
fn msrp_frame_rfc_examples_decode_and_reencode_byte_exactly() {
    let fixtures = rfc_fixtures();
    assert!(fixtures.len() >= 50, "fixtures missing: {}", fixtures.len());
    for (name, bytes) in fixtures {
        let msgs = decode_whole(&bytes);
        assert!(!msgs.is_empty(), "{name}: nothing decoded");
        for m in &msgs {
            assert!(!matches!(m, Msg::Error(_)), "{name}: {m:?}");
        }
        if !name.starts_with("stream_") {
            assert_eq!(msgs.len(), 1, "{name}: one message per file");
        }
        assert_eq!(
            String::from_utf8_lossy(&reencode(&msgs)),
            String::from_utf8_lossy(&bytes),
            "{name}"
        );
    }
}

fn one(name: &str) -> Msg {
    let (_, bytes) = rfc_fixtures()
        .into_iter()
        .find(|(n, _)| n == name)
        .expect(name);
    decode_whole(&bytes).remove(0)
}

#[test]
fn msrp_frame_rfc4975_section_4_send_fields() {
    let Msg::Request { head, body, flag } = one("rfc4975_4_fig2_send.msrp") else {
        panic!("not a request")
    };
    assert_eq!(head.tid.as_bytes(), b"a786hjs2");
    assert_eq!(head.method, Method::Send);
    assert_eq!(head.to_path.first().host(), b"biloxi.example.com");
    assert_eq!(head.to_path.first().port(), Some(12763));
    assert_eq!(
        head.to_path.first().session_id(),
        Some(&b"kjhd37s2s20w2a"[..])
    );
    assert_eq!(head.from_path.last().host(), b"atlanta.example.com");
    assert_eq!(head.message_id.as_deref(), Some(&b"87652491"[..]));
    assert_eq!(
        head.byte_range,
        Some(ByteRange {
            start: 1,
            end: Some(25),
            total: Some(25)
        })
    );
    assert_eq!(head.content_type.as_deref(), Some(&b"text/plain"[..]));
    assert_eq!(body, b"Hey Bob, are you there?");
    assert_eq!(flag, Flag::Complete);
}

#[test]
fn msrp_chunk_rfc4975_section_5_1_chunks_carry_plus_then_dollar() {
    let Msg::Request { head, flag, .. } = one("rfc4975_5_1_send_chunk1.msrp") else {
        panic!("not a request")
    };
    assert_eq!(flag, Flag::More);
    let range = head.byte_range.expect("Byte-Range");
    assert_eq!(
        (range.start, range.end, range.total),
        (1, None, Some(8)),
        "1-*/8"
    );
    let Msg::Request { flag, .. } = one("rfc4975_5_1_send_chunk2.msrp") else {
        panic!("not a request")
    };
    assert_eq!(flag, Flag::Complete);
}

#[test]
fn msrp_report_rfc4975_section_11_6_report_status() {
    let Msg::Request { head, body, .. } = one("rfc4975_11_6_report.msrp") else {
        panic!("not a request")
    };
    assert_eq!(head.method, Method::Report);
    assert!(!head.has_body && body.is_empty());
    let status = head.status.clone().expect("Status header");
    assert_eq!((status.namespace, status.code), (0, StatusCode::OK));
    assert!(
        !head.wants_response(),
        "REPORTs are never answered (§7.1.2)"
    );
}

#[test]
fn msrp_frame_rfc4975_responses_have_only_paths() {
    let Msg::Response(r) = one("rfc4975_4_fig2_200.msrp") else {
        panic!("not a response")
    };
    assert_eq!(r.code, StatusCode::OK);
    assert_eq!(r.comment.as_deref(), Some(&b"OK"[..]));
    assert_eq!(r.fields.len(), 2);
}
