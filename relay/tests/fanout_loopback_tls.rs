//! MSRP over TLS (`msrps:`, RFC 4975 §14) on both drivers, over real
//! loopback sockets: fan-out, late accept, a slow device and chat with
//! every device's bytes checked by SHA-256; TLS and plain legs mixed in
//! one session both ways; the relay as the active side (RFC 6135) over
//! TLS; and the connections that must be closed alone — plain MSRP on the
//! TLS port, a client that does not trust the relay, a missing client
//! certificate, a TLS leg named over plain TCP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use msrp_relay::fanout::{SessionId, Setup, Transport};
use msrp_relay::io::Relay;
use support::tls::*;
use support::*;

const TLS: Transport = Transport::Tls;
const TCP: Transport = Transport::Tcp;

fn check_file(d: &Peer, mid: &str, body: &[u8]) {
    d.wait("the whole file", WAIT, |s| {
        s.msg(mid).is_some_and(|m| m.digest.is_some())
    });
    let st = d.state();
    let m = st.msg(mid).unwrap();
    assert_eq!(m.len, body.len() as u64, "{}", d.name);
    assert_eq!(m.digest, Some(sha256_hex(body)), "{}", d.name);
    assert!(st.errors.is_empty(), "{}: {:?}", d.name, st.errors);
}

/// A relay with a TLS port (`workers` workers) and a bound sender over `up`.
fn with_sender(d: Driver, workers: usize, up: Transport) -> (Pki, Relay, SessionId, Peer) {
    let pki = Pki::new();
    let relay = tls_relay(d, workers, &pki, |_| {});
    let (session, snd) = sender_over(&relay, &pki, up, "sender");
    (pki, relay, session, snd)
}

/// The sender sends `len` bytes (64 KiB chunks, all answered 200); each
/// device gets them whole.
fn send_and_check(snd: &Peer, len: usize, seed: u64, devs: &[&Peer]) {
    let body = file(len, seed);
    let codes = send_file(snd, "file-f", &body, 64 << 10);
    assert!(codes.iter().all(|&c| c == 200), "sender got {codes:?}");
    for d in devs {
        check_file(d, "file-f", &body);
    }
}

/// A sender over `up` fans a file out to devices over `downs`.
fn fan_out(driver: Driver, up: Transport, downs: &[Transport], size: usize, chunk: usize) {
    let pki = Pki::new();
    let relay = tls_relay(driver, 2, &pki, |c| {
        c.tls.as_mut().unwrap().ktls = true;
    });
    let (session, snd) = sender_over(&relay, &pki, up, "sender");
    let devs: Vec<Peer> = downs
        .iter()
        .enumerate()
        .map(|(i, &t)| device_over(&relay, &pki, session, i as u32 + 1, t, PeerOpts::default()).1)
        .collect();
    let body = file(size, size as u64 ^ 0x7e5);
    let codes = send_file(&snd, "file-1", &body, chunk);
    assert!(codes.iter().all(|&c| c == 200), "sender got {codes:?}");
    for d in &devs {
        check_file(d, "file-1", &body);
    }
    relay.shutdown(Duration::from_secs(5));
}

/// The kernel-TLS probe runs at start (`ktls = true`); on a kernel
/// without the `tls` ULP the relay falls back to rustls and serves.
#[test]
fn msrps_fan_out_1_to_3_tls_everywhere_sha256_ktls_fallback() {
    for d in drivers() {
        fan_out(d, TLS, &[TLS, TLS, TLS], 2 << 20, 64 << 10);
    }
}

#[test]
fn msrps_mixed_plain_sender_to_tls_and_plain_devices() {
    for d in drivers() {
        fan_out(d, TCP, &[TLS, TCP, TLS], 1 << 20, 16 << 10);
    }
}

#[test]
fn msrps_mixed_tls_sender_to_plain_devices() {
    for d in drivers() {
        fan_out(d, TLS, &[TCP, TCP], 1 << 20, 1 << 20);
    }
}

