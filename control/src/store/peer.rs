//! The store's MSRP endpoint: the relay connects to it like to any device
//! (the relay is the active side and binds the connection with a bodiless
//! SEND, RFC 4975 §5.4), by the URI the [`super::Recorder`] handed out.
//!
//! - **Recording** (`Role::Record`): a store leg of a live session. Every
//!   SEND body is streamed into the backend as it comes ([`BodyWriter`]),
//!   one object per Message-ID; each chunk is answered `200` after its
//!   bytes are written, so the relay's leg drains only once the content is
//!   in the store. A backend failure does not fail the leg: the endpoint
//!   goes on answering `200` (the live fan-out must not suffer), drops
//!   what it wrote and reports the item not stored.
//! - **Replay** (`Role::Replay`): the sender of a deferred-delivery
//!   session. The endpoint sends each stored message in chunks of
//!   [`REPLAY_CHUNK`] bytes with their Byte-Range, reads the relay's
//!   responses on a second thread, and closes once every chunk is
//!   answered: to the relay, the sender finished (its device leg drains,
//!   then `leg-done`).
//!
//! One blocking thread per connection: there are as many as sessions being
//! stored or replayed, and each spends its time in the backend.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Weak};

use bytes::{Bytes, BytesMut};
use msrp_relay::msrp::{
    ByteRange, Decoder, Event, Flag, Limits, Method, RequestHead, StatusCode, encode,
};

use super::meta::StoredMessage;
use super::resume::Part;
use super::service::{Role, StoreService};
use super::{BodyWriter, StoreError};

/// Body bytes per SEND when replaying.
pub const REPLAY_CHUNK: u64 = 256 * 1024;

const READ_BUF: usize = 256 * 1024;
/// Receive space below which a fresh `READ_BUF` is taken.
const READ_MIN: usize = 16 * 1024;

/// How long a replay waits for the relay to answer a chunk before it gives
/// up (the device is then not marked delivered).
pub const ANSWER_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

pub(super) fn spawn_acceptor(svc: Weak<StoreService>, l: TcpListener) -> Result<(), StoreError> {
    std::thread::Builder::new()
        .name("store-accept".into())
        .spawn(move || {
            for s in l.incoming() {
                let Some(svc) = svc.upgrade() else { return };
                let Ok(s) = s else { continue };
                let spawned = std::thread::Builder::new()
                    .name("store-conn".into())
                    .spawn(move || serve(&svc, s));
                if let Err(e) = spawned {
                    tracing::warn!(error = %e, "store connection thread");
                }
            }
        })
        .map(|_| ())
        .map_err(|e| StoreError::Runtime(format!("store acceptor: {e}")))
}

/// Reads the next decoder event, feeding it from `s` as needed; `None` at
/// the end of the stream or on an error (logged).
fn next_event(s: &mut TcpStream, dec: &mut Decoder, buf: &mut BytesMut) -> Option<Event> {
    loop {
        match dec.poll() {
            Ok(Some(ev)) => return Some(ev),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "store endpoint: bad MSRP from the relay");
                return None;
            }
        }
        // `buf` is zeroed receive space: a read fills its front, which is
        // split off and fed, so the decoder's slices of it (and the body
        // writer's, see `writer::SHARE_MIN`) share one allocation. A new
        // one is made when little is left, never grown in place (growing
        // would copy the zeroes still unread).
        if buf.len() < READ_MIN {
            *buf = BytesMut::zeroed(READ_BUF);
        }
        match s.read(&mut buf[..]) {
            Ok(0) | Err(_) => return None,
            Ok(n) => dec.feed(buf.split_to(n).freeze()),
        }
    }
}

fn respond(s: &mut TcpStream, h: &RequestHead, code: StatusCode, me: &[u8]) -> bool {
    if !h.wants_response() {
        return true;
    }
    let mut b = BytesMut::with_capacity(160);
    encode::transaction_response(
        &mut b,
        h.tid.as_bytes(),
        code,
        None,
        h.from_path.as_bytes(),
        me,
    );
    s.write_all(&b).is_ok()
}

