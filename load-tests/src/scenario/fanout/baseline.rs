//! One fan-out run over a baseline: the same senders, devices and bytes,
//! sent straight to each device or through the minimal TCP fan-out.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::params::{Mode, Params, Role};
use super::report::{RunResult, finish};
use super::setup::{Dev, SenderThread, device_result, spawn_sender, start_device};
use crate::error::{Context, LoadError, Result};
use crate::net::connect;
use crate::peer::Endpoint;
use crate::scenario::tcpfan::TcpFanout;
use crate::sys::CpuMeter;

/// Runs one fan-out over a baseline: the same senders, devices and bytes,
/// without the relay.
pub fn run_baseline(mode: Mode, p: &Params, file: &Bytes, timeout: Duration) -> Result<RunResult> {
    p.check()?;
    let size = file.len() as u64;
    let digest = hex::encode(Sha256::digest(file));
    let base = Instant::now();
    let tool_cpu = CpuMeter::start(std::process::id());
    let t0 = Instant::now();
    struct Pending {
        stream: std::net::TcpStream,
        ep: Endpoint,
        sent: Arc<AtomicU64>,
        late: bool,
    }
    let mut devs: Vec<(usize, Dev)> = Vec::new();
    let mut pending: Vec<Pending> = Vec::new();
    let mut fans = Vec::new();
    for s in 0..p.sessions {
        let mut listeners = Vec::new();
        for j in 0..p.devices {
            let l = TcpListener::bind("127.0.0.1:0")
                .context(|| "baseline: bind a device listener".into())?;
            let addr = l
                .local_addr()
                .context(|| "baseline: device address".into())?;
            listeners.push((l, addr));
            devs.push((
                s,
                Dev {
                    name: p.name(s, j),
                    branch: format!("b{j}"),
                    path: format!("msrp://127.0.0.1:{}/d{s}x{j};tcp", addr.port()),
                    relay_uri: format!("msrp://127.0.0.1:9/snd{s};tcp"),
                    addr,
                    role: p.role(j),
                    progress: Arc::default(),
                    conn: None,
                    accepted: Some(Duration::ZERO),
                },
            ));
        }
        let first = devs.len() - p.devices;
        match mode {
            Mode::Direct => {
                for (j, (l, addr)) in listeners.iter().enumerate() {
                    let stream = connect(*addr, None, None)?;
                    let (dev_stream, _) = l.accept().context(|| "baseline: accept".into())?;
                    let d = &mut devs[first + j].1;
                    start_device(p, file, base, d, dev_stream, timeout)?;
                    pending.push(Pending {
                        stream,
                        ep: Endpoint::new(&format!("snd{s}x{j}"), &d.relay_uri, &d.path),
                        sent: Arc::default(),
                        late: d.role == Role::Late,
                    });
                }
            }
            Mode::Tcp | Mode::Relay => {
                let addrs: Vec<SocketAddr> = listeners.iter().map(|(_, a)| *a).collect();
                let fan = TcpFanout::start(&addrs)?;
                for (j, (l, _)) in listeners.iter().enumerate() {
                    let (dev_stream, _) = l.accept().context(|| "baseline: accept".into())?;
                    start_device(p, file, base, &mut devs[first + j].1, dev_stream, timeout)?;
                }
                let stream = connect(fan.addr, None, None)?;
                let d = &devs[first].1;
                pending.push(Pending {
                    stream,
                    ep: Endpoint::new(&format!("snd{s}"), &d.relay_uri, &d.path),
                    sent: Arc::default(),
                    late: false,
                });
                fans.push(fan);
            }
        }
    }
    let t0 = t0.max(Instant::now());
    let mut senders: Vec<(SenderThread, Arc<AtomicU64>)> = Vec::new();
    let mut late = Vec::new();
    // A sender thread for one pending stream, and its byte counter.
    let start = |name: String, pd: Pending| -> Result<(SenderThread, Arc<AtomicU64>)> {
        let sent = pd.sent.clone();
        let stream = pd.stream.into();
        let t = spawn_sender(name, stream, pd.ep, p, file, pd.sent, t0, timeout, true)?;
        Ok((t, sent))
    };
    for (i, pd) in pending.into_iter().enumerate() {
        if pd.late {
            late.push(pd);
            continue;
        }
        senders.push(start(format!("b{i}"), pd)?);
    }
    let late_bytes = (p.late_at * size as f64) as u64;
    let mut last_change = (Instant::now(), 0u64);
    loop {
        if !late.is_empty()
            && senders
                .first()
                .is_some_and(|(_, s)| s.load(Ordering::Relaxed) >= late_bytes)
        {
            for pd in late.drain(..) {
                let name = pd.ep.local_uri.clone();
                // The device of this stream accepts now.
                if let Some((_, d)) = devs.iter_mut().find(|(_, d)| d.path == pd.ep.remote_uri) {
                    d.accepted = Some(t0.elapsed());
                }
                senders.push(start(name, pd)?);
            }
        }
        if devs.iter().all(|(_, d)| d.progress.done().is_some()) {
            break;
        }
        let total: u64 = devs
            .iter()
            .map(|(_, d)| d.progress.bytes.load(Ordering::Relaxed))
            .sum();
        if total != last_change.1 {
            last_change = (Instant::now(), total);
        } else if last_change.0.elapsed() > timeout {
            return Err(LoadError::Timeout(format!(
                "{mode:?} baseline made no progress for {timeout:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let tool_cores = tool_cpu.cores();
    let mut sender_s = Vec::new();
    let mut sender_conns = Vec::new();
    for (h, _) in senders {
        match h.join() {
            Ok(Ok((took, conn))) => {
                sender_s.push(took.as_secs_f64());
                sender_conns.push(conn);
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(LoadError::Msrp("a sender thread panicked".into())),
        }
    }
    let mut results = Vec::new();
    for (s, d) in &mut devs {
        let sink = d.close()?;
        results.push(device_result(
            *s,
            d,
            sink.as_ref(),
            &digest,
            size,
            (base, t0),
            None,
        ));
    }
    drop(sender_conns);
    drop(fans);
    Ok(finish(mode, results, sender_s, None, tool_cores))
}
