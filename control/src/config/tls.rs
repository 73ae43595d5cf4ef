//! `[tls]`: MSRP over TLS (`msrps:`) in the relay itself, on its own
//! port beside `[msrp] listen`. Off unless `listen` is set.

use std::net::SocketAddr;
use std::path::PathBuf;

use msrp_relay::io::{TlsContext, TlsFiles, TlsListen};
use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `[tls]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Tls {
    /// `host:port` of the TLS listener, e.g. `0.0.0.0:2856`; empty (the
    /// default): no TLS listener, `TCP/TLS/MSRP` offers are refused.
    pub listen: String,
    /// Port put in the SDP and URIs of TLS legs (behind NAT); 0: the
    /// bound port.
    pub advertised_port: u16,
    /// PEM certificate chain, leaf first. Reloaded on SIGHUP.
    pub cert: PathBuf,
    /// PEM private key. Reloaded on SIGHUP.
    pub key: PathBuf,
    /// PEM CA bundle: trust anchors for the devices' certificates where
    /// the relay connects out (`a=setup:passive` devices), and for client
    /// certificates with `verify-clients`. Empty: none (the relay cannot
    /// be the active side over TLS).
    pub ca: PathBuf,
    /// Require a client certificate from the CA bundle on accepted legs.
    pub verify_clients: bool,
    /// Probe for kernel TLS at start (one log line; this build always
    /// builds records in user space).
    pub ktls: bool,
}

impl Tls {
    /// The listener's address, if TLS is on.
    pub fn listen_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        if self.listen.is_empty() {
            return Ok(None);
        }
        let addr = self.listen.parse().map_err(|_| {
            ConfigError::Invalid(format!(
                "[tls] listen = {:?}: not an address (host:port, e.g. 0.0.0.0:2856)",
                self.listen
            ))
        })?;
        if self.cert.as_os_str().is_empty() || self.key.as_os_str().is_empty() {
            return Err(ConfigError::Invalid(
                "[tls] listen is set: cert and key are required".into(),
            ));
        }
        Ok(Some(addr))
    }

    /// The files the TLS context is loaded from.
    pub fn files(&self) -> TlsFiles {
        TlsFiles {
            cert: self.cert.clone(),
            key: self.key.clone(),
            ca: (!self.ca.as_os_str().is_empty()).then(|| self.ca.clone()),
            verify_clients: self.verify_clients,
        }
    }

    /// The data plane's TLS listener (loads the files), if TLS is on.
    pub fn listener(&self) -> Result<Option<TlsListen>, ConfigError> {
        let Some(listen) = self.listen_addr()? else {
            return Ok(None);
        };
        let context = TlsContext::load(&self.files())
            .map_err(|e| ConfigError::Invalid(format!("[tls]: {e}")))?;
        Ok(Some(TlsListen {
            listen,
            context,
            ktls: self.ktls,
        }))
    }

    /// The advertised TLS port, given the port the listener got.
    pub fn advertised_port(&self, bound: u16) -> u16 {
        match self.advertised_port {
            0 => bound,
            p => p,
        }
    }
}
