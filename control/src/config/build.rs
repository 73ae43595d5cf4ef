//! Loading, checking, and turning the file into the parts' configurations.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use msrp_relay::fanout::EngineConfig;
use msrp_relay::fanout::pacer::PacerConfig;
use msrp_relay::io::{IoMode, RelayConfig, UringConfig};

use super::{Config, ConfigError, Io};
use crate::ng::NgConfig;
use crate::policy::{AcceptPolicy, AuthPolicy, OperatorPolicy, RegistryLimits};
use crate::server::ServerConfig;
use crate::table::TableConfig;

/// The default control socket path: `$XDG_RUNTIME_DIR/msrp-relay.sock`
/// (a per-user 0700 directory), else `/tmp/msrp-relay-<uid>.sock`.
pub fn default_socket() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => Path::new(&d).join("msrp-relay.sock"),
        _ => PathBuf::from(format!(
            "/tmp/msrp-relay-{}.sock",
            nix::unistd::getuid().as_raw()
        )),
    }
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

impl Config {
    /// Reads and checks a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses and checks TOML text (`path` is for messages).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        cfg.advertised_ip()?;
        if cfg.msrp.listen.port() == 0 && cfg.msrp.advertised_port != 0 {
            return Err(ConfigError::Invalid(
                "msrp.advertised-port needs a fixed msrp.listen port".into(),
            ));
        }
        cfg.ng()?;
        cfg.store.backend()?;
        if cfg.pacing.bye_per_sec == 0 || cfg.pacing.bye_burst == 0 {
            return Err(ConfigError::Invalid(
                "pacing.bye-per-sec and pacing.bye-burst must be at least 1".into(),
            ));
        }
        Ok(cfg)
    }

    /// The control socket path in force.
    pub fn socket(&self) -> PathBuf {
        if self.control.socket.as_os_str().is_empty() {
            default_socket()
        } else {
            self.control.socket.clone()
        }
    }

    /// The address put in SDP and URIs.
    pub fn advertised_ip(&self) -> Result<IpAddr, ConfigError> {
        if self.msrp.advertised_host.is_empty() {
            let ip = self.msrp.listen.ip();
            if ip.is_unspecified() {
                return Err(ConfigError::Invalid(format!(
                    "msrp.listen is {ip}: set msrp.advertised-host to the address devices reach"
                )));
            }
            return Ok(ip);
        }
        self.msrp.advertised_host.parse().map_err(|_| {
            ConfigError::Invalid(format!(
                "msrp.advertised-host {:?} is not an IP address",
                self.msrp.advertised_host
            ))
        })
    }

    /// The data plane's configuration.
    pub fn relay(&self) -> Result<RelayConfig, ConfigError> {
        let ip = self.advertised_ip()?;
        let host = if ip.is_ipv6() {
            format!("[{ip}]")
        } else {
            ip.to_string()
        };
        let nonzero = |v: usize| (v != 0).then_some(v);
        let mut engine = EngineConfig {
            host,
            port: self.advertised_port(self.msrp.listen.port()),
            secure: self.msrp.secure,
            max_device_chunk: self.msrp.max_device_chunk_bytes,
            max_message_size: (self.msrp.max_message_bytes != 0)
                .then_some(self.msrp.max_message_bytes),
            leg_timeout: ms(self.timeouts.leg_ms),
            bind_timeout: ms(self.timeouts.bind_ms),
            report_wait: ms(self.timeouts.report_wait_ms),
            done_pacing: PacerConfig {
                max_per_sec: self.pacing.bye_per_sec,
                burst: self.pacing.bye_burst,
            },
            ..EngineConfig::default()
        };
        engine.notification_copies = self.policy.notification_copies;
        engine.log.memory_limit = self.budgets.session_memory_bytes;
        engine.read_ahead = match self.budgets.read_ahead_bytes {
            0 => u64::MAX,
            n => n,
        };
        engine.log.disk_limit = self.budgets.session_disk_bytes;
        engine.log.spill_dir = (!self.budgets.spill_dir.as_os_str().is_empty())
            .then(|| self.budgets.spill_dir.clone());
        Ok(RelayConfig {
            workers: self.msrp.workers,
            listen: self.msrp.listen,
            engine,
            process_memory_budget: self.budgets.process_memory_bytes,
            sndbuf: nonzero(self.msrp.sndbuf),
            rcvbuf: nonzero(self.msrp.rcvbuf),
            io: match self.msrp.io {
                Io::Auto => IoMode::Auto,
                Io::Uring => IoMode::Uring,
                Io::Epoll => IoMode::Epoll,
            },
            uring: UringConfig {
                send_zc_min: nonzero(self.msrp.send_zc_min_bytes),
                ..UringConfig::default()
            },
            tls: self.tls.listener()?,
        })
    }

    /// The advertised port, given the port the listener got.
    pub fn advertised_port(&self, bound: u16) -> u16 {
        match self.msrp.advertised_port {
            0 => bound,
            p => p,
        }
    }

    /// The ng listener's configuration; `None` when neither address is
    /// set.
    pub fn ng(&self) -> Result<Option<NgConfig>, ConfigError> {
        let addr = |key: &str, v: &str| -> Result<Option<SocketAddr>, ConfigError> {
            if v.is_empty() {
                return Ok(None);
            }
            v.parse().map(Some).map_err(|_| {
                ConfigError::Invalid(format!("ng.{key} {v:?} is not an address (IP:port)"))
            })
        };
        let n = &self.ng;
        let (udp, tcp) = (
            addr("listen-udp", &n.listen_udp)?,
            addr("listen-tcp", &n.listen_tcp)?,
        );
        if udp.is_none() && tcp.is_none() {
            return Ok(None);
        }
        if n.max_message_bytes < 64 || n.max_depth == 0 {
            return Err(ConfigError::Invalid(
                "ng.max-message-bytes must be at least 64 and ng.max-depth at least 1".into(),
            ));
        }
        let d = NgConfig::default();
        Ok(Some(NgConfig {
            listen_udp: udp,
            listen_tcp: tcp,
            max_message_bytes: n.max_message_bytes,
            max_tcp_connections: n.max_tcp_connections,
            cache_entries: n.cache_entries,
            cache_ttl: ms(n.cache_ttl_ms),
            limits: crate::ng::bencode::Limits {
                max_depth: n.max_depth,
                ..d.limits
            },
        }))
    }

    /// The control server's configuration.
    pub fn server(&self) -> ServerConfig {
        ServerConfig {
            socket: self.socket(),
            allowed_uids: self.control.allowed_uids.clone(),
            max_connections: self.control.max_connections,
            max_line: self.control.max_line_bytes,
            max_queued_lines: self.control.max_queued_lines,
            metrics: crate::metrics::ControlMetrics::default(),
        }
    }

    /// The session table's configuration, once the MSRP port is known.
    /// `bound_tls_port`: the TLS listener's port, if it runs.
    pub fn table(
        &self,
        bound_port: u16,
        bound_tls_port: Option<u16>,
    ) -> Result<TableConfig, ConfigError> {
        Ok(TableConfig {
            relay_host: self.advertised_ip()?.to_string(),
            relay_port: self.advertised_port(bound_port),
            relay_tls_port: bound_tls_port.map(|p| self.tls.advertised_port(p)),
            relay_secure: self.msrp.secure,
            max_sessions: self.control.max_sessions,
            max_legs_per_session: self.control.max_legs_per_session,
            list_limit: self.control.list_limit,
            orphan_timeout: ms(self.control.orphan_timeout_ms),
            drain_timeout: ms(self.control.drain_timeout_ms),
            accept: AcceptPolicy {
                chat_accept_cancels_others: self.policy.chat_accept_cancels_others,
                file_transfer_accept_cancels_others: self
                    .policy
                    .file_transfer_accept_cancels_others,
            },
            operator: OperatorPolicy {
                primary_only: self.policy.primary_only.iter().copied().collect(),
                max_devices: self.policy.max_devices,
                allow_defer: self.policy.allow_defer,
                allow_interwork: self.policy.allow_interwork,
            },
            auth: AuthPolicy {
                blocked: self.policy.blocked_originators.iter().cloned().collect(),
                allow_anonymous: self.policy.allow_anonymous,
                warn_agent: self.policy.warn_agent.clone(),
            },
            registry: RegistryLimits {
                max_users: self.policy.max_users,
                max_devices_per_user: self.policy.max_devices_per_user,
            },
            store_kinds: self.store.kinds.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn example() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/msrp-relay.example.toml")
    }

    /// The example documents every key at its default: it must parse to
    /// exactly `Config::default()`, so docs and code cannot drift apart.
    #[test]
    fn example_file_is_every_default() {
        let cfg = Config::load(&example()).unwrap();
        assert_eq!(cfg, Config::default());
        let relay = cfg.relay().unwrap();
        assert_eq!(relay.listen, "127.0.0.1:2855".parse().unwrap());
        assert_eq!(relay.engine.host, "127.0.0.1");
        assert_eq!(cfg.table(2855, None).unwrap().relay_port, 2855);
        assert_eq!(cfg.server().max_line, 65536);
        assert_eq!(relay.engine.read_ahead, 1 << 20);
    }

    /// `read-ahead-bytes = 0` turns the window off: only the budgets
    /// limit reading the sender.
    #[test]
    fn read_ahead_zero_means_no_window() {
        let p = Path::new("x.toml");
        let off = Config::parse("[budgets]\nread-ahead-bytes = 0\n", p).unwrap();
        assert_eq!(off.relay().unwrap().engine.read_ahead, u64::MAX);
        let set = Config::parse("[budgets]\nread-ahead-bytes = 4096\n", p).unwrap();
        assert_eq!(set.relay().unwrap().engine.read_ahead, 4096);
    }

    /// CPM-MLD-003b: the policy key reaches the engine.
    #[test]
    fn cpm_mld_003b_notification_copies_key() {
        let p = Path::new("x.toml");
        assert!(
            !Config::default()
                .relay()
                .unwrap()
                .engine
                .notification_copies
        );
        let on = Config::parse("[policy]\nnotification-copies = true\n", p).unwrap();
        assert!(on.relay().unwrap().engine.notification_copies);
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let p = Path::new("x.toml");
        let unknown = Config::parse("[control]\nsokcet = \"/x\"\n", p).unwrap_err();
        assert!(unknown.to_string().contains("sokcet"), "{unknown}");
        let wildcard = Config::parse("[msrp]\nlisten = \"0.0.0.0:2855\"\n", p).unwrap_err();
        assert!(
            wildcard.to_string().contains("advertised-host"),
            "{wildcard}"
        );
        let ok = Config::parse(
            "[msrp]\nlisten = \"0.0.0.0:2855\"\nadvertised-host = \"2001:db8::1\"\nadvertised-port = 443\n",
            p,
        )
        .unwrap();
        assert_eq!(ok.relay().unwrap().engine.host, "[2001:db8::1]");
        assert_eq!(ok.table(2855, None).unwrap().relay_host, "2001:db8::1");
        assert_eq!(ok.table(2855, None).unwrap().relay_port, 443);
        assert!(Config::parse("[msrp]\nadvertised-host = \"relay.example\"\n", p).is_err());
        assert!(Config::parse("[pacing]\nbye-per-sec = 0\n", p).is_err());
        let epoll = Config::parse("[msrp]\nio = \"epoll\"\n", p).unwrap();
        assert_eq!(epoll.relay().unwrap().io, IoMode::Epoll);
        let zc = Config::parse("[msrp]\nio = \"uring\"\nsend-zc-min-bytes = 65536\n", p);
        let zc = zc.unwrap().relay().unwrap();
        assert_eq!((zc.io, zc.uring.send_zc_min), (IoMode::Uring, Some(65536)));
        assert!(Config::parse("[msrp]\nio = \"kqueue\"\n", p).is_err());
        assert_eq!(Config::default().ng().unwrap(), None);
        let ng = Config::parse("[ng]\nlisten-udp = \"127.0.0.1:2223\"\n", p).unwrap();
        let ng = ng.ng().unwrap().unwrap();
        assert_eq!(ng.listen_udp, Some("127.0.0.1:2223".parse().unwrap()));
        assert_eq!(ng.listen_tcp, None);
        assert!(Config::parse("[ng]\nlisten-tcp = \"localhost\"\n", p).is_err());
        let socket = Config::parse("[control]\nsocket = \"/run/r.sock\"\n", p).unwrap();
        assert_eq!(socket.socket(), PathBuf::from("/run/r.sock"));
    }
}
