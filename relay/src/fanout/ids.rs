//! The identities the relay mints: the session-ids in its own MSRP URIs
//! (RFC 4975 §14.1: at least 80 bits of randomness; these carry 96) and
//! the URIs themselves. Minted by the engine, or ahead of it by a control
//! handle that wants no round trip to the worker.

use super::types::EngineConfig;

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

/// The relay's URI for a leg whose session-id is `sid`.
pub fn local_uri(cfg: &EngineConfig, sid: &str) -> String {
    format!(
        "{}://{}:{}/{};tcp",
        if cfg.secure { "msrps" } else { "msrp" },
        cfg.host,
        cfg.port,
        sid
    )
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
        let uri = local_uri(&EngineConfig::default(), &a);
        assert!(crate::msrp::MsrpUri::parse(uri.into()).is_ok());
        assert!(crate::msrp::header::is_ident(&tid_prefix(&a)));
    }
}
