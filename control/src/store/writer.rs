//! [`BodyWriter`]: one body as a multipart upload, hashed as it goes.

use std::collections::VecDeque;
use std::fmt;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{MultipartUpload, PutPayloadMut};
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use super::backend::{Store, StoreError};
use super::config::backend_err;

/// Body parts uploading at once per writer.
const MAX_IN_FLIGHT: usize = 2;

/// Slices at least this long join a part without a copy (they keep their
/// receive buffer alive until the part is written); shorter ones are
/// copied, so that a stream of tiny chunks cannot pin a receive buffer
/// per byte stored.
const SHARE_MIN: usize = 16 * 1024;

/// The bytes and SHA-256 of a finished body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyInfo {
    /// Body length.
    pub bytes: u64,
    /// SHA-256 of the body, lowercase hex.
    pub sha256: String,
}

/// Writes one body (`items/<id>/body-<index>`) as a multipart upload.
///
/// [`write`](Self::write) gathers slices and uploads a part once
/// `part-size` bytes are in (at most two uploading at once); a part is the
/// slices themselves, not a copy, unless they are short; [`finish`](Self::finish) uploads
/// the rest and completes the upload, and only then is the body visible.
/// A writer dropped unfinished aborts its upload, like
/// [`abort`](Self::abort). After an error the writer is closed: the upload
/// is aborted and every later call fails.
pub struct BodyWriter {
    store: Store,
    key: Path,
    upload: Option<Box<dyn MultipartUpload>>,
    part: PutPayloadMut,
    hasher: Sha256,
    written: u64,
    in_flight: VecDeque<JoinHandle<object_store::Result<()>>>,
}

impl fmt::Debug for BodyWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyWriter")
            .field("key", &self.key.as_ref())
            .field("written", &self.written)
            .field("buffered", &self.part.content_length())
            .field("in_flight", &self.in_flight.len())
            .field("open", &self.upload.is_some())
            .finish()
    }
}

impl BodyWriter {
    pub(super) fn new(store: Store, key: Path, upload: Box<dyn MultipartUpload>) -> BodyWriter {
        BodyWriter {
            part: PutPayloadMut::new(),
            store,
            key,
            upload: Some(upload),
            hasher: Sha256::new(),
            written: 0,
            in_flight: VecDeque::new(),
        }
    }

    /// Appends `data`; uploads a part each time `part-size` bytes are in,
    /// waiting while two parts are still uploading.
    pub fn write(&mut self, data: Bytes) -> Result<(), StoreError> {
        if self.upload.is_none() {
            return Err(self.closed());
        }
        self.hasher.update(&data);
        self.written += data.len() as u64;
        if data.len() >= SHARE_MIN {
            self.part.push(data);
        } else {
            self.part.extend_from_slice(&data);
        }
        if self.part.content_length() >= self.store.part_size()
            && let Err(e) = self.send_part()
        {
            self.abort_upload();
            return Err(e);
        }
        Ok(())
    }

    /// Uploads the rest and completes the upload: the body is visible from
    /// now on. On error the upload is aborted.
    pub fn finish(mut self) -> Result<BodyInfo, StoreError> {
        let done = self.complete();
        if done.is_err() {
            self.abort_upload();
        }
        done
    }

    /// Aborts the upload, best effort: a failure is logged.
    pub fn abort(mut self) {
        self.abort_upload();
    }

    /// Bytes accepted by [`write`](Self::write) so far, uploaded or buffered.
    pub fn written(&self) -> u64 {
        self.written
    }

    fn complete(&mut self) -> Result<BodyInfo, StoreError> {
        if self.upload.is_none() {
            return Err(self.closed());
        }
        if !self.part.is_empty() {
            self.send_part()?;
        }
        while !self.in_flight.is_empty() {
            self.wait_oldest()?;
        }
        let Some(mut upload) = self.upload.take() else {
            return Err(self.closed());
        };
        let completed = self.store.block_on(upload.complete());
        // Put it back so that a failed completion is aborted.
        self.upload = Some(upload);
        completed?.map_err(|source| backend_err("complete", self.key.to_string(), source))?;
        self.upload = None;
        let hasher = std::mem::take(&mut self.hasher);
        Ok(BodyInfo {
            bytes: self.written,
            sha256: hex::encode(hasher.finalize()),
        })
    }

    /// Uploads what [`write`](Self::write) gathered as the next part.
    fn send_part(&mut self) -> Result<(), StoreError> {
        let part = std::mem::take(&mut self.part).freeze();
        while self.in_flight.len() >= MAX_IN_FLIGHT {
            self.wait_oldest()?;
        }
        let Some(upload) = self.upload.as_mut() else {
            return Err(self.closed());
        };
        let uploading = upload.put_part(part);
        self.in_flight.push_back(self.store.spawn(uploading));
        Ok(())
    }

    fn wait_oldest(&mut self) -> Result<(), StoreError> {
        let Some(task) = self.in_flight.pop_front() else {
            return Ok(());
        };
        match self.store.block_on(task)? {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(backend_err("put-part", self.key.to_string(), source)),
            Err(join) => Err(StoreError::Runtime(format!(
                "part upload of {}: {join}",
                self.key
            ))),
        }
    }

    fn abort_upload(&mut self) {
        for task in self.in_flight.drain(..) {
            task.abort();
        }
        let Some(mut upload) = self.upload.take() else {
            return;
        };
        let failed = match self.store.block_on(async move { upload.abort().await }) {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        tracing::warn!(key = %self.key, error = %failed, "store: aborting a body upload failed");
    }

    fn closed(&self) -> StoreError {
        StoreError::Runtime(format!("body writer for {} is closed", self.key))
    }
}

impl Drop for BodyWriter {
    fn drop(&mut self) {
        self.abort_upload();
    }
}
