//! One session: an upstream leg, device legs, the content log and the
//! conversation index over it. Handles what arrives on a leg and fills each
//! leg's output from its cursor (`pump`).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::imdn::{ImdnAggregator, Verdict, parse_cpim};
use super::leg::{Inflight, Leg, LegState, Rx, RxMode};
use super::log::{ContentLog, LogError, MemoryBudget};
use super::stream::{Audience, MsgRec, MsgState, Stream};
use super::types::{EngineConfig, FailReason, SessionId};
use crate::msrp::encode::{self, Report, SendHead};
use crate::msrp::{ByteRange, FailureReport, Flag, Method, RequestHead, ResponseHead, StatusCode};

/// Upstream index: the leg toward the sender.
pub(crate) const UPSTREAM: u32 = 0;

const ISCOMPOSING: &[u8] = b"application/im-iscomposing+xml";
const CPIM: &[u8] = b"message/cpim";

/// An append or end marker waiting for log room (see [`Session::backlog`]).
#[derive(Debug)]
enum Pending {
    Bytes { msg: u64, at: u64, data: Bytes },
    End { origin: u32, msg: u64, flag: Flag },
}

/// What happened that the engine must turn into outputs.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    /// Legs that failed (the engine closes their connections, raises
    /// events).
    pub(crate) failed: Vec<(u32, FailReason)>,
}

#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) id: SessionId,
    pub(crate) legs: Vec<Option<Leg>>,
    pub(crate) log: ContentLog,
    pub(crate) stream: Stream,
    imdn: ImdnAggregator,
    /// The sender ended (BYE or its connection closed): legs drain.
    pub(crate) ending: bool,
    /// When it ended: legs not connected by then get `leg_timeout` more.
    pub(crate) ending_at: Option<std::time::Instant>,
    /// Appends refused for lack of room (the process budget is shared with
    /// other workers), kept in order and retried: no byte is dropped.
    backlog: VecDeque<Pending>,
    /// CPIM `imdn.Message-ID` of a device's message → that device, so the
    /// sender's notifications reach only the originating device
    /// (CPM-MLD-022/023).
    imdn_routes: HashMap<String, u32>,
    imdn_route_order: VecDeque<String>,
    /// MSRP Message-ID of a device's message → that device, for REPORTs.
    report_routes: HashMap<Bytes, u32>,
    report_route_order: VecDeque<Bytes>,
    max_routes: usize,
    pub(crate) max_message_size: Option<u64>,
    /// The fields block of the last chunk encoded (see `pump`): legs in
    /// step share it instead of each encoding ~150 identical bytes.
    shared: Option<(ChunkKey, Bytes)>,
    shared_buf: BytesMut,
    /// Where every leg's start and end lines are carved from.
    arena: BytesMut,
}

impl Session {
    pub(crate) fn new(id: SessionId, cfg: &EngineConfig, budget: Arc<MemoryBudget>) -> Session {
        Session {
            id,
            legs: Vec::new(),
            log: ContentLog::new(cfg.log.clone(), budget),
            stream: Stream::default(),
            imdn: ImdnAggregator::new(cfg.max_tracked_ids),
            ending: false,
            ending_at: None,
            backlog: VecDeque::new(),
            imdn_routes: HashMap::new(),
            imdn_route_order: VecDeque::new(),
            report_routes: HashMap::new(),
            report_route_order: VecDeque::new(),
            max_routes: cfg.max_tracked_ids,
            max_message_size: cfg.max_message_size,
            shared: None,
            shared_buf: BytesMut::with_capacity(4096),
            arena: BytesMut::new(),
        }
    }

    pub(crate) fn leg(&self, i: u32) -> Option<&Leg> {
        self.legs.get(i as usize)?.as_ref()
    }

    pub(crate) fn leg_mut(&mut self, i: u32) -> Option<&mut Leg> {
        self.legs.get_mut(i as usize)?.as_mut()
    }

    /// Whether the upstream socket may be read: the log has room for a
    /// read's worth and nothing is waiting for room already.
    pub(crate) fn has_room(&self, read_size: usize) -> bool {
        self.backlog.is_empty() && self.log.has_room(read_size)
    }

