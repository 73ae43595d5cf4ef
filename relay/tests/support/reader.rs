//! The reader thread of a test peer: decodes what arrives, records it in
//! the peer's state and answers `200` to every SEND that wants it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use msrp_relay::msrp::encode;
use msrp_relay::msrp::{DecodeError, Decoder, Event, Flag, Limits, Method, StatusCode};
use sha2::{Digest, Sha256};

use super::peer::{PeerOpts, PeerState, RxMsg, Shared, hex, next_seq};

struct Cur {
    msg: Option<usize>,
    tid: Bytes,
    respond: bool,
    from: Bytes,
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
            let fatal = decode(&mut dec, &mut st, &mut cur, &mut out, &me);
            shared.cv.notify_all();
            fatal
        };
        if !out.is_empty() {
            let _ = writer.lock().unwrap().write_all(&out);
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
                *cur = Some(Cur {
                    msg,
                    tid: Bytes::copy_from_slice(h.tid.as_bytes()),
                    respond: h.wants_response(),
                    from: h.from_path.first().raw().clone(),
                });
            }
            Ok(Some(Event::Body(b))) => {
                st.body_bytes += b.len() as u64;
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
            }
            Ok(Some(Event::Response(r))) => {
                st.responses.insert(
                    String::from_utf8_lossy(r.tid.as_bytes()).into_owned(),
                    r.code.0,
                );
            }
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
