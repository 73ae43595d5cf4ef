//! `setup --ng`: the rtpengine ng protocol over UDP, as the stock
//! `rtpengine` module of Kamailio or OpenSIPS drives the relay. A cycle is
//! what one forked call costs the relay: `offer` of branch 1, `offer` of
//! branch 2, `answer` of branch 1 (the device that took the call) and
//! `delete` of the session (the sender's BYE). One UDP socket, requests
//! pipelined with at most `window` in flight; each request is one
//! datagram `<cookie> <bencoded dict>`, as the module sends it.
//!
//! As on the control socket, phase 1 runs as fast as the relay answers
//! and phase 2 at a set rate gives each command's latency.
//!
//! The relay removes b2 (never answered) with the `delete`; b1 (answered,
//! its device never connects, the session has no content) gets its
//! `leg-done` at once but paced (`[pacing] bye-per-sec` per worker), so
//! the sessions leave the table at that rate, after the run when the
//! cycles are faster.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use msrp_control::ng::bencode::{self, Limits, Value, dict};
use msrp_control::ng::wire;
use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, recv};

use super::phase::{Done, Phase, cycles_per_s};
use crate::control::{answer_sdp, offer_sdp};
use crate::error::{Context, LoadError, Result};
use crate::rate::Schedule;
use crate::stats::{histogram, record};

/// Commands per cycle: offer ×2, answer, delete.
pub const PER: u64 = 4;

/// Unanswered requests are sent again after this long, at most
/// [`RETRIES`] times (the module's `rtpengine_tout_ms` and `rtpengine_retr`
/// defaults).
const RETRANSMIT: Duration = Duration::from_secs(1);
/// See [`RETRANSMIT`].
const RETRIES: u32 = 5;

/// The four datagrams of cycle `i`; cookies are `<tag>.<request index>`.
pub fn cycle_datagrams(tag: &str, i: u64, offer: &str, answer: &str) -> [Vec<u8>; 4] {
    let call = Value::str(format!("{tag}-{i}"));
    let from = Value::str("f");
    let offer_of = |branch: &str| {
        dict([
            ("command", Value::str("offer")),
            ("call-id", call.clone()),
            ("from-tag", from.clone()),
            ("via-branch", Value::str(branch)),
            ("sdp", Value::str(offer)),
        ])
    };
    let bodies = [
        offer_of("b1"),
        offer_of("b2"),
        dict([
            ("command", Value::str("answer")),
            ("call-id", call.clone()),
            ("from-tag", from.clone()),
            ("to-tag", Value::str("t1")),
            ("via-branch", Value::str("b1")),
            ("sdp", Value::str(answer)),
        ]),
        dict([
            ("command", Value::str("delete")),
            ("call-id", call),
            ("from-tag", from),
        ]),
    ];
    let mut k = 0u64;
    bodies.map(|b| {
        let cookie = format!("{tag}.{}", PER * i + k);
        k += 1;
        let mut out = Vec::with_capacity(1024);
        out.extend_from_slice(cookie.as_bytes());
        out.push(b' ');
        bencode::encode_into(&b, &mut out);
        out
    })
}

/// Parses one reply datagram: the request index its cookie carries
/// (`<tag>.<index>`, other tags are ignored) and the error reason, if
/// the result is not `ok`.
pub fn parse_reply(tag: &str, msg: &[u8]) -> Option<(u64, Option<String>)> {
    let (cookie, body) = wire::split(msg).ok()?;
    let idx = std::str::from_utf8(cookie)
        .ok()?
        .strip_prefix(tag)?
        .strip_prefix('.')?
        .parse()
        .ok()?;
    let v = bencode::decode(body, Limits::default()).ok()?;
    let result = v.get("result").and_then(Value::as_str).unwrap_or("");
    let error = (result != "ok").then(|| {
        v.get("error-reason")
            .and_then(Value::as_str)
            .unwrap_or(result)
            .to_owned()
    });
    Some((idx, error))
}