    // ----- responses the relay sends --------------------------------------

    /// Answers a request hop by hop (RFC 4975 §7.2): To-Path is the first
    /// URI of the request's From-Path, From-Path the relay's URI.
    fn respond(&mut self, li: u32, head: &RequestHead, code: StatusCode) {
        if !(head.wants_response()
            || head.method != Method::Report
                && !code.is_success()
                && head.failure_report() == FailureReport::Partial)
        {
            return;
        }
        let Some(leg) = self.leg_mut(li) else { return };
        let local = leg.local_uri.clone();
        let to = head.from_path.first().raw().clone();
        leg.push_encoded(|b| {
            encode::transaction_response(b, head.tid.as_bytes(), code, None, &to, &local)
        });
    }

    // ----- input from a leg -----------------------------------------------

    pub(crate) fn on_request(&mut self, li: u32, head: Box<RequestHead>, fx: &mut Effects) {
        match head.method {
            Method::Send => self.on_send(li, head),
            Method::Report => self.on_report(li, &head, fx),
            // AUTH belongs to RFC 4976 relays, which this B2BUA is not.
            Method::Auth | Method::Other(_) => {
                self.respond(li, &head, StatusCode::NOT_IMPLEMENTED);
                if head.has_body {
                    self.set_rx(li, head, RxMode::Discard, true);
                }
            }
        }
    }

    fn set_rx(&mut self, li: u32, head: Box<RequestHead>, mode: RxMode, answered: bool) {
        if let Some(leg) = self.leg_mut(li) {
            leg.rx = Some(Rx {
                head,
                mode,
                answered,
            });
        }
    }

    fn on_send(&mut self, li: u32, head: Box<RequestHead>) {
        let Some(message_id) = head.message_id.clone() else {
            // §7.1.1: a SEND carries a Message-ID.
            self.respond(li, &head, StatusCode::BAD_REQUEST);
            let mode = RxMode::Discard;
            return self.set_rx(li, head, mode, true);
        };
        if !head.has_body {
            // A bodiless SEND binds a connection or keeps it alive (§7.1.1,
            // RFC 6135): answered at its end-line, never forwarded.
            return self.set_rx(li, head, RxMode::Discard, false);
        }
        let at = head.byte_range.map_or(0, |r| r.start - 1);
        if li == UPSTREAM {
            let declared = head.byte_range.and_then(|r| r.total.or(r.end));
            if let (Some(max), Some(size)) = (self.max_message_size, declared)
                && size > max
            {
                // FT-MAXSIZE: refuse before a byte is stored.
                return self.refuse_too_large(li, head, &message_id);
            }
            let is_cpim = head
                .content_type
                .as_deref()
                .is_some_and(|c| starts_with_ci(c, CPIM));
            let mode = if is_cpim {
                RxMode::Buffer {
                    pieces: Vec::new(),
                    len: 0,
                }
            } else {
                let msg = self.open_upstream(&head, &message_id);
                RxMode::Stream { msg, at }
            };
            return self.set_rx(li, head, mode, false);
        }
        self.set_rx(
            li,
            head,
            RxMode::Buffer {
                pieces: Vec::new(),
                len: 0,
            },
            false,
        );
    }

    fn open_upstream(&mut self, head: &RequestHead, message_id: &Bytes) -> u64 {
        let msg = self.stream.open_message(UPSTREAM, message_id, || {
            MsgRec::new(Audience::AllBut(UPSTREAM), message_id.clone())
        });
        if let Some(m) = self.stream.msg_mut(msg) {
            fill_attributes(m, head);
        }
        msg
    }

    /// FT-MAXSIZE: answer `413` now and abort what was stored of the
    /// message, so every device sees it end with `#`.
    fn refuse_too_large(&mut self, li: u32, head: Box<RequestHead>, message_id: &Bytes) {
        self.respond(li, &head, StatusCode::STOP_SENDING);
        if let Some(msg) = self.stream.by_message_id(message_id)
            && self
                .stream
                .msg(msg)
                .is_some_and(|m| m.state == MsgState::Open)
        {
            self.end_message(li, msg, Flag::Aborted);
        }
        self.set_rx(li, head, RxMode::Discard, true);
    }

