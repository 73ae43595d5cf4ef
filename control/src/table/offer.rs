//! `offer` and `answer`: creating legs, rewriting SDP, and the policy's
//! consequences of each accept.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use bytes::Bytes;
use msrp_relay::fanout::{Answer as PlaneAnswer, LegId, Setup as PlaneSetup, Transport};
use msrp_relay::msrp::MsrpUri;

use super::{ConnId, DeviceLeg, DeviceStatus, Entry, TableError, Upstream};
use crate::policy::{Fork, ForkAction, RequestKind, Response};
use crate::protocol::{Answer, AnswerReply, DoneReason, Event, Offer, OfferReply};
use crate::sdp::{
    ConnectionRole, Direction, MsrpMedia, Rewrite, Sdp, Setup, negotiate_setup, offer_setup,
};

/// The single active MSRP media of a body (one MSRP session per leg).
pub(super) fn active_media(sdp: &Sdp) -> Result<MsrpMedia, TableError> {
    let mut active: Vec<MsrpMedia> = sdp
        .msrp_media()?
        .into_iter()
        .filter(|m| m.port != 0)
        .collect();
    match active.len() {
        1 => Ok(active.remove(0)),
        0 => Err(crate::sdp::SdpError::NoMsrpMedia.into()),
        count => Err(crate::sdp::SdpError::MultipleMsrpMedia { count }.into()),
    }
}

/// The peer's `a=path` as the engine takes it, each URI checked with the
/// data plane's own parser so that the engine cannot refuse it later.
pub(super) fn peer_path(media: &MsrpMedia) -> Result<Vec<Bytes>, TableError> {
    media
        .path
        .iter()
        .map(|u| {
            let b = Bytes::from(u.clone());
            MsrpUri::parse(b.clone())
                .map(|_| b)
                .map_err(|e| TableError::Path(format!("a=path URI {u:?}: {e}")))
        })
        .collect()
}

/// Where the relay connects when it is the active side: the first hop of
/// the peer's path (RFC 4975 §8.3). The host must be an IP literal: the
/// control plane does not resolve names (it would block every command).
pub(super) fn first_hop_addr(media: &MsrpMedia) -> Result<SocketAddr, TableError> {
    let uri = media
        .first_hop()
        .ok_or_else(|| TableError::Path("empty a=path".into()))?;
    let parsed = MsrpUri::parse(Bytes::from(uri.to_owned()))
        .map_err(|e| TableError::Path(format!("a=path URI {uri:?}: {e}")))?;
    let host = String::from_utf8_lossy(parsed.host()).into_owned();
    let ip: IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| {
            TableError::Path(format!(
                "the relay must connect to {uri:?}, but its host is not an IP address"
            ))
        })?;
    let port = parsed
        .port()
        .ok_or_else(|| TableError::Path(format!("a=path URI {uri:?} has no port")))?;
    Ok(SocketAddr::new(ip, port))
}

/// The `m=` protocol of a leg.
fn proto(tls: bool) -> &'static str {
    if tls { "TCP/TLS/MSRP" } else { "TCP/MSRP" }
}

impl super::Core {
    /// `rw` with the relay's address and the port of the leg's transport.
    fn rewrite(&self, sdp: &Sdp, t: Transport, rw: Rewrite<'_>) -> Result<String, TableError> {
        Ok(sdp.rewrite(&Rewrite {
            address: &self.cfg.relay_host,
            port: self.port_of(t),
            ..rw
        })?)
    }

    fn port_of(&self, t: Transport) -> u16 {
        match (t, self.cfg.relay_tls_port) {
            (Transport::Tls, Some(p)) => p,
            _ => self.cfg.relay_port,
        }
    }

    /// The data plane's transport of a leg whose SDP says `tls`.
    fn transport_of(&self, tls: bool) -> Result<Transport, TableError> {
        match (tls, self.cfg.relay_tls_port, self.cfg.relay_secure) {
            (false, _, _) => Ok(Transport::Tcp),
            (true, Some(_), _) => Ok(Transport::Tls),
            // Terminated in front of the relay: plain TCP here.
            (true, None, true) => Ok(Transport::Tcp),
            (true, None, false) => Err(TableError::Path(
                "TCP/TLS/MSRP, but this relay has no TLS listener ([tls] listen)".into(),
            )),
        }
    }

    /// `offer`: see `docs/control-protocol.md` §3.
    pub(crate) fn offer(
        &mut self,
        conn: ConnId,
        o: Offer,
        now: Instant,
    ) -> Result<OfferReply, TableError> {
        self.offer_from(conn, o, now, None)
    }

