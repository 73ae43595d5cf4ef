//! A chat run's readers: a device's records each message's latency and
//! answers with a notification; a sender's records the first
//! notification of each message.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use hdrhistogram::Histogram;
use msrp_relay::msrp::{Flag, RequestHead};

use super::messages::{delivered, imdn_target};
use crate::peer::{Endpoint, Handler, is_content};
use crate::stats::record;

/// Send times: nanoseconds from the base, plus one (0: not sent).
pub(super) type Sent = Arc<Vec<AtomicU64>>;

fn since(sent: &Sent, n: u64, base: Instant, now: Instant) -> Option<Duration> {
    let v = sent.get(usize::try_from(n).ok()?)?.load(Ordering::Acquire);
    (v != 0).then(|| now.saturating_duration_since(base + Duration::from_nanos(v - 1)))
}

/// A device: records each message's latency, answers with a `delivered`
/// IMDN when asked.
#[derive(Debug)]
pub struct ChatDevice {
    pub(super) s: usize,
    pub(super) j: usize,
    pub(super) sent: Sent,
    pub(super) base: Instant,
    pub(super) imdn: bool,
    pub(super) ep: Endpoint,
    pub(super) cur: Option<u64>,
    /// Latency from send to this device.
    pub hist: Histogram<u64>,
    pub(super) received: Arc<AtomicU64>,
}

impl Handler for ChatDevice {
    fn request(&mut self, h: &RequestHead, _now: Instant) {
        self.cur = is_content(h)
            .then(|| {
                h.message_id.as_deref().and_then(|m| {
                    std::str::from_utf8(m)
                        .ok()?
                        .strip_prefix("chat-")?
                        .parse()
                        .ok()
                })
            })
            .flatten();
    }

    fn end(&mut self, flag: Flag, now: Instant, out: &mut BytesMut) {
        let Some(n) = self.cur.take() else { return };
        if flag != Flag::Complete {
            return;
        }
        if let Some(d) = since(&self.sent, n, self.base, now) {
            record(&mut self.hist, d);
        }
        self.received.fetch_add(1, Ordering::Relaxed);
        if self.imdn {
            let body = delivered(self.s, self.j, n);
            let mid = format!("dlv-{}-{n}", self.j);
            self.ep
                .message(out, mid.as_bytes(), b"message/cpim", body.as_bytes());
        }
    }
}

/// A sender's reader: the first delivery notification of each message.
#[derive(Debug)]
pub struct ChatSender {
    pub(super) sent: Sent,
    pub(super) base: Instant,
    pub(super) counts: Arc<Vec<AtomicU32>>,
    pub(super) in_msg: bool,
    pub(super) body: Vec<u8>,
    /// Latency from send to the first delivery notification.
    pub hist: Histogram<u64>,
    pub(super) notified: Arc<AtomicU64>,
    pub(super) errors: u64,
}

impl Handler for ChatSender {
    fn request(&mut self, h: &RequestHead, _now: Instant) {
        self.in_msg = is_content(h);
        self.body.clear();
    }

    fn body(&mut self, b: &Bytes) {
        if self.in_msg && self.body.len() < 8192 {
            self.body.extend_from_slice(b);
        }
    }

    fn end(&mut self, flag: Flag, now: Instant, _out: &mut BytesMut) {
        if !(self.in_msg && flag == Flag::Complete) {
            return;
        }
        self.in_msg = false;
        let Some(n) = imdn_target(&self.body) else {
            return;
        };
        let Some(c) = usize::try_from(n).ok().and_then(|i| self.counts.get(i)) else {
            return;
        };
        if c.fetch_add(1, Ordering::Relaxed) == 0 {
            if let Some(d) = since(&self.sent, n, self.base, now) {
                record(&mut self.hist, d);
            }
            self.notified.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn response(&mut self, _tid: &[u8], code: u16, _now: Instant) {
        if code != 200 {
            self.errors += 1;
        }
    }
}
