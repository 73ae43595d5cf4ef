//! Output: filling a leg's queue from its cursor, one chunk at a time, as
//! `[head, shared body…, end-line]`.
//!
//! Legs in step (at the same cursor) send the same chunk: the run read from
//! the index and the log, and the chunk's header fields, are computed for
//! the first of them and reused by the others ([`RunCache`], [`Fields`]).
//! What is a leg's own (its transaction id and paths) is written into the
//! session's arena; the body is the log's own `Bytes`, never copied.

use bytes::{Bytes, BytesMut};

use super::Session;
use crate::fanout::leg::{Inflight, Leg};
use crate::fanout::log::{ContentLog, LogError};
use crate::fanout::stream::{Cursor, MsgState, Run, Stream};
use crate::fanout::tid::{self, Tid};
use crate::fanout::types::{EngineConfig, LegState};
use crate::msrp::encode::SendHead;
use crate::msrp::{ByteRange, FailureReport, Flag};

/// The last run read for a leg, reused by every leg that stands at the same
/// cursor while the index has not grown (a run is the same for every leg
/// that wants its message; see [`RunCache::take`]).
#[derive(Debug, Default)]
pub(crate) struct RunCache {
    start: Cursor,
    end_seq: u64,
    after: Cursor,
    run: Option<Run>,
    /// The run's body pieces (slices of the log's `Bytes`).
    body: Vec<Bytes>,
}

impl RunCache {
    /// Forgets the run (it pins log memory while held).
    pub(crate) fn clear(&mut self) {
        self.run = None;
        self.body.clear();
    }

    /// The next run for leg `li` at its cursor, its body in `self.body`;
    /// advances the cursor. `None`: nothing is ready for the leg.
    fn take(
        &mut self,
        stream: &Stream,
        log: &mut ContentLog,
        leg: &mut Leg,
        li: u32,
        max: usize,
    ) -> Result<Option<Run>, LogError> {
        let start = leg.cursor;
        let end_seq = stream.end_seq();
        if let Some(run) = self.run
            && self.start == start
            && self.end_seq == end_seq
            && stream.msg(run.msg).is_some_and(|m| m.audience.includes(li))
            && !leg.skip.contains(&run.msg)
        {
            leg.cursor = self.after;
            return Ok(Some(run));
        }
        self.clear();
        let body = &mut self.body;
        let run = stream.next_run(&mut leg.cursor, li, &leg.skip, max, log, &mut |p| {
            body.push(p)
        });
        let run = match run {
            Ok(Some(run)) => run,
            other => {
                self.clear();
                return other;
            }
        };
        // Reusable when it starts at the cursor: no segment was skipped as
        // not addressed to this leg, so what it read does not depend on
        // the leg beyond its wanting this message.
        if stream.msg_at(start.seq) == Some(run.msg) {
            *self = RunCache {
                start,
                end_seq,
                after: leg.cursor,
                run: Some(run),
                body: std::mem::take(&mut self.body),
            };
        }
        Ok(Some(run))
    }
}

/// What makes two legs' chunks carry the same header fields: message,
/// offset, length and the total announced in its Byte-Range.
type ChunkKey = (u64, u64, u64, Option<u64>);

/// The header fields of the last chunk encoded (`Message-ID` … the blank
/// line): legs in step copy them instead of each encoding them again.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    key: Option<ChunkKey>,
    buf: BytesMut,
}

impl Session {
    // ----- output ---------------------------------------------------------

