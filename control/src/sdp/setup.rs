//! `a=setup` (RFC 4145 §4, as profiled for MSRP by RFC 6135 §4.2): who opens
//! the TCP connection of an MSRP leg.

/// Value of `a=setup`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// The endpoint opens the connection.
    Active,
    /// The endpoint waits for the connection.
    Passive,
    /// Either; only valid in an offer (RFC 4145 §4.1).
    Actpass,
    /// No connection now. An MSRP UA MUST NOT send it and MUST treat a
    /// received one as if no `a=setup` were present (RFC 6135 §4.2.1).
    Holdconn,
}

impl Setup {
    /// Parses the attribute value (case-sensitive, RFC 4145 §4 grammar).
    pub fn parse(value: &str) -> Option<Setup> {
        Some(match value.trim() {
            "active" => Setup::Active,
            "passive" => Setup::Passive,
            "actpass" => Setup::Actpass,
            "holdconn" => Setup::Holdconn,
            _ => return None,
        })
    }

    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Setup::Active => "active",
            Setup::Passive => "passive",
            Setup::Actpass => "actpass",
            Setup::Holdconn => "holdconn",
        }
    }
}

/// What an endpoint does with the TCP connection of a leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionRole {
    /// Opens the connection to the peer's first `a=path` hop.
    Connect,
    /// Accepts the peer's connection on the address in its own `a=path`.
    Listen,
}

/// Outcome of an `a=setup` negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The value the answerer puts in its answer (always explicit, RFC 6135
    /// §4.2.1: "MUST always include an explicit a=setup attribute in its SDP
    /// offers and answers").
    pub answer: Setup,
    /// What the offerer does.
    pub offerer: ConnectionRole,
    /// What the answerer does.
    pub answerer: ConnectionRole,
}

/// The `a=setup` an MSRP UA puts in an offer: `actpass` when it can receive
/// connections on a globally reachable address, else `active`; never
/// `passive` (RFC 6135 §4.2.2). The relay normally listens on a public
/// address, so its offers to devices say `actpass`: a device behind a NAT
/// answers `active` and connects out.
pub fn offer_setup(can_listen: bool) -> Setup {
    if can_listen {
        Setup::Actpass
    } else {
        Setup::Active
    }
}

/// Decides the answer's `a=setup` for an offer's (possibly absent) value.
///
/// - absent, or `holdconn` (which RFC 6135 §4.2.1 says to treat as absent):
///   the RFC 4975 §8.5 default holds, "the party that sent the original
///   offer is responsible for connecting", so the answerer is `passive`;
/// - `actpass`: the answerer SHOULD be `passive` if it is reachable and MAY
///   be `active` (RFC 6135 §4.2.2); `answerer_can_listen` picks;
/// - `active`: the answerer is `passive` (RFC 4145 §4.1);
/// - `passive`: not allowed in an MSRP offer (RFC 6135 §4.2.2), but RFC 4145
///   §4.1 leaves one answer, `active`; being liberal here lets a
///   non-conforming offerer still get a session.
pub fn negotiate_setup(offer: Option<Setup>, answerer_can_listen: bool) -> Negotiated {
    let answer = match offer {
        None | Some(Setup::Holdconn) | Some(Setup::Active) => Setup::Passive,
        Some(Setup::Actpass) if answerer_can_listen => Setup::Passive,
        Some(Setup::Actpass) | Some(Setup::Passive) => Setup::Active,
    };
    let answerer = if answer == Setup::Active {
        ConnectionRole::Connect
    } else {
        ConnectionRole::Listen
    };
    let offerer = match answerer {
        ConnectionRole::Connect => ConnectionRole::Listen,
        ConnectionRole::Listen => ConnectionRole::Connect,
    };
    Negotiated {
        answer,
        offerer,
        answerer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConnectionRole::{Connect, Listen};

    /// MSRP-ACM: the whole table, both ways (relay as answerer that can and
    /// cannot listen).
    #[test]
    fn msrp_acm_negotiation_table() {
        let table = [
            (None, true, Setup::Passive, Connect, Listen),
            (None, false, Setup::Passive, Connect, Listen),
            (Some(Setup::Holdconn), true, Setup::Passive, Connect, Listen),
            (Some(Setup::Active), true, Setup::Passive, Connect, Listen),
            (Some(Setup::Active), false, Setup::Passive, Connect, Listen),
            (Some(Setup::Actpass), true, Setup::Passive, Connect, Listen),
            (Some(Setup::Actpass), false, Setup::Active, Listen, Connect),
            (Some(Setup::Passive), true, Setup::Active, Listen, Connect),
            (Some(Setup::Passive), false, Setup::Active, Listen, Connect),
        ];
        for (offer, can_listen, answer, offerer, answerer) in table {
            let n = negotiate_setup(offer, can_listen);
            assert_eq!(
                n,
                Negotiated {
                    answer,
                    offerer,
                    answerer
                },
                "offer {offer:?}, answerer can listen: {can_listen}"
            );
            assert_ne!(n.answer, Setup::Actpass, "actpass is never an answer");
            assert_ne!(n.answer, Setup::Holdconn, "holdconn is never sent");
        }
    }

    #[test]
    fn msrp_acm_offer_never_says_passive() {
        assert_eq!(offer_setup(true), Setup::Actpass);
        assert_eq!(offer_setup(false), Setup::Active);
    }

    #[test]
    fn msrp_acm_values_round_trip() {
        for s in [
            Setup::Active,
            Setup::Passive,
            Setup::Actpass,
            Setup::Holdconn,
        ] {
            assert_eq!(Setup::parse(s.as_str()), Some(s));
        }
        assert_eq!(Setup::parse("ACTIVE"), None);
    }
}