/// Runs `cycles` cycles against the ng UDP listener at `to`; `rate`
/// cycles per second, or as fast as the relay answers with at most
/// `window` requests in flight.
pub fn phase(
    to: SocketAddr,
    timeout: Duration,
    tag: &str,
    cycles: u64,
    window: u64,
    rate: Option<f64>,
) -> Result<Phase> {
    let sock = UdpSocket::bind("127.0.0.1:0").context(|| "setup --ng: bind".into())?;
    sock.connect(to)
        .context(|| format!("setup --ng: connect {to}"))?;
    // Replies of a whole window must fit in the kernel's queue.
    let _ = socket2::SockRef::from(&sock).set_recv_buffer_size(8 << 20);
    sock.set_read_timeout(Some(timeout))
        .context(|| "setup --ng: read timeout".into())?;
    let rd = sock.try_clone().context(|| "setup --ng: clone".into())?;
    let offer = offer_sdp("msrp://127.0.0.1:9/ngsetup;tcp", None);
    let answer = answer_sdp("msrp://127.0.0.1:9/ngsetupdev;tcp", false);
    let total = PER * cycles;
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..total).map(|_| AtomicU64::new(0)).collect());
    let done = Arc::new(Done::default());
    let base = Instant::now();
    let (sent2, done2, tag2) = (sent.clone(), done.clone(), tag.to_owned());
    let reader = std::thread::Builder::new()
        .name("ng-reader".into())
        .spawn(
            move || -> (Histogram<u64>, u64, Option<String>, Instant, u64) {
                let mut h = histogram();
                let (mut errors, mut first, mut got) = (0u64, None, 0u64);
                let mut last = Instant::now();
                let mut buf = vec![0u8; 65536];
                while got < total {
                    // The writer learns the count when the queue is empty, not
                    // per reply (a wake per reply costs a futex call each).
                    let n = match recv(rd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                        Ok(n) => n,
                        Err(Errno::EAGAIN) => {
                            done2.publish(got);
                            match rd.recv(&mut buf) {
                                Ok(n) => n,
                                Err(_) => break,
                            }
                        }
                        Err(_) => break,
                    };
                    let now = Instant::now();
                    let Some((idx, err)) = buf.get(..n).and_then(|m| parse_reply(&tag2, m)) else {
                        continue;
                    };
                    if let Some(v) = usize::try_from(idx)
                        .ok()
                        .and_then(|i| sent2.get(i))
                        .map(|a| a.swap(0, Ordering::AcqRel))
                        .filter(|v| *v != 0)
                    {
                        record(
                            &mut h,
                            now.saturating_duration_since(base + Duration::from_nanos(v - 1)),
                        );
                    } else {
                        continue; // a duplicate reply
                    }
                    if let Some(e) = err {
                        errors += 1;
                        first.get_or_insert(e);
                    }
                    got += 1;
                    last = now;
                }
                done2.publish(got);
                (h, errors, first, last, got)
            },
        )
        .context(|| "setup --ng: spawn reader".into())?;
    let start = Instant::now();
    let sched = rate.map(|r| Schedule::new(start, r));
    let window = window.max(PER);
    let mut retransmits = 0u64;
    // Waits for `need` replies; what is still unanswered below `upto` is
    // sent again each `RETRANSMIT`, as the module does (same cookie: the
    // relay's reply cache answers it without running it twice).
    let mut wait = |need: u64, upto: u64| -> Result<()> {
        for _ in 0..=RETRIES {
            let Err(_) = done.wait_for(need, RETRANSMIT.min(timeout)) else {
                return Ok(());
            };
            for j in 0..upto {
                let unanswered = usize::try_from(j)
                    .ok()
                    .and_then(|j| sent.get(j))
                    .is_some_and(|a| a.load(Ordering::Acquire) != 0);
                if unanswered {
                    let d = &cycle_datagrams(tag, j / PER, &offer, &answer)[(j % PER) as usize];
                    sock.send(d).context(|| "setup --ng: send".into())?;
                    retransmits += 1;
                }
            }
        }
        Err(LoadError::Timeout(format!(
            "setup --ng: replies stopped at {} after {RETRIES} retransmissions",
            done.get()
        )))
    };
    for i in 0..cycles {
        if let Some(sc) = &sched {
            let pause = sc.wait(i, Instant::now());
            if !pause.is_zero() {
                std::thread::sleep(pause);
            }
        }
        wait((PER * i + PER).saturating_sub(window), PER * i)?;
        let ns = u64::try_from(Instant::now().saturating_duration_since(base).as_nanos())
            .unwrap_or(u64::MAX - 1);
        for (k, dgram) in cycle_datagrams(tag, i, &offer, &answer).iter().enumerate() {
            if let Some(a) = usize::try_from(PER * i + k as u64)
                .ok()
                .and_then(|j| sent.get(j))
            {
                a.store(ns + 1, Ordering::Release);
            }
            sock.send(dgram).context(|| "setup --ng: send".into())?;
        }
    }
    wait(total, total)?;
    let (latency, errors, first_error, last, got) = reader
        .join()
        .map_err(|_| LoadError::Control("setup --ng reader panicked".into()))?;
    if got < total {
        return Err(LoadError::Control(format!(
            "setup --ng: {got} of {total} replies came back (UDP: the relay dropped or never answered the rest)"
        )));
    }
    Ok(Phase {
        cycles_per_s: cycles_per_s(total, errors, PER, last.saturating_duration_since(start)),
        latency,
        errors,
        first_error,
        retransmits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cycle_is_two_offers_an_answer_and_a_delete() {
        let d = cycle_datagrams("t", 5, "o", "a");
        let decoded: Vec<(String, Value)> = d
            .iter()
            .map(|m| {
                let (c, b) = wire::split(m).unwrap();
                (
                    String::from_utf8(c.to_vec()).unwrap(),
                    bencode::decode(b, Limits::default()).unwrap(),
                )
            })
            .collect();
        let cmd = |i: usize, k: &str| {
            decoded[i]
                .1
                .get(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        assert_eq!(decoded[0].0, "t.20");
        assert_eq!(decoded[3].0, "t.23");
        assert_eq!(cmd(0, "command").as_deref(), Some("offer"));
        assert_eq!(cmd(1, "via-branch").as_deref(), Some("b2"));
        assert_eq!(cmd(2, "to-tag").as_deref(), Some("t1"));
        assert_eq!(cmd(3, "command").as_deref(), Some("delete"));
        assert_eq!(cmd(3, "via-branch"), None);
        assert_eq!(cmd(3, "call-id").as_deref(), Some("t-5"));
    }

    #[test]
    fn replies_are_matched_by_cookie() {
        let ok = wire::reply(b"t.7", &dict([("result", Value::str("ok"))]));
        assert_eq!(parse_reply("t", &ok), Some((7, None)));
        let err = wire::reply(
            b"t.8",
            &dict([
                ("result", Value::str("error")),
                ("error-reason", Value::str("limit")),
            ]),
        );
        assert_eq!(parse_reply("t", &err), Some((8, Some("limit".into()))));
        assert_eq!(parse_reply("other", &ok), None);
        assert_eq!(parse_reply("t", b"t.9 d6:result"), None);
    }
}
