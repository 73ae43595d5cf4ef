//! The fan-out engine's cost per chunk: one 64 KiB SEND chunk from the
//! sender, decoded, logged once and queued to N device legs (a head and an
//! end-line per leg around the shared body), with no I/O. Everything the
//! relay does between reading the sender's socket and the devices' vectored
//! writes, measured with `iter_custom` so that the devices' side (taking
//! the output, answering 200) stays outside the timing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic here is a failed run

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use msrp_relay::fanout::{
    Answer, ConnId, Engine, EngineConfig, LegId, LegParams, MemoryBudget, Output, Setup,
};

struct Bench {
    eng: Engine,
    sender: ConnId,
    sender_uri: String,
    relay_up: String,
    devices: Vec<(ConnId, String)>,
    now: Instant,
    seq: u64,
}

fn bind(eng: &mut Engine, conn: ConnId, leg: LegId, uri: &str, now: Instant) {
    eng.answer(
        leg,
        Answer {
            peer_path: vec![Bytes::copy_from_slice(uri.as_bytes())],
            setup: Setup::Passive,
        },
        now,
    )
    .unwrap();
    eng.handle_accepted(conn, now);
    let relay = eng.local_uri(leg).unwrap();
    let tid = format!("bind{}", conn.0);
    let w = format!(
        "MSRP {tid} SEND\r\nTo-Path: {relay}\r\nFrom-Path: {uri}\r\nMessage-ID: m{tid}\r\n-------{tid}$\r\n"
    );
    eng.handle_data(conn, Bytes::from(w), now);
}

impl Bench {
    fn new(legs: usize) -> Bench {
        let now = Instant::now();
        let cfg = EngineConfig {
            leg_low_water: 1 << 20,
            ..EngineConfig::default()
        };
        let mut eng = Engine::new(cfg, MemoryBudget::new(1 << 30), now).unwrap();
        let (sid, up) = eng
            .create_session(
                LegParams {
                    label: "sender".into(),
                    ..LegParams::default()
                },
                now,
            )
            .unwrap();
        let sender_uri = "msrp://198.51.100.23:39012/jshA7weztas;tcp".to_string();
        bind(&mut eng, ConnId(0), up, &sender_uri, now);
        let relay_up = eng.local_uri(up).unwrap();
        let mut devices = Vec::new();
        for i in 0..legs {
            let leg = eng
                .add_leg(
                    sid,
                    LegParams {
                        label: format!("d{i}"),
                        ..LegParams::default()
                    },
                    now,
                )
                .unwrap();
            let uri = format!("msrp://[2001:db8::{i:x}]:49163/bT4q8zLs1e{i};tcp");
            bind(&mut eng, ConnId(i as u64 + 1), leg, &uri, now);
            devices.push((ConnId(i as u64 + 1), uri));
        }
        let mut b = Bench {
            eng,
            sender: ConnId(0),
            sender_uri,
            relay_up,
            devices,
            now,
            seq: 0,
        };
        b.drain();
        // One chunk through every leg before measuring, so that the legs'
        // queues have grown to their working size (as after the first
        // chunk of a transfer) and a profile counts only steady work.
        let body = Bytes::from(vec![0x5a; 64 * 1024]);
        let wire = b.chunk(&body);
        fan_out_one(&mut b, wire);
        b.drain();
        b
    }

    /// The devices take everything queued and answer every chunk 200.
    fn drain(&mut self) {
        while let Some(o) = self.eng.poll_output() {
            if let Output::Close { .. } = o {
                panic!("unexpected close");
            }
        }
        for i in 0..=self.devices.len() {
            let conn = ConnId(i as u64);
            let n: usize = self.eng.output(conn).map(Bytes::len).sum();
            let heads: Vec<Bytes> = self
                .eng
                .output(conn)
                .filter(|b| b.starts_with(b"MSRP "))
                .cloned()
                .collect();
            self.eng.consume_output(conn, n, self.now);
            if i == 0 {
                continue;
            }
            let (_, uri) = &self.devices[i - 1];
            let mut reply = Vec::new();
            for h in heads {
                let tid = h.split(|&b| b == b' ').nth(1).unwrap();
                let tid = std::str::from_utf8(tid).unwrap();
                reply.extend_from_slice(format!("MSRP {tid} 200 OK\r\nTo-Path: msrp://relay.invalid:2855/r;tcp\r\nFrom-Path: {uri}\r\n-------{tid}$\r\n").as_bytes());
            }
            if !reply.is_empty() {
                self.eng.handle_data(conn, Bytes::from(reply), self.now);
            }
        }
        while self.eng.poll_output().is_some() {}
    }

    fn chunk(&mut self, body: &Bytes) -> Bytes {
        self.seq += 1;
        let start = (self.seq - 1) * body.len() as u64 + 1;
        let tid = format!("c{:07}", self.seq);
        let mut w = format!(
            "MSRP {tid} SEND\r\nTo-Path: {}\r\nFrom-Path: {}\r\nMessage-ID: file1\r\nByte-Range: {start}-{}/*\r\nContent-Type: application/octet-stream\r\n\r\n",
            self.relay_up,
            self.sender_uri,
            start + body.len() as u64 - 1
        )
        .into_bytes();
        w.extend_from_slice(body);
        w.extend_from_slice(format!("\r\n-------{tid}+\r\n").as_bytes());
        Bytes::from(w)
    }
}

/// The timed work: the sender's chunk in, every output the driver acts on
/// out (the legs' queued writes are then what `Engine::output` returns).
/// Not inlined, so that a profiler can count exactly this
/// (`valgrind --tool=callgrind --toggle-collect='*fan_out_one*'`).
#[inline(never)]
fn fan_out_one(bench: &mut Bench, wire: Bytes) {
    bench.eng.handle_data(bench.sender, wire, bench.now);
    while let Some(o) = bench.eng.poll_output() {
        black_box(o);
    }
}

fn fanout(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine_fanout_64k");
    let body = Bytes::from(vec![0x5a; 64 * 1024]);
    for legs in [1usize, 10, 100, 1000] {
        g.throughput(Throughput::Elements(legs as u64));
        g.bench_with_input(BenchmarkId::from_parameter(legs), &legs, |b, &legs| {
            let mut bench = Bench::new(legs);
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let wire = bench.chunk(&body);
                    let t = Instant::now();
                    fan_out_one(&mut bench, wire);
                    total += t.elapsed();
                    bench.drain();
                }
                total
            });
        });
    }
    g.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
