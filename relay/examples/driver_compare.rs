//! Measures one driver on loopback: one sender → N devices, a file of
//! `--size` bytes in `--chunk`-byte SENDs. Prints the aggregate device
//! throughput, the relay's CPU seconds per GB delivered (its worker
//! threads and the kernel's io_uring workers, from
//! `/proc/self/task/*/schedstat`), and the driver's counters (syscalls per
//! relayed chunk).
//!
//! ```text
//! cargo run --release --example driver_compare -- --driver uring --devices 100 \
//!     --chunk 65536 --size 268435456 [--zc 65536] [--workers 1] \
//!     [--buffers 128] [--buffer-size 65536] [--multishot on|off] [--sndbuf BYTES] [--log-memory BYTES] \
//!     [--read-ahead BYTES] [--low-water BYTES]
//! ```
//!
//! Clients read with `readv(2)` and write with `sendto(2)` (std), so that
//! under `strace -c -f` the relay's own syscalls stand apart: epoll uses
//! `epoll_wait`, `recvfrom`, `writev`; io_uring uses `io_uring_enter`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{IoSliceMut, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use msrp_relay::fanout::{Answer, Setup};
use msrp_relay::io::{IoMode, Relay, RelayConfig};
use msrp_relay::msrp::encode::{self, SendHead};
use msrp_relay::msrp::{ByteRange, Decoder, Event, Flag, Limits, StatusCode};

struct Args {
    driver: IoMode,
    devices: usize,
    chunk: usize,
    size: usize,
    zc: Option<usize>,
    workers: usize,
    buffers: u16,
    buffer_size: usize,
    multishot: bool,
    sndbuf: Option<usize>,
    log_memory: Option<u64>,
    read_ahead: Option<u64>,
    low_water: Option<usize>,
}

fn args() -> Args {
    let mut a = Args {
        driver: IoMode::Uring,
        devices: 100,
        chunk: 64 << 10,
        size: 256 << 20,
        zc: None,
        workers: 1,
        buffers: msrp_relay::io::UringConfig::default().buffers,
        buffer_size: msrp_relay::io::UringConfig::default().buffer_size,
        multishot: true,
        sndbuf: None,
        log_memory: None,
        read_ahead: None,
        low_water: None,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    for p in v.chunks(2) {
        let val = p.get(1).map(String::as_str).unwrap_or("");
        match p[0].as_str() {
            "--driver" => {
                a.driver = match val {
                    "epoll" => IoMode::Epoll,
                    "auto" => IoMode::Auto,
                    _ => IoMode::Uring,
                }
            }
            "--devices" => a.devices = val.parse().expect("--devices N"),
            "--chunk" => a.chunk = val.parse().expect("--chunk BYTES"),
            "--size" => a.size = val.parse().expect("--size BYTES"),
            "--zc" => a.zc = Some(val.parse().expect("--zc BYTES")),
            "--workers" => a.workers = val.parse().expect("--workers N"),
            "--buffer-size" => a.buffer_size = val.parse().expect("--buffer-size BYTES"),
            "--buffers" => a.buffers = val.parse().expect("--buffers N (power of two)"),
            "--multishot" => a.multishot = val != "off",
            "--sndbuf" => a.sndbuf = Some(val.parse().expect("--sndbuf BYTES")),
            "--log-memory" => a.log_memory = Some(val.parse().expect("--log-memory BYTES")),
            "--low-water" => a.low_water = Some(val.parse().expect("--low-water BYTES")),
            "--read-ahead" => a.read_ahead = Some(val.parse().expect("--read-ahead BYTES")),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// CPU time (ns) of this process's threads whose name starts with one of
/// `prefixes`.
fn cpu_ns(prefixes: &[&str]) -> u64 {
    let mut total = 0;
    for t in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if !prefixes.iter().any(|p| comm.starts_with(p)) {
            continue;
        }
        total += schedstat_ns(&t.path());
    }
    total
}

/// Time (ns) a task has run: the first field of its `schedstat`.
fn schedstat_ns(task: &std::path::Path) -> u64 {
    std::fs::read_to_string(task.join("schedstat"))
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
}

/// CPU time (ns) of the kernel's softirq threads (loopback receive work
/// deferred out of the sending thread is not charged to it).
fn ksoftirqd_ns() -> u64 {
    let mut total = 0;
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let comm = std::fs::read_to_string(p.path().join("comm")).unwrap_or_default();
        if comm.starts_with("ksoftirqd") {
            total += schedstat_ns(&p.path());
        }
    }
    total
}

/// CPU time (ns) of the whole process, exited threads included
/// (`/proc/self/stat` utime + stime, in clock ticks of 10 ms).
fn process_ns() -> u64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    // Fields 14 and 15 of stat(5); `after` starts at field 3.
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) * 10_000_000
}

