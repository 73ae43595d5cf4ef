//! A deterministic harness for the engine: peers are in-memory MSRP
//! endpoints (the project's own decoder and encoder), time is driven by
//! hand, and every byte the engine queues is "written" at once unless a
//! peer is paused.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::fanout::{
    Answer, ConnId, Engine, EngineConfig, Event, LegId, LegParams, MemoryBudget, Output, SessionId,
    Setup,
};
use crate::msrp::{Decoder, Event as Wire, Flag, RequestHead, ResponseHead, StatusCode, encode};

/// What a peer received.
#[derive(Debug, Clone)]
pub(super) enum Got {
    Request {
        head: RequestHead,
        body: Vec<u8>,
        flag: Flag,
    },
    Response(ResponseHead),
}

#[derive(Debug)]
pub(super) struct Peer {
    pub(super) uri: String,
    pub(super) relay_uri: String,
    dec: Decoder,
    cur: Option<(RequestHead, Vec<u8>)>,
    pub(super) got: Vec<Got>,
    /// Answer every SEND chunk with 200.
    pub(super) auto_ok: bool,
    /// Take nothing from the engine (a stalled socket).
    pub(super) paused: bool,
    pub(super) closed: bool,
    seq: u32,
}

impl Peer {
    /// The bodies of every SEND received, per Message-ID, concatenated in
    /// Byte-Range order, with the last flag seen.
    pub(super) fn messages(&self) -> BTreeMap<Vec<u8>, (Vec<u8>, Flag)> {
        let mut m: BTreeMap<Vec<u8>, (Vec<u8>, Flag)> = BTreeMap::new();
        for g in &self.got {
            if let Got::Request { head, body, flag } = g
                && head.method == crate::msrp::Method::Send
                && head.has_body
            {
                let id = head.message_id.clone().unwrap_or_default().to_vec();
                let e = m.entry(id).or_insert((Vec::new(), Flag::More));
                let start = head.byte_range.map_or(1, |r| r.start) as usize - 1;
                assert_eq!(start, e.0.len(), "chunks arrive in order here");
                e.0.extend_from_slice(body);
                e.1 = *flag;
            }
        }
        m
    }

    pub(super) fn responses(&self) -> Vec<StatusCode> {
        self.got
            .iter()
            .filter_map(|g| match g {
                Got::Response(r) => Some(r.code),
                _ => None,
            })
            .collect()
    }

    pub(super) fn reports(&self) -> Vec<RequestHead> {
        self.got
            .iter()
            .filter_map(|g| match g {
                Got::Request { head, .. } if head.method == crate::msrp::Method::Report => {
                    Some(head.clone())
                }
                _ => None,
            })
            .collect()
    }
}

pub(super) struct H {
    pub(super) eng: Engine,
    pub(super) now: Instant,
    pub(super) peers: BTreeMap<ConnId, Peer>,
    pub(super) events: Vec<Event>,
    pub(super) closes: Vec<ConnId>,
    pub(super) outputs: Vec<Output>,
    /// Order of observations: (sequence, what), to compare "after".
    pub(super) log: Vec<String>,
    next_conn: u64,
}

pub(super) fn cfg() -> EngineConfig {
    EngineConfig {
        worker: 3,
        workers: 8,
        // Reproducible: the same ids in every run.
        id_seed: Some(0x5eed),
        ..EngineConfig::default()
    }
}

impl H {
    pub(super) fn new(cfg: EngineConfig) -> H {
        let now = Instant::now();
        let budget = MemoryBudget::new(256 << 20);
        H {
            eng: Engine::new(cfg, budget, now).unwrap(),
            now,
            peers: BTreeMap::new(),
            events: Vec::new(),
            closes: Vec::new(),
            outputs: Vec::new(),
            log: Vec::new(),
            next_conn: 1,
        }
    }

    /// A session with its sender connected and bound, and `n` device legs
    /// invited. Returns (session, sender conn, device legs).
    pub(super) fn session(&mut self, n: usize) -> (SessionId, ConnId, Vec<LegId>) {
        let (sid, up) = self
            .eng
            .create_session(
                LegParams {
                    label: "sender".into(),
                    ..LegParams::default()
                },
                self.now,
            )
            .unwrap();
        let conn = self.connect_and_bind(up, "msrp://sender.example:7000/snd1;tcp");
        let legs = (0..n)
            .map(|i| {
                self.eng
                    .add_leg(
                        sid,
                        LegParams {
                            label: format!("dev{i}"),
                            ..LegParams::default()
                        },
                        self.now,
                    )
                    .unwrap()
            })
            .collect();
        (sid, conn, legs)
    }

