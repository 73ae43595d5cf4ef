//! MSRP over TLS for the tool's peers (`--tls`): a throw-away CA and a
//! relay leaf for 127.0.0.1 made with rcgen, the relay's `[tls]` section
//! pointing at them, and the client side of a TLS connection on a blocking
//! socket ([`TlsStream`]) that the peers read and write like a
//! `TcpStream` (see [`crate::wire::Wire`]).
//!
//! [`TlsStream`] splits one rustls client connection between a reader
//! thread and writers, as `TcpStream::try_clone` does for plain TCP:
//! - the reader reads ciphertext from the socket with no lock held, then
//!   decrypts it under the connection's lock;
//! - a writer encrypts under the connection's lock into a buffer, then
//!   writes that buffer to the socket holding only the write lock (so a
//!   writer blocked on a full socket never stops the reader, as with two
//!   halves of a plain socket).

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};

use crate::error::{LoadError, Result};
use crate::sync::lock;

/// Ciphertext (and plaintext) rustls may buffer per connection: a whole
/// 64 KiB chunk with its head is encrypted in one write.
const BUFFER_LIMIT: usize = 256 << 10;

/// `msrps` with TLS, `msrp` without: the scheme of the tool's URIs.
pub fn scheme(tls: bool) -> &'static str {
    if tls { "msrps" } else { "msrp" }
}

fn provider() -> Arc<CryptoProvider> {
    // The relay's provider (see relay/src/io/tls/config.rs): ring.
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The key exchange group a client offers first (its key share). rustls's
/// ring provider lists P-384 first; phones and browsers offer X25519.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Kx {
    /// X25519 (what phones and browsers offer first).
    #[default]
    X25519,
    /// NIST P-256.
    P256,
    /// NIST P-384 (rustls's ring default).
    P384,
}

/// The ring provider with `first` offered first, the others after it.
fn client_provider(first: Kx) -> Arc<CryptoProvider> {
    #[allow(deprecated)]
    use rustls::crypto::ring::kx_group::{SECP256R1, SECP384R1, X25519};
    let lead = match first {
        Kx::X25519 => X25519,
        Kx::P256 => SECP256R1,
        Kx::P384 => SECP384R1,
    };
    let mut p = (*provider()).clone();
    p.kx_groups = std::iter::once(lead)
        .chain(
            [X25519, SECP256R1, SECP384R1]
                .into_iter()
                .filter(|g| g.name() != lead.name()),
        )
        .collect();
    Arc::new(p)
}

fn tls_err(what: &str, e: impl std::fmt::Display) -> LoadError {
    LoadError::Args(format!("TLS {what}: {e}"))
}

/// A client configuration trusting the CAs in the PEM text `ca_pem`,
/// offering `kx` first. Resumption is off: every leg makes a full
/// handshake, as devices that each connect once do.
pub fn client_config(ca_pem: &[u8], kx: Kx) -> Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem) {
        roots
            .add(c.map_err(|e| tls_err("CA", e))?)
            .map_err(|e| tls_err("CA", e))?;
    }
    if roots.is_empty() {
        return Err(tls_err("CA", "no CERTIFICATE section"));
    }
    let mut cfg = ClientConfig::builder_with_provider(client_provider(kx))
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("client", e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.resumption = Resumption::disabled();
    Ok(Arc::new(cfg))
}

/// [`client_config`] from a PEM file (a running relay's CA, `--tls-ca`).
pub fn client_config_file(ca: &Path, kx: Kx) -> Result<Arc<ClientConfig>> {
    let pem = std::fs::read(ca).map_err(|e| tls_err(&ca.display().to_string(), e))?;
    client_config(&pem, kx)
}

/// A throw-away CA and the relay's leaf (127.0.0.1, localhost) in a
/// temporary directory, removed on drop.
#[derive(Debug)]
pub struct Pki {
    /// CA bundle.
    pub ca: PathBuf,
    /// The relay's certificate chain.
    pub cert: PathBuf,
    /// The relay's key.
    pub key: PathBuf,
    /// A client trusting the CA (offering X25519 first).
    pub client: Arc<ClientConfig>,
    _dir: tempfile::TempDir,
}

impl Pki {
    /// Generates the CA and the leaf and writes them as PEM files.
    pub fn generate() -> Result<Pki> {
        let e = |e: rcgen::Error| tls_err("certificate", e);
        let dir = tempfile::Builder::new()
            .prefix("msrp-load-tls-")
            .tempdir()
            .map_err(|e| tls_err("directory", e))?;
        let ca_key = rcgen::KeyPair::generate().map_err(e)?;
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(e)?;
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "msrp-load throw-away CA");
        let ca = p.self_signed(&ca_key).map_err(e)?;
        let key = rcgen::KeyPair::generate().map_err(e)?;
        let mut p = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
            .map_err(e)?;
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "msrp-relay under load");
        let leaf = p.signed_by(&key, &ca, &ca_key).map_err(e)?;
        let path = |n: &str| dir.path().join(n);
        let write = |p: &Path, text: &str| {
            std::fs::write(p, text).map_err(|e| tls_err(&p.display().to_string(), e))
        };
        write(&path("ca.pem"), &ca.pem())?;
        write(&path("relay.pem"), &leaf.pem())?;
        write(&path("relay.key"), &key.serialize_pem())?;
        Ok(Pki {
            client: client_config(ca.pem().as_bytes(), Kx::default())?,
            ca: path("ca.pem"),
            cert: path("relay.pem"),
            key: path("relay.key"),
            _dir: dir,
        })
    }

    /// The relay's `[tls]` section: a TLS listener on a free loopback
    /// port with this leaf.
    pub fn relay_toml(&self) -> String {
        let s = |p: &Path| toml::Value::String(p.display().to_string());
        format!(
            "[tls]\nlisten = \"127.0.0.1:0\"\ncert = {}\nkey = {}\nca = {}\n",
            s(&self.cert),
            s(&self.key),
            s(&self.ca)
        )
    }
}

