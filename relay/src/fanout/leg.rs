//! One leg of a session: the relay's own MSRP endpoint toward one peer
//! (the sender upstream, or one of the user's devices), its read cursor
//! into the conversation, the chunks it has sent and awaits responses for,
//! and the chunk it is receiving.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::stream::Cursor;
use super::tid::{self, StartTemplate, Tid};
use super::types::{ConnId, LegState, Setup, Transport};
use crate::msrp::{MsrpUri, RequestHead};

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

/// Room first given to a request or response a leg encodes on its own
/// (enough for most; one that needs more grows).
const ENCODED: usize = 512;

/// One leg. The fields used to queue output come first and the rest is
/// boxed in [`LegCold`], so that fanning a chunk out to many legs touches
/// few cache lines of each.
#[derive(Debug)]
pub(crate) struct Leg {
    pub(crate) state: LegState,
    /// A device or a recorder (which gets nothing the devices send).
    pub(crate) role: super::LegRole,
    pub(crate) cursor: Cursor,
    pub(crate) out_len: usize,
    /// Queued output: whole messages as `[head, body pieces…, end-line]`.
    pub(crate) out: VecDeque<Bytes>,
    /// Sequence number of `inflight[0]`.
    pub(crate) inflight_base: u64,
    /// Chunks awaiting responses, by sequence number (None: answered out of
    /// order already, or sent without wanting a response).
    pub(crate) inflight: VecDeque<Option<Inflight>>,
    /// `MSRP <tid> SEND` CRLF `To-Path: …` CRLF `From-Path: …` CRLF for
    /// this leg, made once; each chunk patches its id.
    pub(crate) start: StartTemplate,
    /// Messages this leg refused (error response): not sent further.
    pub(crate) skip: Vec<u64>,
    /// The message whose chunks are under way to this leg (its last chunk
    /// had `+`): an abort of it must reach the leg as `#`.
    pub(crate) current: Option<u64>,
    pub(crate) delivered_bytes: u64,
    /// Body bytes received from the peer.
    pub(crate) received_bytes: u64,
    /// Transaction ids are `prefix` + 8 hex digits of the sequence number
    /// ([`tid`]).
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
    /// Plain TCP or TLS (what its connection must be).
    pub(crate) transport: Transport,
}

impl Leg {
    pub(crate) fn new(
        label: String,
        local_uri: Bytes,
        local_sid: Bytes,
        tid_prefix: [u8; 4],
        transport: Transport,
        now: Instant,
    ) -> Leg {
        Leg {
            state: LegState::Invited,
            role: super::LegRole::Device,
            cursor: Cursor::default(),
            out_len: 0,
            out: VecDeque::new(),
            inflight_base: 0,
            inflight: VecDeque::new(),
            start: StartTemplate::new(tid_prefix, b""),
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
                transport,
            }),
        }
    }

    /// A fresh transaction id for the next request; its sequence number
    /// is `inflight_base + inflight.len()`. `None` when [`tid::WINDOW`]
    /// requests are in flight already (their ids would repeat): the leg
    /// sends nothing more until the oldest is answered.
    #[inline]
    pub(crate) fn next_tid(&self) -> Option<Tid> {
        tid::next(self.tid_prefix, self.inflight_base, self.inflight.len())
    }

    /// The sequence number a transaction id of this leg stands for, among
    /// those that may be in flight (only the exact spelling `next_tid`
    /// writes).
    pub(crate) fn tid_seq(&self, tid: &[u8]) -> Option<u64> {
        tid::seq_of(self.tid_prefix, self.inflight_base, tid)
    }

    /// Its transaction-id prefix.
    pub(crate) fn tid_prefix(&self) -> [u8; 4] {
        self.tid_prefix
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

    /// Encodes a request or response into a buffer of its own and queues
    /// it. No buffer is kept per leg (4 KiB would be half a waiting leg's
    /// memory): these are rare next to the chunks, which go through the
    /// session's arena, and one allocation each is freed once written.
    pub(crate) fn push_encoded(&mut self, f: impl FnOnce(&mut BytesMut)) {
        let mut b = BytesMut::with_capacity(ENCODED);
        f(&mut b);
        self.push_out(b.freeze());
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

    fn leg() -> Leg {
        Leg::new(
            "d".into(),
            Bytes::new(),
            Bytes::new(),
            *b"Qx7a",
            Transport::Tcp,
            Instant::now(),
        )
    }

    fn awaiting(leg: &mut Leg, n: u64) -> Vec<Tid> {
        (0..n)
            .map(|i| {
                let tid = leg.next_tid().unwrap();
                leg.push_inflight(Some(Inflight {
                    msg: i,
                    last: false,
                }));
                tid
            })
            .collect()
    }

    #[test]
    fn tids_are_idents_and_map_back_to_their_sequence() {
        let mut leg = leg();
        for (i, tid) in awaiting(&mut leg, 5000).iter().enumerate() {
            assert!(crate::msrp::header::is_ident(tid));
            assert_eq!(leg.tid_seq(tid), Some(i as u64));
        }
        // Out of order answers free the front only when it is answered.
        assert!(leg.take_inflight(b"Qx7a00000001").is_some());
        assert_eq!(leg.inflight_base, 0);
        assert!(leg.take_inflight(b"Qx7a00000000").is_some());
        assert_eq!(leg.inflight_base, 2);
        assert!(
            leg.take_inflight(b"Qx7a00000000").is_none(),
            "answered twice"
        );
        assert!(
            leg.take_inflight(b"Zzzz00000002").is_none(),
            "another leg's tid"
        );
        assert!(leg.take_inflight(b"Qx7a2").is_none(), "not this spelling");
        assert!(leg.take_inflight(b"Qx7a00001388").is_none(), "never sent");
    }

    #[test]
    fn tids_after_wrap_around_still_match_their_responses() {
        let mut leg = leg();
        // Sequence numbers 2^32 - 3 … 2^32 + 2: the last three reuse the
        // digits of 0, 1, 2, long answered.
        leg.inflight_base = tid::WINDOW - 3;
        let tids = awaiting(&mut leg, 6);
        assert_eq!(&tids[2], b"Qx7affffffff");
        assert_eq!(&tids[3], b"Qx7a00000000");
        for (i, tid) in tids.iter().enumerate().rev() {
            let got = leg.take_inflight(tid).map(|f| f.msg);
            assert_eq!(got, Some(i as u64), "{}", String::from_utf8_lossy(tid));
        }
        assert!(leg.inflight.is_empty());
        assert_eq!(leg.inflight_base, tid::WINDOW + 3);
        // Numbers taken without awaiting anything move the window too.
        leg.push_inflight(None);
        let tid = leg.next_tid().unwrap();
        assert_eq!(&tid, b"Qx7a00000004");
        leg.push_inflight(Some(Inflight { msg: 9, last: true }));
        assert_eq!(leg.take_inflight(&tid).map(|f| f.msg), Some(9));
    }
}
