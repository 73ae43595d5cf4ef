//! One TLS connection between a driver's socket and the engine, without
//! I/O (rustls is sans-I/O like the engine): the driver hands it the
//! ciphertext it received and gets plaintext for the engine; it hands it
//! the engine's queued output and gets ciphertext records to write.
//!
//! Copies, per connection: a received record is copied into rustls's
//! buffer, decrypted in place and copied once into the plaintext `Bytes`
//! the engine keeps (and shares among legs). Outgoing, the engine's pieces
//! (the leg's own head and end-line around the shared body) are encrypted
//! straight from their slices into records — the one copy a TLS leg adds
//! — which are moved out as `Bytes` for the socket write.

use std::collections::VecDeque;
use std::io::{IoSlice, Read, Write};
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, Connection, ServerConfig};

/// Ciphertext a connection holds before it takes more of the engine's
/// output: the TLS counterpart of a full socket buffer (the rest stays
/// in the engine's queue, shared, not encrypted ahead).
pub(crate) const CIPHER_HIGH: usize = 256 << 10;
/// Most pieces of the engine's output encrypted in one call.
const MAX_PIECES: usize = 64;

/// Why a TLS connection failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsConnError {
    /// The handshake or a record failed (a bad certificate, a peer that is
    /// not speaking TLS, a corrupt record).
    #[error("{0}")]
    Tls(#[from] rustls::Error),
    /// The record reader refused the bytes (rustls's buffer is full).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The peer's first bytes are a plain MSRP request, not a TLS
    /// handshake: a plain client on the TLS port.
    #[error("plain MSRP on the TLS port (no TLS handshake)")]
    PlainMsrp,
    /// No trust anchors for a leg the relay connects out on.
    #[error("no CA bundle configured ([tls] ca): cannot verify the peer")]
    NoTrustAnchors,
    /// The peer's URI host is not a valid TLS server name.
    #[error("bad server name {0:?}")]
    ServerName(String),
}

/// What one receive gave.
#[derive(Debug, Default)]
pub(crate) struct Received {
    /// Plaintext for the engine (may be empty: a handshake message, a
    /// partial record).
    pub(crate) data: Bytes,
    /// The peer sent `close_notify`: no more data will come.
    pub(crate) closed: bool,
}

/// A TLS connection's state.
pub(crate) struct TlsConn {
    tls: Connection,
    /// Records taken out of rustls, not yet written.
    out: VecDeque<Bytes>,
    out_len: usize,
    plain: BytesMut,
    /// `close_notify` was queued.
    notified: bool,
    /// Nothing received yet (to tell a plain client on the TLS port).
    first: bool,
}

impl std::fmt::Debug for TlsConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConn")
            .field("handshaking", &self.tls.is_handshaking())
            .field("out_len", &self.out_len)
            .finish_non_exhaustive()
    }
}

impl TlsConn {
    /// The server side of an accepted TLS leg.
    pub(crate) fn server(cfg: Arc<ServerConfig>) -> Result<TlsConn, TlsConnError> {
        Ok(TlsConn::new(rustls::ServerConnection::new(cfg)?.into()))
    }

    /// The client side of a leg the relay connects out on; the peer's
    /// certificate must name `host` (RFC 4975 §14.2). The ClientHello is
    /// queued at once.
    pub(crate) fn client(
        cfg: Option<Arc<ClientConfig>>,
        host: &str,
    ) -> Result<TlsConn, TlsConnError> {
        let cfg = cfg.ok_or(TlsConnError::NoTrustAnchors)?;
        let name = ServerName::try_from(host.to_owned())
            .map_err(|_| TlsConnError::ServerName(host.to_owned()))?;
        let mut c = TlsConn::new(rustls::ClientConnection::new(cfg, name)?.into());
        c.pull();
        Ok(c)
    }

    fn new(mut tls: Connection) -> TlsConn {
        tls.set_buffer_limit(Some(CIPHER_HIGH));
        TlsConn {
            tls,
            out: VecDeque::new(),
            out_len: 0,
            plain: BytesMut::new(),
            notified: false,
            first: true,
        }
    }

    /// Takes received ciphertext; returns the plaintext it completed.
    /// Handshake replies it causes are queued for [`TlsConn::pending`].
    /// An error is final: the connection is to be closed.
    pub(crate) fn receive(&mut self, mut data: &[u8]) -> Result<Received, TlsConnError> {
        if std::mem::take(&mut self.first) && data.starts_with(b"MSRP ") {
            return Err(TlsConnError::PlainMsrp);
        }
        let mut closed = false;
        while !data.is_empty() {
            self.tls.read_tls(&mut data)?;
            let st = self.tls.process_new_packets();
            // Whatever alert rustls queued on an error goes out first.
            self.pull();
            let st = st?;
            closed |= st.peer_has_closed();
            let n = st.plaintext_bytes_to_read();
            if n > 0 {
                let at = self.plain.len();
                self.plain.resize(at + n, 0);
                self.tls.reader().read_exact(&mut self.plain[at..])?;
            }
        }
        Ok(Received {
            data: self.plain.split().freeze(),
            closed,
        })
    }

    /// Encrypts what the engine queued while less than [`CIPHER_HIGH`]
    /// ciphertext waits; returns how many of its bytes were taken (the
    /// driver passes that to `consume_output`). During the handshake
    /// rustls keeps the plaintext and sends it once the handshake is done.
    pub(crate) fn fill<'a>(&mut self, out: impl Iterator<Item = &'a Bytes>) -> usize {
        if self.out_len >= CIPHER_HIGH || self.notified {
            return 0;
        }
        let mut iov: [IoSlice<'a>; MAX_PIECES] = [IoSlice::new(&[]); MAX_PIECES];
        let mut k = 0;
        for b in out.filter(|b| !b.is_empty()).take(MAX_PIECES) {
            iov[k] = IoSlice::new(b);
            k += 1;
        }
        if k == 0 {
            return 0;
        }
        // An error here is the connection's earlier fatal one, which the
        // next receive reports; nothing is taken meanwhile.
        let n = self.tls.writer().write_vectored(&iov[..k]).unwrap_or(0);
        self.pull();
        n
    }

    /// Moves the records rustls has ready into `out`.
    fn pull(&mut self) {
        while self.tls.wants_write() {
            let mut v = Vec::new();
            match self.tls.write_tls(&mut v) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    self.out_len += n;
                    self.out.push_back(Bytes::from(v));
                }
            }
        }
    }

    /// The ciphertext to write, in order.
    pub(crate) fn pending(&self) -> impl Iterator<Item = &Bytes> {
        self.out.iter()
    }

    /// `n` bytes of [`TlsConn::pending`] were written.
    pub(crate) fn consume(&mut self, mut n: usize) {
        self.out_len = self.out_len.saturating_sub(n);
        while n > 0 {
            let Some(front) = self.out.front_mut() else {
                return;
            };
            if front.len() > n {
                front.advance(n);
                return;
            }
            n -= front.len();
            self.out.pop_front();
        }
    }

    /// Queues `close_notify` (once): sent before the write side shuts, so
    /// the peer can tell a complete close from a truncation.
    pub(crate) fn close_notify(&mut self) -> bool {
        if self.notified {
            return false;
        }
        self.notified = true;
        self.tls.send_close_notify();
        self.pull();
        true
    }
}
