//! A configuration reload (SIGHUP): which keys changed, which of them the
//! running relay takes live and which need a restart.
//!
//! Live: the session table's limits and timers (`[control]` `max-sessions`,
//! `max-legs-per-session`, `list-limit`, `orphan-timeout-ms`,
//! `drain-timeout-ms`), `[policy]`, `[pacing]`, `[budgets]`, `[timeouts]`,
//! and `[msrp]` `max-device-chunk-bytes` / `max-message-bytes`, `[log]` `filter`
//! (see [`crate::log_filter`]). Everything else (sockets, listeners,
//! workers, driver, uids, log format, metrics) is
//! bound at start and needs a restart: a reload that changes it says so
//! and leaves it as it was.

use std::collections::BTreeMap;

use super::Config;

/// `section.key` names of the keys a reload applies live.
const LIVE: &[&str] = &[
    "control.max-sessions",
    "control.max-legs-per-session",
    "control.list-limit",
    "control.orphan-timeout-ms",
    "control.drain-timeout-ms",
    "msrp.max-device-chunk-bytes",
    "msrp.max-message-bytes",
    "budgets.*",
    "timeouts.*",
    "pacing.*",
    "policy.*",
    "log.filter",
    // Read again on every SIGHUP (renewed in place or moved).
    "tls.cert",
    "tls.key",
];

fn is_live(key: &str) -> bool {
    LIVE.iter().any(|l| match l.strip_suffix('*') {
        Some(section) => key.starts_with(section),
        None => *l == key,
    })
}

/// What a reload found: changed keys, split by how they apply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Applied now.
    pub live: Vec<String>,
    /// Changed in the file; the running relay keeps the old value.
    pub restart: Vec<String>,
}

impl Changes {
    /// No key changed.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty() && self.restart.is_empty()
    }
}

/// Every `section.key` of a configuration with its value, as TOML text.
fn flatten(cfg: &Config) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Ok(toml::Value::Table(top)) = toml::Value::try_from(cfg) else {
        return out;
    };
    for (section, v) in top {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    out.insert(format!("{section}.{k}"), v.to_string());
                }
            }
            other => {
                out.insert(section, other.to_string());
            }
        }
    }
    out
}

/// The keys whose values differ between `old` and `new`.
pub fn diff(old: &Config, new: &Config) -> Changes {
    let (a, b) = (flatten(old), flatten(new));
    let mut c = Changes::default();
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for k in keys {
        if a.get(k) != b.get(k) {
            if is_live(k) {
                c.live.push(k.clone());
            } else {
                c.restart.push(k.clone());
            }
        }
    }
    c
}

/// What the running relay will hold after the reload: `new`'s live keys
/// over `old`'s restart-only keys.
pub fn merged(old: &Config, new: &Config) -> Config {
    let mut m = old.clone();
    m.budgets = new.budgets.clone();
    m.timeouts = new.timeouts.clone();
    m.pacing = new.pacing.clone();
    m.policy = new.policy.clone();
    m.msrp.max_device_chunk_bytes = new.msrp.max_device_chunk_bytes;
    m.msrp.max_message_bytes = new.msrp.max_message_bytes;
    let (c, n) = (&mut m.control, &new.control);
    c.max_sessions = n.max_sessions;
    c.max_legs_per_session = n.max_legs_per_session;
    c.list_limit = n.list_limit;
    c.orphan_timeout_ms = n.orphan_timeout_ms;
    c.drain_timeout_ms = n.drain_timeout_ms;
    m.log.filter = new.log.filter.clone();
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_reload_diff_splits_live_and_restart_keys() {
        let old = Config::default();
        let mut new = old.clone();
        new.pacing.bye_per_sec = 7;
        new.control.max_sessions = 5;
        new.msrp.workers = 9;
        new.control.max_connections = 3;
        let c = diff(&old, &new);
        assert_eq!(c.live, ["control.max-sessions", "pacing.bye-per-sec"]);
        assert_eq!(c.restart, ["control.max-connections", "msrp.workers"]);
        let m = merged(&old, &new);
        assert_eq!((m.pacing.bye_per_sec, m.control.max_sessions), (7, 5));
        assert_eq!(
            (m.msrp.workers, m.control.max_connections),
            (old.msrp.workers, old.control.max_connections)
        );
        // What merged keeps differs from the file only in restart keys.
        let rest = diff(&m, &new);
        assert!(rest.live.is_empty(), "{rest:?}");
        assert_eq!(rest.restart, c.restart);
        assert!(diff(&old, &old).is_empty());
    }
}
