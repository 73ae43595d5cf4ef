//! A fan-out run's shape: where the bytes go, what each device does, and
//! the sessions, devices, file and chunks.

use std::sync::Arc;

use serde::Serialize;

use crate::cli::Verify;
use crate::error::{LoadError, Result};

/// Where the bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Through the relay.
    Relay,
    /// Sender straight to each device.
    Direct,
    /// Through the minimal TCP fan-out.
    Tcp,
}

/// What a device does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Accepts at once, reads as fast as it can.
    Fast,
    /// Accepts at once, reads at the slow rate.
    Slow,
    /// Accepts when the sender is `late_at` through the file.
    Late,
}

/// One run's shape.
#[derive(Debug, Clone)]
pub struct Params {
    /// Sessions.
    pub sessions: usize,
    /// Devices per session.
    pub devices: usize,
    /// File size.
    pub size: u64,
    /// Chunk size.
    pub chunk: u64,
    /// Sender window in chunks.
    pub window: u64,
    /// Slow devices per session.
    pub slow: usize,
    /// Their read rate.
    pub slow_rate: u64,
    /// Late devices per session.
    pub late: usize,
    /// When they accept (fraction sent).
    pub late_at: f64,
    /// Verification.
    pub verify: Verify,
    /// Device read size.
    pub read_buf: usize,
    /// Device names (default `s<i>d<j>`).
    pub names: Vec<String>,
    /// Relay legs over TLS with this client configuration (baselines stay
    /// plain).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Params {
    /// The role of device `j`: device 0 is always on time and fast; the
    /// last `slow` are slow, the `late` before them late.
    pub fn role(&self, j: usize) -> Role {
        let m = self.devices;
        if j == 0 {
            Role::Fast
        } else if j + self.slow >= m {
            Role::Slow
        } else if j + self.slow + self.late >= m {
            Role::Late
        } else {
            Role::Fast
        }
    }

    /// Checks the shape.
    pub fn check(&self) -> Result<()> {
        if self.devices == 0 || self.sessions == 0 {
            return Err(LoadError::Args(
                "need at least one session and one device".into(),
            ));
        }
        if self.slow + self.late >= self.devices && (self.slow + self.late) > 0 {
            return Err(LoadError::Args(format!(
                "{} slow + {} late devices leave no on-time fast device among {}",
                self.slow, self.late, self.devices
            )));
        }
        if self.size == 0 || self.chunk == 0 {
            return Err(LoadError::Args("size and chunk must be > 0".into()));
        }
        Ok(())
    }

    pub(super) fn name(&self, s: usize, j: usize) -> String {
        self.names
            .get(j)
            .filter(|_| self.sessions == 1)
            .cloned()
            .unwrap_or_else(|| format!("s{s}d{j}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(m: usize, slow: usize, late: usize) -> Params {
        Params {
            sessions: 1,
            devices: m,
            size: 10,
            chunk: 4,
            window: 1,
            slow,
            slow_rate: 1,
            late,
            late_at: 0.5,
            verify: Verify::Compare,
            read_buf: 1024,
            names: Vec::new(),
            tls: None,
        }
    }

    #[test]
    fn roles_put_device_0_on_time() {
        let p = params(5, 2, 1);
        let roles: Vec<Role> = (0..5).map(|j| p.role(j)).collect();
        assert_eq!(
            roles,
            vec![Role::Fast, Role::Fast, Role::Late, Role::Slow, Role::Slow]
        );
        assert!(p.check().is_ok());
        assert!(params(3, 2, 1).check().is_err());
        assert!(params(1, 0, 0).check().is_ok());
        assert_eq!(params(1, 0, 0).role(0), Role::Fast);
    }
}