fn uri(name: &str) -> String {
    format!("msrp://{name}.bench.invalid:2855/{name};tcp")
}

/// A connected, bound peer: connects, sends a bodiless SEND, waits for 200.
fn peer(relay: &Relay, relay_uri: &str, me: &str) -> (TcpStream, Decoder) {
    let mut s = TcpStream::connect(relay.local_addr()).unwrap();
    s.set_nodelay(true).unwrap();
    let mut b = BytesMut::new();
    let tid = format!("{me}bind");
    head(&tid, relay_uri, &uri(me), "bind", None).encode(&mut b);
    encode::end_line(&mut b, tid.as_bytes(), Flag::Complete, false);
    s.write_all(&b).unwrap();
    let mut dec = Decoder::new(Limits::default());
    let mut buf = vec![0u8; 4096];
    loop {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "{me}: relay closed during bind");
        dec.feed(Bytes::copy_from_slice(&buf[..n]));
        while let Ok(Some(ev)) = dec.poll() {
            if let Event::Response(r) = ev {
                assert_eq!(r.code, StatusCode::OK, "{me}: bind answered {}", r.code.0);
                return (s, dec);
            }
        }
    }
}

fn head<'a>(
    tid: &'a str,
    to: &'a str,
    from: &'a str,
    mid: &'a str,
    range: Option<ByteRange>,
) -> SendHead<'a> {
    SendHead {
        tid: tid.as_bytes(),
        to_path: to.as_bytes(),
        from_path: from.as_bytes(),
        message_id: mid.as_bytes(),
        byte_range: range,
        success_report: None,
        failure_report: None,
        content_type: range.map(|_| b"application/octet-stream".as_slice()),
        extra: &[],
    }
}

/// A device: reads (readv), decodes, answers 200 to each chunk, counts body
/// bytes until `size`; returns when it has them all.
fn device(mut s: TcpStream, mut dec: Decoder, me: String, size: u64) {
    let mut got = 0u64;
    let mut buf = vec![0u8; 256 << 10];
    let me = Bytes::from(me);
    while got < size {
        let n = s.read_vectored(&mut [IoSliceMut::new(&mut buf)]).unwrap();
        assert!(n > 0, "device closed early at {got}/{size}");
        dec.feed(Bytes::copy_from_slice(&buf[..n]));
        let mut out = BytesMut::new();
        loop {
            match dec.poll() {
                Ok(Some(Event::Request(h))) => {
                    if h.wants_response() {
                        encode::transaction_response(
                            &mut out,
                            h.tid.as_bytes(),
                            StatusCode::OK,
                            None,
                            h.from_path.first().as_bytes(),
                            &me,
                        );
                    }
                }
                Ok(Some(Event::Body(b))) => got += b.len() as u64,
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => panic!("device decode: {e}"),
            }
        }
        if !out.is_empty() {
            s.write_all(&out).unwrap();
        }
    }
}

