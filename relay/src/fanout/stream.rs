//! The session's conversation as an index over the content log: messages
//! (who sent them, who gets them, their MSRP attributes) and segments
//! (which log bytes belong to which message at which offset).
//!
//! Every leg reads the same index with its own [`Cursor`], skipping what
//! is not addressed to it. Upstream content is indexed as it streams in;
//! a device's content is indexed once its chunk is whole (it had to be
//! classified first: chat is mirrored, an IMDN is de-duplicated).

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

use super::log::{ContentLog, LogError};
use crate::msrp::{FailureReport, Flag, HeaderField};

/// Who gets a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Audience {
    /// Every leg but the one it came from (chat: the sender and the
    /// user's other devices, CPM-MLD-007a; upstream content: all devices).
    AllBut(u32),
    /// One leg only (an IMDN toward the sender, CPM-MLD-004/024; an
    /// isComposing; a notification routed to the originating device,
    /// CPM-MLD-022/023).
    Only(u32),
}

impl Audience {
    pub(crate) fn includes(self, leg: u32) -> bool {
        match self {
            Audience::AllBut(o) => o != leg,
            Audience::Only(l) => l == leg,
        }
    }
}

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MsgState {
    Open,
    Complete,
    Aborted,
}

/// One message of the conversation.
#[derive(Debug)]
pub(crate) struct MsgRec {
    pub(crate) audience: Audience,
    pub(crate) message_id: Bytes,
    pub(crate) content_type: Option<Bytes>,
    /// MIME fields besides Content-Type (Content-Disposition …).
    pub(crate) extra: Vec<HeaderField>,
    pub(crate) total: Option<u64>,
    pub(crate) success_report: bool,
    pub(crate) failure_report: FailureReport,
    /// Highest byte offset received + 1.
    pub(crate) received: u64,
    pub(crate) state: MsgState,
    /// Legs that got the whole message / that can no longer get it.
    pub(crate) delivered: u32,
    pub(crate) failed: u32,
    /// An end-to-end report (success or failure) went upstream.
    pub(crate) reported: bool,
    /// Segments still indexed, and legs awaiting a response for a chunk of
    /// it: the record lives while either is non-zero or it is open.
    pub(crate) segs_live: u32,
    pub(crate) pins: u32,
}

impl MsgRec {
    /// A new, open message.
    pub(crate) fn new(audience: Audience, message_id: Bytes) -> MsgRec {
        MsgRec {
            audience,
            message_id,
            content_type: None,
            extra: Vec::new(),
            total: None,
            success_report: false,
            failure_report: FailureReport::Yes,
            received: 0,
            state: MsgState::Open,
            delivered: 0,
            failed: 0,
            reported: false,
            segs_live: 0,
            pins: 0,
        }
    }
}

/// A run of log bytes of one message at one message offset; or, with
/// `len == 0`, just an end marker.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seg {
    pub(crate) msg: u64,
    pub(crate) msg_offset: u64,
    pub(crate) log_offset: u64,
    pub(crate) len: u64,
    pub(crate) end: Option<Flag>,
}

/// A reader's position: segment sequence number and bytes into it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Cursor {
    pub(crate) seq: u64,
    pub(crate) off: u64,
}

/// What a reader writes next: one outgoing chunk's body and flag. The body
/// pieces went to the sink given to [`Stream::next_run`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Run {
    pub(crate) msg: u64,
    pub(crate) msg_offset: u64,
    pub(crate) len: u64,
    /// `None`: more of the message follows (`+`).
    pub(crate) end: Option<Flag>,
}

/// The index. Message and segment numbers are absolute (they never reuse a
/// number), so cursors stay valid as the front is released.
#[derive(Debug, Default)]
pub(crate) struct Stream {
    msgs: VecDeque<MsgRec>,
    msg_base: u64,
    segs: VecDeque<Seg>,
    seg_base: u64,
    open: HashMap<(u32, Bytes), u64>,
    /// Live messages by Message-ID (REPORTs name messages by it).
    ids: HashMap<Bytes, u64>,
}

impl Stream {
    /// The sequence number one past the last segment.
    pub(crate) fn end_seq(&self) -> u64 {
        self.seg_base + self.segs.len() as u64
    }

    /// The content-log offset of the next byte a reader at `cur` reads;
    /// `log_end` when it is past every segment.
    pub(crate) fn log_offset(&self, cur: Cursor, log_end: u64) -> u64 {
        cur.seq
            .checked_sub(self.seg_base)
            .and_then(|i| self.segs.get(i as usize))
            .map_or(log_end, |s| s.log_offset + cur.off)
    }

    pub(crate) fn msg(&self, id: u64) -> Option<&MsgRec> {
        self.msgs.get(id.checked_sub(self.msg_base)? as usize)
    }

    pub(crate) fn msg_mut(&mut self, id: u64) -> Option<&mut MsgRec> {
        self.msgs.get_mut(id.checked_sub(self.msg_base)? as usize)
    }

    /// The message of segment `seq`.
    pub(crate) fn msg_at(&self, seq: u64) -> Option<u64> {
        let seg = self.segs.get(seq.checked_sub(self.seg_base)? as usize)?;
        Some(seg.msg)
    }

