//! MSRP-FRAME: a table of bad inputs, each with the error it must give and
//! what the connection does next. Where the transaction id is known the
//! bad message is skipped and the next message decodes (resynchronised);
//! where it is not, the stream is closed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use bytes::Bytes;
use common::{Msg, decode_segments, decode_whole};
use msrp_relay::msrp::header::HeaderError;
use msrp_relay::msrp::{
    DecodeError, Disposition, FatalError, Limits, MessageError, StatusCode, UriError,
};

const GOOD: &str = "MSRP good1 SEND\r\nTo-Path: msrp://r.example:2855/s;tcp\r\nFrom-Path: msrp://a.example:1/a;tcp\r\nMessage-ID: g1234\r\nContent-Type: text/plain\r\n\r\nok\r\n-------good1$\r\n";

fn send(tid: &str, headers: &str, body: &str) -> String {
    format!(
        "MSRP {tid} SEND\r\n{headers}Content-Type: text/plain\r\n\r\n{body}\r\n-------{tid}$\r\n"
    )
}

const PATHS: &str =
    "To-Path: msrp://r.example:2855/s;tcp\r\nFrom-Path: msrp://a.example:1/a;tcp\r\n";

enum Want {
    /// The stream closes with this error.
    Fatal(FatalError),
    /// The request is answered with `status` and the next message decodes.
    Reply(StatusCode, MessageError),
    /// A bad response is dropped and the next message decodes.
    Ignore(MessageError),
}

