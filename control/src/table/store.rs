//! The table's side of the content store (PF-DEFER, issue 12): a store leg
//! on each recorded session, the devices it is kept for when the session
//! ends, and `deliver`, a session whose sender is the store.
//!
//! - **Recording.** A session of a kind in `[store] kinds` gets one more
//!   leg in the data plane when it is created, answered at once toward
//!   the store's endpoint (the relay connects). The policy never sees it:
//!   it is no branch, it answers nothing, it has no events of its own. It
//!   is a reader like any device (it gets every byte from offset 0), so
//!   the data plane's backpressure and drain apply to it unchanged.
//! - **Settling.** When the session is freed, the devices that should
//!   still get the content are those invited and never answered, other
//!   than those that declined (`reject` 603); the recorder keeps the item
//!   for them, or deletes it when there is none.
//! - **Delivery.** `deliver` offers the stored sender's SDP, with the
//!   store's endpoint as its path and `a=setup:passive` (the relay
//!   connects), as a new session of one branch; the device's `answer`
//!   connects the relay to the store, which sends the content and leaves;
//!   the device's leg drains and its `leg-done` is the front end's cue to
//!   BYE it, as in any session. The answer is never forwarded (there is no
//!   SIP sender).

use std::time::Instant;

use bytes::Bytes;
use msrp_relay::fanout::{Answer as PlaneAnswer, LegId, LegRole, Setup as PlaneSetup, Transport};

use super::{ConnId, DeviceStatus, Entry, Key, TableError};
use crate::policy::RequestKind;
use crate::protocol::{
    Deliver, Event, Offer, OfferReply, StoreDeleteReply, StoreListReply, StoredItem,
};
use crate::sdp::{Direction, Rewrite, Sdp, Setup};
use crate::store::{ItemStart, ItemState, Notice, PendingDevice};

/// The protocol event of a store notice.
pub fn notice_event(n: Notice) -> Event {
    match n {
        Notice::Stored {
            item,
            call_id,
            from_tag,
            pending,
            bytes,
        } => Event::Stored {
            call_id,
            from_tag,
            item,
            pending: pending.iter().map(|p| p.key().to_owned()).collect(),
            bytes,
        },
        Notice::Failed {
            item,
            call_id,
            from_tag,
            reason,
        } => Event::StoreFailed {
            call_id,
            from_tag,
            item,
            reason,
        },
    }
}

/// A recorded session's store leg.
#[derive(Debug, Clone)]
pub(crate) struct StoreLeg {
    pub(crate) item: String,
    pub(crate) leg: LegId,
}

/// A session that delivers a stored item.
#[derive(Debug, Clone)]
pub(crate) struct ReplayOf {
    pub(crate) item: String,
    /// The device a deferred delivery is for; `None` for a resumed range
    /// (FT-RESUME), which delivers nothing the at-most-once rule counts.
    pub(crate) device: Option<String>,
}

fn state_name(s: &ItemState) -> String {
    match s {
        ItemState::Recording => "recording".into(),
        ItemState::Stored => "stored".into(),
        ItemState::Failed(why) => format!("failed: {why}"),
    }
}

/// The kind of a stored item, spelled as the protocol spells it.
fn kind_of(s: &str) -> Result<RequestKind, TableError> {
    serde_json::from_value::<RequestKind>(serde_json::Value::from(s))
        .ok()
        .filter(|k| *k != RequestKind::Pager)
        .ok_or_else(|| TableError::Store(format!("stored item of kind {s:?}")))
}

impl super::Core {
    /// Adds the store leg to a session just created, if its kind is
    /// recorded. A store that cannot take it is logged, and the session
    /// goes on without it.
    pub(crate) fn start_recording(&mut self, key: &Key, sender_sdp: &str) {
        let Some(rec) = self.recorder.clone() else {
            return;
        };
        let plane = self.plane.clone();
        let Some(e) = self.sessions.get_mut(key) else {
            return;
        };
        if e.replay.is_some() || !self.cfg.store_kinds.contains(&e.kind) {
            return;
        }
        // A pull (RFC 5547 §8.2.2): the offerer receives, its content
        // comes from the answerer; nothing of the offerer's to keep.
        let receives = Sdp::parse_str(sender_sdp)
            .and_then(|s| s.msrp_media())
            .is_ok_and(|m| {
                m.iter()
                    .any(|m| m.port != 0 && m.effective_direction() == Direction::RecvOnly)
            });
        if receives {
            return;
        }
        let target = match rec.begin(ItemStart {
            call_id: key.0.clone(),
            from_tag: key.1.clone(),
            kind: super::offer::kind_name(e.kind),
            sender_sdp: sender_sdp.to_owned(),
        }) {
            Ok(t) => t,
            Err(err) => {
                return tracing::warn!(call_id = %key.0, error = %err, "session not recorded");
            }
        };
        let index = e.next_leg;
        let leg =
            match plane.add_leg_in_role(e.id, index, "store", Transport::Tcp, LegRole::Recorder) {
                Ok((leg, _uri)) => leg,
                Err(err) => {
                    rec.settle(&target.item, Vec::new());
                    return tracing::warn!(call_id = %key.0, error = %err, "no store leg");
                }
            };
        e.next_leg += 1;
        let answered = plane.answer(
            leg,
            PlaneAnswer {
                peer_path: vec![Bytes::from(target.uri.clone())],
                setup: PlaneSetup::Active(target.addr),
            },
        );
        if let Err(err) = answered {
            let _ = plane.remove_leg(leg);
            rec.settle(&target.item, Vec::new());
            return tracing::warn!(call_id = %key.0, error = %err, "store leg not answered");
        }
        tracing::debug!(call_id = %key.0, item = %target.item, "recording");
        e.store = Some(StoreLeg {
            item: target.item,
            leg,
        });
    }