    pub(crate) fn on_body(&mut self, li: u32, piece: Bytes, cfg: &EngineConfig) {
        let max_msg = self.max_message_size;
        let Some(leg) = self.leg_mut(li) else { return };
        leg.received_bytes += piece.len() as u64;
        let Some(rx) = leg.rx.as_mut() else {
            return;
        };
        match &mut rx.mode {
            RxMode::Discard => {}
            RxMode::Stream { msg, at } => {
                let (msg, start) = (*msg, *at);
                *at += piece.len() as u64;
                if max_msg.is_some_and(|max| *at > max) {
                    let Some(rx) = self.leg_mut(li).and_then(|l| l.rx.take()) else {
                        return;
                    };
                    let id = rx.head.message_id.clone().unwrap_or_default();
                    return self.refuse_too_large(li, rx.head, &id);
                }
                self.append(msg, start, piece);
            }
            RxMode::Buffer { pieces, len } => {
                *len += piece.len() as u64;
                pieces.push(piece);
                if *len <= cfg.max_device_chunk {
                    return;
                }
                if li == UPSTREAM {
                    // Too big to be a notification: stream it after all.
                    let pieces = std::mem::take(pieces);
                    let Some(rx) = self.leg_mut(li).and_then(|l| l.rx.take()) else {
                        return;
                    };
                    let id = rx.head.message_id.clone().unwrap_or_default();
                    let msg = self.open_upstream(&rx.head, &id);
                    let mut at = rx.head.byte_range.map_or(0, |r| r.start - 1);
                    for p in pieces {
                        let n = p.len() as u64;
                        self.append(msg, at, p);
                        at += n;
                    }
                    self.set_rx(li, rx.head, RxMode::Stream { msg, at }, false);
                } else {
                    // A device's chunk is buffered whole; past the bound it
                    // is refused (§10: 413, stop sending this message).
                    let Some(rx) = self.leg_mut(li).and_then(|l| l.rx.take()) else {
                        return;
                    };
                    self.respond(li, &rx.head, StatusCode::STOP_SENDING);
                    self.set_rx(li, rx.head, RxMode::Discard, true);
                }
            }
        }
    }

    pub(crate) fn on_end(&mut self, li: u32, flag: Flag) {
        let Some(rx) = self.leg_mut(li).and_then(|l| l.rx.take()) else {
            return;
        };
        match rx.mode {
            RxMode::Discard => {}
            RxMode::Stream { msg, .. } => {
                if flag != Flag::More {
                    self.end_message(li, msg, flag);
                }
            }
            RxMode::Buffer { pieces, .. } => self.classify(li, &rx.head, pieces, flag),
        }
        if !rx.answered {
            // PF-LMM-SEND: every chunk is acknowledged hop by hop.
            self.respond(li, &rx.head, StatusCode::OK);
        }
    }