    /// `offer` of a sender, or (`replay`) of the content store.
    pub(crate) fn offer_from(
        &mut self,
        conn: ConnId,
        o: Offer,
        now: Instant,
        replay: Option<super::store::ReplayOf>,
    ) -> Result<OfferReply, TableError> {
        let sdp = Sdp::parse_str(&o.sdp)?;
        let media = active_media(&sdp)?;
        // The device's leg runs over what the front end asked for, else
        // over the sender's transport.
        let dev_tls = o
            .transport
            .map_or(media.tls, |t| t == crate::protocol::MsrpProtocol::Tls);
        let up_t = self.transport_of(media.tls)?;
        let dev_t = self.transport_of(dev_tls)?;
        // Validate the whole rewrite before anything is created.
        let scheme = if dev_tls { "msrps" } else { "msrp" };
        let probe = format!("{scheme}://{}:1/probe;tcp", self.cfg.relay_host);
        let probe = if self.cfg.relay_host.contains(':') {
            format!("{scheme}://[{}]:1/probe;tcp", self.cfg.relay_host)
        } else {
            probe
        };
        let rw = Rewrite {
            address: "",
            port: 0,
            path: &probe,
            setup: offer_setup(true),
            direction: None,
            accept_types: None,
            proto: (dev_tls != media.tls).then_some(proto(dev_tls)),
        };
        self.rewrite(&sdp, dev_t, rw)?;
        let key = (o.call_id.clone(), o.from_tag.clone());
        let (leg, uri, created) = match self.sessions.get_mut(&key) {
            Some(e) => {
                if e.ending.is_some() {
                    return Err(TableError::Ending);
                }
                if e.kind != o.kind {
                    return Err(TableError::KindMismatch {
                        have: kind_name(e.kind),
                        got: kind_name(o.kind),
                    });
                }
                if e.devices.iter().any(|d| d.via_branch == o.via_branch) {
                    return Err(TableError::DuplicateBranch(o.via_branch));
                }
                if e.devices.len() >= self.cfg.max_legs_per_session {
                    return Err(TableError::Limit(format!(
                        "{} device legs per session",
                        self.cfg.max_legs_per_session
                    )));
                }
                e.adopt(conn);
                let index = e.next_leg;
                let (leg, uri) = self.plane.add_leg(e.id, index, &o.via_branch, dev_t)?;
                e.next_leg += 1;
                if let Err(err) = e.fork.add_branch(o.via_branch.clone()) {
                    let _ = self.plane.remove_leg(leg);
                    return Err(err.into());
                }
                (leg, uri, false)
            }
            None => {
                if self.shutting_down {
                    return Err(TableError::ShuttingDown);
                }
                // A call the relay has (another from-tag) stays on it:
                // the front end keeps sending its commands here.
                if self.draining && !self.has_call(&o.call_id) {
                    return Err(TableError::Draining);
                }
                if self.sessions.len() >= self.cfg.max_sessions {
                    return Err(TableError::SessionLimit(self.cfg.max_sessions));
                }
                let fork = Fork::new(o.kind, [o.via_branch.clone()], self.cfg.accept)?;
                let up = self.upstream_plan(&media, now)?;
                let label = format!("{};{}", o.call_id, o.from_tag);
                let (up_leg, up_uri) = self.plane.create_session(&label, up_t)?;
                let (leg, uri) = match self.plane.add_leg(up_leg.session, 1, &o.via_branch, dev_t) {
                    Ok(x) => x,
                    Err(e) => {
                        let _ = self.plane.end_session(up_leg.session);
                        return Err(e.into());
                    }
                };
                let entry = Entry {
                    key: key.clone(),
                    id: up_leg.session,
                    kind: o.kind,
                    owner: Some(conn),
                    orphaned_at: None,
                    upstream: Upstream {
                        leg: up_leg,
                        uri: up_uri,
                        ..up
                    },
                    devices: Vec::new(),
                    next_leg: 2,
                    fork,
                    ending: None,
                    store: None,
                    replay,
                };
                self.by_id.insert(entry.id, key.clone());
                self.ended.forget(&key);
                self.sessions.insert(key.clone(), entry);
                self.counters.sessions_total += 1;
                self.start_recording(&key, &o.sdp);
                (leg, uri, true)
            }
        };
        let out = self.rewrite(&sdp, dev_t, Rewrite { path: &uri, ..rw });
        let Some(e) = self.sessions.get_mut(&key) else {
            return Err(TableError::Ending);
        };
        e.devices.push(DeviceLeg {
            via_branch: o.via_branch,
            tls: dev_tls,
            to_tag: None,
            instance_id: o.instance_id,
            leg,
            status: DeviceStatus::Invited,
            created: now,
            connected_at: None,
            declined: false,
        });
        Ok(OfferReply {
            sdp: out?,
            created,
            from_store: false,
        })
    }

