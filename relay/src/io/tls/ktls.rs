//! Kernel TLS: whether this kernel has the `tls` upper-layer protocol
//! (`CONFIG_TLS`), probed once at start when `[tls] ktls` asks for it.
//!
//! With the ULP, the records of a connection could be built by the kernel
//! after the handshake (`TLS_TX`), keeping the vectored write of shared
//! bodies; this build always builds records in user space with rustls, so
//! the probe only decides the log line. The machines this was written on
//! have no `tls` ULP, so the offload could not be exercised (see
//! `docs/io-drivers.md`).

use std::net::{Ipv4Addr, TcpListener, TcpStream};

use nix::sys::socket::{setsockopt, sockopt::TcpUlp};

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KtlsProbe {
    /// `setsockopt(TCP_ULP, "tls")` succeeded on a connected socket.
    Available,
    /// It failed (`ENOENT`: no `tls` module), or the probe's socket could
    /// not be set up; the reason.
    Unavailable(String),
}

/// Attaches the `tls` ULP to a connected loopback socket (it needs an
/// established connection) and reports whether the kernel took it.
pub fn probe() -> KtlsProbe {
    let pair = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|l| {
        let c = TcpStream::connect(l.local_addr()?)?;
        let (_s, _) = l.accept()?;
        Ok(c)
    });
    match pair {
        Err(e) => KtlsProbe::Unavailable(format!("probe socket: {e}")),
        Ok(c) => match setsockopt(&c, TcpUlp::default(), b"tls") {
            Ok(()) => KtlsProbe::Available,
            Err(nix::errno::Errno::ENOENT) => {
                KtlsProbe::Unavailable("no tls ULP in this kernel (CONFIG_TLS)".into())
            }
            Err(e) => KtlsProbe::Unavailable(e.desc().to_owned()),
        },
    }
}

/// Probes and says, in one log line, how TLS records are built.
pub(crate) fn announce() -> KtlsProbe {
    let p = probe();
    match &p {
        KtlsProbe::Unavailable(why) => {
            tracing::info!(reason = %why, "kernel TLS unavailable: TLS records built in user space (rustls)");
        }
        KtlsProbe::Available => {
            tracing::info!(
                "kernel TLS ULP present, but this build has no offload: TLS records built in user space (rustls)"
            );
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The probe answers either way and never fails the caller; on a
    /// kernel without the module it names the reason.
    #[test]
    fn the_probe_gives_a_definite_answer() {
        match probe() {
            KtlsProbe::Available => {}
            KtlsProbe::Unavailable(why) => assert!(!why.is_empty()),
        }
    }
}
