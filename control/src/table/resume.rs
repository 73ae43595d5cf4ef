//! `offer` of a pull that the content store serves (FT-RESUME, RFC 5547
//! §8.2.2, issue 12).
//!
//! A device that lost a transfer part-way offers `recvonly`, with
//! `a=file-selector` naming the file and `a=file-range:START-STOP` the
//! octets it still needs. If the store holds that file whole, the relay
//! answers the device itself: one session whose sender is the store (the
//! relay connects to it, as for `deliver`) and whose one device leg is the
//! offerer, accepted at once. The reply says `from-store: true` and its
//! SDP is the answer for the device's 200 OK (`sendonly`, the relay's
//! path, the same `a=file-range`, RFC 5547 §8.3.2); the front end forks
//! nothing. The device's leg drains and its `leg-done` is the cue to BYE
//! it, as in any session.
//!
//! Every other offer goes on as before: a push (the sender resends the
//! range itself), a pull without `a=file-range`, a pull for a file the
//! store does not hold (it reaches the original sender). A pull whose
//! `a=file-range` names no file (no usable `a=file-selector`), or a range
//! past the end of a held file, is refused with a clear reason.
//!
//! Only the JSON protocol's `offer` does this; an ng `offer` returns an
//! offer SDP for the callee by contract, so a pull through the `rtpengine`
//! module always reaches the sender.

use std::time::Instant;

use msrp_relay::fanout::Setup as PlaneSetup;

use super::offer::{active_media, connect_accepted, first_hop_addr, peer_path};
use super::store::ReplayOf;
use super::{ConnId, TableError};
use crate::policy::{ForkAction, RequestKind, Response};
use crate::protocol::{MsrpProtocol, Offer, OfferReply};
use crate::sdp::{ConnectionRole, Direction, FileSelector, Rewrite, Sdp, Setup, negotiate_setup};

impl super::Core {
    /// `offer` on the JSON protocol: served from the store when it is a
    /// resume the store holds (module docs), else [`Core::offer`].
    pub(crate) fn offer_or_resume(
        &mut self,
        conn: ConnId,
        o: Offer,
        now: Instant,
    ) -> Result<OfferReply, TableError> {
        match self.resume(conn, &o, now)? {
            Some(reply) => Ok(reply),
            None => self.offer(conn, o, now),
        }
    }

    fn resume(
        &mut self,
        conn: ConnId,
        o: &Offer,
        now: Instant,
    ) -> Result<Option<OfferReply>, TableError> {
        let Some(rec) = self.recorder.clone() else {
            return Ok(None);
        };
        let sdp = Sdp::parse_str(&o.sdp)?;
        let media = active_media(&sdp)?;
        let Some(range) = media.file_range else {
            return Ok(None);
        };
        let key = (o.call_id.clone(), o.from_tag.clone());
        if media.effective_direction() != Direction::RecvOnly
            || o.kind != RequestKind::FileTransfer
            || self.sessions.contains_key(&key)
        {
            return Ok(None);
        }
        let want = media
            .file_selector
            .as_deref()
            .and_then(FileSelector::parse)
            .ok_or_else(|| {
                TableError::Path(
                    "a=file-range in a pull names octets of no file: a=file-selector \
                     with name, type, size or hash is needed (RFC 5547 §8.2.2)"
                        .into(),
                )
            })?;
        // Everything about the device is checked before the store is asked.
        let path = peer_path(&media)?;
        let n = negotiate_setup(media.setup, true);
        let device_setup = match n.answerer {
            ConnectionRole::Listen => PlaneSetup::Passive,
            ConnectionRole::Connect => PlaneSetup::Active(first_hop_addr(&media)?),
        };
        let Some(r) = rec
            .resume(&want, range)
            .map_err(|e| TableError::Store(e.to_string()))?
        else {
            return Ok(None);
        };
        // The session's sender: the store, sending the file's range.
        let from_store = sdp.rewrite(&Rewrite {
            address: &r.target.addr.ip().to_string(),
            port: r.target.addr.port(),
            path: &r.target.uri,
            setup: Setup::Passive,
            direction: Some(Direction::SendOnly),
            accept_types: None,
            proto: media.tls.then_some("TCP/MSRP"),
        })?;
        let offered = self.offer_from(
            conn,
            Offer {
                call_id: o.call_id.clone(),
                from_tag: o.from_tag.clone(),
                via_branch: o.via_branch.clone(),
                sdp: from_store,
                kind: RequestKind::FileTransfer,
                instance_id: o.instance_id.clone(),
                transport: Some(if media.tls {
                    MsrpProtocol::Tls
                } else {
                    MsrpProtocol::Tcp
                }),
            },
            now,
            Some(ReplayOf {
                item: r.target.item.clone(),
                device: None,
            }),
        )?;
        match self.accept_puller(&key, o, &sdp, &offered.sdp, n.answer, path, device_setup) {
            Ok(answer) => Ok(Some(OfferReply {
                created: true,
                from_store: true,
                sdp: answer,
            })),
            Err(err) => {
                let mut events = Vec::new();
                self.drop_entry(&key, now, &mut events);
                Err(err)
            }
        }
    }

    /// Accepts the puller's leg of a session just made, connects the relay
    /// to the store, and returns the SDP answer for the puller: its own
    /// offer with the relay's address, port, path and `a=setup`, and
    /// `sendonly` (the rest, `a=file-range` included, as offered).
    #[allow(clippy::too_many_arguments)]
    fn accept_puller(
        &mut self,
        key: &super::Key,
        o: &Offer,
        pull: &Sdp,
        relay_offer: &str,
        setup: Setup,
        path: Vec<bytes::Bytes>,
        device_setup: PlaneSetup,
    ) -> Result<String, TableError> {
        let relay = active_media(&Sdp::parse_str(relay_offer)?)?;
        let answer = pull.rewrite(&Rewrite {
            address: relay.connection.as_deref().unwrap_or_default(),
            port: relay.port,
            path: &relay.path.join(" "),
            setup,
            direction: Some(Direction::SendOnly),
            accept_types: None,
            proto: None,
        })?;
        let plane = self.plane.clone();
        let e = self.sessions.get_mut(key).ok_or(TableError::Ending)?;
        let di = e.device(&o.via_branch)?;
        let actions = e.fork.respond(&o.via_branch, Response::Accept)?;
        e.devices[di].to_tag = Some(o.from_tag.clone());
        let first = actions
            .iter()
            .any(|a| matches!(a, ForkAction::ForwardAnswer { .. }));
        connect_accepted(&*plane, e, di, path, device_setup, first)?;
        Ok(answer)
    }
}
