//! The `[store]` settings, the store's error, and building the backend.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::{ObjectStore, RetryConfig};

/// S3's smallest multipart part (except the last).
const S3_MIN_PART: usize = 5 << 20;

/// The `[store]` section: where stored items live and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// Local-disk backend root (created if missing).
    pub path: Option<PathBuf>,
    /// S3-compatible backend; exactly one of `path` and `s3`.
    pub s3: Option<S3Config>,
    /// Items older than this are deleted by [`Store::expire`](super::Store::expire).
    pub retention: Duration,
    /// Multipart part size; at least 5 MiB on S3.
    pub part_size: usize,
}

impl StoreConfig {
    /// The local backend's default part: small enough that a part is
    /// still in the CPU's cache when the kernel copies it to the page
    /// cache (a part is written as one `write` per received slice).
    pub const LOCAL_PART: usize = 1 << 20;
    /// The S3 backend's default part (S3's minimum is 5 MiB; bigger parts
    /// mean fewer requests).
    pub const S3_PART: usize = 8 << 20;
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: None,
            s3: None,
            retention: Duration::from_secs(7 * 24 * 3600),
            part_size: StoreConfig::S3_PART,
        }
    }
}

/// An S3-compatible bucket. Settings left `None` (and an empty `region`)
/// come from the `AWS_*` environment, then from the instance's role.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct S3Config {
    /// `http(s)://host:port` of a non-AWS endpoint; requests are then path
    /// style (`endpoint/bucket/key`).
    pub endpoint: Option<String>,
    /// The bucket.
    pub bucket: String,
    /// The region (`us-east-1` if empty and not in the environment).
    pub region: String,
    /// Access key id.
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<String>,
    /// Allow a plain `http://` endpoint.
    pub allow_http: bool,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "…"),
            )
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Bad configuration or a bad argument (item id, range).
    #[error("store: {0}")]
    Config(String),
    /// The backend failed `op` on `key` (an object key, bucket or path).
    #[error("store {op} {key}: {source}")]
    Backend {
        /// The operation.
        op: &'static str,
        /// The object key, or the bucket or path for `open`.
        key: String,
        /// The cause.
        #[source]
        source: object_store::Error,
    },
    /// An object exists but its content is unusable.
    #[error("store object {key} is corrupt: {reason}")]
    Corrupt {
        /// The object key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The store's runtime failed, or was called from inside an async task.
    #[error("store runtime: {0}")]
    Runtime(String),
    /// A request the store's state refuses (no such item, not for that
    /// device, delivered already).
    #[error("{0}")]
    Refused(String),
}

impl StoreError {
    /// The object does not exist (e.g. `read_range` of a body never
    /// finished).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            StoreError::Backend {
                source: object_store::Error::NotFound { .. },
                ..
            }
        )
    }
}

/// An opened, not yet checked, backend.
pub(super) struct Backend {
    pub(super) os: Arc<dyn ObjectStore>,
    /// `"local"` or `"s3"`.
    pub(super) name: &'static str,
    /// The path, or `s3://bucket`.
    pub(super) location: String,
    /// The local backend's root.
    pub(super) local_root: Option<PathBuf>,
}

impl Backend {
    /// Builds the one backend `cfg` names. The local one fsyncs, and
    /// removes directories that deletes leave empty.
    pub(super) fn open(cfg: &StoreConfig) -> Result<Backend, StoreError> {
        if cfg.part_size == 0 {
            return Err(StoreError::Config("part-size must not be 0".into()));
        }
        match (&cfg.path, &cfg.s3) {
            (Some(path), None) => {
                let shown = path.display().to_string();
                std::fs::create_dir_all(path.join("items")).map_err(|e| {
                    StoreError::Config(format!("cannot create store path {shown}: {e}"))
                })?;
                let fs = LocalFileSystem::new_with_prefix(path)
                    .map_err(|source| backend_err("open", shown.clone(), source))?
                    .with_automatic_cleanup(true)
                    .with_fsync(true);
                Ok(Backend {
                    os: Arc::new(fs),
                    name: "local",
                    location: shown,
                    local_root: Some(path.clone()),
                })
            }
            (None, Some(s3)) => Ok(Backend {
                os: Arc::new(build_s3(s3, cfg.part_size)?),
                name: "s3",
                location: format!("s3://{}", s3.bucket),
                local_root: None,
            }),
            _ => Err(StoreError::Config(
                "[store] needs exactly one of path and s3".into(),
            )),
        }
    }
}

/// Builds the S3 client: path-style requests when an endpoint is set,
/// three retries within 30 s, rustls on ring.
fn build_s3(s3: &S3Config, part_size: usize) -> Result<AmazonS3, StoreError> {
    if part_size < S3_MIN_PART {
        return Err(StoreError::Config(format!(
            "part-size {part_size} is below S3's minimum part of 5 MiB"
        )));
    }
    if s3.bucket.is_empty() {
        return Err(StoreError::Config("s3 bucket is empty".into()));
    }
    // reqwest is built without a crypto provider: install rustls' ring one
    // as the process default (if none is yet). ring, not aws-lc-rs, as in
    // the data plane's TLS; rustls marks it deprecated for want of
    // post-quantum key exchange.
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    let retry = RetryConfig {
        max_retries: 3,
        retry_timeout: Duration::from_secs(30),
        ..RetryConfig::default()
    };
    let mut b = AmazonS3Builder::from_env()
        .with_bucket_name(&s3.bucket)
        .with_allow_http(s3.allow_http)
        .with_retry(retry);
    if !s3.region.is_empty() {
        b = b.with_region(&s3.region);
    }
    if let Some(endpoint) = &s3.endpoint {
        b = b
            .with_endpoint(endpoint)
            .with_virtual_hosted_style_request(false);
    }
    if let Some(id) = &s3.access_key_id {
        b = b.with_access_key_id(id);
    }
    if let Some(secret) = &s3.secret_access_key {
        b = b.with_secret_access_key(secret);
    }
    b.build()
        .map_err(|source| backend_err("open", format!("s3://{}", s3.bucket), source))
}

/// A backend error.
pub(super) fn backend_err(
    op: &'static str,
    key: String,
    source: object_store::Error,
) -> StoreError {
    StoreError::Backend { op, key, source }
}