/// CPM-MLD-020 over TLS: a device that accepts after the whole file went
/// through still gets all of it.
#[test]
fn cpm_mld_020_msrps_late_accept_gets_whole_file() {
    for d in drivers() {
        let (pki, relay, session, snd) = with_sender(d, 2, TLS);
        let (_, early) = device_over(&relay, &pki, session, 1, TLS, PeerOpts::default());
        let h = relay.handle();
        let (late_leg, late_uri) = h.add_leg_at_on(session, 2, "dev2", TLS).unwrap();
        send_and_check(&snd, 1 << 20, 20, &[&early]);
        answer(&h, late_leg, &uri_over("dev2", TLS), Setup::Passive);
        let late = connect_over(&relay, &pki, TLS, "dev2", &late_uri, PeerOpts::default());
        let tid = late.send_bind();
        assert_eq!(late.response(&tid, WAIT), 200);
        check_file(&late, "file-f", &file(1 << 20, 20));
        relay.shutdown(Duration::from_secs(5));
    }
}

/// A device reading at 1 MB/s over TLS pushes back through the tunnel and
/// the relay's TLS layer; it still gets every byte, and so do the others.
#[test]
fn pf_lmm_send_msrps_slow_device_gets_every_byte() {
    for d in drivers() {
        let (pki, relay, session, snd) = with_sender(d, 1, TLS);
        let slow_opts = PeerOpts {
            rate: Some(1_000_000),
            rcvbuf: Some(16 << 10),
            ..PeerOpts::default()
        };
        let (_, slow) = device_over(&relay, &pki, session, 1, TLS, slow_opts);
        let (_, fast) = device_over(&relay, &pki, session, 2, TLS, PeerOpts::default());
        send_and_check(&snd, 2 << 20, 33, &[&fast, &slow]);
        relay.shutdown(Duration::from_secs(5));
    }
}

#[test]
fn msrps_chat_in_order_to_every_device() {
    for d in drivers() {
        let (pki, relay, session, snd) = with_sender(d, 2, TLS);
        let devs: Vec<Peer> = [TLS, TCP]
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                device_over(&relay, &pki, session, i as u32 + 1, t, PeerOpts::default()).1
            })
            .collect();
        let texts: Vec<String> = (0..3).map(|i| format!("line {i} over TLS")).collect();
        for (i, t) in texts.iter().enumerate() {
            let tids = snd.send_message(
                &format!("msg-{i}"),
                "text/plain",
                t.as_bytes(),
                1024,
                |_| {},
            );
            for tid in tids {
                assert_eq!(snd.response(&tid, WAIT), 200);
            }
        }
        for d in &devs {
            d.wait("three texts", WAIT, |s| s.texts("text/plain").len() == 3);
            assert_eq!(d.state().texts("text/plain"), texts, "{}", d.name);
        }
        relay.shutdown(Duration::from_secs(5));
    }
}

/// RFC 6135 active side over TLS: the device offered `a=setup:passive`
/// with an `msrps:` path; the relay connects, verifies the device's
/// certificate against the CA bundle for the path's host, and binds with
/// a bodiless SEND (RFC 4975 §5.4).
#[test]
fn msrps_relay_active_side_connects_verifies_and_delivers() {
    for d in drivers() {
        let (pki, relay, session, snd) = with_sender(d, 2, TCP);
        let (addr, accepted) = server_tunnel(pki.server(&["127.0.0.1"]));
        let h = relay.handle();
        let (leg, relay_uri) = h.add_leg_at_on(session, 1, "dev1", TLS).unwrap();
        let dev_uri = format!("msrps://127.0.0.1:{}/dev1;tcp", addr.port());
        answer(&h, leg, &dev_uri, Setup::Active(addr));
        let stream = accepted.recv_timeout(WAIT).unwrap();
        let dev = Peer::from_stream("dev1", stream, &dev_uri, &relay_uri, PeerOpts::default());
        send_and_check(&snd, 512 << 10, 61, &[&dev]);
        relay.shutdown(Duration::from_secs(5));
    }
}

/// Reads until EOF or a reset: the relay closed the connection.
fn closed_by_relay(mut s: TcpStream) -> bool {
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut b = [0u8; 4096];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
}

