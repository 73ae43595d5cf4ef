//! Table-driven tests of [`plan`](super::plan), one per rule.

use super::*;
use crate::policy::registry::tests::device;
use crate::policy::{Device, Registration, Registry};
use Capability::*;

const ALL: &[Capability] = &[Chat, FileTransfer, LargeMessage, Pager];

fn user(devices: Vec<Device>) -> UserDevices {
    let mut r = Registry::default();
    r.register(Registration {
        user: "sip:bob@ims.example".into(),
        version: 1,
        devices,
    })
    .unwrap()
    .clone()
}

fn primary(id: &str, caps: &[Capability]) -> Device {
    Device {
        primary: true,
        ..device(id, caps)
    }
}

fn selected(p: &Plan) -> Vec<&str> {
    p.targets().collect()
}

/// PF-SUITABLE: each condition of seed 001 §6.6 on its own excludes a
/// device, with its reason; checks run in the documented order.
#[test]
fn pf_suitable_each_condition_excludes_with_its_reason() {
    let prefs_excluding = |id: &str| Preferences {
        excluded: [(RequestKind::Chat, [id.to_owned()].into())].into(),
        when_none: None,
    };
    let primary_only = OperatorPolicy {
        primary_only: [RequestKind::Chat].into(),
        ..OperatorPolicy::default()
    };
    let base = || device("d", ALL);
    let rows: Vec<(&str, Device, Preferences, OperatorPolicy, Reason)> = vec![
        (
            "suitable",
            base(),
            Preferences::default(),
            OperatorPolicy::default(),
            Reason::Suitable,
        ),
        (
            "unregistered",
            Device {
                registered: false,
                ..base()
            },
            Preferences::default(),
            OperatorPolicy::default(),
            Reason::NotRegistered,
        ),
        (
            "no chat capability",
            device("d", &[FileTransfer]),
            Preferences::default(),
            OperatorPolicy::default(),
            Reason::NotCapable,
        ),
        (
            "no connectivity",
            Device {
                connectivity: Connectivity::None,
                ..base()
            },
            Preferences::default(),
            OperatorPolicy::default(),
            Reason::NoConnectivity,
        ),
        (
            "interworked only",
            Device {
                connectivity: Connectivity::InterworkedOnly,
                ..base()
            },
            Preferences::default(),
            OperatorPolicy::default(),
            Reason::NoConnectivity,
        ),
        (
            "policy: primary only",
            base(),
            Preferences::default(),
            primary_only.clone(),
            Reason::PolicyExcluded,
        ),
        (
            "preference excludes",
            base(),
            prefs_excluding("d"),
            OperatorPolicy::default(),
            Reason::PreferenceExcluded,
        ),
        (
            "preference for another device",
            base(),
            prefs_excluding("other"),
            OperatorPolicy::default(),
            Reason::Suitable,
        ),
        (
            "unregistered beats incapable",
            Device {
                registered: false,
                ..device("d", &[])
            },
            Preferences::default(),
            OperatorPolicy::default(),
            Reason::NotRegistered,
        ),
    ];
    for (name, d, prefs, policy, want) in rows {
        // A primary is always present so primary-only has something to keep.
        let u = user(vec![primary("phone", ALL), d]);
        let p = plan(RequestKind::Chat, &u, &prefs, &policy);
        let got = &p.devices[1];
        assert_eq!(got.reason, want, "{name}");
        assert_eq!(got.selected, want == Reason::Suitable, "{name}");
        assert_eq!(p.outcome, Outcome::Deliver, "{name}");
    }
}

