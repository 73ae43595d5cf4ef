//! The [`Store`]: `object_store` (local disk or S3) behind a blocking API.

use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use sha2::{Digest, Sha256};

use super::config::{Backend, backend_err};
pub use super::config::{S3Config, StoreConfig, StoreError};
use super::meta::ItemMeta;
pub use super::writer::{BodyInfo, BodyWriter};

/// The most [`Store::read_range`] reads at once.
pub const MAX_READ_RANGE: u64 = 1 << 20;
/// Item metas fetched at once by `list` and `expire`.
const LIST_CONCURRENCY: usize = 16;

/// The content store; cheap to clone (one `Arc`), shareable across threads.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    rt: tokio::runtime::Runtime,
    os: Arc<dyn ObjectStore>,
    backend: &'static str,
    location: String,
    local_root: Option<PathBuf>,
    retention: Duration,
    part_size: usize,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.inner.backend)
            .field("location", &self.inner.location)
            .field("retention", &self.inner.retention)
            .field("part_size", &self.inner.part_size)
            .finish()
    }
}

/// One parsed (or unparsable) meta, with its object's modification time.
type Scanned = (String, Result<ItemMeta, String>, u64);

impl Store {
    /// Opens the backend and checks it answers (one list call); the error
    /// names the path or bucket.
    pub fn open(cfg: &StoreConfig) -> Result<Store, StoreError> {
        let Backend {
            os,
            name: backend,
            location,
            local_root,
        } = Backend::open(cfg)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("msrp-store")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Runtime(format!("cannot start: {e}")))?;
        let store = Store {
            inner: Arc::new(Inner {
                rt,
                os,
                backend,
                location,
                local_root,
                retention: cfg.retention,
                part_size: cfg.part_size,
            }),
        };
        store.item_ids().map_err(|e| match e {
            StoreError::Backend { source, .. } => {
                backend_err("open", store.inner.location.clone(), source)
            }
            other => other,
        })?;
        Ok(store)
    }

    /// `"local"` or `"s3"`.
    pub fn backend_name(&self) -> &'static str {
        self.inner.backend
    }

    /// Starts writing `items/<item>/body-<index>`; nothing is visible until
    /// [`BodyWriter::finish`].
    pub fn body_writer(&self, item: &str, index: u32) -> Result<BodyWriter, StoreError> {
        check_id(item)?;
        let key = Path::from(format!("items/{item}/body-{index}"));
        let upload = self
            .block_on(self.inner.os.put_multipart(&key))?
            .map_err(|source| backend_err("put-multipart", key.to_string(), source))?;
        Ok(BodyWriter::new(self.clone(), key, upload))
    }

    /// Reads `range` of a finished body, at most [`MAX_READ_RANGE`] bytes.
    /// An end past the body is clamped to it; a start at or past the end is
    /// a backend error; an empty range reads nothing.
    pub fn read_range(
        &self,
        item: &str,
        index: u32,
        range: Range<u64>,
    ) -> Result<Bytes, StoreError> {
        check_id(item)?;
        if range.start > range.end || range.end - range.start > MAX_READ_RANGE {
            return Err(StoreError::Config(format!(
                "bad read range {}..{} (at most {MAX_READ_RANGE} bytes)",
                range.start, range.end
            )));
        }
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        let key = Path::from(format!("items/{item}/body-{index}"));
        self.block_on(self.inner.os.get_range(&key, range))?
            .map_err(|source| backend_err("get-range", key.to_string(), source))
    }

    /// Writes `items/<id>/meta.json` with one whole-object put (atomic on
    /// both backends).
    pub fn put_meta(&self, meta: &ItemMeta) -> Result<(), StoreError> {
        check_id(&meta.item)?;
        let key = meta_key(&meta.item);
        let json = serde_json::to_vec(meta).map_err(|e| StoreError::Corrupt {
            key: key.to_string(),
            reason: e.to_string(),
        })?;
        self.block_on(self.inner.os.put(&key, PutPayload::from(json)))?
            .map_err(|source| backend_err("put", key.to_string(), source))?;
        Ok(())
    }

    /// The item's meta, `None` if it has none; a meta that does not parse
    /// is [`StoreError::Corrupt`].
    pub fn get_meta(&self, item: &str) -> Result<Option<ItemMeta>, StoreError> {
        check_id(item)?;
        let os = Arc::clone(&self.inner.os);
        match self.block_on(fetch_meta(os, item.to_owned()))?? {
            None => Ok(None),
            Some((_, Ok(meta), _)) => Ok(Some(meta)),
            Some((_, Err(reason), _)) => Err(StoreError::Corrupt {
                key: meta_key(item).to_string(),
                reason,
            }),
        }
    }

    /// Every item that has a meta; a meta that does not parse is skipped
    /// with a warning.
    pub fn list(&self) -> Result<Vec<ItemMeta>, StoreError> {
        let scanned = self.scan()?;
        Ok(scanned
            .into_iter()
            .filter_map(|(item, parsed, _)| match parsed {
                Ok(meta) => Some(meta),
                Err(reason) => {
                    tracing::warn!(item = %item, reason = %reason, "store: skipping unreadable meta");
                    None
                }
            })
            .collect())
    }

    /// Deletes every object under `items/<id>/`, `meta.json` last (a delete
    /// cut short leaves an item that `list` still shows, and the next
    /// delete or expire finishes it). Deleting a missing item is `Ok`.
    pub fn delete(&self, item: &str) -> Result<(), StoreError> {
        check_id(item)?;
        let os = Arc::clone(&self.inner.os);
        let prefix = Path::from(format!("items/{item}"));
        let meta = meta_key(item);
        self.block_on(async move {
            let others = {
                let meta = meta.clone();
                os.list(Some(&prefix))
                    .map_ok(|m| m.location)
                    .try_filter(move |l| std::future::ready(*l != meta))
                    .boxed()
            };
            let mut deleted = os.delete_stream(others);
            while let Some(r) = deleted.next().await {
                ignore_not_found(r.map(drop))
                    .map_err(|s| backend_err("delete", prefix.to_string(), s))?;
            }
            ignore_not_found(os.delete(&meta).await)
                .map_err(|s| backend_err("delete", meta.to_string(), s))
        })??;
        if let Some(root) = &self.inner.local_root {
            // Staging files of bodies never finished (a crash) are not objects.
            match std::fs::remove_dir_all(root.join("items").join(item)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    tracing::warn!(item = %item, error = %e, "store: leftover files not removed");
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Marks the item delivered to `device` (a [`PendingDevice::key`]):
    /// `true` the first time, `false` if any relay sharing the backend
    /// marked it before. The marker holds the device key.
    ///
    /// [`PendingDevice::key`]: super::PendingDevice::key
    pub fn mark_delivered(&self, item: &str, device: &str) -> Result<bool, StoreError> {
        let key = marker_key(item, device)?;
        let payload = PutPayload::from(device.as_bytes().to_vec());
        let put = self
            .inner
            .os
            .put_opts(&key, payload, PutOptions::from(PutMode::Create));
        match self.block_on(put)? {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(source) => Err(backend_err("put-create", key.to_string(), source)),
        }
    }

    /// Removes the device's marker, for a delivery that failed before the
    /// device got the item: a later attempt, on any relay, can mark it
    /// again. A missing marker is `Ok`.
    pub fn unmark_delivered(&self, item: &str, device: &str) -> Result<(), StoreError> {
        let key = marker_key(item, device)?;
        let deleted = self.block_on(self.inner.os.delete(&key))?;
        ignore_not_found(deleted).map_err(|source| backend_err("delete", key.to_string(), source))
    }

    /// How many devices the item was marked delivered to.
    pub fn delivered(&self, item: &str) -> Result<usize, StoreError> {
        check_id(item)?;
        let prefix = Path::from(format!("items/{item}/delivered"));
        let count = self
            .inner
            .os
            .list(Some(&prefix))
            .try_fold(0, |n, _| std::future::ready(Ok(n + 1)));
        self.block_on(count)?
            .map_err(|source| backend_err("list", prefix.to_string(), source))
    }

    /// Deletes the items whose `created_ms` plus the retention is before
    /// `now_ms` (an unparsable meta counts from its object's modification
    /// time) and returns their ids. An item that fails to delete is logged
    /// and left for the next run.
    pub fn expire(&self, now_ms: u64) -> Result<Vec<String>, StoreError> {
        let retention_ms = u64::try_from(self.inner.retention.as_millis()).unwrap_or(u64::MAX);
        let mut expired = Vec::new();
        for (item, parsed, modified_ms) in self.scan()? {
            let created = parsed.as_ref().map_or(modified_ms, |m| m.created_ms);
            if created.saturating_add(retention_ms) >= now_ms {
                continue;
            }
            match self.delete(&item) {
                Ok(()) => expired.push(item),
                Err(e) => tracing::warn!(item = %item, error = %e, "store: expiry failed"),
            }
        }
        Ok(expired)
    }

    fn item_ids(&self) -> Result<Vec<String>, StoreError> {
        let prefix = Path::from("items");
        let listed = match self.block_on(self.inner.os.list_with_delimiter(Some(&prefix)))? {
            Ok(listed) => listed,
            Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
            Err(source) => return Err(backend_err("list", "items/".into(), source)),
        };
        Ok(listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename())
            .filter(|id| check_id(id).is_ok())
            .map(str::to_owned)
            .collect())
    }

    fn scan(&self) -> Result<Vec<Scanned>, StoreError> {
        let ids = self.item_ids()?;
        let os = Arc::clone(&self.inner.os);
        let fetches = futures_util::stream::iter(ids)
            .map(move |id| fetch_meta(Arc::clone(&os), id))
            .buffer_unordered(LIST_CONCURRENCY)
            .try_filter_map(|m| std::future::ready(Ok(m)))
            .try_collect::<Vec<_>>();
        let mut scanned = self.block_on(fetches)??;
        scanned.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(scanned)
    }

    /// The multipart part size.
    pub(super) fn part_size(&self) -> usize {
        self.inner.part_size
    }

    /// Spawns a task on the store's runtime.
    pub(super) fn spawn<F>(&self, fut: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.rt.spawn(fut)
    }

    /// Runs `fut` to completion on the store's runtime; an error, not a
    /// panic, when called from inside an async task.
    pub(super) fn block_on<F: Future>(&self, fut: F) -> Result<F::Output, StoreError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(StoreError::Runtime(
                "called from inside an async task".into(),
            ));
        }
        Ok(self.inner.rt.block_on(fut))
    }
}

