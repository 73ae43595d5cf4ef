//! The store as the session table sees it: [`Recorder`], and
//! [`StoreService`], which implements it over a [`Store`] and the MSRP
//! endpoint of `peer.rs`.
//!
//! The table calls the recorder under its lock, so no call here waits on
//! the backend: `begin` and `replay` only register a URI (and `replay`
//! reads an item's metadata, which the service caches while it lives);
//! `settle` and `delivered` are queued to the service's worker thread,
//! which does the backend I/O and reports what came of it as a
//! [`Notice`] (the server publishes them as protocol events).
//!
//! An item is settled twice over: the data plane ends the session (the
//! table's `settle`, with the devices that should still get the content)
//! and the recording connection ends (every body finished). Whichever
//! comes second decides: nobody pending, or nothing recorded → the item is
//! deleted; else its metadata is written `stored` and a
//! [`Notice::Stored`] goes out.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::meta::{ItemMeta, ItemState, PendingDevice, StoredMessage};
use super::resume::Resume;
use super::{Store, StoreError};
use crate::sdp::{FileRange, FileSelector};

/// What the table asks of the store. See the module docs.
pub trait Recorder: Send + Sync + std::fmt::Debug {
    /// A session of `start` is to be recorded: where the relay's store leg
    /// connects.
    fn begin(&self, start: ItemStart) -> Result<Target, StoreError>;
    /// The session ended; `pending` should still get the content.
    fn settle(&self, item: &str, pending: Vec<PendingDevice>);
    /// A deferred delivery of `item` toward `device` (a pending device's
    /// key): where the relay's sender leg connects to fetch it, and the SDP
    /// the original sender offered.
    fn replay(&self, item: &str, device: &str) -> Result<Replay, StoreError>;
    /// A replay ended: `ok` when the device's leg drained (it got every
    /// byte), else it stays pending.
    fn replayed(&self, item: &str, device: &str, ok: bool);
    /// Every stored item.
    fn list(&self) -> Result<Vec<ItemMeta>, StoreError>;
    /// Deletes an item; `false` if there was none.
    fn delete(&self, item: &str) -> Result<bool, StoreError>;
    /// Devices that got `item` (0 if that cannot be read).
    fn delivered_count(&self, item: &str) -> usize;
    /// A pull offer's `a=file-range` (FT-RESUME): the stored file `want`
    /// selects, where the relay's sender leg fetches `range` of it; `None`
    /// if no such file is held whole. Errors: a range past the end.
    fn resume(&self, want: &FileSelector, range: FileRange) -> Result<Option<Resume>, StoreError>;
}

/// A session about to be recorded.
#[derive(Debug, Clone)]
pub struct ItemStart {
    /// The sender's Call-ID.
    pub call_id: String,
    /// The sender's From tag.
    pub from_tag: String,
    /// `chat`, `file-transfer`, `large-message`.
    pub kind: String,
    /// The sender's SDP offer.
    pub sender_sdp: String,
}

/// Where the relay connects (the relay is the active side, RFC 6135).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The item.
    pub item: String,
    /// The store endpoint's MSRP URI for this connection.
    pub uri: String,
    /// Its address (loopback).
    pub addr: SocketAddr,
}

/// A deferred delivery.
#[derive(Debug, Clone)]
pub struct Replay {
    /// Where the relay's sender leg connects.
    pub target: Target,
    /// The original sender's SDP offer.
    pub sender_sdp: String,
    /// The item's kind.
    pub kind: String,
}

/// What came of the store's work, for the front end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Stored for these devices (`deliver` them when they register).
    Stored {
        /// The item.
        item: String,
        /// The session it was recorded from.
        call_id: String,
        /// Its From tag.
        from_tag: String,
        /// Who should get it.
        pending: Vec<PendingDevice>,
        /// Body bytes stored.
        bytes: u64,
    },
    /// Not stored (the backend failed, or nothing whole was recorded);
    /// the live fan-out was not affected.
    Failed {
        /// The item.
        item: String,
        /// The session.
        call_id: String,
        /// Its From tag.
        from_tag: String,
        /// Why.
        reason: String,
    },
}

/// A role the endpoint expects on a connection, by the session-id of the
/// URI the relay was given.
#[derive(Debug, Clone)]
pub(super) enum Role {
    Record {
        item: String,
    },
    Replay {
        item: String,
        device: String,
    },
    /// A pull's `a=file-range` (FT-RESUME): one part of one body.
    Resume {
        item: String,
        part: super::resume::Part,
    },
}