    /// The open message `message_id` from `origin`, or a new one.
    pub(crate) fn open_message(
        &mut self,
        origin: u32,
        message_id: &Bytes,
        make: impl FnOnce() -> MsgRec,
    ) -> u64 {
        if let Some(&id) = self.open.get(&(origin, message_id.clone())) {
            return id;
        }
        let id = self.msg_base + self.msgs.len() as u64;
        self.msgs.push_back(make());
        self.open.insert((origin, message_id.clone()), id);
        self.ids.insert(message_id.clone(), id);
        id
    }

    /// Indexes `len` bytes at `log_offset` as message bytes at `msg_offset`.
    pub(crate) fn push_bytes(&mut self, msg: u64, msg_offset: u64, log_offset: u64, len: u64) {
        if len == 0 {
            return;
        }
        // Never extend an earlier segment: a reader that consumed it has
        // moved past it and would miss the new bytes.
        self.segs.push_back(Seg {
            msg,
            msg_offset,
            log_offset,
            len,
            end: None,
        });
        if let Some(m) = self.msg_mut(msg) {
            m.received = m.received.max(msg_offset + len);
            m.segs_live += 1;
        }
    }

    /// Ends a message (`$`) or aborts it (`#`): an end marker readers see
    /// after its last byte.
    pub(crate) fn push_end(&mut self, origin: u32, msg: u64, flag: Flag, log_end: u64) {
        let Some(m) = self.msg_mut(msg) else { return };
        let at = m.received;
        m.state = if flag == Flag::Aborted {
            MsgState::Aborted
        } else {
            MsgState::Complete
        };
        m.segs_live += 1;
        let key = (origin, m.message_id.clone());
        self.open.remove(&key);
        self.segs.push_back(Seg {
            msg,
            msg_offset: at,
            log_offset: log_end,
            len: 0,
            end: Some(flag),
        });
    }

    /// Messages still open from `origin` (to abort them when it leaves).
    pub(crate) fn open_from(&self, origin: u32) -> Vec<u64> {
        self.open
            .iter()
            .filter(|((o, _), _)| *o == origin)
            .map(|(_, &id)| id)
            .collect()
    }

    /// The next run for reader `leg` at `cur`, advancing `cur` past what it
    /// returns and past segments not addressed to `leg` or in `skip`.
    /// `None` when nothing is ready for the reader.
    pub(crate) fn next_run(
        &self,
        cur: &mut Cursor,
        leg: u32,
        skip: &[u64],
        max: usize,
        log: &mut ContentLog,
        sink: &mut impl FnMut(Bytes),
    ) -> Result<Option<Run>, LogError> {
        let mut run: Option<Run> = None;
        while let Some(seg) = cur
            .seq
            .checked_sub(self.seg_base)
            .and_then(|i| self.segs.get(i as usize))
        {
            let wanted = self.msg(seg.msg).is_some_and(|m| m.audience.includes(leg))
                && !skip.contains(&seg.msg);
            if !wanted {
                if run.is_some() {
                    break;
                }
                cur.seq += 1;
                cur.off = 0;
                continue;
            }
            let at = seg.msg_offset + cur.off;
            let r = run.get_or_insert(Run {
                msg: seg.msg,
                msg_offset: at,
                len: 0,
                end: None,
            });
            if r.msg != seg.msg || r.msg_offset + r.len != at || r.len as usize >= max {
                break;
            }
            if seg.len > cur.off {
                let want = (seg.len - cur.off).min((max - r.len as usize) as u64) as usize;
                let piece = log.read(seg.log_offset + cur.off, want)?;
                if piece.is_empty() {
                    break;
                }
                cur.off += piece.len() as u64;
                r.len += piece.len() as u64;
                sink(piece);
                if cur.off < seg.len {
                    continue;
                }
            }
            cur.seq += 1;
            cur.off = 0;
            if let Some(flag) = seg.end {
                r.end = Some(flag);
                break;
            }
        }
        Ok(run)
    }

    /// Frees segments before `seq` (every reader is past them) and the
    /// messages they alone referenced; returns the log offset below which
    /// nothing is needed any more.
    pub(crate) fn release_before(&mut self, seq: u64, log_end: u64) -> u64 {
        while self.seg_base < seq {
            let Some(seg) = self.segs.pop_front() else {
                break;
            };
            self.seg_base += 1;
            if let Some(m) = self.msg_mut(seg.msg) {
                m.segs_live = m.segs_live.saturating_sub(1);
            }
        }
        self.release_messages();
        self.segs.front().map_or(log_end, |s| s.log_offset)
    }

    /// Frees records from the front that nothing refers to any more.
    pub(crate) fn release_messages(&mut self) {
        while let Some(m) = self.msgs.front() {
            if m.state == MsgState::Open || m.segs_live > 0 || m.pins > 0 {
                break;
            }
            if let Some(m) = self.msgs.pop_front()
                && self.ids.get(&m.message_id) == Some(&self.msg_base)
            {
                self.ids.remove(&m.message_id);
            }
            self.msg_base += 1;
        }
    }

    /// The live message with this Message-ID.
    pub(crate) fn by_message_id(&self, id: &[u8]) -> Option<u64> {
        self.ids.get(id).copied()
    }

    /// Messages indexed and not yet freed (for statistics and tests).
    pub(crate) fn live_messages(&self) -> usize {
        self.msgs.len()
    }
}
