//! `[store]`: the content store for absent devices (issue 12). Off unless
//! `path` or `s3-bucket` is set.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::policy::RequestKind;
use crate::store::{S3Config, StoreConfig};

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Store {
    /// Local-disk backend: a directory (created if missing). Empty: no
    /// local store.
    pub path: PathBuf,
    /// S3-compatible backend: the bucket. Empty: no S3 store. Exactly one
    /// of `path` and `s3-bucket` may be set.
    pub s3_bucket: String,
    /// S3 endpoint URL, e.g. `http://127.0.0.1:9000`; empty: AWS's for
    /// the region (or `AWS_ENDPOINT` from the environment).
    pub s3_endpoint: String,
    /// S3 region.
    pub s3_region: String,
    /// Access key id; empty: `AWS_ACCESS_KEY_ID` from the environment.
    pub s3_access_key_id: String,
    /// Secret key; empty: `AWS_SECRET_ACCESS_KEY` from the environment
    /// (prefer it: a config file is read by more people than the relay).
    pub s3_secret_access_key: String,
    /// Allow an `http:` endpoint (a local server, a test).
    pub s3_allow_http: bool,
    /// An item not delivered to every device it is for by then is deleted.
    pub retention_ms: u64,
    /// Session kinds recorded.
    pub kinds: Vec<RequestKind>,
    /// Multipart part size, bytes; unset: the backend's default
    /// ([`StoreConfig::LOCAL_PART`], [`StoreConfig::S3_PART`]). S3's
    /// minimum is 5 MiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part_bytes: Option<usize>,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            path: PathBuf::new(),
            s3_bucket: String::new(),
            s3_endpoint: String::new(),
            s3_region: "us-east-1".into(),
            s3_access_key_id: String::new(),
            s3_secret_access_key: String::new(),
            s3_allow_http: false,
            retention_ms: 7 * 24 * 3600 * 1000,
            kinds: vec![RequestKind::FileTransfer, RequestKind::LargeMessage],
            part_bytes: None,
        }
    }
}

fn opt(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

impl Store {
    /// The backend's configuration, or `None` when the store is off.
    pub fn backend(&self) -> Result<Option<StoreConfig>, ConfigError> {
        let local = !self.path.as_os_str().is_empty();
        let s3 = !self.s3_bucket.is_empty();
        if local && s3 {
            return Err(ConfigError::Invalid(
                "[store] path and s3-bucket are both set; choose one backend".into(),
            ));
        }
        if !local && !s3 {
            return Ok(None);
        }
        let part_size = match self.part_bytes {
            Some(0) => {
                return Err(ConfigError::Invalid(
                    "[store] part-bytes = 0: a part holds at least one byte".into(),
                ));
            }
            Some(n) if s3 && n < 5 << 20 => {
                return Err(ConfigError::Invalid(format!(
                    "[store] part-bytes = {n}: S3 multipart parts are at least 5 MiB"
                )));
            }
            Some(n) => n,
            None if s3 => StoreConfig::S3_PART,
            None => StoreConfig::LOCAL_PART,
        };
        if self.kinds.contains(&RequestKind::Pager) {
            return Err(ConfigError::Invalid(
                "[store] kinds: pager messages are SIP MESSAGEs, not MSRP sessions".into(),
            ));
        }
        Ok(Some(StoreConfig {
            path: local.then(|| self.path.clone()),
            s3: s3.then(|| S3Config {
                endpoint: opt(&self.s3_endpoint),
                bucket: self.s3_bucket.clone(),
                region: self.s3_region.clone(),
                access_key_id: opt(&self.s3_access_key_id),
                secret_access_key: opt(&self.s3_secret_access_key),
                allow_http: self.s3_allow_http,
            }),
            retention: Duration::from_millis(self.retention_ms),
            part_size,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<Option<StoreConfig>, ConfigError> {
        let store: Store = toml::from_str(toml_text).expect("toml");
        store.backend()
    }

    #[test]
    fn pf_defer_part_size_defaults_by_backend() {
        let local = parse("path = \"/tmp/s\"").expect("ok").expect("on");
        assert_eq!(local.part_size, StoreConfig::LOCAL_PART);
        let s3 = parse("s3-bucket = \"b\"").expect("ok").expect("on");
        assert_eq!(s3.part_size, StoreConfig::S3_PART);
        assert_eq!(parse("").expect("ok"), None);
    }

    #[test]
    fn pf_defer_part_bytes_below_s3_minimum_is_refused_on_s3_only() {
        let local = parse("path = \"/tmp/s\"\npart-bytes = 65536")
            .expect("ok")
            .expect("on");
        assert_eq!(local.part_size, 65_536);
        let e = parse("s3-bucket = \"b\"\npart-bytes = 65536").expect_err("too small");
        assert!(e.to_string().contains("at least 5 MiB"), "{e}");
        let e = parse("path = \"/tmp/s\"\npart-bytes = 0").expect_err("zero");
        assert!(e.to_string().contains("part-bytes = 0"), "{e}");
    }
}
