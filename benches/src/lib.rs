//! Criterion micro-benchmarks of msrp-relay's protocol cores (the MSRP codec
//! and the fan-out engine). The benchmarks live in `benches/benches/`; this
//! library holds the inputs they share, so that every bench measures the
//! same bytes. Run them with `cargo bench -p msrp-benches` (see
//! `docs/benchmarks.md`).
//!
//! The inputs are realistic RCS traffic as a relay receives it from a
//! sender: a file-transfer SEND chunk (64 KiB or 2 KiB of binary body,
//! `application/octet-stream`, with a Byte-Range into a larger file) and a
//! chat SEND (a 200-byte `message/cpim` body). Heads carry the fields a
//! real client sends: a two-hop To-Path through the relay, From-Path,
//! Message-ID, Success-Report, Failure-Report, Byte-Range, Content-Type.

use bytes::Bytes;
use msrp_relay::msrp::encode::SendHead;
use msrp_relay::msrp::{ByteRange, FailureReport};

/// Body size of the large file-transfer chunk.
pub const CHUNK_64K: usize = 64 * 1024;
/// Body size of the small file-transfer chunk.
pub const CHUNK_2K: usize = 2 * 1024;
/// Body size of the chat message.
pub const CHAT_BODY: usize = 200;
/// Segment size for the "fed in pieces" variants: one Ethernet MTU's worth,
/// the size a socket read typically delivers.
pub const PIECE: usize = 1500;

/// Transaction id of every generated SEND.
pub const TID: &[u8] = b"a786hjs2kf9w";
/// To-Path as the sender writes it: the relay, then the recipient.
pub const TO_PATH: &[u8] = b"msrps://relay-3.msrp.rcs.example-operator.net:2855/r9Jx2kQa7w;tcp msrps://[2001:db8:4f2::17]:49163/bT4q8zLs1e;tcp";
/// From-Path: the sender's own URI.
pub const FROM_PATH: &[u8] = b"msrps://198.51.100.23:39012/jshA7weztas;tcp";
/// Message-ID of the generated messages.
pub const MESSAGE_ID: &[u8] = b"87652491fw3kQz";

/// A leg's To-Path as the relay writes it towards one device.
pub const LEG_TO_PATH: &[u8] = b"msrps://[2001:db8:4f2::17]:49163/bT4q8zLs1e;tcp";
/// The relay's own URI on that leg.
pub const LEG_FROM_PATH: &[u8] =
    b"msrps://relay-3.msrp.rcs.example-operator.net:2855/r9Jx2kQa7w;tcp";
/// The leg's own transaction id.
pub const LEG_TID: &[u8] = b"x8Zq3mPl0sTv";

/// Deterministic pseudo-random bytes (xorshift64*), like a compressed
/// file's content. Never contains an MSRP end-line mark (`CRLF -------`),
/// which random data of this size would only hit by a freak chance anyway.
pub fn binary_body(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    // Break any `\r\n-------` so the body is a valid content-stuff.
    for i in 0..len.saturating_sub(8) {
        if &out[i..i + 9] == b"\r\n-------" {
            out[i] = b'x';
        }
    }
    out
}

/// A 200-byte chat message as RCS clients send it: a CPIM envelope around
/// the text (padded with text to exactly [`CHAT_BODY`] bytes).
pub fn chat_body() -> Vec<u8> {
    let mut b = b"From: <sip:anonymous@anonymous.invalid>\r\n\
To: <sip:anonymous@anonymous.invalid>\r\n\
NS: imdn <urn:ietf:params:imdn>\r\n\
imdn.Message-ID: Xs7dF3kq\r\n\
\r\n\
Content-Type: text/plain;charset=UTF-8\r\n\
\r\n"
        .to_vec();
    let text = b"Running 10 minutes late, order me a flat white please! ";
    let mut i = 0;
    while b.len() < CHAT_BODY {
        b.push(text[i % text.len()]);
        i += 1;
    }
    b.truncate(CHAT_BODY);
    b
}

/// A whole SEND request on the wire: head, `body`, end-line (flag `+` for
/// a file chunk that more chunks follow, `$` for a chat message).
pub fn send_message(body: &[u8], byte_range: ByteRange, content_type: &[u8], last: bool) -> Bytes {
    let mut m = Vec::with_capacity(body.len() + 512);
    m.extend_from_slice(b"MSRP ");
    m.extend_from_slice(TID);
    m.extend_from_slice(b" SEND\r\nTo-Path: ");
    m.extend_from_slice(TO_PATH);
    m.extend_from_slice(b"\r\nFrom-Path: ");
    m.extend_from_slice(FROM_PATH);
    m.extend_from_slice(b"\r\nMessage-ID: ");
    m.extend_from_slice(MESSAGE_ID);
    m.extend_from_slice(b"\r\nSuccess-Report: yes\r\nFailure-Report: yes\r\n");
    let star = |v: Option<u64>| v.map_or_else(|| "*".to_owned(), |n| n.to_string());
    m.extend_from_slice(
        format!(
            "Byte-Range: {}-{}/{}\r\n",
            byte_range.start,
            star(byte_range.end),
            star(byte_range.total)
        )
        .as_bytes(),
    );
    m.extend_from_slice(b"Content-Type: ");
    m.extend_from_slice(content_type);
    m.extend_from_slice(b"\r\n\r\n");
    m.extend_from_slice(body);
    m.extend_from_slice(b"\r\n-------");
    m.extend_from_slice(TID);
    m.push(if last { b'$' } else { b'+' });
    m.extend_from_slice(b"\r\n");
    Bytes::from(m)
}

/// The second chunk of a larger file: `len` bytes of binary body at offset
/// `len`, more chunks to follow.
pub fn file_chunk(len: usize) -> Bytes {
    let len64 = len as u64;
    send_message(
        &binary_body(len),
        ByteRange {
            start: len64 + 1,
            end: Some(2 * len64),
            total: Some(4 * len64),
        },
        b"application/octet-stream",
        false,
    )
}

/// A complete chat SEND with a [`CHAT_BODY`]-byte `message/cpim` body.
pub fn chat_send() -> Bytes {
    send_message(
        &chat_body(),
        ByteRange {
            start: 1,
            end: Some(CHAT_BODY as u64),
            total: Some(CHAT_BODY as u64),
        },
        b"message/cpim",
        true,
    )
}

/// `msg` cut into `piece`-byte slices (sharing its buffer, no copy), as
/// successive socket reads would deliver it.
pub fn pieces(msg: &Bytes, piece: usize) -> Vec<Bytes> {
    (0..msg.len())
        .step_by(piece.max(1))
        .map(|at| msg.slice(at..(at + piece).min(msg.len())))
        .collect()
}

/// The head a relay writes on one leg for a chunk of `len` body bytes at
/// offset `len` of a `4 * len` file (the shape of [`file_chunk`]), or for
/// a whole chat message when `chat` is set.
pub fn leg_head(len: usize, chat: bool) -> SendHead<'static> {
    let len = len as u64;
    SendHead {
        tid: LEG_TID,
        to_path: LEG_TO_PATH,
        from_path: LEG_FROM_PATH,
        message_id: MESSAGE_ID,
        byte_range: Some(if chat {
            ByteRange {
                start: 1,
                end: Some(len),
                total: Some(len),
            }
        } else {
            ByteRange {
                start: len + 1,
                end: Some(2 * len),
                total: Some(4 * len),
            }
        }),
        success_report: Some(true),
        failure_report: Some(FailureReport::Yes),
        content_type: Some(if chat {
            b"message/cpim"
        } else {
            b"application/octet-stream"
        }),
        extra: &[],
    }
}