fn serve(svc: &Arc<StoreService>, mut s: TcpStream) {
    let mut dec = Decoder::new(Limits::default());
    let mut buf = BytesMut::new();
    // The binding SEND names the role.
    let Some(Event::Request(head)) = next_event(&mut s, &mut dec, &mut buf) else {
        return;
    };
    let me = head.to_path.last().as_bytes().to_vec();
    let role = head.to_path.last().session_id().and_then(|t| svc.role(t));
    let Some(role) = role else {
        respond(&mut s, &head, StatusCode::NO_SUCH_SESSION, &me);
        return;
    };
    match role {
        Role::Record { item } => {
            let mut rec = Recording {
                svc,
                item: &item,
                open: HashMap::new(),
                done: Vec::new(),
                failure: None,
            };
            // The meta (state `recording`) goes first: bodies of an item
            // whose relay died mid-recording are then found and expired.
            if let Err(e) = svc.write_recording_meta(&item) {
                rec.fail(e.to_string());
            }
            rec.run(&mut s, &mut dec, &mut buf, *head, &me);
            let Recording { done, failure, .. } = rec;
            svc.recorded(&item, done, failure);
        }
        Role::Replay { item, device } => {
            let parts = match svc.meta(&item) {
                Ok(Some(m)) => m.messages.iter().map(whole).collect(),
                Ok(None) | Err(_) => Vec::new(),
            };
            send_parts(svc, s, dec, &head, &me, &item, Some(&device), &parts);
        }
        Role::Resume { item, part } => {
            send_parts(svc, s, dec, &head, &me, &item, None, &[part]);
        }
    }
}

/// A stored message whole, as it was recorded.
fn whole(m: &StoredMessage) -> Part {
    Part {
        index: m.index,
        message_id: m.message_id.clone(),
        content_type: m.content_type.clone(),
        range: 0..m.bytes,
        total: m.total.unwrap_or(m.bytes).max(m.bytes),
        interrupted: m.interrupted,
    }
}

/// The sender's side of a replay (`device`: the deferred delivery it
/// counts for) or of a resume: answers the binding SEND, sends `parts`,
/// and forgets the single-use URI.
#[allow(clippy::too_many_arguments)]
fn send_parts(
    svc: &StoreService,
    mut s: TcpStream,
    dec: Decoder,
    head: &RequestHead,
    me: &[u8],
    item: &str,
    device: Option<&str>,
    parts: &[Part],
) {
    let relay = head.from_path.as_bytes().to_vec();
    let ok = !parts.is_empty()
        && respond(&mut s, head, StatusCode::OK, me)
        && replay(svc, item, device, s, dec, me, &relay, parts);
    if !ok {
        tracing::warn!(item, device, "replay did not finish");
    }
    // The table learns the device's outcome from its leg.
    if let Some(t) = head.to_path.last().session_id() {
        let t = String::from_utf8_lossy(t);
        super::service::lock(&svc.state).roles.remove(t.as_ref());
    }
}

struct Open {
    index: u32,
    writer: Option<BodyWriter>,
    content_type: Option<String>,
    total: Option<u64>,
    next: u64,
}

struct Recording<'a> {
    svc: &'a StoreService,
    item: &'a str,
    open: HashMap<Bytes, Open>,
    done: Vec<StoredMessage>,
    failure: Option<String>,
}

