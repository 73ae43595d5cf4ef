//! May this originator send to the user at all (PF-AUTH, seed 003
//! §8.3.2.1.1 steps 1 and 3).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// Who may not send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct AuthPolicy {
    /// Originator addresses that are blocked (the user's or operator's
    /// Blacklist, seed 001 §3.2). Compared exactly: the front end passes the
    /// Authenticated Originator's CPM Address in canonical form
    /// (P-Asserted-Identity).
    pub blocked: BTreeSet<String>,
    /// Anonymous originators (RFC 3323 privacy) are allowed.
    pub allow_anonymous: bool,
    /// `warn-agent` of the Warning header (RFC 3261 §20.43): the host name
    /// of the entity refusing.
    pub warn_agent: String,
}

impl Default for AuthPolicy {
    fn default() -> Self {
        AuthPolicy {
            blocked: BTreeSet::new(),
            allow_anonymous: true,
            warn_agent: "msrp-relay".into(),
        }
    }
}

/// Outcome of the originator check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "decision")]
pub enum AuthDecision {
    /// Continue with the request.
    Allow,
    /// Answer `403 Forbidden` with this `Warning` header value.
    Forbid {
        /// SIP status (403).
        status: u16,
        /// Whole `Warning` header value: `399 <agent> "<text>"`
        /// (RFC 3261 §20.43, code 399 "miscellaneous warning").
        warning: String,
    },
}

/// Checks the originator: blocked → 403 (step 1), anonymous where the
/// policy forbids anonymity → 403 (step 3). The blocked check runs first
/// so a blocked sender learns nothing more by hiding.
pub fn check_originator(policy: &AuthPolicy, originator: &str, anonymous: bool) -> AuthDecision {
    let forbid = |text: &str| AuthDecision::Forbid {
        status: 403,
        warning: format!("399 {} \"{text}\"", policy.warn_agent),
    };
    if policy.blocked.contains(originator) {
        forbid("Originator is not allowed to send to this user")
    } else if anonymous && !policy.allow_anonymous {
        forbid("Anonymous communication is not allowed")
    } else {
        AuthDecision::Allow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PF-AUTH: blocked originators and (where forbidden) anonymous ones get
    /// 403 with a Warning; everyone else is allowed.
    #[test]
    fn pf_auth_originator_check_table() {
        let strict = AuthPolicy {
            blocked: ["sip:spam@bad.example".to_owned()].into(),
            allow_anonymous: false,
            warn_agent: "pf.ims.example".into(),
        };
        let open = AuthPolicy::default();
        let rows = [
            (&strict, "sip:alice@ims.example", false, None),
            (
                &strict,
                "sip:spam@bad.example",
                false,
                Some("399 pf.ims.example \"Originator is not allowed to send to this user\""),
            ),
            (
                &strict,
                "sip:spam@bad.example",
                true,
                Some("399 pf.ims.example \"Originator is not allowed to send to this user\""),
            ),
            (
                &strict,
                "sip:alice@ims.example",
                true,
                Some("399 pf.ims.example \"Anonymous communication is not allowed\""),
            ),
            (&open, "sip:alice@ims.example", true, None),
            (&open, "sip:spam@bad.example", false, None),
        ];
        for (i, (policy, who, anon, want)) in rows.into_iter().enumerate() {
            let want = match want {
                None => AuthDecision::Allow,
                Some(w) => AuthDecision::Forbid {
                    status: 403,
                    warning: w.into(),
                },
            };
            assert_eq!(check_originator(policy, who, anon), want, "row {i}");
        }
    }
}
