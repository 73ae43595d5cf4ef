//! One leg of a session: the relay's own MSRP endpoint toward one peer
//! (the sender upstream, or one of the user's devices), its read cursor
//! into the conversation, the chunks it has sent and awaits responses for,
//! and the chunk it is receiving.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::stream::Cursor;
use super::types::{ConnId, FailReason, Setup};
use crate::msrp::{MsrpUri, RequestHead};

/// Where a leg stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LegState {
    /// Invited, not answered: keeps the whole log for a late accept.
    Invited,
    /// Answered; waiting for its connection.
    Answered,
    /// Connection bound; traffic flows.
    Connected,
    /// Drained after the sender ended; `leg-done` queued or sent.
    Done,
    /// Failed alone.
    Failed(FailReason),
}

impl LegState {
    /// Still a reader of the log (pins what it has not read).
    pub(crate) fn is_reader(&self) -> bool {
        matches!(
            self,
            LegState::Invited | LegState::Answered | LegState::Connected
        )
    }
}

/// A chunk sent to the peer that awaits its transaction response.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Inflight {
    pub(crate) msg: u64,
    /// The chunk ended the message (`$`).
    pub(crate) last: bool,
}

/// How a SEND being received is handled.
#[derive(Debug)]
pub(crate) enum RxMode {
    /// Body pieces go to the log as they arrive (upstream content).
    Stream { msg: u64, at: u64 },
    /// Pieces are held until the end-line, then classified (device
    /// content, upstream CPIM that may be an IMDN).
    Buffer { pieces: Vec<Bytes>, len: u64 },
    /// The rest of this chunk is dropped (refused with 413, or bodiless).
    Discard,
}

/// The SEND being received on a leg.
#[derive(Debug)]
pub(crate) struct Rx {
    pub(crate) head: Box<RequestHead>,
    pub(crate) mode: RxMode,
    /// The response is sent already (an early 413).
    pub(crate) answered: bool,
}

/// Transaction id digits.
const HEX: &[u8; 16] = b"0123456789abcdef";

/// One leg. The fields used to queue output come first and the rest is
/// boxed in [`LegCold`], so that fanning a chunk out to many legs touches
/// few cache lines of each.
#[derive(Debug)]
pub(crate) struct Leg {
    pub(crate) state: LegState,
    pub(crate) cursor: Cursor,
    pub(crate) out_len: usize,
    /// Queued output: whole messages as `[head, body pieces…, end-line]`.
    pub(crate) out: VecDeque<Bytes>,
    /// Sequence number of `inflight[0]`.
    pub(crate) inflight_base: u64,
    /// Chunks awaiting responses, by sequence number (None: answered out of
    /// order already, or sent without wanting a response).
    pub(crate) inflight: VecDeque<Option<Inflight>>,
    /// `To-Path: …` CRLF `From-Path: …` CRLF for this leg, encoded once.
    pub(crate) paths: Bytes,
    /// Messages this leg refused (error response): not sent further.
    pub(crate) skip: Vec<u64>,
    /// The message whose chunks are under way to this leg (its last chunk
    /// had `+`): an abort of it must reach the leg as `#`.
    pub(crate) current: Option<u64>,
    pub(crate) delivered_bytes: u64,
    /// Body bytes received from the peer.
    pub(crate) received_bytes: u64,
    /// Transaction ids are `prefix` + hex sequence number.
    tid_prefix: [u8; 4],
    pub(crate) rx: Option<Rx>,
    pub(crate) conn: Option<ConnId>,
    pub(crate) last_progress: Instant,
    /// Its paced `leg-done` event has left.
    pub(crate) done_sent: bool,
    /// The driver found its socket full (the device reads slower than the
    /// relay writes): it does not count for the read-ahead window.
    pub(crate) write_blocked: bool,
    pub(crate) cold: Box<LegCold>,
}

/// What a leg needs only to be set up, to answer and to report.
#[derive(Debug)]
pub(crate) struct LegCold {
    pub(crate) label: String,
    /// The relay's URI for this leg (`From-Path` of what it sends).
    pub(crate) local_uri: Bytes,
    /// The session-id part of `local_uri`.
    pub(crate) local_sid: Bytes,
    /// The peer's path from its SDP (`To-Path` of what the relay sends).
    pub(crate) peer_path: Vec<MsrpUri>,
    /// `peer_path` as one header value.
    pub(crate) to_path: Bytes,
    pub(crate) setup: Setup,
    pub(crate) head_buf: BytesMut,
}

impl Leg {
    pub(crate) fn new(
        label: String,
        local_uri: Bytes,
        local_sid: Bytes,
        tid_prefix: [u8; 4],
        now: Instant,
    ) -> Leg {
        Leg {
            state: LegState::Invited,
            cursor: Cursor::default(),
            out_len: 0,
            out: VecDeque::new(),
            inflight_base: 0,
            inflight: VecDeque::new(),
            paths: Bytes::new(),
            skip: Vec::new(),
            current: None,
            delivered_bytes: 0,
            received_bytes: 0,
            tid_prefix,
            rx: None,
            conn: None,
            last_progress: now,
            done_sent: false,
            write_blocked: false,
            cold: Box::new(LegCold {
                label,
                local_uri,
                local_sid,
                peer_path: Vec::new(),
                to_path: Bytes::new(),
                setup: Setup::Passive,
                head_buf: BytesMut::with_capacity(4096),
            }),
        }
    }