    /// The front end's answer for `leg`: a peer at `uri` that connects to
    /// the relay (relay passive).
    pub(super) fn answer(&mut self, leg: LegId, uri: &str) {
        let path = vec![Bytes::copy_from_slice(uri.as_bytes())];
        self.eng
            .answer(
                leg,
                Answer {
                    peer_path: path,
                    setup: Setup::Passive,
                },
                self.now,
            )
            .unwrap();
    }

    /// Answers `leg` with a peer at `uri` (passive relay) and connects it.
    pub(super) fn connect_and_bind(&mut self, leg: LegId, uri: &str) -> ConnId {
        self.answer(leg, uri);
        self.connect_peer(leg, uri)
    }

    /// Answers and connects every leg in `legs` with a device peer whose
    /// session-id is `{pre}{i}{post}`.
    pub(super) fn connect_devices(&mut self, legs: &[LegId], pre: &str, post: &str) -> Vec<ConnId> {
        legs.iter()
            .enumerate()
            .map(|(i, &l)| {
                self.connect_and_bind(l, &format!("msrp://d{i}.example:1/{pre}{i}{post};tcp"))
            })
            .collect()
    }

    /// Opens a connection from a peer at `uri` to `leg` and sends the
    /// bodiless SEND that binds it (RFC 4975 §5.4).
    pub(super) fn connect_peer(&mut self, leg: LegId, uri: &str) -> ConnId {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.add_peer(conn, leg, uri);
        self.eng.handle_accepted(conn, self.now);
        self.send_raw(conn, &self.peer_send(conn, "bind0000", None, b""));
        conn
    }

    /// The relay's own outgoing connection for `leg` (answered with
    /// `Setup::Active`) is up, to a peer at `uri`: the engine binds it with
    /// its bodiless SEND, which the peer answers.
    pub(super) fn connected_out(&mut self, leg: LegId, uri: &str) -> ConnId {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.add_peer(conn, leg, uri);
        self.eng.handle_connected(conn, leg, self.now);
        self.run();
        conn
    }

    /// An in-memory peer at `uri` on `conn`, talking to `leg`'s relay URI.
    fn add_peer(&mut self, conn: ConnId, leg: LegId, uri: &str) {
        let relay_uri = self.eng.local_uri(leg).unwrap();
        self.peers.insert(
            conn,
            Peer {
                uri: uri.into(),
                relay_uri,
                dec: Decoder::default(),
                cur: None,
                got: Vec::new(),
                auto_ok: true,
                paused: false,
                closed: false,
                seq: 0,
            },
        );
    }

    fn next_tid(&mut self, conn: ConnId) -> String {
        let p = self.peers.get_mut(&conn).unwrap();
        p.seq += 1;
        format!("t{}x{}", conn.0, p.seq)
    }