impl Recording<'_> {
    fn run(
        &mut self,
        s: &mut TcpStream,
        dec: &mut Decoder,
        buf: &mut BytesMut,
        first: RequestHead,
        me: &[u8],
    ) {
        let mut next = Some(Event::Request(Box::new(first)));
        loop {
            let ev = match next.take() {
                Some(ev) => ev,
                None => match next_event(s, dec, buf) {
                    Some(ev) => ev,
                    None => break,
                },
            };
            // Responses (none expected: the endpoint sends no request) and
            // stray pieces are skipped.
            let Event::Request(h) = ev else { continue };
            let mid = if h.method == Method::Send && h.has_body {
                h.message_id.clone()
            } else {
                None
            };
            if let Some(m) = &mid {
                self.start(m, &h);
            }
            if !self.body_and_end(s, dec, buf, &h, mid.as_ref(), me) {
                break;
            }
        }
        // The relay closed: what is open was cut short.
        let open: Vec<Bytes> = self.open.keys().cloned().collect();
        for m in open {
            self.close(&m, true);
        }
    }

    /// Consumes the body and end-line of `h`, then answers it.
    fn body_and_end(
        &mut self,
        s: &mut TcpStream,
        dec: &mut Decoder,
        buf: &mut BytesMut,
        h: &RequestHead,
        mid: Option<&Bytes>,
        me: &[u8],
    ) -> bool {
        loop {
            match next_event(s, dec, buf) {
                Some(Event::Body(b)) => {
                    if let Some(m) = mid {
                        self.write(m, b);
                    }
                }
                Some(Event::End(flag)) => {
                    if let Some(m) = mid {
                        match flag {
                            Flag::More => {}
                            Flag::Complete => self.close(m, false),
                            Flag::Aborted => self.close(m, true),
                        }
                    }
                    let code = match h.method {
                        Method::Send => StatusCode::OK,
                        _ => StatusCode(501),
                    };
                    return h.method == Method::Report || respond(s, h, code, me);
                }
                Some(_) | None => return false,
            }
        }
    }

    fn start(&mut self, mid: &Bytes, h: &RequestHead) {
        let start = h.byte_range.map_or(1, |r| r.start);
        if let Some(o) = self.open.get(mid) {
            if o.next == start {
                return;
            }
            self.fail(format!(
                "message {mid:?}: chunk at byte {start}, expected {}",
                o.next
            ));
            return;
        }
        if start != 1 {
            return self.fail(format!("message {mid:?} starts at byte {start}"));
        }
        let index = (self.done.len() + self.open.len()) as u32;
        let writer = if self.failure.is_none() {
            match self.svc.store.body_writer(self.item, index) {
                Ok(w) => Some(w),
                Err(e) => {
                    self.fail(e.to_string());
                    None
                }
            }
        } else {
            None
        };
        let content_type = h
            .content_type
            .as_ref()
            .map(|c| String::from_utf8_lossy(c).into_owned());
        self.open.insert(
            mid.clone(),
            Open {
                index,
                writer,
                content_type,
                total: h.byte_range.and_then(|r| r.total),
                next: 1,
            },
        );
    }

    fn write(&mut self, mid: &Bytes, b: Bytes) {
        let Some(o) = self.open.get_mut(mid) else {
            return;
        };
        o.next += b.len() as u64;
        let Some(w) = o.writer.as_mut() else { return };
        if let Err(e) = w.write(b) {
            o.writer = None;
            self.fail(e.to_string());
        }
    }

    fn close(&mut self, mid: &Bytes, interrupted: bool) {
        let Some(o) = self.open.remove(mid) else {
            return;
        };
        let Some(w) = o.writer else { return };
        match w.finish() {
            Ok(info) => self.done.push(StoredMessage {
                index: o.index,
                message_id: String::from_utf8_lossy(mid).into_owned(),
                content_type: o.content_type,
                bytes: info.bytes,
                sha256: info.sha256,
                total: o.total,
                interrupted,
            }),
            Err(e) => self.fail(e.to_string()),
        }
    }

    /// The backend failed: the item is not stored; the leg goes on.
    fn fail(&mut self, reason: String) {
        if self.failure.is_none() {
            tracing::warn!(item = self.item, %reason, "store write failed; the item will not be stored, the session goes on");
            self.failure = Some(reason);
        }
        for o in self.open.values_mut() {
            if let Some(w) = o.writer.take() {
                w.abort();
            }
        }
    }
}