/// Plain MSRP on the TLS port, a TLS client that does not trust the
/// relay's certificate, and a TLS leg named over the plain port are each
/// refused and closed; a TLS session already running is untouched.
#[test]
fn msrps_bad_clients_are_closed_alone() {
    for d in drivers() {
        let (pki, relay, session, snd) = with_sender(d, 1, TLS);
        let (_, dev) = device_over(&relay, &pki, session, 1, TLS, PeerOpts::default());
        let tls_addr = relay.tls_addr().unwrap();

        // 1. Plain MSRP on the TLS port.
        let mut plain = TcpStream::connect(tls_addr).unwrap();
        plain
            .write_all(b"MSRP a1 SEND\r\nTo-Path: msrps://127.0.0.1/x;tcp\r\nFrom-Path: msrp://e/y;tcp\r\nMessage-ID: 1\r\n-------a1$\r\n")
            .unwrap();
        assert!(closed_by_relay(plain), "plain MSRP on the TLS port");

        // 2. A client trusting another CA: its handshake fails.
        let other = Pki::new();
        let via = client_tunnel(tls_addr, other.client(None));
        let s = TcpStream::connect(via).unwrap();
        assert!(closed_by_relay(s), "untrusted certificate");

        // 3. The TLS leg of a device, named over plain TCP: 481.
        let h = relay.handle();
        let (leg, relay_uri) = h.add_leg_at_on(session, 2, "dev2", TLS).unwrap();
        answer(&h, leg, &uri_over("dev2", TLS), Setup::Passive);
        let p = Peer::connect(
            "dev2",
            relay.local_addr(),
            &uri_over("dev2", TLS),
            &relay_uri,
            PeerOpts::default(),
        );
        let tid = p.send_bind();
        assert_eq!(p.response(&tid, WAIT), 481, "a TLS leg over plain TCP");

        // The running session still delivers.
        send_and_check(&snd, 256 << 10, 9, &[&dev]);
        relay.shutdown(Duration::from_secs(5));
    }
}

/// `verify_clients`: a device without a certificate from the CA is
/// closed in the handshake; one with it binds and receives.
#[test]
fn msrps_client_certificates_are_required_and_verified() {
    for d in drivers() {
        let mut pki = Pki::new();
        pki.files.verify_clients = true;
        let relay = tls_relay(d, 1, &pki, |_| {});
        let tls_addr = relay.tls_addr().unwrap();
        let s = TcpStream::connect(client_tunnel(tls_addr, pki.client(None))).unwrap();
        assert!(closed_by_relay(s), "no client certificate");

        let h = relay.handle();
        let (leg, relay_uri) = h.create_session_on("sender", TLS).unwrap();
        answer(&h, leg, &uri_over("sender", TLS), Setup::Passive);
        let via = client_tunnel(tls_addr, pki.client(Some("sender-cert")));
        let snd = Peer::connect(
            "sender",
            via,
            &uri_over("sender", TLS),
            &relay_uri,
            PeerOpts::default(),
        );
        let tid = snd.send_bind();
        assert_eq!(snd.response(&tid, WAIT), 200, "with a client certificate");
        relay.shutdown(Duration::from_secs(5));
    }
}

/// The subject of the certificate a fresh handshake with the relay sees.
fn presented_subject(pki: &Pki, addr: std::net::SocketAddr) -> Vec<u8> {
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut c = rustls::ClientConnection::new(pki.client(None), name).unwrap();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    while c.is_handshaking() {
        c.complete_io(&mut s).unwrap();
    }
    c.peer_certificates().unwrap()[0].to_vec()
}

/// A reload swaps the certificate new handshakes get; a TLS session that
/// was up before goes on delivering.
#[test]
fn msrps_certificate_reload_keeps_live_connections() {
    for d in drivers() {
        let (pki, relay, session, snd) = with_sender(d, 1, TLS);
        let (_, dev) = device_over(&relay, &pki, session, 1, TLS, PeerOpts::default());
        let tls_addr = relay.tls_addr().unwrap();
        let before = presented_subject(&pki, tls_addr);
        let (cert, key) = pki.leaf("relay-renewed", &["127.0.0.1"]);
        let renewed = msrp_relay::io::TlsFiles {
            cert: cert.clone(),
            key,
            ..pki.files.clone()
        };
        let ctx = relay.tls_context().unwrap();
        assert!(ctx.reload(&renewed).unwrap().is_empty());
        let after = presented_subject(&pki, tls_addr);
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        let renewed_der = CertificateDer::from_pem_file(&cert).unwrap();
        assert_ne!(before, after, "a new certificate after the reload");
        assert_eq!(
            after,
            renewed_der.to_vec(),
            "the renewed certificate is presented"
        );
        send_and_check(&snd, 256 << 10, 5, &[&dev]);
        relay.shutdown(Duration::from_secs(5));
    }
}
