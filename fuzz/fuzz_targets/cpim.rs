//! Fuzz target `cpim`: a CPIM body (RFC 3862) as a device or the sender
//! sends it, with the IMDN XML (RFC 5438) inside when its content type says
//! so. `parse_cpim` must not panic; what it finds is bounded by the input
//! (no id or recipient longer than the body).

#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use libfuzzer_sys::fuzz_target;
use msrp_relay::fanout::imdn::parse_cpim;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = parse_cpim(data) else {
        return;
    };
    for s in m.to.iter().chain(m.from.iter()).chain(m.message_id.iter()) {
        assert!(s.len() <= data.len());
    }
    if let Some(n) = &m.notification {
        assert!(n.original_message_id.len() <= data.len());
        assert!(
            m.disposition.is_empty(),
            "an IMDN carries no request (RFC 5438 §7.2.1)"
        );
    }
});