/// Sends `parts` of `item` to the relay, then closes once every chunk is
/// answered `200`. `false` if the relay refused a chunk, the connection
/// broke or the backend failed.
#[allow(clippy::too_many_arguments)]
fn replay(
    svc: &StoreService,
    item: &str,
    device: Option<&str>,
    mut s: TcpStream,
    dec: Decoder,
    me: &[u8],
    relay: &[u8],
    parts: &[Part],
) -> bool {
    let Ok(reader) = s.try_clone() else {
        return false;
    };
    let (tx, answers) = std::sync::mpsc::channel();
    let counter = std::thread::spawn(move || count_answers(reader, dec, &tx));
    let mut tid = 0u64;
    let mut sent = 0u64;
    let mut answered = 0u64;
    let mut ok = true;
    'messages: for m in parts {
        let mut at = m.range.start;
        loop {
            let end = (at + REPLAY_CHUNK).min(m.range.end);
            let body = match svc.store.read_range(item, m.index, at..end) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(item, error = %e, "reading a stored body");
                    ok = false;
                    break 'messages;
                }
            };
            let last = end == m.range.end;
            tid += 1;
            // RFC 4975 §9: a transact-id is 4 to 32 characters.
            let t = format!("st{tid:06}");
            let mut head = BytesMut::with_capacity(256);
            encode::SendHead {
                tid: t.as_bytes(),
                to_path: relay,
                from_path: me,
                message_id: m.message_id.as_bytes(),
                // Counted within the message sent (RFC 4975 §7.1.1): a
                // resumed range is a message of its own (RFC 5547 §8.7).
                byte_range: Some(ByteRange {
                    start: at - m.range.start + 1,
                    end: Some(end - m.range.start),
                    total: Some(m.total),
                }),
                success_report: None,
                failure_report: None,
                content_type: Some(
                    m.content_type
                        .as_deref()
                        .unwrap_or("application/octet-stream")
                        .as_bytes(),
                ),
                extra: &[],
            }
            .encode(&mut head);
            let flag = match (last, m.interrupted) {
                (false, _) => Flag::More,
                (true, false) => Flag::Complete,
                (true, true) => Flag::Aborted,
            };
            let mut tail = BytesMut::with_capacity(32);
            encode::end_line(&mut tail, t.as_bytes(), flag, true);
            if s.write_all(&head)
                .and_then(|_| s.write_all(&body))
                .and_then(|_| s.write_all(&tail))
                .is_err()
            {
                ok = false;
                break 'messages;
            }
            sent += 1;
            at = end;
            // Answers so far; a refusal stops the replay.
            while let Ok(a) = answers.try_recv() {
                if !a {
                    ok = false;
                    break 'messages;
                }
                answered += 1;
            }
            if last {
                break;
            }
        }
    }
    // Every chunk answered `200`, then close: the sender is done.
    while ok && answered < sent {
        match answers.recv_timeout(ANSWER_WAIT) {
            Ok(true) => answered += 1,
            Ok(false) | Err(_) => ok = false,
        }
    }
    tracing::debug!(item, device, sent, answered, ok, "replay sent");
    // Told before the close: the close ends the session, and the table
    // asks whether the replay finished as soon as the device drained.
    if let Some(device) = device {
        svc.replay_finished(item, device, ok);
    }
    let _ = s.shutdown(Shutdown::Both);
    let _ = counter.join();
    ok
}

/// Reports each of the relay's responses on `tx` (`true` for `200`) until
/// the stream ends. Requests the relay forwards from the device (a REPORT,
/// an IMDN SEND) are answered as RFC 4975 §7 asks.
fn count_answers(mut s: TcpStream, mut dec: Decoder, tx: &std::sync::mpsc::Sender<bool>) {
    let mut buf = BytesMut::new();
    while let Some(ev) = next_event(&mut s, &mut dec, &mut buf) {
        match ev {
            Event::Response(r) => {
                let ok = r.code == StatusCode::OK;
                if !ok {
                    tracing::warn!(code = r.code.0, "the relay refused a replayed chunk");
                }
                if tx.send(ok).is_err() {
                    return;
                }
            }
            Event::Request(h) => {
                let me = h.to_path.last().as_bytes().to_vec();
                // The body and end-line follow; the answer goes at the end.
                while let Some(ev) = next_event(&mut s, &mut dec, &mut buf) {
                    if matches!(ev, Event::End(_)) {
                        break;
                    }
                }
                if !respond(&mut s, &h, StatusCode::OK, &me) {
                    return;
                }
            }
            _ => {}
        }
    }
}
