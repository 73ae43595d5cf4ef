//! One side of an MSRP session and the frames it writes: binds, chunks,
//! whole messages and success REPORTs.

use bytes::BytesMut;
use msrp_relay::msrp::encode::{self, SendHead};
use msrp_relay::msrp::{ByteRange, Flag, StatusCode};

/// One side of an MSRP session: its own URI, the peer's, and transaction
/// ids.
#[derive(Debug)]
pub struct Endpoint {
    /// This endpoint's URI (From-Path).
    pub local_uri: String,
    /// The peer's URI (To-Path).
    pub remote_uri: String,
    prefix: String,
    next: u64,
}

impl Endpoint {
    /// An endpoint whose transaction ids start with `prefix` (alphanumeric).
    pub fn new(prefix: &str, local_uri: &str, remote_uri: &str) -> Endpoint {
        Endpoint {
            local_uri: local_uri.into(),
            remote_uri: remote_uri.into(),
            // Transaction ids are 4 to 32 characters (RFC 4975 §9).
            prefix: prefix
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(20)
                .collect(),
            next: 1,
        }
    }

    /// A fresh transaction id.
    pub fn tid(&mut self) -> String {
        self.next += 1;
        format!("{}x{:03}", self.prefix, self.next)
    }

    /// A bodiless SEND that binds the connection (RFC 4975 §5.4); returns
    /// its tid and the bytes.
    pub fn bind_frame(&mut self) -> (String, BytesMut) {
        let tid = self.tid();
        let mut b = BytesMut::with_capacity(256);
        self.head(&tid, b"bind", None, None).encode(&mut b);
        encode::end_line(&mut b, tid.as_bytes(), Flag::Complete, false);
        (tid, b)
    }

    fn head<'a>(
        &'a self,
        tid: &'a str,
        mid: &'a [u8],
        range: Option<ByteRange>,
        ct: Option<&'a [u8]>,
    ) -> SendHead<'a> {
        SendHead {
            tid: tid.as_bytes(),
            to_path: self.remote_uri.as_bytes(),
            from_path: self.local_uri.as_bytes(),
            message_id: mid,
            byte_range: range,
            success_report: None,
            failure_report: None,
            content_type: ct,
            extra: &[],
        }
    }

    /// Head and end-line of one chunk `[from, to)` of a message of `total`
    /// bytes; the body goes between them.
    pub fn chunk_frame(
        &mut self,
        mid: &[u8],
        ct: &[u8],
        from: u64,
        to: u64,
        total: u64,
    ) -> (BytesMut, BytesMut) {
        let tid = self.tid();
        let range = ByteRange {
            start: from + 1,
            end: Some(to),
            total: Some(total),
        };
        let mut head = BytesMut::with_capacity(256);
        self.head(&tid, mid, Some(range), Some(ct))
            .encode(&mut head);
        let mut tail = BytesMut::with_capacity(64);
        let flag = if to >= total {
            Flag::Complete
        } else {
            Flag::More
        };
        encode::end_line(&mut tail, tid.as_bytes(), flag, true);
        (head, tail)
    }

    /// A whole one-chunk message into `dst`.
    pub fn message(&mut self, dst: &mut BytesMut, mid: &[u8], ct: &[u8], body: &[u8]) {
        let (head, tail) = self.chunk_frame(mid, ct, 0, body.len() as u64, body.len() as u64);
        dst.extend_from_slice(&head);
        dst.extend_from_slice(body);
        dst.extend_from_slice(&tail);
    }

    /// [`Endpoint::message`] with `Success-Report: yes`.
    pub fn reported_message(&mut self, dst: &mut BytesMut, mid: &[u8], ct: &[u8], body: &[u8]) {
        let tid = self.tid();
        let n = body.len() as u64;
        let range = ByteRange {
            start: 1,
            end: Some(n),
            total: Some(n),
        };
        let mut head = self.head(&tid, mid, Some(range), Some(ct));
        head.success_report = Some(true);
        head.encode(dst);
        dst.extend_from_slice(body);
        encode::end_line(dst, tid.as_bytes(), Flag::Complete, true);
    }

    /// A success REPORT (`000 200`) for all `len` bytes of message `mid`,
    /// to `to` (the first From-Path URI of the reported SEND).
    pub fn success_report(&mut self, dst: &mut BytesMut, to: &[u8], mid: &[u8], len: u64) {
        let tid = self.tid();
        encode::Report {
            tid: tid.as_bytes(),
            to_path: to,
            from_path: self.local_uri.as_bytes(),
            message_id: mid,
            byte_range: ByteRange {
                start: 1,
                end: Some(len),
                total: Some(len),
            },
            status: StatusCode::OK,
        }
        .encode(dst);
    }
}

#[cfg(test)]
mod tests {
    use super::super::file::make_file;
    use super::*;
    use msrp_relay::msrp::{Decoder, Event, Limits};

    #[test]
    fn chunk_frames_decode_back() {
        let mut ep = Endpoint::new(
            "s-1",
            "msrp://127.0.0.1:9/a;tcp",
            "msrp://127.0.0.1:9/b;tcp",
        );
        let (tid, bind) = ep.bind_frame();
        let file = make_file(1000);
        let mut wire = BytesMut::from(&bind[..]);
        for (from, to) in [(0u64, 600u64), (600, 1000)] {
            let (h, t) = ep.chunk_frame(b"msg-1", b"text/plain", from, to, 1000);
            wire.extend_from_slice(&h);
            wire.extend_from_slice(&file[from as usize..to as usize]);
            wire.extend_from_slice(&t);
        }
        let mut dec = Decoder::new(Limits::default());
        dec.feed(wire.freeze());
        let mut body = Vec::new();
        let mut ends = Vec::new();
        let mut tids = Vec::new();
        while let Some(ev) = dec.poll().unwrap() {
            match ev {
                Event::Request(h) => {
                    tids.push(String::from_utf8_lossy(h.tid.as_bytes()).into_owned())
                }
                Event::Body(b) => body.extend_from_slice(&b),
                Event::End(f) => ends.push(f),
                other => panic!("only a request expected, got {other:?}"),
            }
        }
        assert_eq!(tids[0], tid);
        assert_eq!(tids[0], "s1x002");
        assert_eq!(body, &file[..]);
        assert_eq!(ends, vec![Flag::Complete, Flag::More, Flag::Complete]);
    }
}