    /// Fills leg `li`'s output from its cursor up to the low-water mark.
    pub(crate) fn pump(&mut self, li: u32, cfg: &EngineConfig) -> Result<(), LogError> {
        let Session {
            legs,
            stream,
            log,
            fields,
            runs,
            arena,
            counters,
            ..
        } = self;
        let Some(leg) = legs.get_mut(li as usize).and_then(Option::as_mut) else {
            return Ok(());
        };
        if leg.state != LegState::Connected {
            return Ok(());
        }
        while leg.out_len < cfg.leg_low_water && leg.cursor.seq < stream.end_seq() {
            let Some(tid) = leg.next_tid() else {
                // A whole window of ids in flight: wait for responses.
                break;
            };
            let Some(run) = runs.take(stream, log, leg, li, cfg.max_out_chunk)? else {
                break;
            };
            let Some(m) = stream.msg_mut(run.msg) else {
                continue;
            };
            let flag = run.end.unwrap_or(Flag::More);
            if flag == Flag::Aborted && run.len == 0 && leg.current != Some(run.msg) {
                // Aborted before this leg saw a byte of it: nothing to say.
                continue;
            }
            let total = m
                .total
                .or((m.state == MsgState::Complete).then_some(m.received));
            let key = (run.msg, run.msg_offset, run.len, total);
            if fields.key != Some(key) {
                fields.buf.clear();
                SendHead {
                    tid: b"",
                    to_path: b"",
                    from_path: b"",
                    message_id: &m.message_id,
                    byte_range: Some(ByteRange {
                        start: run.msg_offset + 1,
                        end: Some(run.msg_offset + run.len),
                        total,
                    }),
                    success_report: m.success_report.then_some(true),
                    failure_report: (m.failure_report != FailureReport::Yes)
                        .then_some(m.failure_report),
                    content_type: m.content_type.as_deref(),
                    extra: &m.extra,
                }
                .encode_fields(&mut fields.buf);
                fields.key = Some(key);
            }
            // The leg's own bytes, one piece before the body and one after:
            // its ready-made start line and paths with this chunk's id,
            // the chunk's fields; then the end-line (after the CRLF that
            // closes a body). Both are carved from the session's arena (no
            // allocation per leg).
            let end = EndLine::new(&tid, flag);
            let end = end.bytes(m.content_type.is_some());
            let head_len = leg.start.len() + fields.buf.len();
            let need = head_len + end.len();
            if arena.capacity() - arena.len() < need {
                arena.reserve(ARENA.max(need));
            }
            arena.extend_from_slice(leg.start.with(&tid));
            arena.extend_from_slice(&fields.buf);
            arena.extend_from_slice(end);
            let mut end = arena.split().freeze();
            let head = end.split_to(head_len);
            leg.out_len += need + run.len as usize;
            leg.out.push_back(head);
            for p in &runs.body {
                leg.out.push_back(p.clone());
            }
            leg.out.push_back(end);
            if runs.run.is_none() {
                // Read for this leg alone: drop the pieces now.
                runs.body.clear();
            }
            let wants = m.failure_report == FailureReport::Yes;
            leg.push_inflight(wants.then_some(Inflight {
                msg: run.msg,
                last: flag == Flag::Complete,
            }));
            if wants {
                m.pins += 1;
            } else if flag == Flag::Complete {
                m.delivered += 1;
            }
            leg.current = (flag == Flag::More).then_some(run.msg);
            leg.delivered_bytes += run.len;
            counters.chunks_sent += 1;
            counters.bytes_sent += run.len;
        }
        Ok(())
    }
}

/// Bytes reserved at a time for the leg lines arena.
const ARENA: usize = 64 * 1024;

/// A chunk's end-line, with the CRLF that closes a body before it.
struct EndLine([u8; 2 + 7 + tid::LEN + 3]);

impl EndLine {
    #[inline(always)]
    fn new(tid: &Tid, flag: Flag) -> EndLine {
        let mut b = [0u8; 2 + 7 + tid::LEN + 3];
        b[..9].copy_from_slice(b"\r\n-------");
        b[9..9 + tid::LEN].copy_from_slice(tid);
        b[9 + tid::LEN..].copy_from_slice(&[flag.as_byte(), b'\r', b'\n']);
        EndLine(b)
    }

    /// The end-line, after a body or not.
    #[inline(always)]
    fn bytes(&self, after_body: bool) -> &[u8] {
        if after_body { &self.0 } else { &self.0[2..] }
    }
}
