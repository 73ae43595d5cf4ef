//! Output: filling a leg's queue from its cursor, one chunk at a time, as
//! `[start line + paths, shared fields, shared body…, end-line]`.

use bytes::Bytes;

use super::Session;
use crate::fanout::leg::{Inflight, LegState};
use crate::fanout::log::LogError;
use crate::fanout::stream::MsgState;
use crate::fanout::types::EngineConfig;
use crate::msrp::encode::SendHead;
use crate::msrp::{ByteRange, FailureReport, Flag};

impl Session {
    // ----- output ---------------------------------------------------------

    /// Fills leg `li`'s output from its cursor up to the low-water mark.
    pub(crate) fn pump(&mut self, li: u32, cfg: &EngineConfig) -> Result<(), LogError> {
        let Session {
            legs,
            stream,
            log,
            shared,
            shared_buf,
            arena,
            ..
        } = self;
        let Some(leg) = legs.get_mut(li as usize).and_then(Option::as_mut) else {
            return Ok(());
        };
        if leg.state != LegState::Connected {
            return Ok(());
        }
        while leg.out_len < cfg.leg_low_water && leg.cursor.seq < stream.end_seq() {
            // A chunk goes out as [start line + paths, fields, body…,
            // end-line]: the start line, paths and end-line are the leg's
            // own (~150 bytes, carved from the session's arena), the fields
            // are shared by every leg sending the same chunk, the body is
            // the log's own `Bytes`.
            let slot = leg.out.len();
            leg.out.push_back(Bytes::new());
            leg.out.push_back(Bytes::new());
            let out = &mut leg.out;
            let mut body_len = 0;
            let run = stream.next_run(
                &mut leg.cursor,
                li,
                &leg.skip,
                cfg.max_out_chunk,
                log,
                &mut |p| {
                    body_len += p.len();
                    out.push_back(p);
                },
            );
            let run = match run {
                Ok(Some(run)) => run,
                Ok(None) => {
                    leg.out.truncate(slot);
                    break;
                }
                Err(e) => {
                    leg.out.truncate(slot);
                    return Err(e);
                }
            };
            let Some(m) = stream.msg_mut(run.msg) else {
                leg.out.truncate(slot);
                continue;
            };
            let flag = run.end.unwrap_or(Flag::More);
            if flag == Flag::Aborted && run.len == 0 && leg.current != Some(run.msg) {
                // Aborted before this leg saw a byte of it: nothing to say.
                leg.out.truncate(slot);
                continue;
            }
            let total = m
                .total
                .or((m.state == MsgState::Complete).then_some(m.received));
            let key = (run.msg, run.msg_offset, run.len, total);
            let fields = match shared {
                Some((k, b)) if *k == key => b.clone(),
                _ => {
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
                    .encode_fields(shared_buf);
                    let b = shared_buf.split().freeze();
                    *shared = Some((key, b.clone()));
                    b
                }
            };
            // The leg's own bytes: `MSRP <tid> SEND` CRLF and the end-line,
            // composed on the stack and carved from the session's arena
            // (one allocation shared by every leg's lines).
            let mut tid = [0u8; 20];
            let n = leg.next_tid(&mut tid);
            let mut lines = [0u8; 96];
            let (lead, end) = compose_lines(&mut lines, &tid[..n], flag, m.content_type.is_some());
            let need = end + leg.paths.len();
            if arena.capacity() - arena.len() < need {
                arena.reserve(ARENA.max(need));
            }
            arena.extend_from_slice(&lines[..lead]);
            arena.extend_from_slice(&leg.paths);
            arena.extend_from_slice(&lines[lead..end]);
            let mut own = arena.split().freeze();
            let head = own.split_to(lead + leg.paths.len());
            leg.out_len += head.len() + fields.len() + body_len + own.len();
            leg.out[slot] = head;
            leg.out[slot + 1] = fields;
            leg.out.push_back(own);
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
        }
        Ok(())
    }
}

/// Bytes reserved at a time for the leg lines arena.
const ARENA: usize = 64 * 1024;

/// Writes `MSRP <tid> SEND` CRLF and then the end-line (with the CRLF that
/// closes a body when `after_body`) into `buf`; returns where the start
/// line ends and where the end-line ends. `tid` is at most 20 bytes, so
/// both fit in 96.
fn compose_lines(buf: &mut [u8; 96], tid: &[u8], flag: Flag, after_body: bool) -> (usize, usize) {
    let mut at = 0;
    let mut put = |b: &[u8]| {
        buf[at..at + b.len()].copy_from_slice(b);
        at += b.len();
    };
    put(b"MSRP ");
    put(tid);
    put(b" SEND\r\n");
    let lead = 5 + tid.len() + 7;
    if after_body {
        put(b"\r\n");
    }
    put(b"-------");
    put(tid);
    put(&[flag.as_byte(), b'\r', b'\n']);
    (lead, lead + usize::from(after_body) * 2 + 7 + tid.len() + 3)
}