    /// A SEND from the peer on `conn`: (content type, body) or bodiless.
    pub(super) fn peer_send(
        &self,
        conn: ConnId,
        mid: &str,
        ct: Option<&str>,
        body: &[u8],
    ) -> Vec<u8> {
        let p = &self.peers[&conn];
        let tid = format!("b{}{}", conn.0, mid.len() + body.len() + 1000);
        let mut w = format!(
            "MSRP {tid} SEND\r\nTo-Path: {}\r\nFrom-Path: {}\r\nMessage-ID: {mid}\r\n",
            p.relay_uri, p.uri
        )
        .into_bytes();
        if let Some(ct) = ct {
            w.extend_from_slice(
                format!(
                    "Byte-Range: 1-{0}/{0}\r\nContent-Type: {ct}\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            );
            w.extend_from_slice(body);
            w.extend_from_slice(format!("\r\n-------{tid}$\r\n").as_bytes());
        } else {
            w.extend_from_slice(format!("-------{tid}$\r\n").as_bytes());
        }
        w
    }

    /// One chunk of a message from the peer on `conn`.
    pub(super) fn chunk(
        &mut self,
        conn: ConnId,
        mid: &str,
        range: (u64, u64, Option<u64>),
        body: &[u8],
        flag: Flag,
        extra: &str,
    ) -> Vec<u8> {
        let tid = self.next_tid(conn);
        let p = &self.peers[&conn];
        let total = range.2.map_or("*".to_string(), |t| t.to_string());
        let mut w = format!(
            "MSRP {tid} SEND\r\nTo-Path: {}\r\nFrom-Path: {}\r\nMessage-ID: {mid}\r\n{extra}Byte-Range: {}-{}/{total}\r\nContent-Type: application/octet-stream\r\n\r\n",
            p.relay_uri, p.uri, range.0, range.1
        )
        .into_bytes();
        w.extend_from_slice(body);
        w.extend_from_slice(format!("\r\n-------{tid}{}\r\n", flag.as_byte() as char).as_bytes());
        w
    }

    pub(super) fn send_raw(&mut self, conn: ConnId, bytes: &[u8]) {
        self.eng
            .handle_data(conn, Bytes::copy_from_slice(bytes), self.now);
        self.run();
    }

    /// Sends a whole message in chunks of `chunk` bytes.
    pub(super) fn send_file(&mut self, conn: ConnId, mid: &str, data: &[u8], chunk: usize) {
        let total = data.len() as u64;
        let mut at = 0;
        while at < data.len() {
            let end = (at + chunk).min(data.len());
            let flag = if end == data.len() {
                Flag::Complete
            } else {
                Flag::More
            };
            let w = self.chunk(
                conn,
                mid,
                (at as u64 + 1, end as u64, Some(total)),
                &data[at..end],
                flag,
                "",
            );
            self.send_raw(conn, &w);
            at = end;
        }
    }

    pub(super) fn advance(&mut self, d: Duration) {
        self.now += d;
        self.eng.handle_timeout(self.now);
        self.run();
    }

    /// Runs the engine to quiescence: outputs handled, every unpaused
    /// peer's bytes delivered and answered.
    pub(super) fn run(&mut self) {
        for _ in 0..100_000 {
            let mut progress = false;
            while let Some(o) = self.eng.poll_output() {
                progress = true;
                match &o {
                    Output::Event(e) => {
                        self.log.push(format!("event {e:?}"));
                        self.events.push(e.clone());
                    }
                    Output::Close { conn, .. } => {
                        // Deliver what was flushed, then close.
                        self.deliver(*conn);
                        self.closes.push(*conn);
                        if let Some(p) = self.peers.get_mut(conn) {
                            p.closed = true;
                        }
                    }
                    _ => {}
                }
                self.outputs.push(o);
            }
            let conns: Vec<ConnId> = self.peers.keys().copied().collect();
            for c in conns {
                progress |= self.deliver(c);
            }
            if !progress {
                return;
            }
        }
        panic!("engine did not settle");
    }

    fn deliver(&mut self, conn: ConnId) -> bool {
        let Some(p) = self.peers.get(&conn) else {
            return false;
        };
        if p.paused || p.closed {
            return false;
        }
        let bytes: Vec<u8> = self
            .eng
            .output(conn)
            .flat_map(|b| b.iter().copied())
            .collect();
        if bytes.is_empty() {
            return false;
        }
        self.eng.consume_output(conn, bytes.len(), self.now);
        let mut replies = Vec::new();
        let p = self.peers.get_mut(&conn).unwrap();
        p.dec.feed(Bytes::from(bytes));
        while let Some(ev) = p.dec.poll().unwrap() {
            match ev {
                Wire::Request(h) => p.cur = Some((*h, Vec::new())),
                Wire::Body(b) => p.cur.as_mut().unwrap().1.extend_from_slice(&b),
                Wire::End(flag) => {
                    let (head, body) = p.cur.take().unwrap();
                    self.log
                        .push(format!("conn {} got {} {:?}", conn.0, head.tid, flag));
                    if p.auto_ok && head.method == crate::msrp::Method::Send {
                        let mut b = BytesMut::new();
                        encode::transaction_response(
                            &mut b,
                            head.tid.as_bytes(),
                            StatusCode::OK,
                            None,
                            head.from_path.first().as_bytes(),
                            p.uri.as_bytes(),
                        );
                        replies.push(b.freeze());
                    }
                    p.got.push(Got::Request { head, body, flag });
                }
                Wire::Response(r) => p.got.push(Got::Response(*r)),
            }
        }
        for r in replies {
            self.eng.handle_data(conn, r, self.now);
        }
        true
    }

    /// Answers every request `conn` received and has not answered (for a
    /// peer with `auto_ok` off), with `code`.
    pub(super) fn answer_all(&mut self, conn: ConnId, code: StatusCode) {
        let p = &self.peers[&conn];
        let mut b = BytesMut::new();
        for g in &p.got {
            if let Got::Request { head, .. } = g
                && head.method == crate::msrp::Method::Send
            {
                encode::transaction_response(
                    &mut b,
                    head.tid.as_bytes(),
                    code,
                    None,
                    head.from_path.first().as_bytes(),
                    p.uri.as_bytes(),
                );
            }
        }
        self.send_raw(conn, &b);
    }

    pub(super) fn done_legs(&self) -> Vec<LegId> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::LegDone { leg, .. } => Some(*leg),
                _ => None,
            })
            .collect()
    }
}