    /// Routes a whole received chunk: an IMDN goes to the sender once
    /// (CPM-MLD-004/005/024/025), or from the sender to the device that
    /// asked (CPM-MLD-022/023); isComposing goes upstream only; chat goes
    /// to every other leg (CPM-MLD-007a).
    fn classify(&mut self, li: u32, head: &RequestHead, pieces: Vec<Bytes>, flag: Flag) {
        let ct = head.content_type.clone().unwrap_or_default();
        let whole = head.byte_range.is_none_or(|r| r.start == 1) && flag == Flag::Complete;
        let mut audience = Audience::AllBut(li);
        if starts_with_ci(&ct, ISCOMPOSING) {
            audience = Audience::Only(UPSTREAM);
        } else if whole && starts_with_ci(&ct, CPIM) {
            let body: Vec<u8> = pieces.concat();
            if let Ok(cpim) = parse_cpim(&body) {
                if let Some(n) = &cpim.notification {
                    if li == UPSTREAM {
                        if let Some(&dev) = self.imdn_routes.get(&n.original_message_id) {
                            audience = Audience::Only(dev);
                        }
                    } else {
                        if self.imdn.on_notification(n) != Verdict::Forward {
                            return;
                        }
                        audience = Audience::Only(UPSTREAM);
                    }
                } else if cpim
                    .content_type
                    .as_deref()
                    .is_some_and(|c| starts_with_ci(c.as_bytes(), ISCOMPOSING))
                {
                    audience = Audience::Only(UPSTREAM);
                } else if li != UPSTREAM
                    && let Some(id) = cpim.message_id
                {
                    remember(
                        &mut self.imdn_routes,
                        &mut self.imdn_route_order,
                        id,
                        li,
                        self.max_routes,
                    );
                }
            }
        }
        let Some(message_id) = head.message_id.clone() else {
            return;
        };
        if li != UPSTREAM && audience.includes(UPSTREAM) && head.wants_success_report() {
            remember(
                &mut self.report_routes,
                &mut self.report_route_order,
                message_id.clone(),
                li,
                self.max_routes,
            );
        }
        let msg = self.stream.open_message(li, &message_id, || {
            MsgRec::new(audience, message_id.clone())
        });
        if let Some(m) = self.stream.msg_mut(msg) {
            fill_attributes(m, head);
        }
        let mut at = head.byte_range.map_or(0, |r| r.start - 1);
        for p in pieces {
            let n = p.len() as u64;
            self.append(msg, at, p);
            at += n;
        }
        if flag != Flag::More {
            self.end_message(li, msg, flag);
        }
    }

    fn append(&mut self, msg: u64, at: u64, data: Bytes) {
        if !self.backlog.is_empty() {
            self.backlog.push_back(Pending::Bytes { msg, at, data });
            return;
        }
        let len = data.len() as u64;
        match self.log.append(data.clone()) {
            Ok(off) => self.stream.push_bytes(msg, at, off, len),
            Err(e) => {
                tracing::debug!(session = self.id.0, error = %e, "content log full: backlog");
                self.backlog.push_back(Pending::Bytes { msg, at, data });
            }
        }
    }

    pub(crate) fn end_message(&mut self, origin: u32, msg: u64, flag: Flag) {
        if self.backlog.is_empty() {
            self.stream.push_end(origin, msg, flag, self.log.end());
        } else {
            self.backlog.push_back(Pending::End { origin, msg, flag });
        }
    }

    /// Retries appends that found no room.
    fn drain_backlog(&mut self) {
        while let Some(p) = self.backlog.pop_front() {
            match p {
                Pending::End { origin, msg, flag } => {
                    self.stream.push_end(origin, msg, flag, self.log.end())
                }
                Pending::Bytes { msg, at, data } => {
                    let len = data.len() as u64;
                    match self.log.append(data.clone()) {
                        Ok(off) => self.stream.push_bytes(msg, at, off, len),
                        Err(_) => {
                            self.backlog.push_front(Pending::Bytes { msg, at, data });
                            return;
                        }
                    }
                }
            }
        }
    }

    fn on_report(&mut self, li: u32, head: &RequestHead, fx: &mut Effects) {
        let (Some(id), Some(status)) = (head.message_id.clone(), head.status.clone()) else {
            return;
        };
        if li == UPSTREAM {
            // The sender reports on a device's message: back to that device.
            let Some(&dev) = self.report_routes.get(&id) else {
                return;
            };
            let range = head.byte_range.unwrap_or(ByteRange {
                start: 1,
                end: None,
                total: None,
            });
            self.send_report(dev, &id, range, status.code);
            return;
        }
        let Some(msg) = self.stream.by_message_id(&id) else {
            return;
        };
        if status.code.is_success() {
            // CPM-MLD-024: one success REPORT per message upstream.
            let key = String::from_utf8_lossy(&id).into_owned();
            if self.imdn.on_success_report(&key) == Verdict::Forward {
                let range = self.stream.msg(msg).map_or(
                    ByteRange {
                        start: 1,
                        end: None,
                        total: None,
                    },
                    |m| ByteRange {
                        start: 1,
                        end: Some(m.received),
                        total: Some(m.received),
                    },
                );
                self.send_report(UPSTREAM, &id, range, status.code);
            }
        } else {
            self.leg_refused(li, msg, status.code, fx);
        }
    }

