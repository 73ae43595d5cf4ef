//! Exactly-once aggregation of notifications from a user's devices.
//!
//! CPM-MLD-004/005/024/025: when the recipient has several devices, the
//! sender gets exactly one delivery notification and one read report per
//! message. RFC 5438 §8.3 lets an intermediary aggregate; a multi-device
//! recipient is one recipient, so aggregation here means "first wins".
//! (Success REPORTs, which need byte ranges, not a first-wins rule, are
//! aggregated by the session's `success` tracker.)
//!
//! Per original message id and per [`NotificationKind`]:
//! - the first success (`delivered`, `displayed`, `processed`/`stored`) is
//!   forwarded, every later success is suppressed;
//! - a failure (`failed`, `forbidden`, `error`) is forwarded only if neither
//!   a success nor a failure was forwarded before; one device failing while
//!   another delivers must not tell the sender "failed" twice, nor after the
//!   fact;
//! - a success arriving *after* a forwarded failure is forwarded: the user
//!   did get the message on some device, and a stale "failed" is worse for
//!   the sender than a second, correcting notification.
//!
//! Memory is bounded: at most `max_tracked` IMDN message ids, evicted
//! first-in first-out. An id that was
//! evicted is unknown again: a late duplicate for it is forwarded (at least
//! once rather than lost), so the cap must cover the notifications that can
//! still be in flight (a few per message for the messages of one session).
//! The engine may call [`ImdnAggregator::forget`] when it knows no more
//! notifications will come for an id.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::{MAX_ID_LEN, Notification, NotificationKind};

/// What to do with a notification from a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it upstream to the sender.
    Forward,
    /// Drop it; the reason is for logs and statistics.
    Suppress(SuppressReason),
}

/// Why a notification was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuppressReason {
    /// The same outcome was already forwarded for this id.
    Duplicate,
    /// A failure after another device's success for this id.
    AlreadySucceeded,
}

/// What was forwarded for one disposition of one id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Outcome {
    #[default]
    Nothing,
    Failure,
    Success,
}

impl Outcome {
    fn offer(&mut self, success: bool) -> Verdict {
        match (*self, success) {
            (Outcome::Success, true) => Verdict::Suppress(SuppressReason::Duplicate),
            (Outcome::Success, false) => Verdict::Suppress(SuppressReason::AlreadySucceeded),
            (Outcome::Failure, false) => Verdict::Suppress(SuppressReason::Duplicate),
            (_, true) => {
                *self = Outcome::Success;
                Verdict::Forward
            }
            (Outcome::Nothing, false) => {
                *self = Outcome::Failure;
                Verdict::Forward
            }
        }
    }
}

/// A map of ids with first-in first-out eviction at a fixed capacity.
#[derive(Debug)]
struct Bounded<V> {
    map: HashMap<Arc<str>, V>,
    order: VecDeque<Arc<str>>,
    cap: usize,
    evicted: u64,
}

impl<V: Default> Bounded<V> {
    fn new(cap: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            cap,
            evicted: 0,
        }
    }

    /// Runs `f` on the entry for `id`, creating it (and evicting the
    /// oldest id if the cap is reached) when it is new.
    fn with_entry<R>(&mut self, id: &str, f: impl FnOnce(&mut V) -> R) -> R {
        if let Some(value) = self.map.get_mut(id) {
            return f(value);
        }
        while self.map.len() >= self.cap {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if self.map.remove(&old).is_some() {
                self.evicted += 1;
            }
        }
        let mut value = V::default();
        let result = f(&mut value);
        let key: Arc<str> = Arc::from(id);
        self.order.push_back(Arc::clone(&key));
        self.map.insert(key, value);
        result
    }

    fn forget(&mut self, id: &str) -> bool {
        let removed = self.map.remove(id).is_some();
        if removed {
            self.order.retain(|key| &**key != id);
        }
        removed
    }
}

/// Outcomes per disposition kind for one IMDN message id.
#[derive(Debug, Clone, Copy, Default)]
struct ImdnState {
    delivery: Outcome,
    display: Outcome,
    processing: Outcome,
}

/// Per-session deduplication of IMDNs (see the module
/// documentation for the rules and what eviction means).
#[derive(Debug)]
pub struct ImdnAggregator {
    imdn: Bounded<ImdnState>,
}

impl ImdnAggregator {
    /// An aggregator tracking at most `max_tracked` ids (a cap of 0 is
    /// taken as 1).
    pub fn new(max_tracked: usize) -> Self {
        Self {
            imdn: Bounded::new(max_tracked.max(1)),
        }
    }

    /// Decides whether a device's IMDN goes upstream.
    ///
    /// Ids longer than [`MAX_ID_LEN`] (the parser never yields them) are
    /// forwarded untracked rather than stored.
    pub fn on_notification(&mut self, notification: &Notification) -> Verdict {
        let id = notification.original_message_id.as_str();
        if id.len() > MAX_ID_LEN {
            return Verdict::Forward;
        }
        let success = notification.status.is_success();
        self.imdn.with_entry(id, |state| {
            let slot = match notification.kind {
                NotificationKind::Delivery => &mut state.delivery,
                NotificationKind::Display => &mut state.display,
                NotificationKind::Processing => &mut state.processing,
            };
            slot.offer(success)
        })
    }

