//! The identities the relay mints: the session-ids in its own MSRP URIs
//! (RFC 4975 §14.1: at least 80 bits of randomness; these carry 96) and
//! the URIs themselves. Minted by the engine, or ahead of it by a control
//! handle that wants no round trip to the worker.

use super::types::{EngineConfig, EngineError, Transport};

/// Digits and letters, for transaction-id prefixes and Message-IDs.
pub(crate) const ALNUM: &[u8; 62] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Where random identities come from (see [`EngineConfig::id_seed`]).
#[derive(Debug, Clone)]
pub enum IdSource {
    /// The kernel's source (getrandom(2)).
    Os,
    /// A deterministic generator (splitmix64) in this state: tests only.
    Seeded(u64),
}

impl IdSource {
    /// The kernel's source, once it has answered; or a seeded one.
    pub fn new(seed: Option<u64>) -> Result<IdSource, EngineError> {
        match seed {
            Some(s) => Ok(IdSource::Seeded(s)),
            None => {
                let mut probe = [0u8; 16];
                getrandom::fill(&mut probe).map_err(|e| EngineError::Random(e.to_string()))?;
                Ok(IdSource::Os)
            }
        }
    }

    /// `N` random bytes; an error if the kernel's source fails (it does
    /// not on Linux ≥ 3.17 once seeded; if it ever does, no id is minted
    /// rather than a predictable one).
    pub fn bytes<const N: usize>(&mut self) -> Result<[u8; N], EngineError> {
        let mut b = [0u8; N];
        match self {
            IdSource::Os => {
                getrandom::fill(&mut b).map_err(|e| EngineError::Random(e.to_string()))?;
            }
            IdSource::Seeded(state) => {
                for chunk in b.chunks_mut(8) {
                    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                    let mut z = *state;
                    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                    z ^= z >> 31;
                    chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
                }
            }
        }
        Ok(b)
    }
}

/// A fresh session-id for worker `worker`: its index in two hex digits
/// (so a connection accepted by another worker can be handed over), then
/// 96 random bits in hex.
pub fn mint_session_id(worker: u8, src: &mut IdSource) -> Result<String, EngineError> {
    let rnd: [u8; 12] = src.bytes()?;
    let mut sid = String::with_capacity(26);
    for b in std::iter::once(worker).chain(rnd) {
        sid.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        sid.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    Ok(sid)
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
        let mut os = IdSource::new(None).unwrap();
        let a = mint_session_id(0x2a, &mut os).unwrap();
        let b = mint_session_id(0x2a, &mut os).unwrap();
        assert_eq!(a.len(), 26);
        assert!(a.starts_with("2a") && b.starts_with("2a"));
        assert_ne!(a, b);
        assert_eq!(crate::fanout::Engine::worker_of(a.as_bytes()), Some(0x2a));
        let uri = local_uri(&EngineConfig::default(), &a, Transport::Tcp).unwrap();
        assert!(crate::msrp::MsrpUri::parse(uri.into()).is_ok());
        assert!(crate::msrp::header::is_ident(&tid_prefix(&a)));
    }

    #[test]
    fn a_seeded_source_repeats_itself_and_still_differs_id_to_id() {
        let run = || {
            let mut s = IdSource::new(Some(7)).unwrap();
            [0, 1].map(|_| mint_session_id(3, &mut s).unwrap())
        };
        let (x, y) = (run(), run());
        assert_eq!(x, y);
        assert_ne!(x[0], x[1]);
        let mut other = IdSource::new(Some(8)).unwrap();
        assert_ne!(mint_session_id(3, &mut other).unwrap(), x[0]);
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
