//! [`super::TlsStream`] against an in-process rustls server with the
//! generated leaf.

use std::io::{IoSlice, Read, Write};
use std::net::{Shutdown, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::*;

const WAIT: Duration = Duration::from_secs(10);

fn server_config(pki: &Pki) -> Arc<ServerConfig> {
    let chain = CertificateDer::pem_file_iter(&pki.cert)
        .unwrap()
        .collect::<std::result::Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&pki.key).unwrap();
    Arc::new(
        ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap(),
    )
}

/// A TLS server that echoes what it reads, then sends `close_notify`
/// once the client half-closed.
fn echo_server(pki: &Pki) -> (SocketAddr, JoinHandle<u64>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let cfg = server_config(pki);
    let h = std::thread::spawn(move || {
        let (sock, _) = l.accept().unwrap();
        let mut s = StreamOwned::new(ServerConnection::new(cfg).unwrap(), sock);
        let mut buf = vec![0u8; 32 << 10];
        let mut total = 0u64;
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    s.write_all(&buf[..n]).unwrap();
                    total += n as u64;
                }
                Err(_) => break,
            }
        }
        s.conn.send_close_notify();
        let _ = s.flush();
        total
    });
    (addr, h)
}

fn connect_tls(addr: SocketAddr, cfg: &Arc<ClientConfig>) -> std::io::Result<TlsStream> {
    TlsStream::handshake(TcpStream::connect(addr).unwrap(), addr, cfg, WAIT)
}

/// A writer sends 4 MiB in vectored writes of uneven pieces while a
/// reader thread on a clone reads the echo: every byte comes back in
/// order, and the server's `close_notify` ends the reader with `Ok(0)`.
#[test]
fn concurrent_reader_and_writer_see_every_byte() {
    let pki = Pki::generate().unwrap();
    let (addr, server) = echo_server(&pki);
    let mut w = connect_tls(addr, &pki.client).unwrap();
    let mut r = w.try_clone().unwrap();
    assert!(w.describe().ends_with(" X25519"), "{}", w.describe());
    assert!(
        w.describe().starts_with("TLSv1_3 TLS13_"),
        "{}",
        w.describe()
    );
    let data = crate::peer::make_file(4 << 20);
    let want = data.clone();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 100_000];
        loop {
            match r.read(&mut buf).unwrap() {
                0 => return got,
                n => got.extend_from_slice(&buf[..n]),
            }
        }
    });
    let mut at = 0;
    let mut k = 0usize;
    while at < data.len() {
        let (a, b) = (7 + k % 300, 65536 + k % 5000);
        let end = (at + a + b + 3).min(data.len());
        let m1 = (at + a).min(end);
        let m2 = (m1 + b).min(end);
        let mut iov = [
            IoSlice::new(&data[at..m1]),
            IoSlice::new(&data[m1..m2]),
            IoSlice::new(&data[m2..end]),
        ];
        crate::net::write_all_vectored(&mut w, &mut iov).unwrap();
        at = end;
        k += 1;
    }
    w.shutdown(Shutdown::Write).unwrap();
    let got = reader.join().unwrap();
    assert_eq!(server.join().unwrap(), data.len() as u64);
    assert_eq!(got.len(), want.len());
    assert!(got == want[..], "the echo differs");
}

/// The group offered first is the one negotiated.
#[test]
fn the_first_offered_group_is_negotiated() {
    let pki = Pki::generate().unwrap();
    for (kx, name) in [(Kx::P256, "secp256r1"), (Kx::P384, "secp384r1")] {
        let (addr, _server) = echo_server(&pki);
        let cfg = client_config_file(&pki.ca, kx).unwrap();
        let s = connect_tls(addr, &cfg).unwrap();
        assert!(s.describe().ends_with(name), "{}", s.describe());
    }
}

/// A client that does not trust the relay's CA fails the handshake.
#[test]
fn untrusted_certificate_fails_the_handshake() {
    let pki = Pki::generate().unwrap();
    let other = Pki::generate().unwrap();
    let (addr, _server) = echo_server(&pki);
    let e = connect_tls(addr, &other.client).unwrap_err();
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
}

#[test]
fn relay_section_names_the_files() {
    let pki = Pki::generate().unwrap();
    let t: toml::Table = pki.relay_toml().parse().unwrap();
    let tls = t["tls"].as_table().unwrap();
    assert_eq!(tls["listen"].as_str(), Some("127.0.0.1:0"));
    for (k, p) in [("cert", &pki.cert), ("key", &pki.key), ("ca", &pki.ca)] {
        let v = tls[k].as_str().unwrap();
        assert_eq!(Path::new(v), p.as_path());
        assert!(p.exists(), "{k}");
    }
    assert!(client_config(b"not pem", Kx::X25519).is_err());
    assert!(client_config_file(&pki.ca, Kx::P384).is_ok());
    assert_eq!((scheme(true), scheme(false)), ("msrps", "msrp"));
}
