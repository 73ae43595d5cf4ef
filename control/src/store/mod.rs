//! # The content store (issue 12: store while unavailable, deferred
//! delivery, file-transfer resume)
//!
//! The data plane's content log keeps a message's bytes in memory (and a
//! spill file) for as long as the session lives. The store is its durable
//! sibling: what a sender sent while some of the recipient's devices were
//! unavailable is kept here, on local disk or in an S3-compatible bucket,
//! until those devices come back, or until the retention runs out.
//!
//! ## Object layout
//!
//! ```text
//! items/<id>/meta.json                 ItemMeta, JSON (see meta)
//! items/<id>/body-<index>              one MSRP message's body, raw bytes
//! items/<id>/delivered/<sha256(device)> one marker per device that got it
//! ```
//!
//! Item ids are `[A-Za-z0-9]{1,128}`; anything else is rejected before a
//! key is built, so an id can never name a path outside its item.
//!
//! ## Crash safety
//!
//! - `meta.json` is written with one whole-object put: the local backend
//!   writes a temporary file and renames it, S3 replaces the object
//!   atomically. A reader sees the old meta or the new one, never half.
//! - A body is a multipart upload ([`BodyWriter`]): it becomes visible only
//!   when [`BodyWriter::finish`] completes the upload (the local backend
//!   renames its staging file, which `list` and `get` never show; S3
//!   completes the multipart upload). A relay that dies mid-body leaves no
//!   complete-looking body: at most a staging file (removed by
//!   [`Store::delete`] on the local backend) or an incomplete S3 upload
//!   (give the bucket an `AbortIncompleteMultipartUpload` lifecycle rule).
//! - The local backend fsyncs files and their directory before a put or a
//!   completed body returns.
//! - Write the meta (state `recording`) before the first body: an item
//!   whose meta never got written is invisible to [`Store::list`] and
//!   [`Store::expire`].
//!
//! ## At-most-once delivery markers
//!
//! Several relays may share one bucket. Before replaying an item to a
//! device, a relay calls [`Store::mark_delivered`], a create-only put
//! (`If-None-Match: *` on S3, a hard link on local disk): exactly one
//! caller gets `true` and delivers; every other gets `false` and does not.
//! A relay that dies after marking and before delivering loses that one
//! delivery: at most once, by design.
//!
//! ## Blocking API
//!
//! `object_store` is async; [`Store`] owns a small tokio runtime (two
//! worker threads) and every method blocks on it. Call it from plain
//! threads, never from inside an async task.

pub mod backend;
mod config;
pub mod meta;
pub mod peer;
mod resume;
pub mod service;
#[cfg(test)]
mod tests;
mod writer;

pub use backend::{BodyInfo, BodyWriter, MAX_READ_RANGE, S3Config, Store, StoreConfig, StoreError};
pub use meta::{ItemMeta, ItemState, PendingDevice, StoredMessage};
pub use resume::{Part, Resume, cpim_payload};
pub use service::{ItemStart, Notice, Recorder, Replay, StoreService, Target};
