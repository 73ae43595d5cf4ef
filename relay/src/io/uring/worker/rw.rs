//! Reads and writes of a uring worker: each turn, every connection gets
//! its received bytes fed (while the engine can read) and its receive
//! armed or cancelled (backpressure); then every connection with output
//! and no send in flight gets a send. The sends of all legs and the receives go to the
//! kernel together, in the next `io_uring_enter`.

use std::time::Instant;

use io_uring::{cqueue, opcode};

use super::super::ops::{Op, SendBuf};
use super::conns::{Phase, tls_failed};
use super::drain::{Recvd, received};
use super::{LINGER, Worker};
use crate::fanout::{ConnId, READ_SIZE};
use crate::io::setup::READS_PER_TURN;

/// `IORING_RECVSEND_POLL_FIRST` (uapi `io_uring.h`; not exported by the
/// crate): arm the poll before the first attempt.
const RECVSEND_POLL_FIRST: u16 = 1;

/// Receives of one connection fed to the engine per turn (the epoll
/// driver's reads per turn): a turn feeds at most this much, then every
/// leg gets its send, so one busy connection cannot hold the others' sends
/// back and reading the sender stays paced by the turns; a multishot
/// receive that runs further ahead is cancelled until the queue drains.
const FEED_PER_TURN: usize = READS_PER_TURN;

impl Worker {
    /// The per-turn pass over the connections.
    pub(super) fn service(&mut self, now: Instant) {
        self.starved = false;
        let mut ids = std::mem::take(&mut self.ids);
        ids.clear();
        ids.extend(self.active.drain());
        ids.extend(self.paused.drain());
        self.p.engine.take_ready(&mut ids);
        ids.sort_unstable();
        ids.dedup();
        for &id in &ids {
            self.waiting_send(id);
            self.feed(id, now);
            self.read_state(id, now);
        }
        // What the feeds queued elsewhere (a sender's chunk for every
        // device, a device's REPORT for the sender).
        let fed = ids.len();
        self.p.engine.take_ready(&mut ids);
        if ids.len() > fed {
            ids.sort_unstable();
            ids.dedup();
        }
        // Sends after every feed: what one connection's bytes queue on
        // another (a device's REPORT for the sender, a sender's chunk for
        // every device) leaves in this turn's enter, whatever the order of
        // the connections. Queued in the same pass as the feed, output for
        // a connection already passed would wait for the next wake-up: up
        // to the engine's 250 ms tick on an otherwise idle worker.
        for &id in &ids {
            self.write(id, now);
        }
        self.ids = ids;
        self.outputs(now);
        // Output the writes queued (a pump after a consume): the next
        // enter must not block on it.
        self.more |= self.p.engine.has_ready();
    }

    /// A send that a socket with room completes at once has its CQE as
    /// soon as the `io_uring_enter` that submitted it returns (inline
    /// completions are posted before it returns); one still in flight after
    /// that was armed to wait for room: the socket is full. Telling the engine keeps a device
    /// that stopped reading right after a whole send from holding the
    /// sender back as the read-ahead front (a short send says the same).
    fn waiting_send(&mut self, id: ConnId) {
        if let Some(c) = self.conns.get(&id)
            && c.send.is_some()
            && c.send_turn < self.turn
        {
            self.p.engine.set_write_blocked(id, true);
        }
    }

    /// Gives queued bytes to the engine while it can read them.
    fn feed(&mut self, id: ConnId, now: Instant) {
        for _ in 0..FEED_PER_TURN {
            let Some(c) = self.conns.get_mut(&id) else {
                return;
            };
            if !matches!(c.phase, Phase::Open) || c.pending.is_empty() {
                return;
            }
            if !self.p.engine.can_read(id) {
                self.paused.insert(id);
                return;
            }
            let Some(data) = c.pending.pop_front() else {
                return;
            };
            let data = match c.plaintext(data) {
                Ok(d) if d.is_empty() => continue,
                Ok(d) => d,
                Err(e) => {
                    tls_failed(id, &c.fd, &e);
                    return self.drop_conn(id, now);
                }
            };
            self.p.engine.handle_data(id, data, now);
            // A handover or close must be seen before feeding on.
            self.outputs(now);
        }
        // Left for the next turn, after this turn's sends.
        if self.conns.get(&id).is_some_and(|c| !c.pending.is_empty()) {
            if self.p.engine.can_read(id) {
                self.more = true;
                self.active.insert(id);
            } else {
                self.paused.insert(id);
            }
        }
    }