/// `ÿ` in a case's text stands for the byte 0xFF, which no UTF-8 text
/// can hold.
fn check(name: &str, input: String, want: Want, limits: Limits) {
    let mut bytes = Vec::new();
    for c in (input + GOOD).chars() {
        match c {
            '\u{ff}' => bytes.push(0xFF),
            c => bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    let msgs = decode_segments(&[Bytes::from(bytes)], limits);
    let err = msgs.iter().find_map(|m| match m {
        Msg::Error(e) => Some(e.clone()),
        _ => None,
    });
    let Some(err) = err else {
        panic!("{name}: no error in {msgs:?}")
    };
    let resynced =
        matches!(msgs.last(), Some(Msg::Request { head, .. }) if head.tid.as_bytes() == b"good1");
    match want {
        Want::Fatal(f) => {
            assert_eq!(err, DecodeError::Fatal(f), "{name}");
            assert_eq!(err.disposition(), Disposition::Close, "{name}");
            assert!(!resynced, "{name}: decoded past a fatal error");
        }
        Want::Reply(status, reason) => {
            let DecodeError::Request {
                status: s,
                reason: r,
                ..
            } = &err
            else {
                panic!("{name}: {err:?}")
            };
            assert_eq!((*s, r), (status, &reason), "{name}");
            assert_eq!(err.disposition(), Disposition::Reply(status), "{name}");
            assert!(err.transaction_id().is_some(), "{name}");
            assert!(resynced, "{name}: did not resynchronise: {msgs:?}");
        }
        Want::Ignore(reason) => {
            assert!(
                matches!(&err, DecodeError::Response { reason: r, .. } if *r == reason),
                "{name}: {err:?}"
            );
            assert_eq!(err.disposition(), Disposition::Ignore, "{name}");
            assert!(resynced, "{name}: did not resynchronise");
        }
    }
}

#[test]
fn msrp_frame_bad_input_table() {
    use Want::*;
    let d = Limits::default();
    let cases: Vec<(&str, String, Want, Limits)> = vec![
        ("bad start line", "HTTP/1.1 200 OK\r\n\r\n".into(), Fatal(FatalError::BadStartLine), d),
        ("lowercase protocol", "msrp abcd SEND\r\n".into(), Fatal(FatalError::BadStartLine), d),
        ("tid too short", send("ab", PATHS, "x"), Fatal(FatalError::BadTransactionId), d),
        ("tid with bad char", send("ab/cd", PATHS, "x"), Fatal(FatalError::BadTransactionId), d),
        ("lowercase method", "MSRP abcd send\r\nTo-Path: msrp://r:1/s;tcp\r\nFrom-Path: msrp://a:1/a;tcp\r\n-------abcd$\r\n".into(), Reply(StatusCode::BAD_REQUEST, MessageError::BadMethod), d),
        ("missing To-Path", send("abcd", "From-Path: msrp://a.example:1/a;tcp\r\n", "x"), Reply(StatusCode::BAD_REQUEST, MessageError::Missing("To-Path")), d),
        ("missing From-Path", send("abcd", "To-Path: msrp://r.example:1/s;tcp\r\n", "x"), Reply(StatusCode::BAD_REQUEST, MessageError::Missing("From-Path")), d),
        ("duplicate To-Path", send("abcd", &format!("{PATHS}To-Path: msrp://r:1/s;tcp\r\n"), "x"), Reply(StatusCode::BAD_REQUEST, MessageError::Duplicate("To-Path")), d),
        ("bad URI", send("abcd", "To-Path: http://r/s\r\nFrom-Path: msrp://a:1/a;tcp\r\n", "x"), Reply(StatusCode::BAD_REQUEST, MessageError::Path("To-Path", UriError::Scheme)), d),
        ("bad Byte-Range", send("abcd", &format!("{PATHS}Byte-Range: 0-5/5\r\n"), "x"), Reply(StatusCode::BAD_REQUEST, MessageError::Header(HeaderError("Byte-Range"))), d),
        ("Byte-Range end past total", send("abcd", &format!("{PATHS}Byte-Range: 1-9/5\r\n"), "x"), Reply(StatusCode::BAD_REQUEST, MessageError::Header(HeaderError("Byte-Range"))), d),
        ("bad Message-ID", send("abcd", &format!("{PATHS}Message-ID: a b\r\n"), "x"), Reply(StatusCode::BAD_REQUEST, MessageError::Header(HeaderError("Message-ID"))), d),
        ("duplicate Message-ID", send("abcd", &format!("{PATHS}Message-ID: m1234\r\nMessage-ID: m1234\r\n"), "x"), Reply(StatusCode::BAD_REQUEST, MessageError::Duplicate("Message-ID")), d),
        ("bad Failure-Report", send("abcd", &format!("{PATHS}Failure-Report: sometimes\r\n"), "x"), Reply(StatusCode::BAD_REQUEST, MessageError::Header(HeaderError("Failure-Report"))), d),
        ("header line without colon", send("abcd", &format!("{PATHS}NoColonHere\r\n"), "x"), Reply(StatusCode::BAD_REQUEST, MessageError::BadHeaderLine), d),
        ("non-UTF-8 header", send("abcd", &format!("{PATHS}X-Name: caf\u{ff}\r\n"), "x"), Reply(StatusCode::BAD_REQUEST, MessageError::NotUtf8), d),
        ("body without Content-Type", format!("MSRP abcd SEND\r\n{PATHS}\r\nbody\r\n-------abcd$\r\n"), Reply(StatusCode::BAD_REQUEST, MessageError::MissingContentType), d),
        ("end-line inside a header", "MSRP abcd SEND\r\nTo-Path: msrp://r:1/s;tcp\r\nFrom-Path: msrp://a:1/a;tcp-------abcd$\r\n".into(), Reply(StatusCode::BAD_REQUEST, MessageError::EndLineInHeader), d),
        ("end-line of another transaction in the head", format!("MSRP abcd SEND\r\n{PATHS}-------wxyz$\r\n"), Fatal(FatalError::BadEndLine), d),
        ("end-line right after the start line", "MSRP abcd SEND\r\n-------abcd$\r\n".into(), Reply(StatusCode::BAD_REQUEST, MessageError::Missing("To-Path")), d),
        ("oversize head", format!("MSRP abcd SEND\r\n{PATHS}X-Big: {}\r\n", "a".repeat(20_000)), Fatal(FatalError::HeadTooLarge(16 * 1024)), d),
        ("too many headers", format!("MSRP abcd SEND\r\n{PATHS}{}", "X-H: v\r\n".repeat(70)), Fatal(FatalError::TooManyHeaders(64)), d),
        ("bare LF", "MSRP abcd SEND\nTo-Path: msrp://r:1/s;tcp\n".into(), Fatal(FatalError::BareLineFeed), d),
        ("garbage after a message", format!("{GOOD}garbage\r\n"), Fatal(FatalError::BadStartLine), d),
        ("truncated end-line", format!("MSRP abcd SEND\r\n{PATHS}Content-Type: text/plain\r\n\r\nhello\r\n-------abcd$MSRP"), Fatal(FatalError::TruncatedEndLine), d),
        ("chunk over the limit", send("abcd", PATHS, &"z".repeat(100)), Reply(StatusCode::STOP_SENDING, MessageError::ChunkTooLarge(10)), Limits { max_chunk_bytes: 10, ..d }),
        ("response with a body", format!("MSRP abcd 200 OK\r\n{PATHS}\r\nbody\r\n-------abcd$\r\n"), Ignore(MessageError::ResponseWithBody), d),
        ("response without From-Path", "MSRP abcd 200 OK\r\nTo-Path: msrp://r:1/s;tcp\r\n-------abcd$\r\n".into(), Ignore(MessageError::Missing("From-Path")), d),
    ];
    for (name, input, want, limits) in cases {
        check(name, input, want, limits);
    }
}

/// MSRP-CHUNK: a peer that closes in the middle of a message (a sender
/// disconnecting mid-chunk) is reported as truncated; one that closes
/// between messages is not.
#[test]
fn msrp_chunk_eof_inside_a_message_is_truncated() {
    let cut = &GOOD[..GOOD.len() - 5];
    let msgs = decode_whole(cut.as_bytes());
    assert_eq!(
        msgs.last(),
        Some(&Msg::Error(DecodeError::Fatal(FatalError::Truncated)))
    );
    let msgs = decode_whole(GOOD.as_bytes());
    assert!(matches!(msgs.as_slice(), [Msg::Request { .. }]));
}

/// A fatal error sticks: every later poll repeats it, whatever is fed.
#[test]
fn msrp_frame_fatal_errors_are_sticky() {
    let mut d = msrp_relay::msrp::Decoder::default();
    d.feed(Bytes::from_static(b"NOPE\r\n"));
    assert_eq!(d.poll(), Err(DecodeError::Fatal(FatalError::BadStartLine)));
    d.feed(Bytes::from_static(GOOD.as_bytes()));
    assert_eq!(d.poll(), Err(DecodeError::Fatal(FatalError::BadStartLine)));
}