    /// How the relay will answer the sender (RFC 6135 §4.2.2: the relay
    /// is reachable, so `passive` unless the sender offered `passive`).
    fn upstream_plan(&self, media: &MsrpMedia, now: Instant) -> Result<Upstream, TableError> {
        let n = negotiate_setup(media.setup, true);
        let plane_setup = match n.answerer {
            ConnectionRole::Listen => PlaneSetup::Passive,
            ConnectionRole::Connect => PlaneSetup::Active(first_hop_addr(media)?),
        };
        Ok(Upstream {
            tls: media.tls,
            leg: LegId {
                session: msrp_relay::fanout::SessionId(0),
                index: 0,
            },
            uri: String::new(),
            peer_path: peer_path(media)?,
            plane_setup,
            answer_setup: n.answer,
            answered: false,
            created: now,
            connected_at: None,
        })
    }

    /// `answer`: see `docs/control-protocol.md` §3.
    pub(crate) fn answer(
        &mut self,
        conn: ConnId,
        a: Answer,
        events: &mut Vec<Event>,
    ) -> Result<AnswerReply, TableError> {
        self.answer_for_sender(conn, a, events).map(|(r, _)| r)
    }

    /// `answer`, and the SDP answer for the sender whether or not this
    /// answer is the one to forward (the ng protocol's `answer` always
    /// returns an SDP: a proxy relays every 200).
    pub(crate) fn answer_for_sender(
        &mut self,
        conn: ConnId,
        a: Answer,
        events: &mut Vec<Event>,
    ) -> Result<(AnswerReply, String), TableError> {
        let host = self.cfg.relay_host.clone();
        let plane = self.plane.clone();
        let ports = (self.port_of(Transport::Tcp), self.port_of(Transport::Tls));
        let tls_port = self.cfg.relay_tls_port;
        let e = self.entry_mut(&a.call_id, &a.from_tag)?;
        e.adopt(conn);
        let di = e.device(&a.via_branch)?;
        // Everything that can fail on input is checked before the policy
        // state moves.
        let sdp = Sdp::parse_str(&a.sdp)?;
        let media = active_media(&sdp)?;
        let path = peer_path(&media)?;
        // The relay offered actpass; the device's answer decides.
        let device_setup = match media.setup {
            Some(Setup::Active) => PlaneSetup::Passive,
            Some(Setup::Passive) | Some(Setup::Holdconn) | None => {
                // RFC 4975 §8.5: without a=setup the offerer connects.
                PlaneSetup::Active(first_hop_addr(&media)?)
            }
            Some(Setup::Actpass) => {
                return Err(TableError::Path(
                    "a=setup:actpass is not a valid answer (RFC 4145 §4.1)".into(),
                ));
            }
        };
        let offered = e.devices[di].tls;
        if media.tls != offered {
            return Err(TableError::Path(format!(
                "the answer's protocol {} differs from the offer's {}",
                proto(media.tls),
                proto(offered)
            )));
        }
        // The sender's leg keeps the sender's transport and port.
        let up_tls = e.upstream.tls;
        let port = if up_tls && tls_port.is_some() {
            ports.1
        } else {
            ports.0
        };
        let large = e.kind == RequestKind::LargeMessage;
        let sender_sdp = sdp.rewrite(&Rewrite {
            proto: (up_tls != media.tls).then_some(proto(up_tls)),
            address: &host,
            port,
            path: &e.upstream.uri,
            setup: e.upstream.answer_setup,
            direction: large.then_some(Direction::RecvOnly),
            accept_types: large.then_some("message/cpim"),
        })?;
        let response = if a.auto_answer {
            Response::AutoAccept
        } else {
            Response::Accept
        };
        let actions = e.fork.respond(&a.via_branch, response)?;
        e.devices[di].to_tag = Some(a.to_tag.clone());
        let mut reply = AnswerReply {
            forward: false,
            sdp: None,
            close: false,
        };
        let mut forward = false;
        for action in actions {
            match action {
                ForkAction::ForwardAnswer { .. } => forward = true,
                ForkAction::ConnectQuietly { .. } | ForkAction::FailSender { .. } => {}
                ForkAction::CancelBranches {
                    via_branches,
                    reason,
                } => cancel_branches(&*plane, e, via_branches, reason, events),
                ForkAction::CloseLegs {
                    via_branches,
                    reason: _,
                } => {
                    for b in via_branches {
                        if b == a.via_branch {
                            reply.close = true;
                        } else {
                            close_leg(&*plane, e, &b, DoneReason::Closed, events);
                        }
                    }
                }
            }
        }
        let dev = &mut e.devices[di];
        if reply.close {
            if dev.status.live() {
                let _ = plane.remove_leg(dev.leg);
                dev.status = DeviceStatus::Removed;
            }
            return Ok((reply, sender_sdp));
        }
        connect_accepted(&*plane, e, di, path, device_setup, forward)?;
        if forward {
            // A delivery from the store has no SIP sender to answer.
            if e.replay.is_none() {
                reply.forward = true;
                reply.sdp = Some(sender_sdp.clone());
            }
        }
        Ok((reply, sender_sdp))
    }
}

