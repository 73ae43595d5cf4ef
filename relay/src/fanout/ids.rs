//! The identities the relay mints: the session-ids in its own MSRP URIs
//! (RFC 4975 §14.1: at least 80 bits of randomness; these carry 96) and
//! the URIs themselves. Minted by the engine, or ahead of it by a control
//! handle that wants no round trip to the worker.

use super::types::{EngineConfig, EngineError, Transport};

/// Digits and letters, for transaction-id prefixes and Message-IDs.
pub(crate) const ALNUM: &[u8; 62] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `N` random bytes from the kernel (getrandom(2)).
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    if getrandom::fill(&mut b).is_err() {
        // getrandom(2) does not fail on Linux ≥ 3.17 once seeded; if it
        // ever does, fall back to the clock rather than stop the relay.
        // Session ids then lose unpredictability, which the log says.
        tracing::error!("getrandom failed; session ids are predictable");
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        for (i, x) in b.iter_mut().enumerate() {
            *x = (t >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(151);
        }
    }
    b
}

/// A fresh session-id for worker `worker`: its index in two hex digits
/// (so a connection accepted by another worker can be handed over), then
/// 96 random bits in hex.
pub fn mint_session_id(worker: u8) -> String {
    let rnd: [u8; 12] = random_bytes();
    let mut sid = String::with_capacity(26);
    for b in std::iter::once(worker).chain(rnd) {
        sid.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        sid.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    sid
}

/// The relay's URI for a leg whose session-id is `sid`: `msrp:` on the
/// plain port (`msrps:` there when TLS is terminated in front,
/// [`EngineConfig::secure`]), `msrps:` on the TLS port for a
/// [`Transport::Tls`] leg; [`EngineError::NoTls`] without a TLS port.
pub fn local_uri(
    cfg: &EngineConfig,
    sid: &str,
    transport: Transport,
) -> Result<String, EngineError> {
    let (scheme, port) = match transport {
        Transport::Tcp => (if cfg.secure { "msrps" } else { "msrp" }, cfg.port),
        Transport::Tls => ("msrps", cfg.tls_port.ok_or(EngineError::NoTls)?),
    };
    Ok(format!("{scheme}://{}:{port}/{sid};tcp", cfg.host))
}

/// A leg's transaction-id prefix, taken from its session-id's random part
/// (tids need uniqueness within the leg, not secrecy).
pub(crate) fn tid_prefix(sid: &str) -> [u8; 4] {
    let b = sid.as_bytes();
    [2, 3, 4, 5].map(|i| {
        b.get(i)
            .copied()
            .filter(u8::is_ascii_alphanumeric)
            .unwrap_or(b'x')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_carry_the_worker_and_96_random_bits() {
        let a = mint_session_id(0x2a);
        let b = mint_session_id(0x2a);
        assert_eq!(a.len(), 26);
        assert!(a.starts_with("2a") && b.starts_with("2a"));
        assert_ne!(a, b);
        assert_eq!(crate::fanout::Engine::worker_of(a.as_bytes()), Some(0x2a));
        let uri = local_uri(&EngineConfig::default(), &a, Transport::Tcp).unwrap();
        assert!(crate::msrp::MsrpUri::parse(uri.into()).is_ok());
        assert!(crate::msrp::header::is_ident(&tid_prefix(&a)));
    }

    #[test]
    fn tls_legs_get_msrps_uris_on_the_tls_port_or_an_error() {
        let mut cfg = EngineConfig::default();
        assert_eq!(
            local_uri(&cfg, "ab", Transport::Tls),
            Err(EngineError::NoTls)
        );
        cfg.tls_port = Some(2856);
        let u = local_uri(&cfg, "ab", Transport::Tls).unwrap();
        assert_eq!(u, "msrps://127.0.0.1:2856/ab;tcp");
        assert!(crate::msrp::MsrpUri::parse(u.into()).unwrap().is_secure());
        assert_eq!(
            local_uri(&cfg, "ab", Transport::Tcp).unwrap(),
            "msrp://127.0.0.1:2855/ab;tcp"
        );
    }
}
