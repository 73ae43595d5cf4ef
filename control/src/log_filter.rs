//! The live log filter: `[log] filter` changes on SIGHUP without a
//! restart. The binary installs a hook into its `tracing` subscriber's
//! reload handle at start; the daemon calls [`apply`] when a reload
//! changed the key. `RUST_LOG`, when set, wins over the file at start and
//! at every reload (one warning says so).

use std::sync::OnceLock;

/// Replaces the running filter; `Err` with the reason when the text is
/// not a valid filter or the subscriber is gone.
pub type Hook = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

static HOOK: OnceLock<Hook> = OnceLock::new();

/// Why a new filter did not take effect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// No subscriber with a reload handle (a library user, a test).
    #[error("no reloadable log subscriber in this process")]
    NoHook,
    /// `RUST_LOG` is set and wins over `[log] filter`.
    #[error("RUST_LOG is set and overrides [log] filter")]
    Overridden,
    /// The text does not parse as a filter, or the subscriber refused it.
    #[error("[log] filter {0}")]
    Invalid(String),
}

/// Installs the hook (once per process; later calls are ignored).
pub fn install(hook: Hook) {
    let _ = HOOK.set(hook);
}

/// Whether `RUST_LOG` decides the filter (set and non-empty).
pub fn env_overrides() -> bool {
    std::env::var_os("RUST_LOG").is_some_and(|v| !v.is_empty())
}

/// Makes `filter` the running filter.
pub fn apply(filter: &str) -> Result<(), FilterError> {
    if env_overrides() {
        return Err(FilterError::Overridden);
    }
    let hook = HOOK.get().ok_or(FilterError::NoHook)?;
    hook(filter).map_err(FilterError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without an installed hook the error says so, and a
    /// filter that does not parse is reported, not half-applied.
    #[test]
    fn ops_log_filter_apply_without_a_hook_is_a_clear_error() {
        if env_overrides() {
            assert_eq!(apply("debug"), Err(FilterError::Overridden));
        } else {
            assert_eq!(apply("debug"), Err(FilterError::NoHook));
        }
    }
}
