//! PF-LMM-SEND over real loopback sockets: one sender, N devices, every
//! device receives the sender's file byte for byte (SHA-256), whatever the
//! sender's chunk size.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::*;

/// One sender → `n` devices; `size` bytes sent in `chunk`-byte SENDs.
fn one_to_n(driver: Driver, n: usize, size: usize, chunk: usize) {
    let relay = start_relay(driver, 2, |_| {});
    let (session, snd) = sender(&relay, "sender");
    let devs: Vec<_> = devices(&relay, session, n, PeerOpts::default());
    let devs: Vec<_> = devs.into_iter().map(|(_, p)| p).collect();
    let body = file(size, n as u64 * 7919 + chunk as u64);
    let digest = sha256_hex(&body);
    let codes = send_file(&snd, "file-1", &body, chunk);
    assert!(codes.iter().all(|&c| c == 200), "sender got {codes:?}");
    for d in &devs {
        d.wait("the whole file", WAIT, |s| {
            s.msg("file-1").is_some_and(|m| m.digest.is_some())
        });
        let st = d.state();
        let m = st.msg("file-1").unwrap();
        assert_eq!(m.len, size as u64, "{}", d.name);
        assert_eq!(m.digest.as_deref(), Some(digest.as_str()), "{}", d.name);
        assert!(st.errors.is_empty(), "{}: {:?}", d.name, st.errors);
    }
    assert!(snd.state().reports.is_empty(), "sender got REPORTs");
    relay.shutdown(std::time::Duration::from_secs(5));
}

#[test]
fn pf_lmm_send_1_to_n_sha256_n1_64k_chunks() {
    for d in drivers() {
        one_to_n(d, 1, 2 << 20, 64 << 10);
    }
}

#[test]
fn pf_lmm_send_1_to_n_sha256_n3_2k_chunks() {
    for d in drivers() {
        one_to_n(d, 3, 512 << 10, 2 << 10);
    }
}

#[test]
fn pf_lmm_send_1_to_n_sha256_n3_1m_chunks() {
    for d in drivers() {
        one_to_n(d, 3, 4 << 20, 1 << 20);
    }
}

#[test]
fn pf_lmm_send_1_to_n_sha256_n100_64k_chunks() {
    for d in drivers() {
        one_to_n(d, 100, 1 << 20, 64 << 10);
    }
}

#[test]
fn pf_lmm_send_1_to_n_sha256_n1000_64k_chunks() {
    for d in drivers() {
        one_to_n(d, 1000, 256 << 10, 64 << 10);
    }
}
