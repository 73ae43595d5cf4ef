//! A data plane without sockets, for the table and server tests: it keeps
//! what it is told and answers like the engine's API. The events the
//! engine raises for a call itself (`LegRemoved` for each removed leg) are
//! queued here for the test to take ([`FakePlane::take_events`]) and feed
//! to the table, or drop (a removal that lost a race); the others tests
//! inject by hand.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Mutex;

use msrp_relay::fanout::{
    Answer, EngineError, EngineStats, Event, LegId, LegInfo, LegState, SessionId, Transport,
};

use crate::plane::{DataPlane, PlaneError};

#[derive(Debug, Default)]
struct FakeSession {
    legs: Vec<Option<(String, LegState, Option<Answer>)>>,
    ended: bool,
}

#[derive(Debug, Default)]
pub(crate) struct FakePlane {
    inner: Mutex<(u64, HashMap<SessionId, FakeSession>, Vec<String>)>,
    events: Mutex<Vec<Event>>,
}

/// The bytes the fake says it delivered to a leg (`session_legs`,
/// `LegRemoved`).
pub(crate) fn fake_bytes(leg: LegId) -> u64 {
    100 * u64::from(leg.index)
}

impl FakePlane {
    /// Calls made, e.g. `remove_leg 1/2`, `end_session 1`.
    pub(crate) fn calls(&self) -> Vec<String> {
        self.inner.lock().unwrap().2.clone()
    }

    /// The events raised since the last call, in order.
    pub(crate) fn take_events(&self) -> Vec<Event> {
        std::mem::take(&mut *self.events.lock().unwrap())
    }

    /// The worker loses the session (gone, as after a crash): every call
    /// naming it fails at once.
    pub(crate) fn forget_session(&self, session: SessionId) {
        self.inner.lock().unwrap().1.remove(&session);
    }

    /// The answer the leg got.
    pub(crate) fn answer_of(&self, leg: LegId) -> Option<Answer> {
        let g = self.inner.lock().unwrap();
        let s = g.1.get(&leg.session)?;
        s.legs.get(leg.index as usize)?.as_ref()?.2.clone()
    }

    fn uri(leg: LegId, t: Transport) -> String {
        match t {
            Transport::Tcp => format!("msrp://127.0.0.1:2855/s{}l{};tcp", leg.session.0, leg.index),
            Transport::Tls => format!(
                "msrps://127.0.0.1:2856/s{}l{};tcp",
                leg.session.0, leg.index
            ),
        }
    }
}

impl DataPlane for FakePlane {
    fn create_session(&self, label: &str, t: Transport) -> Result<(LegId, String), PlaneError> {
        let mut g = self.inner.lock().unwrap();
        g.0 += 1;
        let id = SessionId(g.0);
        let mut s = FakeSession::default();
        s.legs.push(Some((label.into(), LegState::Invited, None)));
        g.1.insert(id, s);
        g.2.push(format!("create_session {}", id.0));
        let leg = LegId {
            session: id,
            index: 0,
        };
        Ok((leg, Self::uri(leg, t)))
    }

    fn add_leg_in_role(
        &self,
        session: SessionId,
        index: u32,
        label: &str,
        t: Transport,
        _role: msrp_relay::fanout::LegRole,
    ) -> Result<(LegId, String), PlaneError> {
        let mut g = self.inner.lock().unwrap();
        let s = g.1.get_mut(&session).ok_or(EngineError::NoSession)?;
        if s.ended {
            return Err(EngineError::Ending.into());
        }
        assert!(index as usize >= s.legs.len(), "leg numbers must be new");
        s.legs.resize(index as usize, None);
        s.legs.push(Some((label.into(), LegState::Invited, None)));
        let leg = LegId {
            session,
            index: s.legs.len() as u32 - 1,
        };
        g.2.push(format!("add_leg {}/{}", session.0, leg.index));
        Ok((leg, Self::uri(leg, t)))
    }

    fn answer(&self, leg: LegId, answer: Answer) -> Result<(), PlaneError> {
        let mut g = self.inner.lock().unwrap();
        let s = g.1.get_mut(&leg.session).ok_or(EngineError::NoSession)?;
        let l = s
            .legs
            .get_mut(leg.index as usize)
            .and_then(Option::as_mut)
            .ok_or(EngineError::NoLeg)?;
        if l.1 != LegState::Invited {
            return Err(EngineError::AlreadyAnswered.into());
        }
        l.1 = LegState::Answered;
        l.2 = Some(answer);
        g.2.push(format!("answer {}/{}", leg.session.0, leg.index));
        Ok(())
    }

    fn remove_leg(&self, leg: LegId) -> Result<(), PlaneError> {
        let mut g = self.inner.lock().unwrap();
        let s = g.1.get_mut(&leg.session).ok_or(EngineError::NoSession)?;
        s.legs
            .get_mut(leg.index as usize)
            .and_then(Option::take)
            .ok_or(EngineError::NoLeg)?;
        g.2.push(format!("remove_leg {}/{}", leg.session.0, leg.index));
        // Like the engine: one `LegRemoved` per removal that succeeds.
        self.events.lock().unwrap().push(Event::LegRemoved {
            leg,
            bytes: fake_bytes(leg),
        });
        Ok(())
    }

    fn end_session(&self, session: SessionId) -> Result<(), PlaneError> {
        let mut g = self.inner.lock().unwrap();
        let s = g.1.get_mut(&session).ok_or(EngineError::NoSession)?;
        s.ended = true;
        g.2.push(format!("end_session {}", session.0));
        Ok(())
    }

    fn session_legs(&self, session: SessionId) -> Result<Vec<LegInfo>, PlaneError> {
        let mut g = self.inner.lock().unwrap();
        g.2.push(format!("session_legs {}", session.0));
        let s = g.1.get(&session).ok_or(EngineError::NoSession)?;
        Ok(s.legs
            .iter()
            .enumerate()
            .filter_map(|(i, l)| {
                let (label, state, _) = l.as_ref()?;
                let leg = LegId {
                    session,
                    index: i as u32,
                };
                Some(LegInfo {
                    leg,
                    label: label.clone(),
                    state: state.clone(),
                    local_uri: Self::uri(leg, Transport::Tcp),
                    bytes: fake_bytes(leg),
                    received: 0,
                    queued: 0,
                })
            })
            .collect())
    }

    fn stats(&self) -> Result<Vec<EngineStats>, PlaneError> {
        let g = self.inner.lock().unwrap();
        Ok(vec![EngineStats {
            sessions: g.1.values().filter(|s| !s.ended).count(),
            legs: g.1.values().map(|s| s.legs.iter().flatten().count()).sum(),
            ..EngineStats::default()
        }])
    }
}
