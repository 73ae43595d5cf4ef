//! The reader thread of a test peer: decodes what arrives, records it in
//! the peer's state and answers `200` to every SEND that wants it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use msrp_relay::msrp::encode;
use msrp_relay::msrp::{ByteRange, DecodeError, Decoder, Event, Flag, Limits, Method, StatusCode};
use sha2::{Digest, Sha256};

use super::peer::{PeerOpts, PeerState, Reports, RxMsg, Shared, hex, next_seq};

struct Cur {
    msg: Option<usize>,
    tid: Bytes,
    respond: bool,
    from: Bytes,
    /// The chunk asked for a success REPORT.
    report: Option<Asked>,
    /// Body bytes of this chunk so far.
    len: u64,
}

/// A chunk that asked for a success REPORT: its Message-ID, first byte
/// and Byte-Range total.
struct Asked {
    mid: Bytes,
    start: u64,
    total: Option<u64>,
}

/// What the reader needs to send REPORTs: the mode, the peer's own URI,
/// a transaction-id counter, and per-message REPORTs held back (shuffle).
struct Reporter {
    mode: Reports,
    me: Bytes,
    seq: u64,
    held: Vec<(Bytes, Vec<Vec<u8>>)>,
    /// REPORTs to write after this read's responses.
    out: Vec<Vec<u8>>,
}

impl Reporter {
    fn report(&mut self, to: &[u8], mid: &Bytes, range: ByteRange) -> Vec<u8> {
        self.seq += 1;
        let tid = format!("rep{}", self.seq);
        let mut b = BytesMut::new();
        encode::Report {
            tid: tid.as_bytes(),
            to_path: to,
            from_path: &self.me,
            message_id: mid,
            byte_range: range,
            status: StatusCode::OK,
        }
        .encode(&mut b);
        b.to_vec()
    }

    /// A chunk that asked for a report ended with `flag`.
    fn on_chunk(&mut self, to: &[u8], asked: &Asked, len: u64, flag: Flag, msg_len: u64) {
        let Asked { mid, start, total } = asked;
        let (start, total) = (*start, *total);
        let last = flag == Flag::Complete;
        match self.mode {
            Reports::Off => {}
            Reports::Whole { .. } => {
                if last {
                    let range = ByteRange {
                        start: 1,
                        end: Some(msg_len),
                        total: Some(msg_len),
                    };
                    let r = self.report(to, mid, range);
                    self.out.push(r);
                }
            }
            Reports::PerChunk { shuffle, .. } => {
                let range = ByteRange {
                    start,
                    end: Some(start + len - 1),
                    total,
                };
                let r = self.report(to, mid, range);
                if !shuffle {
                    self.out.push(r);
                    return;
                }
                let i = match self.held.iter().position(|(m, _)| m == mid) {
                    Some(i) => i,
                    None => {
                        self.held.push((mid.clone(), Vec::new()));
                        self.held.len() - 1
                    }
                };
                self.held[i].1.push(r);
                if last {
                    let (_, reps) = self.held.remove(i);
                    for r in reps.into_iter().rev() {
                        self.out.push(r.clone());
                        self.out.push(r);
                    }
                }
            }
        }
    }

    fn delay(&self) -> Duration {
        match self.mode {
            Reports::Off => Duration::ZERO,
            Reports::Whole { delay } | Reports::PerChunk { delay, .. } => delay,
        }
    }
}

/// Writes REPORTs, each in a write of its own, once due.
fn spawn_report_writer(
    writer: Arc<Mutex<TcpStream>>,
    shared: Arc<Shared>,
) -> mpsc::Sender<(Instant, Vec<u8>)> {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::Builder::new()
        .name("peer-reports".into())
        .stack_size(128 << 10)
        .spawn(move || {
            for (due, bytes) in rx {
                // The client's own pacing (it reports late), not a wait
                // for anything the test observes.
                if let Some(d) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(d);
                }
                if writer.lock().unwrap().write_all(&bytes).is_ok() {
                    shared.state.lock().unwrap().reports_sent += 1;
                    shared.cv.notify_all();
                }
            }
        })
        .unwrap();
    tx
}

pub(super) fn read_loop(
    mut stream: TcpStream,
    writer: Arc<Mutex<TcpStream>>,
    shared: Arc<Shared>,
    me: Bytes,
    opts: PeerOpts,
) {
    let mut dec = Decoder::new(Limits::default());
    let size = opts
        .rate
        .map_or(64 << 10, |r| ((r / 50) as usize).clamp(512, 64 << 10));
    let mut buf = vec![0u8; size];
    let (start, mut total) = (Instant::now(), 0u64);
    let mut cur: Option<Cur> = None;
    let mut rep = Reporter {
        mode: opts.reports,
        me: me.clone(),
        seq: 0,
        held: Vec::new(),
        out: Vec::new(),
    };
    let report_tx =
        (opts.reports != Reports::Off).then(|| spawn_report_writer(writer.clone(), shared.clone()));
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        dec.feed(Bytes::copy_from_slice(&buf[..n]));
        let mut out = BytesMut::new();
        let fatal = {
            let mut st = shared.state.lock().unwrap();
            let fatal = decode(&mut dec, &mut st, &mut cur, &mut out, &me, &mut rep);
            shared.cv.notify_all();
            fatal
        };
        if !out.is_empty() {
            let _ = writer.lock().unwrap().write_all(&out);
        }
        if let Some(tx) = &report_tx {
            let due = Instant::now() + rep.delay();
            for r in rep.out.drain(..) {
                let _ = tx.send((due, r));
            }
        }
        if fatal {
            break;
        }
        total += n as u64;
        if let Some(rate) = opts.rate {
            let due = Duration::from_secs_f64(total as f64 / rate as f64);
            if let Some(ahead) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(ahead);
            }
        }
    }
    shared.state.lock().unwrap().eof = true;
    shared.cv.notify_all();
}