    /// Arms a receive where the engine can take bytes; cancels a
    /// multishot one where it cannot (the sender under backpressure, a
    /// parked connection); closes on a seen EOF once all was fed.
    fn read_state(&mut self, id: ConnId, now: Instant) {
        let Some(c) = self.conns.get(&id) else { return };
        let want = match c.phase {
            Phase::Open if c.eof => {
                if c.pending.is_empty() {
                    tracing::debug!(conn = id.0, "peer closed");
                    self.drop_conn(id, now);
                }
                return;
            }
            Phase::Open => {
                let can = self.p.engine.can_read(id);
                if !can {
                    self.paused.insert(id);
                }
                c.pending.len() < FEED_PER_TURN && can
            }
            Phase::Closing { .. } => !c.eof,
            _ => return,
        };
        match (want, c.recv) {
            (true, None) => self.arm_recv(id),
            (false, Some(ud)) if self.multishot && !c.recv_cancelled => {
                if let Some(c) = self.conns.get_mut(&id) {
                    c.recv_cancelled = true;
                }
                self.cancel(ud);
            }
            _ => {}
        }
    }

    fn arm_recv(&mut self, id: ConnId) {
        let Some(c) = self.conns.get(&id) else { return };
        let fd = c.raw();
        let (op, entry) = match &self.bufs {
            Some(b) if b.available() == 0 => {
                self.starved = true;
                self.paused.insert(id);
                return;
            }
            Some(b) if self.multishot => (
                Op::Recv {
                    conn: id,
                    buf: None,
                },
                opcode::RecvMulti::new(fd, b.bgid()).build(),
            ),
            Some(b) => (
                Op::Recv {
                    conn: id,
                    buf: None,
                },
                opcode::Recv::new(fd, std::ptr::null_mut(), READ_SIZE as u32)
                    .buf_group(b.bgid())
                    .build()
                    .flags(io_uring::squeue::Flags::BUFFER_SELECT),
            ),
            None => {
                let mut v = Vec::with_capacity(READ_SIZE);
                let ptr = v.as_mut_ptr();
                let e = opcode::Recv::new(fd, ptr, READ_SIZE as u32).build();
                (
                    Op::Recv {
                        conn: id,
                        buf: Some(v),
                    },
                    e,
                )
            }
        };
        // SAFETY: the receive writes either into a buffer of the registered
        // ring (valid until it is unregistered after the last CQE, see
        // `Worker::exit`) or into the op's own vector, whose heap storage
        // stays put when the `Vec` moves into the op and is freed only with
        // the op, on its last CQE. The socket stays open until the
        // connection's `ops` count, incremented below, is back to zero.
        let ud = unsafe { self.submit(op, entry) };
        if let (Some(ud), Some(c)) = (ud, self.conns.get_mut(&id)) {
            c.recv = Some(ud);
            c.recv_cancelled = false;
            c.ops += 1;
        }
    }

    pub(super) fn on_recv(&mut self, ud: u64, res: i32, flags: u32, now: Instant) {
        let more = cqueue::more(flags);
        let (id, buf) = match self.ops.get_mut(ud) {
            Some(Op::Recv { conn, buf }) => (*conn, if more { None } else { buf.take() }),
            _ => return,
        };
        let got = received(&mut self.bufs, buf, res, flags);
        if !more {
            self.ops.remove(ud);
            if let Some(c) = self.conns.get_mut(&id) {
                c.recv = None;
                c.recv_cancelled = false;
            }
        }
        if let Some(c) = self.conns.get_mut(&id) {
            match got {
                Recvd::Data(data, copied) => {
                    self.p.counters.receive(copied);
                    match &c.phase {
                        Phase::Open => c.pending.push_back(data),
                        Phase::HandingOver { .. } => match c.plaintext(data) {
                            Ok(p) => {
                                if let Phase::HandingOver { data: d, .. } = &mut c.phase {
                                    d.push(p);
                                }
                            }
                            // The new owner sees the broken stream end.
                            Err(e) => tls_failed(id, &c.fd, &e),
                        },
                        _ => {}
                    }
                }
                Recvd::Nothing => match -res {
                    0 => c.eof = true,
                    libc::ENOBUFS | libc::ECANCELED | libc::EINTR | libc::EAGAIN => {}
                    e if res < 0 => {
                        tracing::debug!(conn = id.0, error = %std::io::Error::from_raw_os_error(e), "receive");
                        c.eof = true;
                    }
                    _ => {}
                },
            }
            if matches!(c.phase, Phase::Closing { .. }) && c.eof {
                // The peer's EOF after our FIN (or a broken close): done.
                self.drop_conn(id, now);
            }
        }
        if !more {
            self.op_done(id);
        }
    }