fn main() {
    let a = args();
    let mut cfg = RelayConfig {
        workers: a.workers,
        listen: ([127, 0, 0, 1], 0).into(),
        io: a.driver,
        ..RelayConfig::default()
    };
    cfg.engine.host = "127.0.0.1".into();
    cfg.uring.send_zc_min = a.zc;
    cfg.uring.buffers = a.buffers;
    cfg.uring.buffer_size = a.buffer_size;
    cfg.uring.multishot = a.multishot;
    cfg.sndbuf = a.sndbuf;
    if let Some(l) = a.low_water {
        cfg.engine.leg_low_water = l;
    }
    if let Some(r) = a.read_ahead {
        cfg.engine.read_ahead = r;
    }
    if let Some(m) = a.log_memory {
        // A small log with no disk: the sender is read at most this far
        // ahead of the slowest leg.
        cfg.engine.log.memory_limit = m;
        cfg.engine.log.disk_limit = 0;
    }
    let relay = Relay::start(cfg).expect("relay start");
    let h = relay.handle();
    let answer = |leg, name: &str| {
        let peer_path = vec![Bytes::from(uri(name))];
        let setup = Setup::Passive;
        h.answer(leg, Answer { peer_path, setup }).unwrap();
    };
    let (up, up_uri) = h.create_session("sender").unwrap();
    answer(up, "sender");
    let (mut snd, _) = peer(&relay, &up_uri, "sender");
    let mut devs = Vec::new();
    for i in 0..a.devices {
        let name = format!("dev{i}");
        let (leg, relay_uri) = h.add_leg(up.session, &name).unwrap();
        answer(leg, &name);
        devs.push((peer(&relay, &relay_uri, &name), name));
    }
    // Drain the sender's 200s.
    let mut snd_rx = snd.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut b = vec![0u8; 64 << 10];
        while snd_rx.read(&mut b).is_ok_and(|n| n > 0) {}
    });
    let go = Arc::new(Barrier::new(a.devices + 1));
    let threads: Vec<_> = devs
        .into_iter()
        .map(|((s, dec), name)| {
            let (go, size) = (go.clone(), a.size as u64);
            std::thread::Builder::new()
                .name(format!("dev-{name}"))
                .stack_size(256 << 10)
                .spawn(move || {
                    go.wait();
                    device(s, dec, name, size);
                    Instant::now()
                })
                .unwrap()
        })
        .collect();
    let body: Vec<u8> = (0..a.chunk).map(|i| (i * 7 + 3) as u8).collect();
    let relay_threads = ["msrp-", "iou-"];
    let (c0, cpu0) = (relay.counters(), cpu_ns(&relay_threads));
    let (all0, soft0) = (process_ns(), ksoftirqd_ns());
    // Samples the content log while the file flows: how far ahead of the
    // legs the relay reads.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (h, stop) = (relay.handle(), stop.clone());
        std::thread::spawn(move || {
            let (mut max, mut sum, mut n) = (0u64, 0u64, 0u64);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let m: u64 = h
                    .stats()
                    .map_or(0, |v| v.iter().map(|s| s.log_memory).sum());
                max = max.max(m);
                sum += m;
                n += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            (max, sum / n.max(1))
        })
    };
    go.wait();
    let t0 = Instant::now();
    let mut at = 0usize;
    let mut k = 0u64;
    let from = uri("sender");
    let mut b = BytesMut::new();
    while at < a.size {
        let end = (at + a.chunk).min(a.size);
        let tid = format!("chunk{k:08}");
        k += 1;
        let range = ByteRange {
            start: at as u64 + 1,
            end: Some(end as u64),
            total: Some(a.size as u64),
        };
        b.clear();
        head(&tid, &up_uri, &from, "file", Some(range)).encode(&mut b);
        b.extend_from_slice(&body[..end - at]);
        let flag = if end == a.size {
            Flag::Complete
        } else {
            Flag::More
        };
        encode::end_line(&mut b, tid.as_bytes(), flag, true);
        snd.write_all(&b).unwrap();
        at = end;
    }
    let last = threads.into_iter().map(|t| t.join().unwrap()).max();
    let secs = last.map_or(Duration::ZERO, |t| t - t0).as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (log_max, log_mean) = sampler.join().unwrap_or((0, 0));
    let (c1, cpu1) = (relay.counters(), cpu_ns(&relay_threads));
    let (all1, soft1) = (process_ns(), ksoftirqd_ns());
    let delivered = (a.devices * a.size) as f64;
    let cpu = (cpu1 - cpu0) as f64 / 1e9;
    println!(
        "driver={:?} devices={} chunk={} size={} zc={:?}",
        relay.driver(),
        a.devices,
        a.chunk,
        a.size,
        a.zc
    );
    println!(
        "throughput_gbit_s={:.2} seconds={:.3} relay_cpu_s={:.3} cpu_s_per_gb={:.4}",
        delivered * 8.0 / secs / 1e9,
        secs,
        cpu,
        cpu / (delivered / 1e9)
    );
    println!(
        "process_cpu_s={:.3} ksoftirqd_cpu_s={:.3} (devices and sender included)",
        (all1 - all0) as f64 / 1e9,
        (soft1 - soft0) as f64 / 1e9
    );
    println!(
        "log_memory_max_mib={:.1} log_memory_mean_mib={:.1}",
        log_max as f64 / 1048576.0,
        log_mean as f64 / 1048576.0
    );
    let chunks = k as f64;
    println!(
        "chunks={} syscalls_per_chunk={:.2} sqes_per_chunk={:.2} cqes_per_chunk={:.2} receives={} copied={} zc_sends={}",
        k,
        (c1.syscalls - c0.syscalls) as f64 / chunks,
        (c1.submitted - c0.submitted) as f64 / chunks,
        (c1.completions - c0.completions) as f64 / chunks,
        c1.receives - c0.receives,
        c1.copied - c0.copied,
        c1.zc_sends - c0.zc_sends
    );
    drop(snd);
    relay.shutdown(Duration::from_secs(1));
}
