//! TLS for the loopback tests: a throw-away CA and leaf certificates made
//! with rcgen, and a tunnel that puts a test peer (plain `TcpStream`, see
//! [`super::peer`]) behind a real TLS connection to or from the relay.
//!
//! The tunnel is one thread per connection on `mio`: it moves plaintext
//! between the peer's socket and a rustls connection on the relay's
//! socket, and stops reading one side while the other has 64 KiB it could
//! not take, so a slow peer pushes back on the relay as over plain TCP.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;

use mio::{Events, Interest, Poll, Token};
use msrp_relay::io::{TlsContext, TlsFiles};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use rustls::{ClientConfig, Connection, RootCertStore, ServerConfig};

/// A CA and what it signed, on disk (the relay loads files).
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca_pem: String,
    ca: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
    /// The relay's leaf (for 127.0.0.1 and localhost).
    pub files: TlsFiles,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "msrp-relay test CA");
        let ca = p.self_signed(&ca_key).unwrap();
        let ca_pem = ca.pem();
        std::fs::write(dir.path().join("ca.pem"), &ca_pem).unwrap();
        let mut pki = Pki {
            dir,
            ca_pem,
            ca,
            ca_key,
            files: TlsFiles {
                cert: PathBuf::new(),
                key: PathBuf::new(),
                ca: None,
                verify_clients: false,
            },
        };
        let (cert, key) = pki.leaf("relay", &["127.0.0.1", "localhost"]);
        pki.files.cert = cert;
        pki.files.key = key;
        pki.files.ca = Some(pki.dir.path().join("ca.pem"));
        pki
    }

    /// A leaf signed by the CA for `names`, written as `{stem}.pem` and
    /// `{stem}.key`.
    pub fn leaf(&self, stem: &str, names: &[&str]) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut p = rcgen::CertificateParams::new(names).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, stem);
        let cert = p.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        let (c, k) = (
            self.dir.path().join(format!("{stem}.pem")),
            self.dir.path().join(format!("{stem}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    pub fn context(&self) -> TlsContext {
        TlsContext::load(&self.files).unwrap()
    }

    fn roots(&self) -> Arc<RootCertStore> {
        let mut r = RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            r.add(c.unwrap()).unwrap();
        }
        Arc::new(r)
    }

    /// A client trusting this CA; presents `client_cert` (`stem`) if given.
    pub fn client(&self, client_cert: Option<&str>) -> Arc<ClientConfig> {
        let b = ClientConfig::builder().with_root_certificates(self.roots());
        Arc::new(match client_cert {
            None => b.with_no_client_auth(),
            Some(stem) => {
                let (c, k) = self.leaf(stem, &["device.test.invalid"]);
                let chain = CertificateDer::pem_file_iter(c)
                    .unwrap()
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap();
                b.with_client_auth_cert(chain, PrivateKeyDer::from_pem_file(k).unwrap())
                    .unwrap()
            }
        })
    }

    /// A server (a device the relay connects to) with a leaf for `names`.
    pub fn server(&self, names: &[&str]) -> Arc<ServerConfig> {
        let (c, k) = self.leaf("device", names);
        let chain = CertificateDer::pem_file_iter(c)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        Arc::new(
            ServerConfig::builder()
                .with_no_client_auth()
                .with_single_cert(chain, PrivateKeyDer::from_pem_file(k).unwrap())
                .unwrap(),
        )
    }
}

/// A local plain address that, once connected to, is carried over TLS to
/// `relay` (the relay's TLS port): a peer connects here instead.
pub fn client_tunnel(relay: SocketAddr, cfg: Arc<ClientConfig>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let Ok((plain, _)) = l.accept() else { return };
        let Ok(sock) = TcpStream::connect(relay) else {
            return;
        };
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let conn = rustls::ClientConnection::new(cfg, name).unwrap();
        pump(plain, sock, conn.into());
    });
    addr
}

/// A TLS listener for the relay to connect to (the relay as active side);
/// the plaintext arrives on the returned stream's other end, given to
/// `peer` once the relay connected.
pub fn server_tunnel(cfg: Arc<ServerConfig>) -> (SocketAddr, std::sync::mpsc::Receiver<TcpStream>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok((sock, _)) = l.accept() else { return };
        let pair = TcpListener::bind("127.0.0.1:0").unwrap();
        let peer_end = TcpStream::connect(pair.local_addr().unwrap()).unwrap();
        let (plain, _) = pair.accept().unwrap();
        let _ = tx.send(peer_end);
        let conn = rustls::ServerConnection::new(cfg).unwrap();
        pump(plain, sock, conn.into());
    });
    (addr, rx)
}

const HIGH: usize = 64 << 10;
const PLAIN: Token = Token(0);
const SECURE: Token = Token(1);

