//! TLS configuration: the relay's certificate chain and key from PEM files
//! (swapped on reload without touching live connections), optional client
//! certificate verification, and the trust anchors for the legs where the
//! relay connects out (RFC 6135 active side).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Where the TLS material is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA bundle: the trust anchors for peers' certificates — a
    /// device's server certificate where the relay connects out, and the
    /// clients' certificates when [`TlsFiles::verify_clients`] is set.
    pub ca: Option<PathBuf>,
    /// Require and verify a client certificate on accepted TLS legs.
    pub verify_clients: bool,
}

/// Why TLS material could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or holds no valid PEM section.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// rustls refused the material (a key that does not match the
    /// certificate, an unsupported key type, …).
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
    /// `verify_clients` without a CA bundle, or one rustls cannot use.
    #[error("TLS client verification: {0}")]
    Verifier(String),
}

/// The relay's TLS state, shared by every worker (clones share it). A
/// reload swaps the certificate that new handshakes present; connections
/// already up keep theirs.
#[derive(Debug, Clone)]
pub struct TlsContext {
    server: Arc<ServerConfig>,
    client: Option<Arc<ClientConfig>>,
    cert: Arc<Resolver>,
    provider: Arc<CryptoProvider>,
    files: TlsFiles,
}

impl TlsContext {
    /// Loads `files` and builds the server and client configurations
    /// (TLS 1.2 and 1.3, rustls's default cipher suites on `ring`).
    pub fn load(files: &TlsFiles) -> Result<TlsContext, TlsError> {
        // ring, not aws-lc-rs: it builds with a C compiler alone. rustls
        // marks it deprecated for want of post-quantum key exchange
        // (X25519MLKEM768); the handshakes are TLS 1.2/1.3 with X25519
        // and the NIST curves.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = certified_key(files, &provider)?;
        let cert = Arc::new(Resolver(RwLock::new(Arc::new(key))));
        let roots = files.ca.as_deref().map(roots).transpose()?.map(Arc::new);
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = match (&roots, files.verify_clients) {
            (Some(r), true) => {
                let v = WebPkiClientVerifier::builder_with_provider(r.clone(), provider.clone())
                    .build()
                    .map_err(|e| TlsError::Verifier(e.to_string()))?;
                builder.with_client_cert_verifier(v)
            }
            (None, true) => {
                return Err(TlsError::Verifier(
                    "verify-clients needs a CA bundle (ca)".into(),
                ));
            }
            (_, false) => builder.with_no_client_auth(),
        };
        let server = Arc::new(builder.with_cert_resolver(cert.clone()));
        let client = match roots {
            Some(r) => Some(Arc::new(
                ClientConfig::builder_with_provider(provider.clone())
                    .with_safe_default_protocol_versions()?
                    .with_root_certificates(r)
                    .with_no_client_auth(),
            )),
            None => None,
        };
        Ok(TlsContext {
            server,
            client,
            cert,
            provider,
            files: files.clone(),
        })
    }

    /// Reads the certificate chain and key again and presents them from
    /// the next handshake on. Returns what needs a restart instead (a
    /// changed CA bundle or verification setting), empty if nothing.
    pub fn reload(&self, files: &TlsFiles) -> Result<Vec<&'static str>, TlsError> {
        let key = certified_key(files, &self.provider)?;
        match self.cert.0.write() {
            Ok(mut k) => *k = Arc::new(key),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(key),
        }
        let mut restart = Vec::new();
        if files.ca != self.files.ca {
            restart.push("tls.ca");
        }
        if files.verify_clients != self.files.verify_clients {
            restart.push("tls.verify-clients");
        }
        Ok(restart)
    }

    /// The configuration of accepted TLS legs.
    pub(crate) fn server(&self) -> Arc<ServerConfig> {
        self.server.clone()
    }

    /// The configuration of legs where the relay connects out; `None`
    /// without a CA bundle (such a leg fails, with a log line).
    pub(crate) fn client(&self) -> Option<Arc<ClientConfig>> {
        self.client.clone()
    }
}

/// Presents the current certificate; [`TlsContext::reload`] swaps it.
struct Resolver(RwLock<Arc<CertifiedKey>>);

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resolver")
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match self.0.read() {
            Ok(k) => Some(k.clone()),
            Err(poisoned) => Some(poisoned.into_inner().clone()),
        }
    }
}

fn file_err(path: &Path, reason: impl ToString) -> TlsError {
    TlsError::File {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_err(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(path, e))?;
    if certs.is_empty() {
        return Err(file_err(path, "no CERTIFICATE section"));
    }
    Ok(certs)
}

fn certified_key(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let chain = certs(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| file_err(&files.key, e))?;
    Ok(CertifiedKey::from_der(chain, key, provider)?)
}

fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    let (added, ignored) = store.add_parsable_certificates(certs(path)?);
    if added == 0 {
        return Err(file_err(
            path,
            format!("no usable CA certificate ({ignored} ignored)"),
        ));
    }
    Ok(store)
}
