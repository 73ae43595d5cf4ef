//! The rtpengine **ng protocol** listener: a second front door to the same
//! session table and SDP rewrite as the JSON-lines socket, for the stock
//! `rtpengine` modules of Kamailio and OpenSIPS (`rtpengine_offer()`,
//! `rtpengine_answer()`, `rtpengine_delete()`, `rtpengine_query()`).
//!
//! - [`bencode`]: the encoding, by hand, bounded (depth, item count,
//!   message size).
//! - [`wire`]: `<cookie> <bencoded dictionary>` over UDP datagrams and TCP
//!   streams (two framings on TCP).
//! - [`cache`]: the reply cache by cookie, so that the module's
//!   retransmissions are answered with the same reply and executed once.
//! - [`commands`]: `ping`, `offer`, `answer`, `delete`, `query`, `list`,
//!   `statistics`, each mapped onto the JSON protocol's command and
//!   executed by [`crate::table::Core`] through a [`crate::server::Gate`].
//! - [`listener`]: the UDP and TCP sockets and their threads.
//!
//! `docs/control-protocol.md` §8 is the reference of the subset;
//! `docs/kamailio.md` shows a Kamailio configuration.

pub mod bencode;
pub mod cache;
pub mod commands;
pub mod convert;
pub mod listener;
pub mod wire;

use std::net::SocketAddr;
use std::time::Duration;

pub use listener::NgListener;

/// The listener's addresses and bounds (`[ng]` in the configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NgConfig {
    /// UDP address to bind; `None`: no UDP.
    pub listen_udp: Option<SocketAddr>,
    /// TCP address to bind; `None`: no TCP.
    pub listen_tcp: Option<SocketAddr>,
    /// Longest message (a datagram, or one message on a TCP stream),
    /// cookie included.
    pub max_message_bytes: usize,
    /// TCP connections at once.
    pub max_tcp_connections: usize,
    /// Cookies the reply cache remembers at most.
    pub cache_entries: usize,
    /// How long a reply is kept for retransmissions.
    pub cache_ttl: Duration,
    /// Bencode bounds.
    pub limits: bencode::Limits,
}

impl Default for NgConfig {
    fn default() -> Self {
        NgConfig {
            listen_udp: None,
            listen_tcp: None,
            max_message_bytes: 65_535,
            max_tcp_connections: 16,
            cache_entries: 65_536,
            cache_ttl: Duration::from_secs(30),
            limits: bencode::Limits::default(),
        }
    }
}

/// Why the listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum NgError {
    /// A socket could not be bound or set up.
    #[error("ng listener on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A thread could not be started.
    #[error("ng listener thread: {0}")]
    Thread(std::io::Error),
}
