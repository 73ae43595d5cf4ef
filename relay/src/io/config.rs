//! What a relay runs with: [`RelayConfig`], and the driver settings
//! ([`IoMode`], [`UringConfig`]). Plain data; every other part of `io`
//! reads it, it reads nothing of theirs but the TLS listener's settings.

use std::net::SocketAddr;

use super::tls::TlsListen;
use crate::fanout::EngineConfig;

/// What a relay runs with.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Worker threads, each with its own engine and listener; `0` means one
    /// per available core. At most 256 (a session id's top byte).
    pub workers: usize,
    /// Where to accept MSRP connections. Port `0` picks a free port (see
    /// [`Relay::local_addr`](crate::io::Relay::local_addr)); the engines' URIs then carry that port.
    pub listen: SocketAddr,
    /// Engine configuration template; each worker gets its index.
    pub engine: EngineConfig,
    /// Process-wide memory budget of all content logs, in bytes.
    pub process_memory_budget: u64,
    /// `SO_SNDBUF` of every MSRP connection, if set.
    pub sndbuf: Option<usize>,
    /// `SO_RCVBUF` of every MSRP connection, if set.
    pub rcvbuf: Option<usize>,
    /// Which driver runs (default: io_uring if usable, else epoll).
    pub io: IoMode,
    /// Settings of the io_uring driver.
    pub uring: UringConfig,
    /// The TLS listener (`msrps:` legs); `None`: plain TCP only.
    pub tls: Option<TlsListen>,
}

impl Default for RelayConfig {
    fn default() -> RelayConfig {
        RelayConfig {
            workers: 0,
            listen: SocketAddr::from(([127, 0, 0, 1], 2855)),
            engine: EngineConfig::default(),
            process_memory_budget: 256 << 20,
            sndbuf: None,
            rcvbuf: None,
            io: IoMode::Auto,
            uring: UringConfig::default(),
            tls: None,
        }
    }
}

/// Which I/O driver to run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IoMode {
    /// io_uring if the probe succeeds, else epoll (one log line says why).
    #[default]
    Auto,
    /// io_uring or fail to start.
    Uring,
    /// The epoll driver.
    Epoll,
}

/// Settings of the io_uring driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UringConfig {
    /// Submission queue entries per worker ring (the completion queue has
    /// four times as many).
    pub entries: u32,
    /// Provided receive buffers per worker (a power of two ≤ 32768).
    pub buffers: u16,
    /// Bytes per provided receive buffer (at most
    /// [`READ_SIZE`](crate::fanout::READ_SIZE)).
    pub buffer_size: usize,
    /// Send with `IORING_OP_SENDMSG_ZC` when a write carries a body piece
    /// of at least this many bytes; `None`: never (the default).
    pub send_zc_min: Option<usize>,
    /// Use multishot receives when the kernel has them (≥ 6.0).
    pub multishot: bool,
    /// Make the probe fail, as if io_uring were refused: tests the
    /// fallback of [`IoMode::Auto`].
    pub force_unavailable: bool,
}

impl Default for UringConfig {
    fn default() -> UringConfig {
        UringConfig {
            entries: 1024,
            buffers: 128,
            buffer_size: crate::fanout::READ_SIZE,
            send_zc_min: None,
            multishot: true,
            force_unavailable: false,
        }
    }
}
