//! Table-driven tests of the no-suitable-device fallback (PF-DEFER) and
//! of the originator check before planning (PF-AUTH).

use super::*;

/// PF-DEFER: with no suitable device, the user's fallback as far as kind
/// and operator allow it.
#[test]
#[allow(clippy::type_complexity)] // the table's row type, spelled once
fn pf_defer_fallback_table() {
    let offline_phone = || Device {
        connectivity: Connectivity::InterworkedOnly,
        ..primary("phone", ALL)
    };
    let dead_phone = || Device {
        connectivity: Connectivity::None,
        ..primary("phone", ALL)
    };
    let no_defer = OperatorPolicy {
        allow_defer: false,
        ..OperatorPolicy::default()
    };
    let no_iw = OperatorPolicy {
        allow_interwork: false,
        ..OperatorPolicy::default()
    };
    let def = OperatorPolicy::default;
    let interwork = || Outcome::Interwork {
        primary: "phone".into(),
    };
    let reject = Outcome::Reject { status: 480 };
    let rows: Vec<(
        &str,
        RequestKind,
        Option<Fallback>,
        OperatorPolicy,
        Device,
        Outcome,
    )> = vec![
        (
            "defer pager",
            RequestKind::Pager,
            Some(Fallback::Defer),
            def(),
            offline_phone(),
            Outcome::Defer,
        ),
        (
            "defer large message",
            RequestKind::LargeMessage,
            Some(Fallback::Defer),
            def(),
            offline_phone(),
            Outcome::Defer,
        ),
        (
            "defer file transfer",
            RequestKind::FileTransfer,
            Some(Fallback::Defer),
            def(),
            offline_phone(),
            Outcome::Defer,
        ),
        (
            "chat cannot be deferred",
            RequestKind::Chat,
            Some(Fallback::Defer),
            def(),
            offline_phone(),
            reject.clone(),
        ),
        (
            "operator offers no deferral",
            RequestKind::Pager,
            Some(Fallback::Defer),
            no_defer.clone(),
            offline_phone(),
            reject.clone(),
        ),
        (
            "interwork via primary",
            RequestKind::Pager,
            Some(Fallback::Interwork),
            def(),
            offline_phone(),
            interwork(),
        ),
        (
            "interwork chat",
            RequestKind::Chat,
            Some(Fallback::Interwork),
            def(),
            offline_phone(),
            interwork(),
        ),
        (
            "interwork, primary unreachable: defer",
            RequestKind::Pager,
            Some(Fallback::Interwork),
            def(),
            dead_phone(),
            Outcome::Defer,
        ),
        (
            "interwork not offered: defer",
            RequestKind::Pager,
            Some(Fallback::Interwork),
            no_iw,
            offline_phone(),
            Outcome::Defer,
        ),
        (
            "interwork impossible, no deferral",
            RequestKind::Pager,
            Some(Fallback::Interwork),
            no_defer,
            dead_phone(),
            reject.clone(),
        ),
        (
            "no preference: reject",
            RequestKind::Pager,
            None,
            def(),
            offline_phone(),
            reject.clone(),
        ),
        (
            "preference reject",
            RequestKind::Pager,
            Some(Fallback::Reject),
            def(),
            offline_phone(),
            reject.clone(),
        ),
    ];
    for (name, kind, when_none, policy, phone, want) in rows {
        let u = user(vec![
            phone,
            Device {
                registered: false,
                ..device("pc", ALL)
            },
        ]);
        let prefs = Preferences {
            when_none,
            ..Preferences::default()
        };
        let p = plan(kind, &u, &prefs, &policy);
        assert_eq!(p.outcome, want, "{name}");
        assert_eq!(p.targets().count(), 0, "{name}");
    }
    // Interworking without any identified primary cannot happen.
    let u = user(vec![Device {
        registered: false,
        ..device("pc", ALL)
    }]);
    let prefs = Preferences {
        when_none: Some(Fallback::Interwork),
        ..Preferences::default()
    };
    assert_eq!(
        plan(RequestKind::Chat, &u, &prefs, &OperatorPolicy::default()).outcome,
        Outcome::Reject { status: 480 }
    );
}

/// PF-AUTH: a blocked originator is refused before any device is planned.
#[test]
fn pf_auth_blocked_originator_gets_forbid_outcome_and_no_devices() {
    use crate::policy::AuthPolicy;
    let u = user(vec![primary("phone", ALL)]);
    let auth = AuthPolicy {
        blocked: ["sip:spam@bad.example".to_owned()].into(),
        ..AuthPolicy::default()
    };
    let p = plan_request(
        RequestKind::Pager,
        &u,
        &Preferences::default(),
        &OperatorPolicy::default(),
        &auth,
        "sip:spam@bad.example",
        false,
    );
    assert!(matches!(p.outcome, Outcome::Forbid { status: 403, .. }));
    assert!(p.devices.is_empty());
    let p = plan_request(
        RequestKind::Pager,
        &u,
        &Preferences::default(),
        &OperatorPolicy::default(),
        &auth,
        "sip:alice@ims.example",
        false,
    );
    assert_eq!(selected(&p), ["phone"]);
}
