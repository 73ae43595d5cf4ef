//! End-to-end reports and responses (RFC 4975 §7.1.2–§7.1.4 at a B2BUA):
//! success REPORTs aggregated to one upstream (`success`), failure REPORTs when no
//! device can take a message, REPORTs routed back to the device whose
//! message they concern, responses from the legs.

use bytes::Bytes;

use super::success::Outcome;
use super::{Effects, Session, UPSTREAM};
use crate::fanout::leg::RxMode;
use crate::fanout::stream::Audience;
use crate::fanout::types::{FailReason, LegState};
use crate::msrp::encode::{self, Report};
use crate::msrp::{ByteRange, FailureReport, Flag, RequestHead, ResponseHead, StatusCode};

impl Session {
    pub(super) fn on_report(&mut self, li: u32, head: &RequestHead, fx: &mut Effects) {
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
        if status.code.is_success() {
            return self.on_success_report(li, &id, head.byte_range);
        }
        let Some(msg) = self.stream.by_message_id(&id) else {
            tracing::debug!(session = self.id.0, leg = li,
                message_id = %String::from_utf8_lossy(&id),
                "failure REPORT for a message no longer held: ignored (RFC 4975 §7.1.2)");
            return;
        };
        self.leg_refused(li, msg, status.code, fx);
    }

    /// A device reports (part of) a message received. The sender hears
    /// once, when one device has reported the whole message (`success`);
    /// a REPORT without Byte-Range stands for all of it.
    fn on_success_report(&mut self, li: u32, id: &Bytes, range: Option<ByteRange>) {
        let (start, end) = range.map_or((1, None), |r| (r.start, r.end));
        let why = match self.success.report(id, li, start, end) {
            Outcome::Whole { size } => return self.report_success(id, size),
            Outcome::Noted => return,
            Outcome::Unknown => "not awaited (never asked for, already reported, or forgotten)",
            Outcome::BadRange => "its Byte-Range does not fit the message",
            Outcome::TooFragmented => "too many disjoint ranges reported",
        };
        tracing::debug!(session = self.id.0, leg = li,
            message_id = %String::from_utf8_lossy(id), ?range,
            "success REPORT ignored: {why}");
    }

    /// CPM-MLD-024: the one success REPORT the sender gets for a message,
    /// for all of it with its real size (§7.1.2, §7.1.3 at a B2BUA).
    pub(super) fn report_success(&mut self, id: &Bytes, size: u64) {
        if let Some(m) = self
            .stream
            .by_message_id(id)
            .and_then(|msg| self.stream.msg_mut(msg))
        {
            m.reported = true;
        }
        let range = ByteRange {
            start: 1,
            end: Some(size),
            total: Some(size),
        };
        self.send_report(UPSTREAM, id, range, StatusCode::OK);
    }

    pub(super) fn send_report(&mut self, li: u32, id: &Bytes, range: ByteRange, code: StatusCode) {
        let Some(leg) = self.leg_mut(li) else { return };
        if leg.state != LegState::Connected {
            return;
        }
        // REPORTs get no response, but take a number: ids stay unique.
        let Some(tid) = leg.next_tid() else {
            return;
        };
        leg.push_inflight(None);
        let (to, from) = (leg.cold.to_path.clone(), leg.cold.local_uri.clone());
        self.counters.reports.add(code.0);
        let Some(leg) = self.leg_mut(li) else { return };
        leg.push_encoded(|b| {
            Report {
                tid: &tid,
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
    pub(super) fn leg_refused(&mut self, li: u32, msg: u64, code: StatusCode, _fx: &mut Effects) {
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
        self.counters.statuses.add(code.0);
        let Some(leg) = self.leg_mut(li) else { return };
        let (to, from) = (leg.cold.to_path.clone(), leg.cold.local_uri.clone());
        let first = to.split(|&b| b == b' ').next().unwrap_or_default().to_vec();
        leg.push_encoded(|b| {
            encode::transaction_response(b, tid.as_bytes(), code, None, &first, &from)
        });
    }
}