struct Shared {
    conn: Mutex<ClientConnection>,
    /// The write buffer; held across encrypting and writing so records go
    /// out in the order they were sealed. Taken before `conn`.
    out: Mutex<Vec<u8>>,
}

/// A client TLS connection on a blocking socket; clones share it (one
/// reader, any number of writers).
pub struct TlsStream {
    /// Shared by the clones: one descriptor per connection (a `dup` per
    /// clone would double the load tool's descriptors at 10,000 legs).
    sock: Arc<TcpStream>,
    shared: Arc<Shared>,
    /// Ciphertext read from the socket, `raw[at..end]` not yet given to
    /// rustls (the reader's own; clones start empty).
    raw: Vec<u8>,
    at: usize,
    end: usize,
}

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("sock", &self.sock)
            .finish_non_exhaustive()
    }
}

impl TlsStream {
    /// Makes the handshake on `sock` (connected to `addr`, whose IP the
    /// relay's certificate must name), waiting at most `wait`.
    pub fn handshake(
        sock: TcpStream,
        addr: SocketAddr,
        cfg: &Arc<ClientConfig>,
        wait: Duration,
    ) -> io::Result<TlsStream> {
        let name = ServerName::IpAddress(addr.ip().into());
        let mut conn = ClientConnection::new(cfg.clone(), name).map_err(io::Error::other)?;
        conn.set_buffer_limit(Some(BUFFER_LIMIT));
        let old = sock.read_timeout()?;
        sock.set_read_timeout(Some(wait))?;
        while conn.is_handshaking() {
            conn.complete_io(&mut &sock)?;
        }
        sock.set_read_timeout(old)?;
        Ok(TlsStream {
            sock: Arc::new(sock),
            shared: Arc::new(Shared {
                conn: Mutex::new(conn),
                out: Mutex::new(Vec::new()),
            }),
            raw: Vec::new(),
            at: 0,
            end: 0,
        })
    }

    /// Another handle on the same connection (as `TcpStream::try_clone`).
    pub fn try_clone(&self) -> io::Result<TlsStream> {
        Ok(TlsStream {
            sock: self.sock.clone(),
            shared: self.shared.clone(),
            raw: Vec::new(),
            at: 0,
            end: 0,
        })
    }

    /// The negotiated version, cipher suite and key exchange group, e.g.
    /// `TLSv1_3 TLS13_AES_256_GCM_SHA384 X25519`.
    pub fn describe(&self) -> String {
        let c = lock(&self.shared.conn);
        let v = c.protocol_version().map(|v| format!("{v:?}"));
        let s = c
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()));
        let g = c
            .negotiated_key_exchange_group()
            .map(|g| format!("{:?}", g.name()));
        [v, s, g].map(|x| x.unwrap_or_else(|| "?".into())).join(" ")
    }

    /// The socket.
    pub fn socket(&self) -> &TcpStream {
        &self.sock
    }

    /// Seals with `seal` under the connection's lock, then writes what it
    /// produced; returns `seal`'s result.
    fn sealed<T>(
        &self,
        seal: impl FnOnce(&mut ClientConnection) -> io::Result<T>,
    ) -> io::Result<T> {
        let mut buf = lock(&self.shared.out);
        buf.clear();
        let r = {
            let mut c = lock(&self.shared.conn);
            let r = seal(&mut c)?;
            while c.wants_write() {
                c.write_tls(&mut *buf)?;
            }
            r
        };
        (&*self.sock).write_all(&buf)?;
        if buf.capacity() > 2 * BUFFER_LIMIT {
            *buf = Vec::new();
        }
        Ok(r)
    }

    /// Sends `close_notify` (best effort), then shuts the socket down.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if how == Shutdown::Write {
            let _ = self.sealed(|c| {
                c.send_close_notify();
                Ok(())
            });
        }
        self.sock.shutdown(how)
    }
}

impl Read for TlsStream {
    /// Plaintext: what rustls holds, then as much as one read of the
    /// socket (sized by the first call's buffer) decrypts to.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.raw.is_empty() {
            self.raw = vec![0; buf.len().clamp(18 << 10, 256 << 10)];
        }
        loop {
            let (got, closed, wants_write) = {
                let mut c = lock(&self.shared.conn);
                let (mut got, mut closed) = (0, false);
                loop {
                    match c.reader().read(&mut buf[got..]) {
                        Ok(0) => {
                            closed = true;
                            break;
                        }
                        Ok(n) => {
                            got += n;
                            if got == buf.len() {
                                break;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                    if self.at == self.end {
                        break;
                    }
                    self.at += c.read_tls(&mut &self.raw[self.at..self.end])?;
                    if let Err(e) = c.process_new_packets() {
                        // Tell the relay why (the alert), then fail.
                        let mut alert = Vec::new();
                        let _ = c.write_tls(&mut alert);
                        drop(c);
                        let _ = (&*self.sock).write_all(&alert);
                        return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                    }
                }
                (got, closed, c.wants_write())
            };
            if wants_write {
                // A key update or an alert to answer.
                self.sealed(|_| Ok(()))?;
            }
            if got > 0 {
                return Ok(got);
            }
            if closed {
                return Ok(0);
            }
            let n = loop {
                match (&*self.sock).read(&mut self.raw) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    r => break r?,
                }
            };
            if n == 0 {
                return Ok(0);
            }
            (self.at, self.end) = (0, n);
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    /// Seals the slices as one stream (full records across them).
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.sealed(|c| c.writer().write_vectored(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
