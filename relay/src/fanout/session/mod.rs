//! One session: an upstream leg, device legs, the content log and the
//! conversation index over it. Handles what arrives on a leg and fills each
//! leg's output from its cursor (`pump`).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::counters::Counters;
use super::imdn::ImdnAggregator;
use super::leg::{Leg, RxMode};
use super::log::{ContentLog, MemoryBudget};
use super::stream::Stream;
use super::types::{EngineConfig, FailReason, LegState, SessionId};
use crate::msrp::encode;
use crate::msrp::{FailureReport, Flag, Method, RequestHead, StatusCode};

/// What [`Session::release`] needs to know of every leg, gathered by
/// [`Session::mark`] during a pass over them.
#[derive(Debug, Default)]
pub(crate) struct PassMarks {
    /// The lowest cursor (segment) of a leg still reading.
    min_reader: Option<u64>,
    /// The log offset of the device leg furthest ahead among those writing
    /// freely.
    front: Option<u64>,
}

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

/// Why the sender is held with bytes waiting in the backlog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    /// The memory budget, shared by all sessions, was taken in a race.
    Full,
    /// The spill file could not be written (disk full, directory gone).
    Spill,
}

#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) id: SessionId,
    /// The sender's leg label (the control plane gives `call-id;from-tag`):
    /// every log line about the session carries it as `call`.
    pub(crate) call: Arc<str>,
    pub(crate) legs: Vec<Option<Leg>>,
    pub(crate) log: ContentLog,
    pub(crate) stream: Stream,
    imdn: ImdnAggregator,
    /// Upstream messages awaiting a device's success REPORT.
    success: SuccessReports,
    /// The sender ended (BYE or its connection closed): legs drain.
    pub(crate) ending: bool,
    /// When it ended: legs not connected by then get `leg_timeout` more.
    pub(crate) ending_at: Option<std::time::Instant>,
    /// Appends refused for lack of room (the process budget is shared with
    /// other workers), kept in order and retried: no byte is dropped.
    backlog: VecDeque<Pending>,
    /// Why the log last refused an append, while the backlog is not empty
    /// (one log line per episode, not per retry).
    held: Option<Held>,
    /// Totals for [`EngineStats`](crate::fanout::EngineStats).
    pub(crate) counters: Counters,
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
    /// CPM-MLD-003b: copy the notification forwarded to the sender to the
    /// other device legs ([`EngineConfig::notification_copies`]).
    notification_copies: bool,
    /// The header fields of the last chunk encoded, and the last run read
    /// (see `pump`): legs in step reuse them.
    fields: pump::Fields,
    runs: pump::RunCache,
    /// Where every leg's own head and end-line are carved from.
    arena: BytesMut,
    /// The log offset of the device leg furthest ahead among those writing
    /// freely (connected, socket not full), as of the last [`release`];
    /// `None` when there is none. The read-ahead window counts from it.
    ///
    /// [`release`]: Session::release
    front: Option<u64>,
}

impl Session {
    pub(crate) fn new(
        id: SessionId,
        call: &str,
        cfg: &EngineConfig,
        budget: Arc<MemoryBudget>,
    ) -> Session {
        Session {
            id,
            call: call.into(),
            legs: Vec::new(),
            log: ContentLog::new(cfg.log.clone(), budget),
            stream: Stream::default(),
            imdn: ImdnAggregator::new(cfg.max_tracked_ids),
            success: SuccessReports::new(cfg.max_tracked_ids, cfg.report_wait),
            ending: false,
            ending_at: None,
            backlog: VecDeque::new(),
            held: None,
            counters: Counters::default(),
            imdn_routes: HashMap::new(),
            imdn_route_order: VecDeque::new(),
            report_routes: HashMap::new(),
            report_route_order: VecDeque::new(),
            max_routes: cfg.max_tracked_ids,
            max_message_size: cfg.max_message_size,
            notification_copies: cfg.notification_copies,
            fields: pump::Fields::default(),
            runs: pump::RunCache::default(),
            arena: BytesMut::new(),
            front: None,
        }
    }

    pub(crate) fn leg(&self, i: u32) -> Option<&Leg> {
        self.legs.get(i as usize)?.as_ref()
    }

    pub(crate) fn leg_mut(&mut self, i: u32) -> Option<&mut Leg> {
        self.legs.get_mut(i as usize)?.as_mut()
    }