    /// A session is freed: settles its item, or reports its replay.
    pub(crate) fn settle_store(&self, e: &Entry) {
        let Some(rec) = self.recorder.as_ref() else {
            return;
        };
        if let Some(s) = &e.store {
            let pending = e
                .devices
                .iter()
                .filter(|d| (d.to_tag.is_none() && !d.declined) || d.status == DeviceStatus::Failed)
                .map(|d| PendingDevice {
                    via_branch: d.via_branch.clone(),
                    instance_id: d.instance_id.clone(),
                })
                .collect();
            rec.settle(&s.item, pending);
        }
        if let Some(ReplayOf {
            item,
            device: Some(device),
        }) = &e.replay
        {
            let ok = e.devices.iter().any(|d| d.status == DeviceStatus::Done);
            rec.replayed(item, device, ok);
        }
    }

    /// `deliver`: see the module docs and `docs/control-protocol.md`.
    pub(crate) fn deliver(
        &mut self,
        conn: ConnId,
        d: Deliver,
        now: Instant,
    ) -> Result<OfferReply, TableError> {
        let rec = self.recorder.clone().ok_or(TableError::NoStore)?;
        let key = (d.call_id.clone(), d.from_tag.clone());
        if self.sessions.contains_key(&key) {
            return Err(TableError::Store(format!(
                "call-id {:?} with from-tag {:?} is a session already",
                d.call_id, d.from_tag
            )));
        }
        let r = rec
            .replay(&d.item, &d.device)
            .map_err(|e| TableError::Store(e.to_string()))?;
        let sdp = (|| {
            let sdp = Sdp::parse_str(&r.sender_sdp)?;
            let tls = sdp.msrp_media()?.iter().any(|m| m.port != 0 && m.tls);
            Ok::<_, TableError>(sdp.rewrite(&Rewrite {
                address: &r.target.addr.ip().to_string(),
                port: r.target.addr.port(),
                path: &r.target.uri,
                setup: Setup::Passive,
                direction: None,
                accept_types: None,
                proto: tls.then_some("TCP/MSRP"),
            })?)
        })();
        let offered = sdp.and_then(|sdp| {
            let kind = kind_of(&r.kind)?;
            let replay = ReplayOf {
                item: d.item.clone(),
                device: Some(d.device.clone()),
            };
            self.offer_from(
                conn,
                Offer {
                    call_id: d.call_id,
                    from_tag: d.from_tag,
                    via_branch: d.via_branch,
                    sdp,
                    kind,
                    instance_id: Some(d.device.clone()),
                    transport: d.transport,
                },
                now,
                Some(replay),
            )
        });
        if offered.is_err() {
            rec.replayed(&d.item, &d.device, false);
        }
        offered
    }

    /// `store-list`.
    pub(crate) fn store_list(&self) -> Result<StoreListReply, TableError> {
        let rec = self.recorder.as_ref().ok_or(TableError::NoStore)?;
        let mut items: Vec<StoredItem> = rec
            .list()
            .map_err(|e| TableError::Store(e.to_string()))?
            .into_iter()
            .map(|m| StoredItem {
                bytes: m.messages.iter().map(|x| x.bytes).sum(),
                call_id: m.call_id,
                complete: m.complete,
                created_ms: m.created_ms,
                delivered: 0,
                from_tag: m.from_tag,
                item: m.item,
                kind: m.kind,
                messages: m.messages.len(),
                pending: m.pending.iter().map(|p| p.key().to_owned()).collect(),
                state: state_name(&m.state),
            })
            .collect();
        items.sort_by(|a, b| (a.created_ms, &a.item).cmp(&(b.created_ms, &b.item)));
        for it in &mut items {
            it.delivered = rec.delivered_count(&it.item);
        }
        Ok(StoreListReply { items })
    }

    /// `store-delete`.
    pub(crate) fn store_delete(&self, item: &str) -> Result<StoreDeleteReply, TableError> {
        let rec = self.recorder.as_ref().ok_or(TableError::NoStore)?;
        let deleted = rec
            .delete(item)
            .map_err(|e| TableError::Store(e.to_string()))?;
        Ok(StoreDeleteReply { deleted })
    }
}
