//! What each device's response to a forked invitation does (design.md §5,
//! CPM-MLD-007a/008a/020/026, seed 003 PF-LMM-FIRST200).
//!
//! The SIP front end forks one INVITE per device (one `via-branch` each) and
//! reports every final response here; the fork answers with actions for the
//! front end: which 200 to forward to the sender, which branches to CANCEL,
//! which accepted legs to BYE, and when the sender gets a failure.

use serde::{Deserialize, Serialize};

use super::{PolicyError, RequestKind};

/// Operator policy: does the first accept cancel the other invitations?
/// Separate for chat and file transfer (CPM-MLD-007a, CPM-MLD-020). Both
/// default to `false`: every device that accepts joins the session / gets
/// the whole file. Large Message Mode never cancels (seed 003: later 200 OK
/// devices still receive the content).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct AcceptPolicy {
    /// A chat accept cancels the other chat invitations.
    pub chat_accept_cancels_others: bool,
    /// A file-transfer accept cancels the other file-transfer invitations.
    pub file_transfer_accept_cancels_others: bool,
}

/// A device's final response on its branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Response {
    /// 200 OK, the user accepted.
    Accept,
    /// 200 OK sent automatically by the client (auto-accept).
    AutoAccept,
    /// The user declined (603 Decline).
    Reject,
    /// The device failed (486, 488, 415, 5xx...): this branch only.
    Fail,
    /// No answer in time (408 or the front end's timer): this branch only.
    Timeout,
}

/// State of one branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BranchState {
    /// Invited, no final response.
    Pending,
    /// CANCEL requested, no final response yet.
    Cancelling,
    /// Accepted: the leg is (being) connected.
    Accepted,
    /// Declined by the user.
    Declined,
    /// Failed.
    Failed,
    /// Timed out.
    TimedOut,
    /// Cancelled and the device's final response arrived.
    Cancelled,
    /// Accepted, then closed by policy (BYE).
    Closed,
}

/// Why branches are cancelled or closed; maps to the RFC 3326 `Reason`
/// header the front end puts in its CANCEL/BYE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CancelReason {
    /// Another device accepted and policy says accept cancels others.
    AcceptedElsewhere,
    /// A device declined (CPM-MLD-008a).
    Declined,
    /// A device auto-answered (CPM-MLD-026).
    AutoAnswered,
    /// The sender withdrew: its CANCEL, or its BYE / the session's end
    /// before this device answered.
    SenderEnded,
}

impl CancelReason {
    /// Value for a `Reason` header (RFC 3326), e.g. so that the other
    /// devices do not log a missed chat (RFC 3326 `cause=200` is "Call
    /// completed elsewhere").
    pub fn reason_header(self) -> &'static str {
        match self {
            CancelReason::AcceptedElsewhere => "SIP;cause=200;text=\"Call completed elsewhere\"",
            CancelReason::Declined => "SIP;cause=603;text=\"Declined\"",
            CancelReason::AutoAnswered => "SIP;cause=200;text=\"Auto-answered elsewhere\"",
            CancelReason::SenderEnded => "SIP;cause=487;text=\"Request Terminated\"",
        }
    }
}

/// Why the sender gets a failure: every branch ended without an accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForkFailure {
    /// A device declined: 603.
    Declined,
    /// At least one device failed: 480.
    Failed,
    /// Every device timed out: 408.
    TimedOut,
}

impl ForkFailure {
    /// SIP status for the sender's final response.
    pub fn status(self) -> u16 {
        match self {
            ForkFailure::Declined => 603,
            ForkFailure::Failed => 480,
            ForkFailure::TimedOut => 408,
        }
    }
}

/// An instruction for the front end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum ForkAction {
    /// Forward this device's 200 (with the relay's SDP) to the sender.
    ForwardAnswer {
        /// The branch.
        via_branch: String,
    },
    /// Connect this device's leg but send nothing to the sender: a later
    /// 200 OK (PF-LMM-FIRST200).
    ConnectQuietly {
        /// The branch.
        via_branch: String,
    },
    /// CANCEL these outstanding invitations.
    CancelBranches {
        /// The branches.
        via_branches: Vec<String>,
        /// Why.
        reason: CancelReason,
    },
    /// BYE these accepted legs.
    CloseLegs {
        /// The branches.
        via_branches: Vec<String>,
        /// Why.
        reason: CancelReason,
    },
    /// Send the sender this failure; the invitation is over.
    FailSender {
        /// Why.
        failure: ForkFailure,
    },
}