#[derive(Debug, Default)]
struct Live {
    meta: Option<ItemMeta>,
    /// The relay's store leg connected.
    connected: bool,
    recorded: bool,
    settled: Option<Vec<PendingDevice>>,
    failure: Option<String>,
}

#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) roles: HashMap<String, Role>,
    live: HashMap<String, Live>,
    replaying: HashSet<(String, String)>,
    /// Replays whose every chunk the relay took.
    replayed_ok: HashSet<(String, String)>,
    /// Delivered since start (the backend's markers say so for good; this
    /// answers a second `deliver` before the marker is written).
    delivered: HashSet<(String, String)>,
}

enum Order {
    Finalize(String),
    Delivered {
        item: String,
        device: String,
        ok: bool,
    },
}

/// The store service: backend, endpoint and worker. See the module docs.
pub struct StoreService {
    pub(super) store: Store,
    pub(super) addr: SocketAddr,
    pub(super) state: Mutex<State>,
    orders: Mutex<Sender<Order>>,
    notices: OnceLock<Box<dyn Fn(Notice) + Send + Sync>>,
}

impl std::fmt::Debug for StoreService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreService")
            .field("backend", &self.store.backend_name())
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// 20 characters of `[A-Za-z0-9]` from the kernel's source (≈119 bits).
pub(super) fn token() -> Result<String, StoreError> {
    const ALNUM: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut b = [0u8; 20];
    getrandom::fill(&mut b).map_err(|e| StoreError::Runtime(format!("random: {e}")))?;
    Ok(b.iter().map(|x| ALNUM[*x as usize % 62] as char).collect())
}