/// Polls the decoder dry; responses to write go to `out`. True on a fatal
/// decode error.
fn decode(
    dec: &mut Decoder,
    st: &mut PeerState,
    cur: &mut Option<Cur>,
    out: &mut BytesMut,
    me: &Bytes,
    rep: &mut Reporter,
) -> bool {
    loop {
        match dec.poll() {
            Ok(None) => return false,
            Ok(Some(Event::Request(h))) => {
                let mid = String::from_utf8_lossy(h.message_id.as_deref().unwrap_or_default())
                    .into_owned();
                if h.method == Method::Report {
                    st.reports
                        .push((mid.clone(), h.status.as_ref().map_or(0, |s| s.code.0)));
                    st.report_ranges.push(h.byte_range.unwrap_or(ByteRange {
                        start: 1,
                        end: None,
                        total: None,
                    }));
                }
                let msg = (h.method == Method::Send && h.has_body).then(|| {
                    let i = st
                        .msgs
                        .iter()
                        .position(|m| m.message_id == mid)
                        .unwrap_or_else(|| {
                            st.msgs.push(RxMsg {
                                message_id: mid.clone(),
                                content_type: String::from_utf8_lossy(
                                    h.content_type.as_deref().unwrap_or_default(),
                                )
                                .into_owned(),
                                len: 0,
                                hasher: Sha256::new(),
                                digest: None,
                                body: Vec::new(),
                                flag: None,
                                done_seq: None,
                            });
                            st.msgs.len() - 1
                        });
                    let start = h.byte_range.map_or(1, |r| r.start);
                    if start != st.msgs[i].len + 1 {
                        st.errors.push(format!(
                            "{mid}: chunk at {start} after {} bytes",
                            st.msgs[i].len
                        ));
                    }
                    i
                });
                let report = (h.method == Method::Send && h.has_body && h.wants_success_report())
                    .then(|| Asked {
                        mid: h.message_id.clone().unwrap_or_default(),
                        start: h.byte_range.map_or(1, |r| r.start),
                        total: h.byte_range.and_then(|r| r.total),
                    });
                *cur = Some(Cur {
                    msg,
                    tid: Bytes::copy_from_slice(h.tid.as_bytes()),
                    respond: h.wants_response(),
                    from: h.from_path.first().raw().clone(),
                    report,
                    len: 0,
                });
            }
            Ok(Some(Event::Body(b))) => {
                st.body_bytes += b.len() as u64;
                if let Some(c) = cur.as_mut() {
                    c.len += b.len() as u64;
                }
                if let Some(m) = cur.as_ref().and_then(|c| c.msg).map(|i| &mut st.msgs[i]) {
                    m.len += b.len() as u64;
                    m.hasher.update(&b);
                    let room = (64usize << 10).saturating_sub(m.body.len());
                    m.body.extend_from_slice(&b[..b.len().min(room)]);
                }
            }
            Ok(Some(Event::End(flag))) => {
                let Some(c) = cur.take() else { continue };
                if let Some(m) = c.msg.map(|i| &mut st.msgs[i]) {
                    m.flag = Some(flag);
                    if flag == Flag::Complete {
                        m.digest = Some(hex(&m.hasher.clone().finalize()));
                        m.done_seq = Some(next_seq());
                    }
                }
                if c.respond {
                    encode::transaction_response(out, &c.tid, StatusCode::OK, None, &c.from, me);
                }
                if let Some(asked) = &c.report {
                    let msg_len = c.msg.map_or(0, |i| st.msgs[i].len);
                    let before = rep.out.len();
                    rep.on_chunk(&c.from, asked, c.len, flag, msg_len);
                    st.reports_queued += rep.out.len() - before;
                }
            }
            Ok(Some(Event::Response(r))) => {
                st.responses.insert(
                    String::from_utf8_lossy(r.tid.as_bytes()).into_owned(),
                    r.code.0,
                );
            }
            Ok(Some(other)) => st.errors.push(format!("unexpected event {other:?}")),
            Err(e) => {
                st.errors.push(e.to_string());
                *cur = None;
                if matches!(e, DecodeError::Fatal(_)) {
                    return true;
                }
            }
        }
    }
}
