//! Table-driven tests of the fork state machine, one per rule.

use super::*;
use ForkAction::*;
use Response::*;

const BRANCHES: [&str; 3] = ["z9hG4bK-a", "z9hG4bK-b", "z9hG4bK-c"];

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| (*x).to_owned()).collect()
}

fn fwd(b: &str) -> ForkAction {
    ForwardAnswer {
        via_branch: b.into(),
    }
}

fn quiet(b: &str) -> ForkAction {
    ConnectQuietly {
        via_branch: b.into(),
    }
}

fn cancel(v: &[&str], reason: CancelReason) -> ForkAction {
    CancelBranches {
        via_branches: s(v),
        reason,
    }
}

fn close(v: &[&str], reason: CancelReason) -> ForkAction {
    CloseLegs {
        via_branches: s(v),
        reason,
    }
}

/// A scenario: kind, policy, then the steps (branch, response, expected
/// actions).
type Step = (&'static str, Response, Vec<ForkAction>);

fn run(name: &str, kind: RequestKind, policy: AcceptPolicy, steps: Vec<Step>) -> Fork {
    let mut fork = Fork::new(kind, BRANCHES, policy).unwrap();
    for (i, (branch, response, want)) in steps.into_iter().enumerate() {
        let got = fork.respond(branch, response).unwrap();
        assert_eq!(got, want, "{name}: step {i} ({branch} {response:?})");
    }
    fork
}

const KEEP_ALL: AcceptPolicy = AcceptPolicy {
    chat_accept_cancels_others: false,
    file_transfer_accept_cancels_others: false,
};
const CANCEL_ALL: AcceptPolicy = AcceptPolicy {
    chat_accept_cancels_others: true,
    file_transfer_accept_cancels_others: true,
};

/// PF-LMM-FIRST200: the first 200 is forwarded, later ones are connected
/// quietly; Large Message never cancels, whatever the chat/FT policy.
#[test]
fn pf_lmm_first200_first_accept_forwarded_later_connected_quietly() {
    for policy in [KEEP_ALL, CANCEL_ALL] {
        let fork = run(
            "large message",
            RequestKind::LargeMessage,
            policy,
            vec![
                ("z9hG4bK-b", Accept, vec![fwd("z9hG4bK-b")]),
                ("z9hG4bK-a", Accept, vec![quiet("z9hG4bK-a")]),
                ("z9hG4bK-c", Accept, vec![quiet("z9hG4bK-c")]),
            ],
        );
        assert_eq!(fork.forwarded(), Some("z9hG4bK-b"));
    }
}

/// CPM-MLD-007a: chat accept cancels the others only when the operator's
/// chat policy says so; otherwise every accepting device joins.
#[test]
fn cpm_mld_007a_chat_accept_cancels_others_per_chat_policy() {
    let rows: Vec<(&str, AcceptPolicy, Vec<Step>)> = vec![
        (
            "chat keep all",
            AcceptPolicy {
                file_transfer_accept_cancels_others: true,
                ..KEEP_ALL
            },
            vec![
                ("z9hG4bK-a", Accept, vec![fwd("z9hG4bK-a")]),
                ("z9hG4bK-c", Accept, vec![quiet("z9hG4bK-c")]),
            ],
        ),
        (
            "chat accept cancels",
            AcceptPolicy {
                chat_accept_cancels_others: true,
                ..KEEP_ALL
            },
            vec![
                (
                    "z9hG4bK-a",
                    Accept,
                    vec![
                        fwd("z9hG4bK-a"),
                        cancel(&["z9hG4bK-b", "z9hG4bK-c"], CancelReason::AcceptedElsewhere),
                    ],
                ),
                // 200 crossing the CANCEL: BYE it.
                (
                    "z9hG4bK-b",
                    Accept,
                    vec![close(&["z9hG4bK-b"], CancelReason::AcceptedElsewhere)],
                ),
                // 487 after CANCEL: nothing more to do.
                ("z9hG4bK-c", Fail, vec![]),
            ],
        ),
    ];
    for (name, policy, steps) in rows {
        run(name, RequestKind::Chat, policy, steps);
    }
}

/// CPM-MLD-020: file transfer has its own policy, independent of chat;
/// without cancel, every accepting device gets the file.
#[test]
fn cpm_mld_020_file_transfer_accept_policy_is_separate_from_chat() {
    let rows: Vec<(&str, AcceptPolicy, Vec<Step>)> = vec![
        (
            "ft cancels, chat does not",
            AcceptPolicy {
                file_transfer_accept_cancels_others: true,
                ..KEEP_ALL
            },
            vec![(
                "z9hG4bK-c",
                Accept,
                vec![
                    fwd("z9hG4bK-c"),
                    cancel(&["z9hG4bK-a", "z9hG4bK-b"], CancelReason::AcceptedElsewhere),
                ],
            )],
        ),
        (
            "chat cancels, ft does not",
            AcceptPolicy {
                chat_accept_cancels_others: true,
                ..KEEP_ALL
            },
            vec![
                ("z9hG4bK-c", Accept, vec![fwd("z9hG4bK-c")]),
                ("z9hG4bK-a", Accept, vec![quiet("z9hG4bK-a")]),
            ],
        ),
    ];
    for (name, policy, steps) in rows {
        run(name, RequestKind::FileTransfer, policy, steps);
    }
}

/// CPM-MLD-008a: a decline cancels every other outstanding invitation; the
/// sender gets 603 if nobody had accepted, nothing if someone had.
#[test]
fn cpm_mld_008a_reject_cancels_all_others() {
    let rows: Vec<(&str, Vec<Step>)> = vec![
        (
            "decline first",
            vec![(
                "z9hG4bK-b",
                Reject,
                vec![
                    cancel(&["z9hG4bK-a", "z9hG4bK-c"], CancelReason::Declined),
                    FailSender {
                        failure: ForkFailure::Declined,
                    },
                ],
            )],
        ),
        (
            "decline after an accept",
            vec![
                ("z9hG4bK-a", Accept, vec![fwd("z9hG4bK-a")]),
                (
                    "z9hG4bK-b",
                    Reject,
                    vec![cancel(&["z9hG4bK-c"], CancelReason::Declined)],
                ),
                (
                    "z9hG4bK-c",
                    Accept,
                    vec![close(&["z9hG4bK-c"], CancelReason::Declined)],
                ),
            ],
        ),
    ];
    for (name, steps) in rows {
        let fork = run(name, RequestKind::Chat, KEEP_ALL, steps);
        assert!(
            fork.branches().all(|(_, st)| st != BranchState::Pending),
            "{name}"
        );
    }
    assert_eq!(ForkFailure::Declined.status(), 603);
}

/// CPM-MLD-026: auto-answer keeps only the responding device: outstanding
/// invitations are cancelled and already-accepted legs closed.
#[test]
fn cpm_mld_026_auto_answer_keeps_only_the_responding_device() {
    let rows: Vec<(&str, Vec<Step>)> = vec![
        (
            "auto-answer first",
            vec![
                (
                    "z9hG4bK-a",
                    AutoAccept,
                    vec![
                        fwd("z9hG4bK-a"),
                        cancel(&["z9hG4bK-b", "z9hG4bK-c"], CancelReason::AutoAnswered),
                    ],
                ),
                (
                    "z9hG4bK-b",
                    Accept,
                    vec![close(&["z9hG4bK-b"], CancelReason::AutoAnswered)],
                ),
            ],
        ),
        (
            "auto-answer after a manual accept",
            vec![
                ("z9hG4bK-a", Accept, vec![fwd("z9hG4bK-a")]),
                (
                    "z9hG4bK-b",
                    AutoAccept,
                    vec![
                        quiet("z9hG4bK-b"),
                        cancel(&["z9hG4bK-c"], CancelReason::AutoAnswered),
                        close(&["z9hG4bK-a"], CancelReason::AutoAnswered),
                    ],
                ),
            ],
        ),
    ];
    for (name, steps) in rows {
        let fork = run(name, RequestKind::Chat, KEEP_ALL, steps);
        let accepted: Vec<_> = fork
            .branches()
            .filter(|(_, st)| *st == BranchState::Accepted)
            .map(|(b, _)| b)
            .collect();
        assert_eq!(
            accepted.len(),
            1,
            "{name}: exactly one device keeps the session"
        );
    }
}

/// Failures and timeouts end their branch only; when all are over with no
/// accept, the sender gets 480 (a failure) or 408 (all timed out).
#[test]
fn failures_and_timeouts_affect_only_their_branch_until_all_are_over() {
    let rows: Vec<(&str, Vec<Step>)> = vec![
        (
            "all time out",
            vec![
                ("z9hG4bK-a", Timeout, vec![]),
                ("z9hG4bK-b", Timeout, vec![]),
                (
                    "z9hG4bK-c",
                    Timeout,
                    vec![FailSender {
                        failure: ForkFailure::TimedOut,
                    }],
                ),
            ],
        ),
        (
            "one fails, others time out",
            vec![
                ("z9hG4bK-a", Fail, vec![]),
                ("z9hG4bK-b", Timeout, vec![]),
                (
                    "z9hG4bK-c",
                    Timeout,
                    vec![FailSender {
                        failure: ForkFailure::Failed,
                    }],
                ),
            ],
        ),
        (
            "a failure then an accept",
            vec![
                ("z9hG4bK-a", Fail, vec![]),
                ("z9hG4bK-b", Accept, vec![fwd("z9hG4bK-b")]),
                ("z9hG4bK-c", Timeout, vec![]),
            ],
        ),
    ];
    for (name, steps) in rows {
        run(name, RequestKind::Chat, KEEP_ALL, steps);
    }
}

#[test]
fn unknown_branch_duplicate_response_and_bad_forks_are_errors() {
    let mut fork = Fork::new(RequestKind::Chat, BRANCHES, KEEP_ALL).unwrap();
    assert_eq!(
        fork.respond("z9hG4bK-x", Accept),
        Err(PolicyError::UnknownBranch("z9hG4bK-x".into()))
    );
    fork.respond("z9hG4bK-a", Accept).unwrap();
    assert_eq!(
        fork.respond("z9hG4bK-a", Reject),
        Err(PolicyError::DuplicateResponse {
            branch: "z9hG4bK-a".into(),
            state: BranchState::Accepted
        })
    );
    // The failed call changed nothing.
    assert_eq!(fork.state("z9hG4bK-a"), Some(BranchState::Accepted));
    assert_eq!(fork.cancel_outstanding(), s(&["z9hG4bK-b", "z9hG4bK-c"]));
    assert!(matches!(
        Fork::new(RequestKind::Chat, Vec::<String>::new(), KEEP_ALL),
        Err(PolicyError::InvalidFork(_))
    ));
    assert!(matches!(
        Fork::new(RequestKind::Chat, ["a", "a"], KEEP_ALL),
        Err(PolicyError::InvalidFork(_))
    ));
    assert!(matches!(
        Fork::new(RequestKind::Chat, [""], KEEP_ALL),
        Err(PolicyError::InvalidFork(_))
    ));
    assert_eq!(
        Fork::new(RequestKind::Pager, ["a"], KEEP_ALL).unwrap_err(),
        PolicyError::NotASession(RequestKind::Pager)
    );
}

#[test]
fn sender_cancel_before_any_answer_closes_late_accepts() {
    let mut fork = Fork::new(RequestKind::FileTransfer, BRANCHES, KEEP_ALL).unwrap();
    assert_eq!(fork.cancel_outstanding().len(), 3);
    assert_eq!(
        fork.respond("z9hG4bK-a", Accept).unwrap(),
        vec![close(&["z9hG4bK-a"], CancelReason::SenderEnded)]
    );
    assert_eq!(fork.forwarded(), None);
}

/// PF-LMM-FORK: the front end reports branches one `offer` at a time.
#[test]
fn pf_lmm_fork_branches_added_one_by_one() {
    let mut fork = Fork::new(RequestKind::FileTransfer, ["z9hG4bK-a"], KEEP_ALL).unwrap();
    fork.add_branch("z9hG4bK-b").unwrap();
    assert!(matches!(
        fork.add_branch("z9hG4bK-b"),
        Err(PolicyError::InvalidFork(_))
    ));
    assert!(matches!(
        fork.add_branch(""),
        Err(PolicyError::InvalidFork(_))
    ));
    assert_eq!(
        fork.respond("z9hG4bK-b", Accept).unwrap(),
        vec![fwd("z9hG4bK-b")]
    );
    fork.add_branch("z9hG4bK-c").unwrap();
    assert_eq!(
        fork.respond("z9hG4bK-c", Accept).unwrap(),
        vec![quiet("z9hG4bK-c")]
    );
    // Once the sender has its final failure, no branch can be added.
    let mut over = Fork::new(RequestKind::Chat, ["z9hG4bK-a"], KEEP_ALL).unwrap();
    over.respond("z9hG4bK-a", Reject).unwrap();
    assert!(matches!(
        over.add_branch("z9hG4bK-b"),
        Err(PolicyError::InvalidFork(_))
    ));
}