impl StoreService {
    /// Starts the endpoint on `127.0.0.1` (an ephemeral port) and the
    /// worker.
    pub fn start(store: Store) -> Result<Arc<StoreService>, StoreError> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| StoreError::Runtime(format!("store endpoint: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| StoreError::Runtime(format!("store endpoint: {e}")))?;
        let (tx, rx) = channel();
        let svc = Arc::new(StoreService {
            store,
            addr,
            state: Mutex::new(State::default()),
            orders: Mutex::new(tx),
            notices: OnceLock::new(),
        });
        super::peer::spawn_acceptor(Arc::downgrade(&svc), listener)?;
        let weak = Arc::downgrade(&svc);
        std::thread::Builder::new()
            .name("store-worker".into())
            .spawn(move || worker(weak, rx))
            .map_err(|e| StoreError::Runtime(format!("store worker: {e}")))?;
        tracing::info!(backend = svc.store.backend_name(), endpoint = %addr, "content store ready");
        Ok(svc)
    }

    /// Where notices go (the server's event hub). Set once.
    pub fn on_notice(&self, f: Box<dyn Fn(Notice) + Send + Sync>) {
        let _ = self.notices.set(f);
    }

    pub(super) fn uri(&self, token: &str) -> String {
        format!("msrp://{}/{token};tcp", self.addr)
    }

    fn order(&self, o: Order) {
        let _ = lock(&self.orders).send(o);
    }

    fn notify(&self, n: Notice) {
        match self.notices.get() {
            Some(f) => f(n),
            None => tracing::debug!(notice = ?n, "store notice with no one to tell"),
        }
    }

    /// The role the relay's connection to `token` plays (a recording is
    /// marked connected: it ends with [`StoreService::recorded`]).
    pub(super) fn role(&self, token: &[u8]) -> Option<Role> {
        let t = std::str::from_utf8(token).ok()?;
        let mut st = lock(&self.state);
        let role = st.roles.get(t).cloned()?;
        if let Role::Record { item } = &role {
            match st.live.get_mut(item) {
                Some(l) if !l.connected && !l.recorded => l.connected = true,
                // A second connection for the same recording.
                _ => return None,
            }
        }
        Some(role)
    }

    /// The recording connection ended with these messages (`failure`: the
    /// backend refused a write; the relay's leg was not harmed).
    pub(super) fn recorded(
        &self,
        item: &str,
        messages: Vec<StoredMessage>,
        failure: Option<String>,
    ) {
        {
            let mut st = lock(&self.state);
            st.roles.remove(item);
            let Some(l) = st.live.get_mut(item) else {
                return;
            };
            l.recorded = true;
            if let Some(m) = l.meta.as_mut() {
                m.complete = !messages.is_empty() && messages.iter().all(|m| !m.interrupted);
                m.messages = messages;
            }
            if failure.is_some() {
                l.failure = failure;
            }
        }
        self.order(Order::Finalize(item.to_owned()));
    }

    /// The replay of `item` to `device` sent everything and the relay
    /// took every chunk (`ok`), or not.
    pub(super) fn replay_finished(&self, item: &str, device: &str, ok: bool) {
        if ok {
            lock(&self.state)
                .replayed_ok
                .insert((item.to_owned(), device.to_owned()));
        }
    }

    /// Writes the live item's meta as it stands (state `recording`).
    pub(super) fn write_recording_meta(&self, item: &str) -> Result<(), StoreError> {
        let meta = lock(&self.state)
            .live
            .get(item)
            .and_then(|l| l.meta.clone());
        match meta {
            Some(m) => self.store.put_meta(&m),
            None => Ok(()),
        }
    }

    /// An item's metadata: the live copy, else the backend's.
    pub(super) fn meta(&self, item: &str) -> Result<Option<ItemMeta>, StoreError> {
        if let Some(m) = lock(&self.state)
            .live
            .get(item)
            .and_then(|l| l.meta.clone())
        {
            return Ok(Some(m));
        }
        self.store.get_meta(item)
    }

    fn finalize(&self, item: &str) {
        let (meta, pending, failure) = {
            let mut st = lock(&self.state);
            let ready = st
                .live
                .get(item)
                .is_some_and(|l| l.recorded && l.settled.is_some());
            if !ready {
                return;
            }
            let Some(l) = st.live.remove(item) else {
                return;
            };
            let Some(meta) = l.meta else { return };
            (meta, l.settled.unwrap_or_default(), l.failure)
        };
        let bytes: u64 = meta.messages.iter().map(|m| m.bytes).sum();
        // A sender that sent nothing (a call cancelled before its first
        // chunk) leaves nothing to deliver, and nothing failed.
        let nothing = meta.messages.is_empty() && failure.is_none();
        if pending.is_empty() || failure.is_some() || nothing {
            if nothing && !pending.is_empty() {
                tracing::debug!(item, call_id = %meta.call_id, "nothing sent, nothing stored");
            }
            if let Err(e) = self.store.delete(item) {
                tracing::warn!(item, error = %e, "deleting a settled item");
            }
            if let (Some(reason), false) = (failure, pending.is_empty()) {
                tracing::warn!(item, call_id = %meta.call_id, %reason, "content not stored");
                self.notify(Notice::Failed {
                    item: item.to_owned(),
                    call_id: meta.call_id,
                    from_tag: meta.from_tag,
                    reason,
                });
            }
            return;
        }
        let meta = ItemMeta {
            pending: pending.clone(),
            state: ItemState::Stored,
            ..meta
        };
        match self.store.put_meta(&meta) {
            Ok(()) => {
                tracing::info!(item, call_id = %meta.call_id, bytes, pending = pending.len(), "content stored for absent devices");
                self.notify(Notice::Stored {
                    item: item.to_owned(),
                    call_id: meta.call_id,
                    from_tag: meta.from_tag,
                    pending,
                    bytes,
                });
            }
            Err(e) => {
                tracing::warn!(item, error = %e, "content not stored");
                let _ = self.store.delete(item);
                self.notify(Notice::Failed {
                    item: item.to_owned(),
                    call_id: meta.call_id,
                    from_tag: meta.from_tag,
                    reason: e.to_string(),
                });
            }
        }
    }

    fn delivered(&self, item: &str, device: &str, ok: bool) {
        if !ok {
            if let Err(e) = self.store.unmark_delivered(item, device) {
                tracing::warn!(item, device, error = %e, "the failed delivery's marker stays: the device will not get the item");
            }
            return;
        }
        let Ok(Some(meta)) = self.store.get_meta(item) else {
            return;
        };
        match self.store.delivered(item) {
            Ok(n) if n >= meta.pending.len() => {
                tracing::info!(item, "delivered to every pending device; deleted");
                if let Err(e) = self.store.delete(item) {
                    tracing::warn!(item, error = %e, "deleting a delivered item");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(item, error = %e, "counting deliveries"),
        }
    }
}

/// How often items past `[store] retention-ms` are looked for.
const EXPIRE_EVERY: Duration = Duration::from_secs(60);

fn worker(svc: std::sync::Weak<StoreService>, rx: Receiver<Order>) {
    let mut last_expiry = Instant::now();
    loop {
        let order = match rx.recv_timeout(EXPIRE_EVERY) {
            Ok(o) => Some(o),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let Some(svc) = svc.upgrade() else { return };
        match order {
            Some(Order::Finalize(item)) => svc.finalize(&item),
            Some(Order::Delivered { item, device, ok }) => svc.delivered(&item, &device, ok),
            None => {}
        }
        if last_expiry.elapsed() >= EXPIRE_EVERY {
            last_expiry = Instant::now();
            match svc.store.expire(now_ms()) {
                Ok(gone) if !gone.is_empty() => {
                    tracing::info!(
                        items = gone.len(),
                        "stored items past their retention deleted"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "expiring stored items"),
            }
        }
    }
}

impl Recorder for StoreService {
    fn begin(&self, start: ItemStart) -> Result<Target, StoreError> {
        let item = token()?;
        let meta = ItemMeta {
            item: item.clone(),
            call_id: start.call_id,
            from_tag: start.from_tag,
            kind: start.kind,
            sender_sdp: start.sender_sdp,
            created_ms: now_ms(),
            messages: Vec::new(),
            complete: false,
            pending: Vec::new(),
            state: ItemState::Recording,
        };
        let mut st = lock(&self.state);
        st.roles
            .insert(item.clone(), Role::Record { item: item.clone() });
        st.live.insert(
            item.clone(),
            Live {
                meta: Some(meta),
                ..Live::default()
            },
        );
        Ok(Target {
            uri: self.uri(&item),
            addr: self.addr,
            item,
        })
    }

    fn settle(&self, item: &str, pending: Vec<PendingDevice>) {
        {
            let mut st = lock(&self.state);
            let Some(l) = st.live.get_mut(item) else {
                return;
            };
            l.settled = Some(pending);
            // The store leg never connected (the session ended first):
            // nothing is coming.
            if !l.connected {
                l.recorded = true;
                st.roles.remove(item);
            }
        }
        self.order(Order::Finalize(item.to_owned()));
    }

    fn replay(&self, item: &str, device: &str) -> Result<Replay, StoreError> {
        let meta = self
            .meta(item)?
            .filter(|m| m.state == ItemState::Stored)
            .ok_or_else(|| StoreError::Refused(format!("no stored item {item:?}")))?;
        if !meta.pending.iter().any(|p| p.key() == device) {
            return Err(StoreError::Refused(format!(
                "item {item:?} is not for device {device:?}"
            )));
        }
        let t = token()?;
        let key = (item.to_owned(), device.to_owned());
        {
            let mut st = lock(&self.state);
            if st.delivered.contains(&key) || !st.replaying.insert(key.clone()) {
                return Err(StoreError::Refused(format!(
                    "item {item:?} is delivered to {device:?} already"
                )));
            }
        }
        // At most once, also across relays sharing the backend: the marker
        // is taken before the delivery and given back if it fails.
        let marked = self.store.mark_delivered(item, device);
        if !matches!(marked, Ok(true)) {
            lock(&self.state).replaying.remove(&key);
            return Err(marked.err().unwrap_or_else(|| {
                StoreError::Refused(format!("item {item:?} was delivered to {device:?} already"))
            }));
        }
        lock(&self.state).roles.insert(
            t.clone(),
            Role::Replay {
                item: item.to_owned(),
                device: device.to_owned(),
            },
        );
        Ok(Replay {
            target: Target {
                item: item.to_owned(),
                uri: self.uri(&t),
                addr: self.addr,
            },
            sender_sdp: meta.sender_sdp,
            kind: meta.kind,
        })
    }

    fn replayed(&self, item: &str, device: &str, ok: bool) {
        let key = (item.to_owned(), device.to_owned());
        let ok = {
            let mut st = lock(&self.state);
            st.replaying.remove(&key);
            // The device drained, and what it drained was all of it.
            let ok = st.replayed_ok.remove(&key) && ok;
            if ok {
                st.delivered.insert(key);
            }
            ok
        };
        if !ok {
            tracing::warn!(
                item,
                device,
                "deferred delivery did not finish; the item stays pending for the device"
            );
        }
        self.order(Order::Delivered {
            item: item.to_owned(),
            device: device.to_owned(),
            ok,
        });
    }

    fn list(&self) -> Result<Vec<ItemMeta>, StoreError> {
        self.store.list()
    }

    fn delivered_count(&self, item: &str) -> usize {
        self.store.delivered(item).unwrap_or(0)
    }

    fn resume(&self, want: &FileSelector, range: FileRange) -> Result<Option<Resume>, StoreError> {
        self.find_resume(want, range)
    }

    fn delete(&self, item: &str) -> Result<bool, StoreError> {
        let had = self.store.get_meta(item)?.is_some();
        self.store.delete(item)?;
        Ok(had)
    }
}
