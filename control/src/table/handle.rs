//! One request in, one reply and its events out.

use std::time::Instant;

use super::{Outcome, TableError};
use crate::policy::{Registration, plan, plan_request};
use crate::protocol::{
    Command, DrainReply, Event, OkReply, Plan, RegisterReply, Reply, Request, SubscribeReply,
};

/// A control connection, named by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl super::Core {
    /// Executes one request from `conn` at `now`. `subscribe` only computes
    /// its reply here; the server records the subscription.
    pub fn handle(&mut self, conn: ConnId, req: Request, now: Instant) -> Outcome {
        let mut events = Vec::new();
        let id = req.id;
        let result = self.dispatch(conn, req.command, now, &mut events);
        let reply = match result {
            Ok(ok) => Reply::ok(id, ok),
            Err(e) => {
                tracing::debug!(error = %e, "command refused");
                Reply::error(id, e.to_string())
            }
        };
        Outcome { reply, events }
    }

    fn dispatch(
        &mut self,
        conn: ConnId,
        command: Command,
        now: Instant,
        events: &mut Vec<Event>,
    ) -> Result<OkReply, TableError> {
        Ok(match command {
            Command::Ping => OkReply::Ping,
            Command::Offer(o) => OkReply::Offer(self.offer_or_resume(conn, o, now)?),
            Command::Answer(a) => OkReply::Answer(self.answer(conn, a, events)?),
            Command::Reject(r) => OkReply::Reject(self.reject(conn, r, now, events)?),
            Command::Delete(d) => OkReply::Delete(self.delete(conn, d, now, events)?),
            Command::Query(q) => OkReply::Query(self.query(conn, &q, now)?),
            Command::List(l) => OkReply::List(self.list(l.limit)),
            Command::Statistics => OkReply::Statistics(self.statistics()?),
            Command::Register(r) => OkReply::Register(self.register(r)?),
            Command::Plan(p) => OkReply::Plan(self.plan(&p)?),
            Command::Subscribe(s) => {
                let mut names = s.events;
                names.dedup();
                OkReply::Subscribe(SubscribeReply { events: names })
            }
            Command::Drain(d) => OkReply::Drain(self.drain(d.enable)?),
            Command::Deliver(d) => OkReply::Deliver(self.deliver(conn, d, now)?),
            Command::StoreList => OkReply::StoreList(self.store_list()?),
            Command::StoreDelete(d) => OkReply::StoreDelete(self.store_delete(&d.item)?),
        })
    }

    /// `drain`: enter or leave; one log line when the state changes.
    fn drain(&mut self, enable: bool) -> Result<DrainReply, TableError> {
        if self.set_draining(enable)? {
            if enable {
                tracing::info!(
                    sessions = self.len(),
                    "drain entered (control command): no new session; the live ones go on"
                );
            } else {
                tracing::info!(
                    sessions = self.len(),
                    "drain left (control command): new sessions taken again"
                );
            }
        }
        Ok(DrainReply {
            draining: self.draining(),
            sessions: self.len(),
        })
    }

    fn register(&mut self, r: Registration) -> Result<RegisterReply, TableError> {
        let user = r.user.clone();
        let stored = self.registry.register(r)?;
        Ok(RegisterReply {
            user,
            version: stored.version,
            devices: stored.devices.len(),
            primary: stored.primary.clone(),
        })
    }

    fn plan(&self, p: &Plan) -> Result<crate::policy::Plan, TableError> {
        let user = self.registry.get(&p.user)?;
        Ok(match &p.originator {
            Some(originator) => plan_request(
                p.kind,
                user,
                &p.preferences,
                &self.cfg.operator,
                &self.cfg.auth,
                originator,
                p.anonymous,
            ),
            None => plan(p.kind, user, &p.preferences, &self.cfg.operator),
        })
    }
}