/// Moves bytes until both directions ended or either side broke.
fn pump(plain: TcpStream, sock: TcpStream, mut tls: Connection) {
    plain.set_nonblocking(true).unwrap();
    sock.set_nonblocking(true).unwrap();
    let _ = plain.set_nodelay(true);
    let _ = sock.set_nodelay(true);
    let mut plain = mio::net::TcpStream::from_std(plain);
    let mut sock = mio::net::TcpStream::from_std(sock);
    let mut poll = Poll::new().unwrap();
    let both = Interest::READABLE | Interest::WRITABLE;
    poll.registry().register(&mut plain, PLAIN, both).unwrap();
    poll.registry().register(&mut sock, SECURE, both).unwrap();
    let mut events = Events::with_capacity(8);
    // Plaintext from the relay not yet written to the peer.
    let mut to_plain: Vec<u8> = Vec::new();
    let (mut plain_eof, mut tls_eof) = (false, false);
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let mut moved = true;
        while moved {
            moved = false;
            // Peer → TLS.
            while !plain_eof && !tls.wants_write() {
                match plain.read(&mut buf) {
                    Ok(0) => {
                        plain_eof = true;
                        tls.send_close_notify();
                    }
                    Ok(n) => {
                        if tls.writer().write_all(&buf[..n]).is_err() {
                            return;
                        }
                        moved = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => return,
                }
            }
            while tls.wants_write() {
                match tls.write_tls(&mut sock) {
                    Ok(_) => moved = true,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => return,
                }
            }
            // TLS → peer.
            while !tls_eof && to_plain.len() < HIGH {
                match tls.read_tls(&mut sock) {
                    Ok(0) => tls_eof = true,
                    Ok(_) => {
                        moved = true;
                        let Ok(st) = tls.process_new_packets() else {
                            let _ = tls.write_tls(&mut sock);
                            return;
                        };
                        let n = st.plaintext_bytes_to_read();
                        let at = to_plain.len();
                        to_plain.resize(at + n, 0);
                        tls.reader().read_exact(&mut to_plain[at..]).unwrap();
                        tls_eof |= st.peer_has_closed();
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => return,
                }
            }
            while !to_plain.is_empty() {
                match plain.write(&to_plain) {
                    Ok(n) => {
                        to_plain.drain(..n);
                        moved = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => return,
                }
            }
        }
        if tls_eof && to_plain.is_empty() {
            let _ = plain.shutdown(Shutdown::Write);
            if plain_eof && !tls.wants_write() {
                return;
            }
        }
        if plain_eof && !tls.wants_write() {
            let _ = sock.shutdown(Shutdown::Write);
            if tls_eof {
                return;
            }
        }
        if poll.poll(&mut events, None).is_err() {
            return;
        }
    }
}

/// A relay with a TLS listener beside the plain one.
pub fn tls_relay(
    driver: super::Driver,
    workers: usize,
    pki: &Pki,
    tweak: impl FnOnce(&mut msrp_relay::io::RelayConfig),
) -> msrp_relay::io::Relay {
    let ctx = pki.context();
    super::start_relay(driver, workers, |cfg| {
        cfg.tls = Some(msrp_relay::io::TlsListen {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            context: ctx,
            ktls: false,
        });
        tweak(cfg)
    })
}

/// A test peer's URI over `t`.
pub fn uri_over(name: &str, t: Transport) -> String {
    match t {
        Transport::Tcp => super::peer_uri(name),
        Transport::Tls => format!("msrps://{name}.test.invalid:2855/{name};tcp"),
    }
}

use msrp_relay::fanout::{LegId, SessionId, Setup, Transport};

/// Connects a peer to the relay over `t` (through a tunnel for TLS).
pub fn connect_over(
    relay: &msrp_relay::io::Relay,
    pki: &Pki,
    t: Transport,
    name: &str,
    relay_uri: &str,
    opts: super::PeerOpts,
) -> super::Peer {
    let addr = match t {
        Transport::Tcp => relay.local_addr(),
        Transport::Tls => client_tunnel(relay.tls_addr().unwrap(), pki.client(None)),
    };
    super::Peer::connect(name, addr, &uri_over(name, t), relay_uri, opts)
}

/// The sender over `t`, bound.
pub fn sender_over(
    relay: &msrp_relay::io::Relay,
    pki: &Pki,
    t: Transport,
    name: &str,
) -> (SessionId, super::Peer) {
    let h = relay.handle();
    let (leg, relay_uri) = h.create_session_on(name, t).unwrap();
    super::answer(&h, leg, &uri_over(name, t), Setup::Passive);
    let p = connect_over(relay, pki, t, name, &relay_uri, super::PeerOpts::default());
    let tid = p.send_bind();
    assert_eq!(p.response(&tid, super::WAIT), 200, "{name} bind");
    (leg.session, p)
}

/// Device leg `index` over `t`, answered, connected and bound.
pub fn device_over(
    relay: &msrp_relay::io::Relay,
    pki: &Pki,
    session: SessionId,
    index: u32,
    t: Transport,
    opts: super::PeerOpts,
) -> (LegId, super::Peer) {
    let name = format!("dev{index}");
    let h = relay.handle();
    let (leg, relay_uri) = h.add_leg_at_on(session, index, &name, t).unwrap();
    super::answer(&h, leg, &uri_over(&name, t), Setup::Passive);
    let p = connect_over(relay, pki, t, &name, &relay_uri, opts);
    let tid = p.send_bind();
    assert_eq!(p.response(&tid, super::WAIT), 200, "{name} bind");
    (leg, p)
}