/// The response state machine of one forked invitation.
#[derive(Debug, Clone)]
pub struct Fork {
    cancels_on_accept: bool,
    branches: Vec<(String, BranchState)>,
    forwarded: Option<String>,
    cancel_reason: Option<CancelReason>,
    sender_failed: bool,
}

impl Fork {
    /// A fork of a session-kind request over these branches, in fork order.
    pub fn new<I, S>(
        kind: RequestKind,
        branches: I,
        policy: AcceptPolicy,
    ) -> Result<Fork, PolicyError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let cancels_on_accept = match kind {
            RequestKind::Chat => policy.chat_accept_cancels_others,
            RequestKind::FileTransfer => policy.file_transfer_accept_cancels_others,
            RequestKind::LargeMessage => false,
            RequestKind::Pager => return Err(PolicyError::NotASession(kind)),
        };
        let mut list: Vec<(String, BranchState)> = Vec::new();
        for b in branches {
            let b = b.into();
            if b.is_empty() {
                return Err(PolicyError::InvalidFork("empty via-branch".into()));
            }
            if list.iter().any(|(x, _)| *x == b) {
                return Err(PolicyError::InvalidFork(format!(
                    "via-branch {b:?} listed twice"
                )));
            }
            list.push((b, BranchState::Pending));
        }
        if list.is_empty() {
            return Err(PolicyError::InvalidFork("no branches".into()));
        }
        Ok(Fork {
            cancels_on_accept,
            branches: list,
            forwarded: None,
            cancel_reason: None,
            sender_failed: false,
        })
    }

    /// Adds a branch to a running fork: the front end forks one INVITE per
    /// device and reports each (`offer`) one at a time. Refused when the
    /// branch is known already, or when the invitation is over (the sender
    /// got its final failure, or was cancelled): nobody could be forwarded.
    /// A branch added after the first accept under a cancel-on-accept policy
    /// stays pending; the front end should not fork late in that case.
    pub fn add_branch(&mut self, branch: impl Into<String>) -> Result<(), PolicyError> {
        let branch = branch.into();
        if branch.is_empty() {
            return Err(PolicyError::InvalidFork("empty via-branch".into()));
        }
        if self.branches.iter().any(|(b, _)| *b == branch) {
            return Err(PolicyError::InvalidFork(format!(
                "via-branch {branch:?} listed twice"
            )));
        }
        if self.sender_failed {
            return Err(PolicyError::InvalidFork(
                "the invitation is over (the sender has its final response)".into(),
            ));
        }
        self.branches.push((branch, BranchState::Pending));
        Ok(())
    }

    /// The branch whose 200 went to the sender.
    pub fn forwarded(&self) -> Option<&str> {
        self.forwarded.as_deref()
    }

    /// State of a branch.
    pub fn state(&self, branch: &str) -> Option<BranchState> {
        self.branches
            .iter()
            .find(|(b, _)| b == branch)
            .map(|(_, s)| *s)
    }

    /// All branches with their states, in fork order.
    pub fn branches(&self) -> impl Iterator<Item = (&str, BranchState)> {
        self.branches.iter().map(|(b, s)| (b.as_str(), *s))
    }

    /// The sender cancelled (or the session is deleted before an answer):
    /// every pending branch goes to CANCEL. Returns them.
    pub fn cancel_outstanding(&mut self) -> Vec<String> {
        self.sender_failed = true;
        let out = self.mark_pending(BranchState::Cancelling);
        if !out.is_empty() {
            self.cancel_reason = Some(CancelReason::SenderEnded);
        }
        out
    }

    /// Applies a device's final response on `branch`.
    pub fn respond(
        &mut self,
        branch: &str,
        response: Response,
    ) -> Result<Vec<ForkAction>, PolicyError> {
        let Some(idx) = self.branches.iter().position(|(b, _)| b == branch) else {
            return Err(PolicyError::UnknownBranch(branch.to_owned()));
        };
        let via_branch = branch.to_owned();
        let mut actions = Vec::new();
        match self.branches[idx].1 {
            BranchState::Pending => {}
            BranchState::Cancelling => {
                // The final response to a cancelled INVITE. A 200 that
                // crossed the CANCEL (RFC 3261 §9.1) must be ended by BYE.
                if matches!(response, Response::Accept | Response::AutoAccept) {
                    self.branches[idx].1 = BranchState::Closed;
                    actions.push(ForkAction::CloseLegs {
                        via_branches: vec![via_branch],
                        reason: self
                            .cancel_reason
                            .unwrap_or(CancelReason::AcceptedElsewhere),
                    });
                } else {
                    self.branches[idx].1 = BranchState::Cancelled;
                }
                return Ok(actions);
            }
            state => {
                return Err(PolicyError::DuplicateResponse {
                    branch: via_branch,
                    state,
                });
            }
        }
        match response {
            Response::Accept | Response::AutoAccept => {
                self.branches[idx].1 = BranchState::Accepted;
                if self.forwarded.is_none() && !self.sender_failed {
                    self.forwarded = Some(via_branch.clone());
                    actions.push(ForkAction::ForwardAnswer { via_branch });
                } else {
                    actions.push(ForkAction::ConnectQuietly { via_branch });
                }
                if response == Response::AutoAccept {
                    self.cancel_others(CancelReason::AutoAnswered, &mut actions);
                    let closed = self.close_accepted_except(idx);
                    if !closed.is_empty() {
                        actions.push(ForkAction::CloseLegs {
                            via_branches: closed,
                            reason: CancelReason::AutoAnswered,
                        });
                    }
                } else if self.cancels_on_accept {
                    self.cancel_others(CancelReason::AcceptedElsewhere, &mut actions);
                }
            }
            Response::Reject => {
                self.branches[idx].1 = BranchState::Declined;
                self.cancel_others(CancelReason::Declined, &mut actions);
                self.fail_sender_if_over(&mut actions);
            }
            Response::Fail | Response::Timeout => {
                self.branches[idx].1 = if response == Response::Fail {
                    BranchState::Failed
                } else {
                    BranchState::TimedOut
                };
                self.fail_sender_if_over(&mut actions);
            }
        }
        Ok(actions)
    }

    fn mark_pending(&mut self, to: BranchState) -> Vec<String> {
        let mut out = Vec::new();
        for (b, s) in &mut self.branches {
            if *s == BranchState::Pending {
                *s = to;
                out.push(b.clone());
            }
        }
        out
    }

    fn cancel_others(&mut self, reason: CancelReason, actions: &mut Vec<ForkAction>) {
        let cancelled = self.mark_pending(BranchState::Cancelling);
        if !cancelled.is_empty() {
            self.cancel_reason = Some(reason);
            actions.push(ForkAction::CancelBranches {
                via_branches: cancelled,
                reason,
            });
        }
    }

    fn close_accepted_except(&mut self, keep: usize) -> Vec<String> {
        let mut out = Vec::new();
        for (i, (b, s)) in self.branches.iter_mut().enumerate() {
            if i != keep && *s == BranchState::Accepted {
                *s = BranchState::Closed;
                out.push(b.clone());
            }
        }
        out
    }

    /// When no branch accepted and none can any more, the sender gets the
    /// most telling failure (a decline wins, RFC 3261 §16.7 gives 6xx
    /// precedence), once.
    fn fail_sender_if_over(&mut self, actions: &mut Vec<ForkAction>) {
        if self.forwarded.is_some() || self.sender_failed {
            return;
        }
        let states = || self.branches.iter().map(|(_, s)| *s);
        if states().any(|s| s == BranchState::Pending) {
            return;
        }
        let failure = if states().any(|s| s == BranchState::Declined) {
            ForkFailure::Declined
        } else if states().any(|s| s == BranchState::Failed) {
            ForkFailure::Failed
        } else {
            ForkFailure::TimedOut
        };
        self.sender_failed = true;
        actions.push(ForkAction::FailSender { failure });
    }
}

#[cfg(test)]
#[path = "fork_tests.rs"]
mod tests;