    /// Queues one vectored send of the connection's output, or shuts down
    /// the write side of a closing connection with nothing left.
    fn write(&mut self, id: ConnId, now: Instant) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if c.send.is_some() || !matches!(c.phase, Phase::Open | Phase::Closing { .. }) {
            return;
        }
        if let Some(t) = &mut c.tls {
            // Encrypted as the socket takes it: at most `CIPHER_HIGH`
            // ahead; the rest stays shared in the engine's queue.
            let took = t.fill(self.p.engine.output(id));
            if took > 0 {
                self.p.engine.consume_output(id, took, now);
            }
        }
        let fd = c.raw();
        let prio = if c.full && self.p.features.poll_first {
            RECVSEND_POLL_FIRST
        } else {
            0
        };
        let buf = match &c.tls {
            Some(t) => SendBuf::new(t.pending()),
            None => SendBuf::new(self.p.engine.output(id)),
        };
        let Some(buf) = buf else {
            if let Phase::Closing { shut: false, .. } = c.phase {
                if c.tls.as_mut().is_some_and(|t| t.close_notify()) {
                    // `close_notify` goes out before the write side shuts.
                    return self.write(id, now);
                }
                return self.shut(id, now);
            }
            return;
        };
        let zc = self.zc.is_some_and(|min| buf.largest >= min);
        let msg = buf.msghdr();
        let flags = libc::MSG_NOSIGNAL as u32;
        let entry = if zc {
            self.p.counters.zc_send();
            opcode::SendMsgZc::new(fd, msg)
                .ioprio(prio)
                .flags(flags)
                .build()
        } else {
            opcode::SendMsg::new(fd, msg)
                .ioprio(prio)
                .flags(flags)
                .build()
        };
        let op = Op::Send {
            conn: id,
            _buf: buf,
            zc,
            notif: false,
        };
        // SAFETY: `msg` points into the boxed `SendBuf` moved into the op
        // (a box's contents do not move); its iovecs point into the `Bytes`
        // it holds (clones: the engine dropping its own leaves the memory
        // alive), all freed only with the op on its last CQE (for a
        // zero-copy send, the notification). The socket stays open until
        // the connection's `ops` count, incremented below, is zero.
        let ud = unsafe { self.submit(op, entry) };
        if let (Some(ud), Some(c)) = (ud, self.conns.get_mut(&id)) {
            c.send = Some(ud);
            c.send_turn = self.turn;
            c.ops += 1;
            // Looked at next turn: a send with no CQE by then waits for room.
            self.active.insert(id);
        }
    }

    fn shut(&mut self, id: ConnId, now: Instant) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        c.phase = Phase::Closing {
            deadline: now + LINGER,
            shut: true,
        };
        self.closing.insert(id);
        let entry = opcode::Shutdown::new(c.raw(), libc::SHUT_WR).build();
        // SAFETY: no pointers; the socket stays open until the connection's
        // `ops` count, incremented below, is zero.
        if unsafe { self.submit(Op::Shutdown { conn: id }, entry) }.is_some()
            && let Some(c) = self.conns.get_mut(&id)
        {
            c.ops += 1;
        }
    }

    pub(super) fn on_send(&mut self, ud: u64, res: i32, flags: u32, now: Instant) {
        let (id, zc, offered) = match self.ops.get_mut(ud) {
            Some(Op::Send {
                conn,
                zc,
                notif,
                _buf,
            }) => {
                if *notif || cqueue::notif(flags) {
                    // The kernel is done with a zero-copy send's memory.
                    let id = *conn;
                    self.ops.remove(ud);
                    return self.op_done(id);
                }
                // A zero-copy result with `MORE`: the notification follows.
                *notif = cqueue::more(flags);
                (*conn, *zc, _buf.len())
            }
            _ => return,
        };
        let last = !cqueue::more(flags);
        if last {
            self.ops.remove(ud);
        }
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if c.send == Some(ud) {
            c.send = None;
        }
        let writing = matches!(c.phase, Phase::Open | Phase::Closing { .. });
        if writing {
            match res {
                n if n > 0 => {
                    let n = (n as usize).min(offered);
                    c.full = n < offered;
                    self.p.engine.set_write_blocked(id, c.full);
                    match &mut c.tls {
                        Some(t) => t.consume(n),
                        None => self.p.engine.consume_output(id, n, now),
                    }
                }
                e if -e == libc::EOPNOTSUPP && zc => {
                    tracing::info!("zero-copy send not supported here; plain sends");
                    self.zc = None;
                }
                e if -e == libc::EINTR || -e == libc::EAGAIN => {}
                e => {
                    let err = std::io::Error::from_raw_os_error(-e);
                    tracing::debug!(conn = id.0, error = %err, "send failed (0: wrote nothing)");
                    self.drop_conn(id, now);
                }
            }
        }
        if last {
            self.op_done(id);
        }
    }
}