    /// Whether the upstream socket may be read: the log has room for a
    /// read's worth, nothing is waiting for room already, and the sender is
    /// not `read_ahead` bytes or more ahead of every device leg that is
    /// writing freely.
    ///
    /// The window is what keeps a relay that is itself the bottleneck (its
    /// CPU, not the devices) from reading the sender far ahead of what it
    /// can write: that would only fill the log, spill it, and send every
    /// body from cold memory. Legs whose sockets are full do not count, so
    /// slow devices still get the whole log budget and never slow the
    /// sender or the others; when every writing leg is such a leg, or none
    /// writes yet, only the budget limits reading.
    pub(crate) fn has_room(&self, read_size: usize, read_ahead: u64) -> bool {
        self.backlog.is_empty()
            && self.log.has_room(read_size)
            && self
                .front
                .is_none_or(|f| self.log.end().saturating_sub(f) < read_ahead)
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
        self.counters.statuses.add(code.0);
        let Some(leg) = self.leg_mut(li) else { return };
        let local = leg.cold.local_uri.clone();
        let to = head.from_path.first().raw().clone();
        leg.push_encoded(|b| {
            encode::transaction_response(b, head.tid.as_bytes(), code, None, &to, &local)
        });
    }

    /// Notes leg `li` for [`release`](Session::release), in the pass that
    /// pumps it (while the leg is at hand, not in a second pass).
    pub(crate) fn mark(&self, li: u32, marks: &mut PassMarks) {
        let Some(l) = self.leg(li) else { return };
        if l.state.is_reader() {
            let seq = l.cursor.seq;
            marks.min_reader = Some(marks.min_reader.map_or(seq, |m| m.min(seq)));
        }
        // Device legs only: the upstream leg (index 0) reads nothing of
        // the sender's own content and would always look current.
        if li != UPSTREAM && l.state == LegState::Connected && !l.write_blocked {
            let off = self.stream.log_offset(l.cursor, self.log.end());
            marks.front = Some(marks.front.map_or(off, |f| f.max(off)));
        }
    }

    /// Frees what every reader is past, notes the read-ahead front, and
    /// retries the backlog. `marks` holds every leg (see [`Session::mark`]).
    pub(crate) fn release(&mut self, marks: PassMarks) {
        // The run shared by legs in step pins log memory: not past a pass.
        self.runs.clear();
        let min = marks.min_reader.unwrap_or_else(|| self.stream.end_seq());
        self.front = marks.front;
        let off = self.stream.release_before(min, self.log.end());
        if let Err(e) = self.log.release_before(off) {
            tracing::warn!(call = %self.call, session = self.id.0, error = %e, "content log release");
        }
        self.drain_backlog();
    }

    /// True when device leg `li` has everything it will get: the sender
    /// ended, its cursor is at the end, its output is written and every
    /// chunk answered (PF-LMM-BYE: BYE only after its last byte).
    ///
    /// An answered leg whose device has not connected is drained too when
    /// the session never had content: there is nothing its connection
    /// could bring it, so it gets its paced `leg-done` now instead of
    /// holding the session until it fails `never-connected` (a load of
    /// forked calls that end before any device connects would otherwise
    /// fill the session table). Once there is content it waits for its
    /// device, as before.
    pub(crate) fn leg_drained(&self, li: u32) -> bool {
        let Some(leg) = self.leg(li) else {
            return false;
        };
        let reading = match leg.state {
            LegState::Connected => true,
            LegState::Answered => leg.conn.is_none() && self.stream.end_seq() == 0,
            _ => false,
        };
        self.ending
            && self.backlog.is_empty()
            && reading
            && leg.cursor.seq >= self.stream.end_seq()
            && leg.out.is_empty()
            && leg.rx.is_none()
            && !leg.awaiting()
    }

    /// The session's counters with its content log's (bytes spilled, the
    /// memory high-water mark).
    pub(crate) fn counters_with_log(&self) -> Counters {
        let ls = self.log.stats();
        let mut c = self.counters;
        c.spilled_bytes += ls.spilled_total;
        c.log_memory_peak = c.log_memory_peak.max(ls.memory_peak);
        c
    }

    /// The sender is gone or said BYE: abort what it left open, drain.
    pub(crate) fn end_upstream(&mut self) {
        self.ending = true;
        // A chunk held whole (CPIM, to tell a notification from a message)
        // and cut off by the sender's going is still what the sender sent:
        // it goes out interrupted (`#`, RFC 4975 §7.1.1), like a streamed one.
        if let Some(rx) = self.leg_mut(UPSTREAM).and_then(|l| l.rx.take())
            && let RxMode::Buffer { pieces, len } = rx.mode
            && len > 0
        {
            self.classify(UPSTREAM, &rx.head, pieces, Flag::Aborted);
        }
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

    /// The engine's tick: messages that waited long enough for a success
    /// REPORT are forgotten.
    pub(crate) fn expire_reports(&mut self, now: std::time::Instant) {
        self.success.expire(now);
    }

    /// Messages waiting for a device's success REPORT.
    pub(crate) fn awaiting_reports(&self) -> usize {
        self.success.len()
    }

    /// Statistics for `query`.
    pub(crate) fn live_messages(&self) -> usize {
        self.stream.live_messages()
    }
}

mod input;
mod pump;
mod reports;
mod success;

use success::SuccessReports;
