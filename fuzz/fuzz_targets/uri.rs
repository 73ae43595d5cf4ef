//! Fuzz target `uri`: the typed header parsers on arbitrary bytes. Every
//! parser runs on the whole input; none may panic, and where a value can be
//! written back, writing it and parsing it again gives the same value:
//! - `MsrpUri::parse`: `parse(display(u)) == u` (and the same wire bytes);
//! - `Path::parse`: every URI of a path parses alone; the path re-parses
//!   from its wire bytes;
//! - `ByteRange::parse`: `start-end/total` (with `*`) re-parses, both as
//!   written here and as `encode::Report` writes it, and the REPORT decodes
//!   with the same range;
//! - `StatusHeader::parse`, `FailureReport::parse`, `parse_success_report`,
//!   `TransactionId::new` / `is_ident`.

#![no_main]
// Fuzz code: a panic (a failed assert or unwrap) is exactly what a finding is.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use msrp_relay::msrp::header::{is_ident, parse_success_report};
use msrp_relay::msrp::{
    ByteRange, Decoder, Event, FailureReport, MsrpUri, Path, StatusCode, StatusHeader,
    TransactionId, encode,
};

fn byte_range_text(r: ByteRange) -> String {
    let opt = |v: Option<u64>| v.map_or_else(|| "*".to_owned(), |n| n.to_string());
    format!("{}-{}/{}", r.start, opt(r.end), opt(r.total))
}

fn check_byte_range(r: ByteRange) {
    let _ = (r.len(), r.is_empty());
    assert_eq!(
        ByteRange::parse(byte_range_text(r).as_bytes()),
        Ok(r),
        "Byte-Range round trip"
    );
    // As the encoder writes it, inside a REPORT that the decoder reads back.
    let mut dst = BytesMut::new();
    encode::Report {
        tid: b"fuzz1234",
        to_path: b"msrp://a.example:2855/s1;tcp",
        from_path: b"msrp://r.example:2855/s2;tcp",
        message_id: b"m1234",
        byte_range: r,
        status: StatusCode(200),
    }
    .encode(&mut dst);
    let mut d = Decoder::default();
    d.feed(dst.freeze());
    match d.poll() {
        Ok(Some(Event::Request(h))) => assert_eq!(h.byte_range, Some(r), "REPORT Byte-Range"),
        other => panic!("encoded REPORT did not decode: {other:?}"),
    }
    assert!(matches!(d.poll(), Ok(Some(Event::End(_)))));
    assert_eq!(d.finish(), Ok(()));
}

fn check_uri(u: &MsrpUri) {
    let _ = (
        u.host(),
        u.port(),
        u.session_id(),
        u.transport(),
        u.is_secure(),
    );
    assert!(!u.host().is_empty());
    assert!(!u.transport().is_empty());
    assert_eq!(u, &u.clone());
    let again = MsrpUri::parse(Bytes::from(u.to_string())).expect("displayed URI re-parses");
    assert_eq!(&again, u, "URI round trip");
    assert_eq!(again.as_bytes(), u.as_bytes());
}

fuzz_target!(|data: &[u8]| {
    let raw = Bytes::copy_from_slice(data);

    if let Ok(u) = MsrpUri::parse(raw.clone()) {
        assert_eq!(u.as_bytes(), data);
        check_uri(&u);
    }

    if let Ok(p) = Path::parse(raw.clone()) {
        assert_eq!(p.as_bytes(), data);
        assert!(!p.uris().is_empty());
        let _ = (p.first(), p.last());
        for u in p.uris() {
            check_uri(u);
        }
        let again = Path::parse(Bytes::copy_from_slice(p.as_bytes())).expect("path re-parses");
        assert_eq!(again, p, "Path round trip");
    }

    if let Ok(r) = ByteRange::parse(data) {
        check_byte_range(r);
    }

    if let Ok(s) = StatusHeader::parse(&raw) {
        let mut text = format!("{:03} {:03}", s.namespace, s.code.0).into_bytes();
        if let Some(c) = &s.comment {
            text.push(b' ');
            text.extend_from_slice(c);
        }
        assert_eq!(
            StatusHeader::parse(&Bytes::from(text)),
            Ok(s),
            "Status round trip"
        );
    }

    if let Ok(f) = FailureReport::parse(data) {
        assert_eq!(FailureReport::parse(f.as_str().as_bytes()), Ok(f));
    }
    if let Ok(v) = parse_success_report(data) {
        let word: &[u8] = if v { b"yes" } else { b"no" };
        assert_eq!(parse_success_report(word), Ok(v));
    }

    let tid = TransactionId::new(raw.clone());
    assert_eq!(
        tid.is_some(),
        is_ident(data),
        "TransactionId::new agrees with is_ident"
    );
    if let Some(t) = tid {
        assert_eq!(t.as_bytes(), data);
    }
});