/// Gets and parses one meta; `None` if the item has none.
async fn fetch_meta(os: Arc<dyn ObjectStore>, item: String) -> Result<Option<Scanned>, StoreError> {
    let key = meta_key(&item);
    let got = match os.get(&key).await {
        Ok(got) => got,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(source) => return Err(backend_err("get", key.to_string(), source)),
    };
    let modified_ms = u64::try_from(got.meta.last_modified.timestamp_millis()).unwrap_or(0);
    let body = got
        .bytes()
        .await
        .map_err(|source| backend_err("get", key.to_string(), source))?;
    let parsed = match serde_json::from_slice::<ItemMeta>(&body) {
        Ok(meta) if meta.item == item => Ok(meta),
        Ok(meta) => Err(format!("names item {:?}", meta.item)),
        Err(e) => Err(e.to_string()),
    };
    Ok(Some((item, parsed, modified_ms)))
}

/// Item ids are 1 to 128 of `[A-Za-z0-9]`: never a path separator or dot.
fn check_id(item: &str) -> Result<(), StoreError> {
    if item.is_empty() || item.len() > 128 || !item.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(StoreError::Config(format!("bad item id {item:?}")));
    }
    Ok(())
}

/// `items/<item>/delivered/<hex sha256 of device>`.
fn marker_key(item: &str, device: &str) -> Result<Path, StoreError> {
    check_id(item)?;
    if device.is_empty() {
        return Err(StoreError::Config("empty device key".into()));
    }
    let digest = hex::encode(Sha256::digest(device.as_bytes()));
    Ok(Path::from(format!("items/{item}/delivered/{digest}")))
}

fn meta_key(item: &str) -> Path {
    Path::from(format!("items/{item}/meta.json"))
}

fn ignore_not_found(r: object_store::Result<()>) -> object_store::Result<()> {
    match r {
        Err(object_store::Error::NotFound { .. }) => Ok(()),
        other => other,
    }
}