/// Device `di` accepted: its leg is answered (its path, who connects) and,
/// on the first accept (`upstream`), the sender's leg too.
pub(super) fn connect_accepted(
    plane: &dyn crate::plane::DataPlane,
    e: &mut Entry,
    di: usize,
    peer_path: Vec<Bytes>,
    setup: PlaneSetup,
    upstream: bool,
) -> Result<(), TableError> {
    let dev = e.devices.get_mut(di).ok_or(TableError::Ending)?;
    plane.answer(dev.leg, PlaneAnswer { peer_path, setup })?;
    dev.status = DeviceStatus::Answered;
    if upstream {
        plane.answer(
            e.upstream.leg,
            PlaneAnswer {
                peer_path: e.upstream.peer_path.clone(),
                setup: e.upstream.plane_setup,
            },
        )?;
        e.upstream.answered = true;
    }
    Ok(())
}

pub(crate) fn kind_name(k: RequestKind) -> String {
    serde_json::to_value(k)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Policy: CANCEL these outstanding invitations. Their legs leave the data
/// plane now (they would hold content for nobody); a 200 that crosses the
/// CANCEL is answered `close`.
pub(crate) fn cancel_branches(
    plane: &dyn crate::plane::DataPlane,
    e: &mut Entry,
    via_branches: Vec<String>,
    reason: crate::policy::CancelReason,
    events: &mut Vec<Event>,
) {
    for b in &via_branches {
        if let Some(d) = e.devices.iter_mut().find(|d| d.via_branch == *b)
            && d.status.live()
        {
            let _ = plane.remove_leg(d.leg);
            d.status = DeviceStatus::Removed;
        }
    }
    if !via_branches.is_empty() {
        events.push(Event::CancelBranches {
            call_id: e.key.0.clone(),
            from_tag: e.key.1.clone(),
            reason_header: reason.reason_header().to_owned(),
            via_branches,
            reason,
        });
    }
}

/// Removes an accepted device leg; the front end is told with a
/// `leg-done` of `reason` once the data plane reports the removal
/// (`LegRemoved`, with the bytes the device got: no round trip to the
/// worker here). If the removal cannot even be posted, nothing will report
/// it: the `leg-done` goes out now, with `bytes-sent` 0.
pub(crate) fn close_leg(
    plane: &dyn crate::plane::DataPlane,
    e: &mut Entry,
    branch: &str,
    reason: DoneReason,
    events: &mut Vec<Event>,
) {
    let Some(d) = e.devices.iter_mut().find(|d| d.via_branch == branch) else {
        return;
    };
    if !d.status.live() {
        return;
    }
    match plane.remove_leg(d.leg) {
        Ok(()) => d.status = DeviceStatus::Removing(reason),
        Err(err) => {
            tracing::warn!(call_id = %e.key.0, via_branch = %d.via_branch, error = %err, "removing a device leg");
            d.status = DeviceStatus::Removed;
            events.push(leg_done(&e.key, d, reason, 0));
        }
    }
}

/// The front end's `leg-done` for a device leg.
pub(crate) fn leg_done(key: &super::Key, d: &DeviceLeg, reason: DoneReason, bytes: u64) -> Event {
    Event::LegDone {
        call_id: key.0.clone(),
        from_tag: key.1.clone(),
        via_branch: d.via_branch.clone(),
        to_tag: d.to_tag.clone(),
        reason,
        bytes_sent: bytes,
    }
}