/// CPM-MLD-001: a standalone message goes to all or a subset of devices by
/// kind and capability (pager and large message differ).
#[test]
fn cpm_mld_001_standalone_messages_go_to_capable_subset_by_kind() {
    let u = user(vec![
        primary("phone", &[Pager, LargeMessage]),
        device("pc", &[Pager]),
        device("tv", &[]),
    ]);
    let rows = [
        (RequestKind::Pager, vec!["phone", "pc"]),
        (RequestKind::LargeMessage, vec!["phone"]),
    ];
    for (kind, want) in rows {
        let p = plan(
            kind,
            &u,
            &Preferences::default(),
            &OperatorPolicy::default(),
        );
        assert_eq!(selected(&p), want, "{kind:?}");
        assert_eq!(p.devices.len(), 3, "every device gets a decision");
    }
}

/// CPM-MLD-006: a session invitation goes to all suitable devices, or the
/// subset policy and preference allow.
#[test]
fn cpm_mld_006_chat_invitation_to_all_or_subset() {
    let u = user(vec![
        primary("phone", ALL),
        device("pc", ALL),
        device("tab", ALL),
    ]);
    let no_tab = Preferences {
        excluded: [(RequestKind::Chat, ["tab".to_owned()].into())].into(),
        when_none: None,
    };
    let rows = [
        (
            Preferences::default(),
            OperatorPolicy::default(),
            vec!["phone", "pc", "tab"],
        ),
        (no_tab, OperatorPolicy::default(), vec!["phone", "pc"]),
        (
            Preferences::default(),
            OperatorPolicy {
                primary_only: [RequestKind::Chat].into(),
                ..OperatorPolicy::default()
            },
            vec!["phone"],
        ),
    ];
    for (i, (prefs, policy, want)) in rows.into_iter().enumerate() {
        assert_eq!(
            selected(&plan(RequestKind::Chat, &u, &prefs, &policy)),
            want,
            "row {i}"
        );
    }
}

/// CPM-MLD-019: a file transfer goes to all or a subset; the preference
/// for chat does not leak into file transfer.
#[test]
fn cpm_mld_019_file_transfer_to_all_or_subset() {
    let u = user(vec![
        primary("phone", ALL),
        device("pc", ALL),
        device("watch", &[Chat]),
    ]);
    let prefs = Preferences {
        excluded: [(RequestKind::Chat, ["pc".to_owned()].into())].into(),
        when_none: None,
    };
    let p = plan(
        RequestKind::FileTransfer,
        &u,
        &prefs,
        &OperatorPolicy::default(),
    );
    assert_eq!(selected(&p), ["phone", "pc"]);
    assert_eq!(p.devices[2].reason, Reason::NotCapable);
}

/// Fork limit: the Primary Device is kept, the rest fill in registration
/// order, the others say why.
#[test]
fn fork_limit_keeps_primary_then_registration_order() {
    let u = user(vec![
        device("a", ALL),
        device("b", ALL),
        primary("phone", ALL),
        device("c", ALL),
    ]);
    let rows = [
        (1, vec!["phone"]),
        (2, vec!["a", "phone"]),
        (3, vec!["a", "b", "phone"]),
        (0, vec![]),
    ];
    for (max, want) in rows {
        let policy = OperatorPolicy {
            max_devices: max,
            ..OperatorPolicy::default()
        };
        let p = plan(RequestKind::Chat, &u, &Preferences::default(), &policy);
        assert_eq!(selected(&p), want, "max {max}");
        let limited = p
            .devices
            .iter()
            .filter(|d| d.reason == Reason::ForkLimit)
            .count();
        assert_eq!(limited, 4 - want.len(), "max {max}");
    }
}

#[test]
fn plan_serialises_with_kebab_case_words() {
    let u = user(vec![primary("phone", ALL)]);
    let p = plan(
        RequestKind::FileTransfer,
        &u,
        &Preferences::default(),
        &OperatorPolicy::default(),
    );
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["kind"], "file-transfer");
    assert_eq!(json["outcome"], "deliver");
    assert_eq!(json["devices"][0]["instance-id"], "phone");
    assert_eq!(json["devices"][0]["reason"], "suitable");
    let back: Plan = serde_json::from_value(json).unwrap();
    assert_eq!(back, p);
}

#[path = "plan_fallback_tests.rs"]
mod fallback;