    /// Drops the state of an IMDN message id; returns whether it was
    /// tracked.
    pub fn forget(&mut self, id: &str) -> bool {
        self.imdn.forget(id)
    }

    /// Ids currently tracked.
    pub fn tracked(&self) -> usize {
        self.imdn.map.len()
    }

    /// Ids evicted so far because the cap was reached.
    pub fn evicted(&self) -> u64 {
        self.imdn.evicted
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Notification, xml};
    use super::{ImdnAggregator, SuppressReason, Verdict};

    /// A parsed IMDN document for `id` with the given XML element names.
    fn notification(id: &str, kind: &str, status: &str) -> Notification {
        let doc = format!(
            r#"<imdn xmlns="urn:ietf:params:xml:ns:imdn"><message-id>{id}</message-id><{kind}><status><{status}/></status></{kind}></imdn>"#
        );
        xml::parse_imdn(doc.as_bytes()).unwrap()
    }

    #[test]
    fn cpm_mld_025_three_devices_displayed_exactly_one_forwarded() {
        let mut agg = ImdnAggregator::new(128);
        // Delivery and display are independent: each reaches the sender once.
        assert_eq!(
            agg.on_notification(&notification("m", "delivery-notification", "delivered")),
            Verdict::Forward
        );
        let displayed = notification("m", "display-notification", "displayed");
        let forwarded = (0..3)
            .filter(|_| agg.on_notification(&displayed) == Verdict::Forward)
            .count();
        assert_eq!(forwarded, 1);
        // A device that cannot tell later says `error`: suppressed, one displayed went.
        let error = notification("m", "display-notification", "error");
        assert_eq!(
            agg.on_notification(&error),
            Verdict::Suppress(SuppressReason::AlreadySucceeded)
        );
    }

    #[test]
    fn cpm_mld_004_005_standalone_messages_each_get_one_notification_per_kind() {
        // Interleaved standalone messages, three devices answering each.
        let mut agg = ImdnAggregator::new(128);
        let ids = ["sa1", "sa2", "sa3", "sa4"];
        let mut forwarded = Vec::new();
        for device in 0..3 {
            for id in ids {
                for (kind, status) in [
                    ("delivery-notification", "delivered"),
                    ("display-notification", "displayed"),
                ] {
                    if agg.on_notification(&notification(id, kind, status)) == Verdict::Forward {
                        forwarded.push((device, id, kind));
                    }
                }
            }
        }
        assert_eq!(forwarded.len(), ids.len() * 2);
        assert!(forwarded.iter().all(|(device, _, _)| *device == 0));
    }

    #[test]
    fn failure_forwarded_only_if_no_device_delivered_and_only_once() {
        let mut agg = ImdnAggregator::new(16);
        let failed = notification("f", "delivery-notification", "failed");
        let forbidden = notification("f", "delivery-notification", "forbidden");
        assert_eq!(agg.on_notification(&failed), Verdict::Forward);
        assert_eq!(
            agg.on_notification(&forbidden),
            Verdict::Suppress(SuppressReason::Duplicate)
        );
        // A later delivery corrects the failure, once.
        let delivered = notification("f", "delivery-notification", "delivered");
        assert_eq!(agg.on_notification(&delivered), Verdict::Forward);
        assert_eq!(
            agg.on_notification(&delivered),
            Verdict::Suppress(SuppressReason::Duplicate)
        );

        assert_eq!(
            agg.on_notification(&notification("g", "delivery-notification", "delivered")),
            Verdict::Forward
        );
        assert_eq!(
            agg.on_notification(&notification("g", "delivery-notification", "failed")),
            Verdict::Suppress(SuppressReason::AlreadySucceeded)
        );
    }

    #[test]
    fn eviction_is_fifo_and_an_evicted_id_is_forwarded_again() {
        let mut agg = ImdnAggregator::new(2);
        let d = |id: &str| notification(id, "delivery-notification", "delivered");
        assert_eq!(agg.on_notification(&d("a")), Verdict::Forward);
        assert_eq!(agg.on_notification(&d("b")), Verdict::Forward);
        // Re-touching `a` does not refresh it: FIFO, not LRU.
        assert_eq!(
            agg.on_notification(&d("a")),
            Verdict::Suppress(SuppressReason::Duplicate)
        );
        assert_eq!(agg.on_notification(&d("c")), Verdict::Forward);
        assert_eq!(agg.evicted(), 1);
        assert_eq!(agg.tracked(), 2);
        assert_eq!(
            agg.on_notification(&d("b")),
            Verdict::Suppress(SuppressReason::Duplicate)
        );
        // `a` was evicted: a late duplicate goes through (at least once).
        assert_eq!(agg.on_notification(&d("a")), Verdict::Forward);
        assert!(agg.forget("a"));
        assert!(!agg.forget("zzz"));
        assert_eq!(agg.tracked(), 1);
        let mut tiny = ImdnAggregator::new(0);
        assert_eq!(tiny.on_notification(&d("x")), Verdict::Forward);
        assert_eq!(tiny.tracked(), 1, "a cap of 0 is taken as 1");
    }
}
