//! What arrives on a leg: SEND chunks streamed into the log or buffered
//! and classified (chat, IMDN, isComposing), hop-by-hop responses, the
//! backlog of appends waiting for log room.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

use super::success::Outcome;
use super::{CPIM, Held, ISCOMPOSING, Pending, Session, UPSTREAM};
use crate::fanout::imdn::{Verdict, parse_cpim};
use crate::fanout::leg::{Rx, RxMode};
use crate::fanout::log::LogError;
use crate::fanout::session::Effects;
use crate::fanout::stream::{Audience, MsgRec, MsgState};
use crate::fanout::types::{EngineConfig, LegRole};
use crate::msrp::{Flag, Method, RequestHead, StatusCode};

impl Session {
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

    pub(super) fn set_rx(&mut self, li: u32, head: Box<RequestHead>, mode: RxMode, answered: bool) {
        if let Some(leg) = self.leg_mut(li) {
            leg.rx = Some(Rx {
                head,
                mode,
                answered,
            });
        }
    }

    pub(super) fn on_send(&mut self, li: u32, head: Box<RequestHead>) {
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
        self.counters.chunks_received += 1;
        let at = head.byte_range.map_or(0, |r| r.start - 1);
        if li == UPSTREAM {
            let declared = head.byte_range.and_then(|r| r.total.or(r.end));
            if let (Some(max), Some(size)) = (self.max_message_size, declared)
                && size > max
            {
                // FT-MAXSIZE: refuse before a byte is stored.
                return self.refuse_too_large(li, head, &message_id);
            }
            if head.wants_success_report() {
                self.success.expect(&message_id);
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

    pub(super) fn open_upstream(&mut self, head: &RequestHead, message_id: &Bytes) -> u64 {
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
    pub(super) fn refuse_too_large(&mut self, li: u32, head: Box<RequestHead>, message_id: &Bytes) {
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
    pub(super) fn classify(&mut self, li: u32, head: &RequestHead, pieces: Vec<Bytes>, flag: Flag) {
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
                        // CPM-MLD-003b: the one notification the sender
                        // gets, copied by policy to the user's other
                        // devices of the session (the same message, so a
                        // device that asked again is not told twice).
                        audience = if self.notification_copies {
                            Audience::AllBut(li)
                        } else {
                            Audience::Only(UPSTREAM)
                        };
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
        if li != UPSTREAM {
            // A recorder keeps the sender's content only.
            for leg in self.legs.iter_mut().flatten() {
                if leg.role == LegRole::Recorder && !leg.skip.contains(&msg) {
                    leg.skip.push(msg);
                }
            }
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

    pub(super) fn append(&mut self, msg: u64, at: u64, data: Bytes) {
        if !self.backlog.is_empty() {
            self.backlog.push_back(Pending::Bytes { msg, at, data });
            return;
        }
        let len = data.len() as u64;
        match self.log.append(data.clone()) {
            Ok(off) => self.stream.push_bytes(msg, at, off, len),
            Err(e) => {
                self.refused(&e);
                self.backlog.push_back(Pending::Bytes { msg, at, data });
            }
        }
    }

    /// An append found no room: the sender is held (nothing more is read
    /// from it while the backlog is not empty) until devices free memory.
    /// Said once per episode, at `warn` when the spill file failed (an
    /// operator's disk problem), at `info` when the shared memory budget
    /// was taken in a race (ordinary backpressure).
    fn refused(&mut self, e: &LogError) {
        let why = match e {
            LogError::Io(_) => {
                self.counters.spill_errors += 1;
                Held::Spill
            }
            _ => Held::Full,
        };
        if self.held.is_none() {
            self.counters.stalls += 1;
        }
        if self.held == Some(why) {
            return;
        }
        self.held = Some(why);
        match why {
            Held::Spill => tracing::warn!(
                call = %self.call,
                session = self.id.0,
                error = %e,
                memory = self.log.stats().in_memory,
                "spill file write failed: sender held until the devices free memory"
            ),
            Held::Full => tracing::info!(
                call = %self.call,
                session = self.id.0,
                error = %e,
                "content log full: sender held until the devices free room"
            ),
        }
    }

    pub(crate) fn end_message(&mut self, origin: u32, msg: u64, flag: Flag) {
        if self.backlog.is_empty() {
            self.push_end(origin, msg, flag);
        } else {
            self.backlog.push_back(Pending::End { origin, msg, flag });
        }
    }

    /// Ends a message in the index, once every byte before the end is in
    /// it: its size is known now, and so is what a success REPORT for it
    /// must cover.
    fn push_end(&mut self, origin: u32, msg: u64, flag: Flag) {
        self.stream.push_end(origin, msg, flag, self.log.end());
        if origin != UPSTREAM {
            return;
        }
        let Some((id, size)) = self
            .stream
            .msg(msg)
            .map(|m| (m.message_id.clone(), m.received))
        else {
            return;
        };
        if flag == Flag::Complete {
            if let Outcome::Whole { size } = self.success.complete(&id, size) {
                self.report_success(&id, size);
            }
        } else {
            self.success.abandon(&id);
        }
    }

    /// Retries appends that found no room.
    pub(super) fn drain_backlog(&mut self) {
        while let Some(p) = self.backlog.pop_front() {
            match p {
                Pending::End { origin, msg, flag } => self.push_end(origin, msg, flag),
                Pending::Bytes { msg, at, data } => {
                    let len = data.len() as u64;
                    match self.log.append(data.clone()) {
                        Ok(off) => self.stream.push_bytes(msg, at, off, len),
                        Err(e) => {
                            self.refused(&e);
                            self.backlog.push_front(Pending::Bytes { msg, at, data });
                            return;
                        }
                    }
                }
            }
        }
        if let Some(why) = self.held.take() {
            tracing::info!(call = %self.call, session = self.id.0, held = ?why, "sender released: the content log has room again");
        }
    }
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