    /// A fresh transaction id for the next chunk; its sequence number is
    /// `inflight_base + inflight.len()`. Written as `prefix` + the sequence
    /// number in lowercase hex without leading zeros: 5 to 20 characters,
    /// an `ident` (RFC 4975 §9).
    pub(crate) fn next_tid(&self, out: &mut [u8; 20]) -> usize {
        let seq = self.inflight_base + self.inflight.len() as u64;
        out[..4].copy_from_slice(&self.tid_prefix);
        let n = (64 - (seq | 1).leading_zeros() as usize).div_ceil(4);
        for (i, d) in out[4..4 + n].iter_mut().enumerate() {
            *d = HEX[((seq >> (4 * (n - 1 - i))) & 0xf) as usize];
        }
        4 + n
    }

    /// The sequence number a transaction id of this leg stands for (only
    /// the exact spelling `next_tid` writes).
    pub(crate) fn tid_seq(&self, tid: &[u8]) -> Option<u64> {
        let digits = tid.strip_prefix(&self.tid_prefix[..])?;
        if digits.is_empty() || digits.len() > 16 || digits.len() > 1 && digits[0] == b'0' {
            return None;
        }
        digits.iter().try_fold(0u64, |n, &d| {
            let v = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                _ => return None,
            };
            Some(n << 4 | u64::from(v))
        })
    }

    /// Takes the in-flight record of a response's transaction.
    pub(crate) fn take_inflight(&mut self, tid: &[u8]) -> Option<Inflight> {
        let seq = self.tid_seq(tid)?;
        let idx = seq.checked_sub(self.inflight_base)? as usize;
        let taken = self.inflight.get_mut(idx)?.take();
        while matches!(self.inflight.front(), Some(None)) {
            self.inflight.pop_front();
            self.inflight_base += 1;
        }
        taken
    }

    /// Queues one piece of output.
    pub(crate) fn push_out(&mut self, b: Bytes) {
        if !b.is_empty() {
            self.out_len += b.len();
            self.out.push_back(b);
        }
    }

    /// Encodes into the leg's head buffer and queues the result.
    pub(crate) fn push_encoded(&mut self, f: impl FnOnce(&mut BytesMut)) {
        f(&mut self.cold.head_buf);
        let b = self.cold.head_buf.split().freeze();
        self.push_out(b);
    }

    /// Records a chunk sent with sequence number `inflight_base +
    /// inflight.len()`; one that wants no response takes a number but no
    /// room once nothing before it is outstanding.
    pub(crate) fn push_inflight(&mut self, entry: Option<Inflight>) {
        if entry.is_none() && self.inflight.is_empty() {
            self.inflight_base += 1;
        } else {
            self.inflight.push_back(entry);
        }
    }

    /// Chunks still awaiting a response.
    pub(crate) fn awaiting(&self) -> bool {
        self.inflight.iter().any(Option::is_some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tids_are_idents_and_map_back_to_their_sequence() {
        let mut leg = Leg::new(
            "d".into(),
            Bytes::new(),
            Bytes::new(),
            *b"Qx7a",
            Instant::now(),
        );
        let mut buf = [0u8; 20];
        for i in 0..5000u64 {
            let n = leg.next_tid(&mut buf);
            assert!(crate::msrp::header::is_ident(&buf[..n]));
            assert_eq!(leg.tid_seq(&buf[..n]), Some(i));
            leg.inflight.push_back(Some(Inflight {
                msg: 0,
                last: false,
            }));
        }
        // Out of order answers free the front only when it is answered.
        assert!(leg.take_inflight(b"Qx7a1").is_some());
        assert_eq!(leg.inflight_base, 0);
        assert!(leg.take_inflight(b"Qx7a0").is_some());
        assert_eq!(leg.inflight_base, 2);
        assert!(leg.take_inflight(b"Qx7a0").is_none(), "answered twice");
        assert!(leg.take_inflight(b"Zzzz0").is_none(), "another leg's tid");
        for bad in [
            &b"Qx7a"[..],
            b"Qx7a02",
            b"Qx7aA",
            b"Qx7ag",
            b"Qx7a10000000000000000",
        ] {
            assert_eq!(leg.tid_seq(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        let mut big = leg;
        big.inflight.clear();
        big.inflight_base = u64::MAX;
        let n = big.next_tid(&mut buf);
        assert_eq!(&buf[..n], b"Qx7affffffffffffffff");
        assert!(crate::msrp::header::is_ident(&buf[..n]));
        assert_eq!(big.tid_seq(&buf[..n]), Some(u64::MAX));
    }
}