    fn send_report(&mut self, li: u32, id: &Bytes, range: ByteRange, code: StatusCode) {
        let Some(leg) = self.leg_mut(li) else { return };
        if leg.state != LegState::Connected {
            return;
        }
        let mut tid = [0u8; 20];
        let n = leg.next_tid(&mut tid);
        leg.push_inflight(None);
        let (to, from) = (leg.to_path.clone(), leg.local_uri.clone());
        leg.push_encoded(|b| {
            Report {
                tid: &tid[..n],
                to_path: &to,
                from_path: &from,
                message_id: id,
                byte_range: range,
                status: code,
            }
            .encode(b)
        });
    }

    pub(crate) fn on_response(&mut self, li: u32, r: &ResponseHead, fx: &mut Effects) {
        let Some(inf) = self
            .leg_mut(li)
            .and_then(|l| l.take_inflight(r.tid.as_bytes()))
        else {
            return;
        };
        if let Some(m) = self.stream.msg_mut(inf.msg) {
            m.pins = m.pins.saturating_sub(1);
        }
        if r.code.is_success() {
            if inf.last
                && let Some(m) = self.stream.msg_mut(inf.msg)
            {
                m.delivered += 1;
            }
        } else if r.code == StatusCode::NO_SUCH_SESSION {
            fx.failed.push((li, FailReason::Refused(r.code)));
        } else {
            self.leg_refused(li, inf.msg, r.code, fx);
        }
    }

    /// A device refused a message: it gets no more of it; if no device can
    /// take it any more, the sender gets a failure REPORT (§7.1.4).
    fn leg_refused(&mut self, li: u32, msg: u64, code: StatusCode, _fx: &mut Effects) {
        if let Some(leg) = self.leg_mut(li)
            && !leg.skip.contains(&msg)
        {
            leg.skip.push(msg);
            if leg.current == Some(msg) {
                leg.current = None;
            }
            if let Some(m) = self.stream.msg_mut(msg) {
                m.failed += 1;
            }
        }
        self.maybe_report_failure(msg, code);
    }

    pub(crate) fn maybe_report_failure(&mut self, msg: u64, code: StatusCode) {
        let Some(m) = self.stream.msg(msg) else {
            return;
        };
        if m.reported
            || m.delivered > 0
            || m.failure_report == FailureReport::No
            || m.audience != Audience::AllBut(UPSTREAM)
        {
            return;
        }
        let can_still = self.legs.iter().enumerate().skip(1).any(|(_, l)| {
            l.as_ref()
                .is_some_and(|l| l.state.is_reader() && !l.skip.contains(&msg))
        });
        if can_still {
            return;
        }
        let (id, received, total) = (m.message_id.clone(), m.received, m.total);
        if let Some(m) = self.stream.msg_mut(msg) {
            m.reported = true;
        }
        let range = ByteRange {
            start: 1,
            end: Some(received),
            total: total.or(Some(received)),
        };
        self.send_report(UPSTREAM, &id, range, code);
    }

    /// The decoder refused a request whose tid it knew: answer it, and
    /// abort the message it was streaming (a 413 mid-chunk).
    pub(crate) fn decode_error_reply(
        &mut self,
        li: u32,
        e: &crate::msrp::DecodeError,
        code: StatusCode,
    ) {
        let rx = self.leg_mut(li).and_then(|l| l.rx.take());
        if let Some(rx) = rx {
            if let RxMode::Stream { msg, .. } = rx.mode {
                self.end_message(li, msg, Flag::Aborted);
            }
            if !rx.answered {
                self.respond(li, &rx.head, code);
            }
            return;
        }
        // The head itself was bad: answer with the leg's own paths.
        let Some(tid) = e.transaction_id() else {
            return;
        };
        let Some(leg) = self.leg_mut(li) else { return };
        let (to, from) = (leg.to_path.clone(), leg.local_uri.clone());
        let first = to.split(|&b| b == b' ').next().unwrap_or_default().to_vec();
        leg.push_encoded(|b| {
            encode::transaction_response(b, tid.as_bytes(), code, None, &first, &from)
        });
    }

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

