//! The data plane as the control plane sees it: the `msrp-relay` library's
//! `RelayHandle` surface, as a trait so that the session table can be
//! driven and tested without sockets.
//!
//! Every call is a request to the worker that owns the session; results
//! come back synchronously (the handle validates what it posts without a
//! round trip, and mints the ids itself). The relay's process uses a
//! handle with deferred wakes: the server calls [`DataPlane::wake`] once
//! per batch of commands. Asynchronous outcomes (a leg bound, drained,
//! failed; a session freed) arrive as [`msrp_relay::fanout::Event`]s, which
//! the server feeds to [`crate::table::Core::on_plane_event`].

use msrp_relay::fanout::{
    Answer, EngineError, EngineStats, LegId, LegInfo, LegRole, SessionId, Transport,
};

/// Why a data-plane call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaneError {
    /// The engine refused the call (no such session or leg, answered
    /// twice, bad path, session ending, too many legs).
    #[error("data plane: {0}")]
    Engine(#[from] EngineError),
    /// The worker could not be reached (shutting down, gone).
    #[error("data plane unavailable: {0}")]
    Unavailable(String),
}

/// The control surface of the data plane (`msrp_relay::io::RelayHandle`).
pub trait DataPlane: Send + Sync {
    /// Creates a session and its upstream leg (toward the sender) over
    /// `transport`; returns the leg and the relay's own MSRP URI on it.
    fn create_session(
        &self,
        upstream_label: &str,
        transport: Transport,
    ) -> Result<(LegId, String), PlaneError>;
    /// Adds a device leg, invited: it keeps the whole content from now on.
    /// Adds device leg number `index` (the caller numbers a session's legs
    /// 1, 2, … in the order it adds them).
    /// Its relay URI is for `transport` (`msrps:` on the TLS port).
    fn add_leg(
        &self,
        session: SessionId,
        index: u32,
        label: &str,
        transport: Transport,
    ) -> Result<(LegId, String), PlaneError> {
        self.add_leg_in_role(session, index, label, transport, LegRole::Device)
    }
    /// [`DataPlane::add_leg`] for a leg of `role` (the content store's
    /// leg is a [`LegRole::Recorder`]: it gets nothing the devices send).
    fn add_leg_in_role(
        &self,
        session: SessionId,
        index: u32,
        label: &str,
        transport: Transport,
        role: LegRole,
    ) -> Result<(LegId, String), PlaneError>;
    /// The leg's peer answered: its path and who connects.
    fn answer(&self, leg: LegId, answer: Answer) -> Result<(), PlaneError>;
    /// Removes one leg at once (no drain).
    fn remove_leg(&self, leg: LegId) -> Result<(), PlaneError>;
    /// The sender's BYE: device legs drain, then paced `LegDone`.
    fn end_session(&self, session: SessionId) -> Result<(), PlaneError>;
    /// A session's legs as the engine sees them.
    fn session_legs(&self, session: SessionId) -> Result<Vec<LegInfo>, PlaneError>;
    /// Per-worker counters.
    fn stats(&self) -> Result<Vec<EngineStats>, PlaneError>;
    /// Wakes the workers that commands were posted to without waking
    /// them (a plane with deferred wakes); the server calls it after each
    /// batch of commands, before their replies are written.
    fn wake(&self) {}
}

impl From<msrp_relay::io::RelayError> for PlaneError {
    fn from(e: msrp_relay::io::RelayError) -> PlaneError {
        match e {
            msrp_relay::io::RelayError::Engine(e) => PlaneError::Engine(e),
            other => PlaneError::Unavailable(other.to_string()),
        }
    }
}

/// The real data plane.
impl DataPlane for msrp_relay::io::RelayHandle {
    fn create_session(
        &self,
        upstream_label: &str,
        transport: Transport,
    ) -> Result<(LegId, String), PlaneError> {
        Ok(msrp_relay::io::RelayHandle::create_session_on(
            self,
            upstream_label,
            transport,
        )?)
    }

    fn add_leg_in_role(
        &self,
        session: SessionId,
        index: u32,
        label: &str,
        transport: Transport,
        role: LegRole,
    ) -> Result<(LegId, String), PlaneError> {
        Ok(msrp_relay::io::RelayHandle::add_leg_in_role(
            self, session, index, label, transport, role,
        )?)
    }

    fn answer(&self, leg: LegId, answer: Answer) -> Result<(), PlaneError> {
        Ok(msrp_relay::io::RelayHandle::answer(self, leg, answer)?)
    }

    fn remove_leg(&self, leg: LegId) -> Result<(), PlaneError> {
        Ok(msrp_relay::io::RelayHandle::remove_leg(self, leg)?)
    }

    fn end_session(&self, session: SessionId) -> Result<(), PlaneError> {
        Ok(msrp_relay::io::RelayHandle::end_session(self, session)?)
    }

    fn session_legs(&self, session: SessionId) -> Result<Vec<LegInfo>, PlaneError> {
        Ok(msrp_relay::io::RelayHandle::session_legs(self, session)?)
    }

    fn stats(&self) -> Result<Vec<EngineStats>, PlaneError> {
        Ok(msrp_relay::io::RelayHandle::stats(self)?)
    }

    fn wake(&self) {
        msrp_relay::io::RelayHandle::wake_deferred(self);
    }
}