    /// Frees what every reader is past, and retries the backlog.
    pub(crate) fn release(&mut self) {
        let min = self
            .legs
            .iter()
            .flatten()
            .filter(|l| l.state.is_reader())
            .map(|l| l.cursor.seq)
            .min()
            .unwrap_or_else(|| self.stream.end_seq());
        let off = self.stream.release_before(min, self.log.end());
        if let Err(e) = self.log.release_before(off) {
            tracing::warn!(session = self.id.0, error = %e, "content log release");
        }
        self.drain_backlog();
    }

    /// True when device leg `li` has everything it will get: the sender
    /// ended, its cursor is at the end, its output is written and every
    /// chunk answered (PF-LMM-BYE: BYE only after its last byte).
    pub(crate) fn leg_drained(&self, li: u32) -> bool {
        let Some(leg) = self.leg(li) else {
            return false;
        };
        self.ending
            && self.backlog.is_empty()
            && leg.state == LegState::Connected
            && leg.cursor.seq >= self.stream.end_seq()
            && leg.out.is_empty()
            && leg.rx.is_none()
            && !leg.awaiting()
    }

    /// The sender is gone or said BYE: abort what it left open, drain.
    pub(crate) fn end_upstream(&mut self) {
        self.ending = true;
        for msg in self.stream.open_from(UPSTREAM) {
            self.end_message(UPSTREAM, msg, Flag::Aborted);
        }
    }

    /// A leg stops reading: unpin its messages, and report failures the
    /// loss causes.
    pub(crate) fn retire_leg(&mut self, li: u32) {
        let Some(leg) = self.leg_mut(li) else { return };
        let msgs: Vec<u64> = leg.inflight.drain(..).flatten().map(|i| i.msg).collect();
        leg.out.clear();
        leg.out_len = 0;
        leg.rx = None;
        for msg in &msgs {
            if let Some(m) = self.stream.msg_mut(*msg) {
                m.pins = m.pins.saturating_sub(1);
            }
        }
        if li != UPSTREAM {
            let open: Vec<u64> = self.stream.open_from(UPSTREAM);
            for msg in msgs.into_iter().chain(open) {
                self.maybe_report_failure(msg, StatusCode::NO_SUCH_SESSION);
            }
        }
        self.stream.release_messages();
    }

    /// Statistics for `query`.
    pub(crate) fn live_messages(&self) -> usize {
        self.stream.live_messages()
    }
}

/// What makes two legs' chunks carry the same fields block: message,
/// offset, length and the total announced in its Byte-Range.
type ChunkKey = (u64, u64, u64, Option<u64>);

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

fn fill_attributes(m: &mut MsgRec, head: &RequestHead) {
    if m.content_type.is_none() {
        m.content_type = head.content_type.clone();
        m.extra = head
            .fields
            .iter()
            .enumerate()
            .filter(|(_, (name, _))| {
                starts_with_ci(name, b"Content-") && !name.eq_ignore_ascii_case(b"Content-Type")
            })
            .filter_map(|(i, _)| head.fields.field(i))
            .collect();
    }
    if let Some(total) = head.byte_range.and_then(|r| r.total) {
        m.total = Some(total);
    }
    m.success_report = head.wants_success_report();
    m.failure_report = head.failure_report();
}

fn remember<K: std::hash::Hash + Eq + Clone>(
    map: &mut HashMap<K, u32>,
    order: &mut VecDeque<K>,
    key: K,
    leg: u32,
    max: usize,
) {
    if map.insert(key.clone(), leg).is_none() {
        order.push_back(key);
        while order.len() > max {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }
}

fn starts_with_ci(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}
