//! `fanout`: a file from each of S senders to M devices, through the
//! relay and, in the same run, through the baselines; every device's bytes
//! verified.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::Env;
use super::tcpfan::TcpFanout;
use crate::cli::{Baseline, FanoutArgs, Verify};
use crate::control::{answer_sdp, offer_sdp, relay_endpoint};
use crate::error::{Context, LoadError, Result};
use crate::net::connect;
use crate::peer::{AckHandler, Acks, Conn, Endpoint, Handler, ReadOpts, is_content, send_file};
use crate::report::{Compare, Report};
use crate::stats::{fmt_size, gb_per_s, median};
use crate::sys::CpuMeter;
use crate::wire::{self, Wire};
use msrp_relay::msrp::{Flag, RequestHead};

/// Where the bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Through the relay.
    Relay,
    /// Sender straight to each device.
    Direct,
    /// Through the minimal TCP fan-out.
    Tcp,
}

/// What a device does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Accepts at once, reads as fast as it can.
    Fast,
    /// Accepts at once, reads at the slow rate.
    Slow,
    /// Accepts when the sender is `late_at` through the file.
    Late,
}

/// One run's shape.
#[derive(Debug, Clone)]
pub struct Params {
    /// Sessions.
    pub sessions: usize,
    /// Devices per session.
    pub devices: usize,
    /// File size.
    pub size: u64,
    /// Chunk size.
    pub chunk: u64,
    /// Sender window in chunks.
    pub window: u64,
    /// Slow devices per session.
    pub slow: usize,
    /// Their read rate.
    pub slow_rate: u64,
    /// Late devices per session.
    pub late: usize,
    /// When they accept (fraction sent).
    pub late_at: f64,
    /// Verification.
    pub verify: Verify,
    /// Device read size.
    pub read_buf: usize,
    /// Device names (default `s<i>d<j>`).
    pub names: Vec<String>,
    /// Relay legs over TLS with this client configuration (baselines stay
    /// plain).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Params {
    /// The role of device `j`: device 0 is always on time and fast; the
    /// last `slow` are slow, the `late` before them late.
    pub fn role(&self, j: usize) -> Role {
        let m = self.devices;
        if j == 0 {
            Role::Fast
        } else if j + self.slow >= m {
            Role::Slow
        } else if j + self.slow + self.late >= m {
            Role::Late
        } else {
            Role::Fast
        }
    }

    /// Checks the shape.
    pub fn check(&self) -> Result<()> {
        if self.devices == 0 || self.sessions == 0 {
            return Err(LoadError::Args(
                "need at least one session and one device".into(),
            ));
        }
        if self.slow + self.late >= self.devices && (self.slow + self.late) > 0 {
            return Err(LoadError::Args(format!(
                "{} slow + {} late devices leave no on-time fast device among {}",
                self.slow, self.late, self.devices
            )));
        }
        if self.size == 0 || self.chunk == 0 {
            return Err(LoadError::Args("size and chunk must be > 0".into()));
        }
        Ok(())
    }

    fn name(&self, s: usize, j: usize) -> String {
        self.names
            .get(j)
            .filter(|_| self.sessions == 1)
            .cloned()
            .unwrap_or_else(|| format!("s{s}d{j}"))
    }
}

/// A device's live counters.
#[derive(Debug, Default)]
pub struct Progress {
    /// Body bytes received.
    pub bytes: AtomicU64,
    /// Nanoseconds from the run's start to the last byte, plus one; 0 while
    /// not done.
    pub done_ns: AtomicU64,
}

impl Progress {
    /// Time from the run's start to the last byte.
    pub fn done(&self) -> Option<Duration> {
        match self.done_ns.load(Ordering::Acquire) {
            0 => None,
            n => Some(Duration::from_nanos(n - 1)),
        }
    }
}

/// A device's reader: checks order and content, counts, marks the end.
#[derive(Debug)]
pub struct FileSink {
    verify: Verify,
    file: Bytes,
    hasher: Sha256,
    offset: u64,
    in_content: bool,
    mismatch: Option<u64>,
    errors: Vec<String>,
    progress: Arc<Progress>,
    base: Instant,
    digest: Option<String>,
}

impl FileSink {
    /// A sink expecting `file`; `base` is the run's start.
    pub fn new(verify: Verify, file: Bytes, progress: Arc<Progress>, base: Instant) -> FileSink {
        FileSink {
            verify,
            file,
            hasher: Sha256::new(),
            offset: 0,
            in_content: false,
            mismatch: None,
            errors: Vec::new(),
            progress,
            base,
            digest: None,
        }
    }

    /// Whether every byte arrived, in order, equal to the file.
    pub fn exact(&self, want_digest: &str) -> bool {
        self.offset == self.file.len() as u64
            && self.mismatch.is_none()
            && self.errors.is_empty()
            && match self.verify {
                Verify::Sha256 => self.digest.as_deref() == Some(want_digest),
                Verify::Compare => self.digest.is_some(),
                Verify::None => self.digest.is_some(),
            }
    }
}

impl Handler for FileSink {
    fn request(&mut self, h: &RequestHead, _now: Instant) {
        self.in_content = is_content(h);
        if self.in_content {
            let start = h.byte_range.map_or(1, |r| r.start);
            if start != self.offset + 1 {
                self.errors
                    .push(format!("chunk at byte {start} after {} bytes", self.offset));
            }
        }
    }

    fn body(&mut self, b: &Bytes) {
        if !self.in_content {
            return;
        }
        let at = self.offset as usize;
        match self.verify {
            Verify::Sha256 => self.hasher.update(b),
            Verify::Compare => {
                if self.mismatch.is_none() && self.file.get(at..at + b.len()) != Some(&b[..]) {
                    self.mismatch = Some(self.offset);
                }
            }
            Verify::None => {}
        }
        self.offset += b.len() as u64;
        self.progress.bytes.store(self.offset, Ordering::Relaxed);
    }

    fn end(&mut self, flag: Flag, now: Instant, _out: &mut bytes::BytesMut) {
        if self.in_content && flag == Flag::Complete && self.digest.is_none() {
            self.digest = Some(match self.verify {
                Verify::Sha256 => hex::encode(std::mem::take(&mut self.hasher).finalize()),
                _ => String::new(),
            });
            let ns = u64::try_from(now.saturating_duration_since(self.base).as_nanos())
                .unwrap_or(u64::MAX - 1);
            self.progress.done_ns.store(ns + 1, Ordering::Release);
        }
        self.in_content = false;
    }

    fn error(&mut self, e: String) {
        self.errors.push(e);
    }
}

/// One device's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceResult {
    /// Session index.
    pub session: usize,
    /// Device name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Body bytes received.
    pub bytes: u64,
    /// Every byte arrived and matched.
    pub exact: bool,
    /// SHA-256 it computed (sha256 verification).
    pub sha256: Option<String>,
    /// Seconds from the start to its accept (late devices).
    pub accepted_s: Option<f64>,
    /// Seconds from the start to its last byte.
    pub done_s: Option<f64>,
    /// Seconds from the start to its `leg-done` (relay only).
    pub leg_done_s: Option<f64>,
    /// `leg-done` reason.
    pub leg_done_reason: Option<String>,
    /// File size over time to the last byte (from its accept for a late
    /// device), GB/s.
    pub gbps: f64,
    /// Problems it saw.
    pub errors: Vec<String>,
}

/// One run's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    /// Where the bytes went.
    pub mode: Mode,
    /// Every device.
    pub devices: Vec<DeviceResult>,
    /// Seconds until each sender had every chunk answered.
    pub sender_s: Vec<f64>,
    /// Bytes delivered over the time to the last device's last byte.
    pub aggregate_gbps: f64,
    /// Cores the relay used on average (relay mode).
    pub relay_cores: Option<f64>,
    /// Cores this tool used on average.
    pub tool_cores: Option<f64>,
    /// Relay CPU seconds per GB delivered to the devices (relay mode).
    pub relay_cpu_s_per_gb: Option<f64>,
    /// The relay's legs ran over TLS.
    pub tls: bool,
}

impl RunResult {
    fn median_gbps(&self, role: Role) -> Option<f64> {
        let v: Vec<f64> = self
            .devices
            .iter()
            .filter(|d| d.role == role)
            .map(|d| d.gbps)
            .collect();
        median(&v)
    }
}

/// Called about every 50 ms with each session's devices' counters.
pub type Observer<'a> = &'a mut dyn FnMut(&[Vec<Arc<Progress>>]);

struct Dev {
    name: String,
    branch: String,
    path: String,
    relay_uri: String,
    addr: SocketAddr,
    role: Role,
    progress: Arc<Progress>,
    conn: Option<Conn<FileSink>>,
    accepted: Option<Duration>,
}

impl Dev {
    /// Closes the device's connection, if it has one, and returns what its
    /// reader collected.
    fn close(&mut self) -> Result<Option<FileSink>> {
        match self.conn.take() {
            Some(c) => {
                c.shutdown();
                Ok(Some(c.join()?.0))
            }
            None => Ok(None),
        }
    }
}

type SenderThread = JoinHandle<Result<(Duration, Conn<AckHandler>)>>;

struct Sess {
    call: String,
    devs: Vec<Dev>,
    sent: Arc<AtomicU64>,
    sender: Option<SenderThread>,
    sender_done: Option<Duration>,
    sender_conn: Option<Conn<AckHandler>>,
    late_done: bool,
    deleted: bool,
}

const FROM_TAG: &str = "load";

fn read_opts(p: &Params, role: Role) -> ReadOpts {
    ReadOpts {
        buf: p.read_buf,
        rate: (role == Role::Slow).then_some(p.slow_rate),
    }
}

#[allow(clippy::too_many_arguments)] // internal, three call sites
fn spawn_sender(
    name: String,
    stream: Wire,
    mut ep: Endpoint,
    p: &Params,
    file: &Bytes,
    sent: Arc<AtomicU64>,
    t0: Instant,
    stall: Duration,
    close_after: bool,
) -> Result<SenderThread> {
    let acks = Arc::new(Acks::default());
    let (file, chunk, window) = (file.clone(), p.chunk as usize, p.window);
    std::thread::Builder::new()
        .name(format!("send-{name}"))
        .spawn(move || {
            let conn = Conn::start(
                &name,
                stream,
                &mut ep,
                AckHandler(acks.clone()),
                ReadOpts {
                    buf: 64 << 10,
                    rate: None,
                },
                false,
                stall,
            )?;
            send_file(
                &conn.writer,
                &mut ep,
                b"file-1",
                &file,
                chunk,
                window,
                &acks,
                &sent,
                stall,
            )?;
            let took = t0.elapsed();
            if close_after {
                let _ = crate::sync::lock(&conn.writer).shutdown(std::net::Shutdown::Write);
            }
            // The caller keeps the connection: the relay's sender leg stays
            // up until the front end's delete.
            Ok((took, conn))
        })
        .context(|| "spawn a sender".into())
}

/// Runs one fan-out through the relay.
pub fn run_relay(
    env: &Env,
    p: &Params,
    file: &Bytes,
    tag: &str,
    observe: Observer<'_>,
) -> Result<RunResult> {
    p.check()?;
    let size = file.len() as u64;
    let digest = hex::encode(Sha256::digest(file));
    let base = Instant::now();
    let scheme = crate::tls::scheme(p.tls.is_some());
    let mut sessions = Vec::new();
    let mut sender_targets = Vec::new();
    for s in 0..p.sessions {
        let call = format!("{tag}-{s}");
        let sender_path = format!("{scheme}://127.0.0.1:9/{tag}snd{s};tcp");
        let mut devs = Vec::new();
        for j in 0..p.devices {
            let branch = format!("b{j}");
            let r = env.ctl.ok(json!({"command": "offer", "call-id": call, "from-tag": FROM_TAG, "via-branch": branch,
                "kind": "file-transfer", "sdp": offer_sdp(&sender_path, Some(size))}))?;
            let (relay_uri, addr) = relay_endpoint(r["sdp"].as_str().unwrap_or_default())?;
            devs.push(Dev {
                name: p.name(s, j),
                branch,
                path: format!("{scheme}://127.0.0.1:9/{tag}s{s}d{j};tcp"),
                relay_uri,
                addr,
                role: p.role(j),
                progress: Arc::default(),
                conn: None,
                accepted: None,
            });
        }
        sessions.push(Sess {
            call,
            devs,
            sent: Arc::default(),
            sender: None,
            sender_done: None,
            sender_conn: None,
            late_done: p.late == 0,
            deleted: false,
        });
        sender_targets.push(sender_path);
    }
    // On-time devices answer and connect; the first answer is forwarded.
    let mut sender_ends = Vec::new();
    for sess in &mut sessions {
        let mut fwd = None;
        for d in sess.devs.iter_mut().filter(|d| d.role != Role::Late) {
            let r = answer(env, &sess.call, d)?;
            if r["forward"] == true {
                fwd = Some(relay_endpoint(r["sdp"].as_str().unwrap_or_default())?);
            }
            connect_device(env, p, file, base, d)?;
            d.accepted = Some(Duration::ZERO);
        }
        sender_ends.push(fwd.ok_or_else(|| {
            LoadError::Control(format!("{}: no answer was forwarded", sess.call))
        })?);
    }
    let relay_cpu = env.pid.map(CpuMeter::start);
    let tool_cpu = CpuMeter::start(std::process::id());
    let t0 = Instant::now();
    for ((sess, (relay_uri, addr)), local) in
        sessions.iter_mut().zip(&sender_ends).zip(&sender_targets)
    {
        let stream = wire::connect(*addr, p.tls.as_ref(), (None, None), env.timeout)?;
        let ep = Endpoint::new(&format!("{}snd", sess.call), local, relay_uri);
        sess.sender = Some(spawn_sender(
            sess.call.clone(),
            stream,
            ep,
            p,
            file,
            sess.sent.clone(),
            t0,
            env.timeout,
            false,
        )?);
    }
    let late_bytes = (p.late_at * size as f64) as u64;
    let mut last_change = (Instant::now(), 0u64);
    let mut last_tick = Instant::now();
    let mut failure: Option<LoadError> = None;
    loop {
        let mut all_done = true;
        for sess in &mut sessions {
            if !sess.late_done && sess.sent.load(Ordering::Relaxed) >= late_bytes {
                for d in sess.devs.iter_mut().filter(|d| d.role == Role::Late) {
                    answer(env, &sess.call, d)?;
                    connect_device(env, p, file, base, d)?;
                    d.accepted = Some(t0.elapsed());
                }
                sess.late_done = true;
            }
            if sess.sender.as_ref().is_some_and(JoinHandle::is_finished)
                && let Some(h) = sess.sender.take()
            {
                {
                    match h.join() {
                        Ok(Ok((took, conn))) => {
                            sess.sender_done = Some(took);
                            sess.sender_conn = Some(conn);
                        }
                        Ok(Err(e)) => failure = Some(e),
                        Err(_) => {
                            failure = Some(LoadError::Msrp("a sender thread panicked".into()))
                        }
                    }
                }
            }
            if sess.sender_done.is_some() && sess.late_done && !sess.deleted {
                env.ctl
                    .ok(json!({"command": "delete", "call-id": sess.call, "from-tag": FROM_TAG}))?;
                sess.deleted = true;
            }
            let devices_done = sess.devs.iter().all(|d| d.progress.done().is_some());
            all_done &= sess.deleted && devices_done;
        }
        if failure.is_some() || all_done {
            break;
        }
        if env.ctl.events.closed() {
            failure = Some(LoadError::Relay(format!(
                "the relay closed the control connection mid-run: {}",
                summary(&sessions)
            )));
            break;
        }
        let total: u64 = sessions
            .iter()
            .flat_map(|s| &s.devs)
            .map(|d| d.progress.bytes.load(Ordering::Relaxed))
            .sum::<u64>()
            + sessions
                .iter()
                .map(|s| s.sent.load(Ordering::Relaxed))
                .sum::<u64>();
        if total != last_change.1 {
            last_change = (Instant::now(), total);
        } else if last_change.0.elapsed() > env.timeout {
            failure = Some(LoadError::Timeout(format!(
                "no progress for {:?}: {}",
                env.timeout,
                summary(&sessions)
            )));
            break;
        }
        if last_tick.elapsed() >= Duration::from_millis(50) {
            let view: Vec<Vec<Arc<Progress>>> = sessions
                .iter()
                .map(|s| s.devs.iter().map(|d| d.progress.clone()).collect())
                .collect();
            observe(&view);
            last_tick = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(if p.devices * p.sessions > 100 {
            10
        } else {
            2
        }));
    }
    let relay_cores = relay_cpu.and_then(|m| m.cores());
    let relay_cpu_s = relay_cpu.and_then(|m| m.seconds());
    let tool_cores = tool_cpu.cores();
    let view: Vec<Vec<Arc<Progress>>> = sessions
        .iter()
        .map(|s| s.devs.iter().map(|d| d.progress.clone()).collect())
        .collect();
    observe(&view);
    if let Some(e) = failure {
        return Err(e);
    }
    // Every device is told to hang up (leg-done), then the session ends.
    let want: usize = p.devices;
    let calls: Vec<String> = sessions.iter().map(|s| s.call.clone()).collect();
    let ok = env.ctl.events.wait(env.timeout, |ev| {
        calls.iter().all(|c| {
            crate::control::count(ev, "leg-done", c) + crate::control::count(ev, "leg-failed", c)
                >= want
        })
    });
    if !ok {
        return Err(LoadError::Timeout(format!(
            "leg-done for every device: {}",
            summary(&sessions)
        )));
    }
    let events = env.ctl.events.all();
    let mut results = Vec::new();
    for (s, sess) in sessions.iter_mut().enumerate() {
        for d in &mut sess.devs {
            let ev = events.iter().find(|(_, e)| {
                e["call-id"] == sess.call.as_str()
                    && e["via-branch"] == d.branch.as_str()
                    && (e["event"] == "leg-done" || e["event"] == "leg-failed")
            });
            let sink = d.close()?;
            results.push(device_result(
                s,
                d,
                sink.as_ref(),
                &digest,
                size,
                (base, t0),
                ev,
            ));
        }
        sess.sender_conn = None;
    }
    let sender_s: Vec<f64> = sessions
        .iter()
        .filter_map(|s| s.sender_done)
        .map(|d| d.as_secs_f64())
        .collect();
    let mut r = finish(Mode::Relay, results, sender_s, relay_cores, tool_cores);
    let delivered: u64 = r.devices.iter().map(|d| d.bytes).sum();
    r.relay_cpu_s_per_gb = relay_cpu_s
        .filter(|_| delivered > 0)
        .map(|c| c / (delivered as f64 / 1e9));
    r.tls = p.tls.is_some();
    Ok(r)
}

fn answer(env: &Env, call: &str, d: &Dev) -> Result<Value> {
    env.ctl.ok(
        json!({"command": "answer", "call-id": call, "from-tag": FROM_TAG, "via-branch": d.branch,
        "to-tag": format!("t{}", d.branch), "sdp": answer_sdp(&d.path, true)}),
    )
}

fn connect_device(env: &Env, p: &Params, file: &Bytes, base: Instant, d: &mut Dev) -> Result<()> {
    let stream = wire::connect(d.addr, p.tls.as_ref(), (None, None), env.timeout)?;
    let mut ep = Endpoint::new(&d.name, &d.path, &d.relay_uri);
    let sink = FileSink::new(p.verify, file.clone(), d.progress.clone(), base);
    d.conn = Some(Conn::start(
        &d.name,
        stream,
        &mut ep,
        sink,
        read_opts(p, d.role),
        true,
        env.timeout,
    )?);
    Ok(())
}

fn summary(sessions: &[Sess]) -> String {
    sessions
        .iter()
        .flat_map(|s| &s.devs)
        .map(|d| format!("{}={}", d.name, d.progress.bytes.load(Ordering::Relaxed)))
        .take(12)
        .collect::<Vec<_>>()
        .join(" ")
}

fn device_result(
    session: usize,
    d: &Dev,
    sink: Option<&FileSink>,
    digest: &str,
    size: u64,
    (base, t0): (Instant, Instant),
    ev: Option<&(Instant, Value)>,
) -> DeviceResult {
    // Progress times are from `base`; report them from the run's start.
    let done = d
        .progress
        .done()
        .map(|t| t.saturating_sub(t0.saturating_duration_since(base)));
    let from = d.accepted.unwrap_or_default();
    let gbps = done.map_or(0.0, |t| gb_per_s(size, t.saturating_sub(from)));
    DeviceResult {
        session,
        name: d.name.clone(),
        role: d.role,
        bytes: d.progress.bytes.load(Ordering::Relaxed),
        exact: sink.is_some_and(|s| s.exact(digest)),
        sha256: sink
            .and_then(|s| s.digest.clone())
            .filter(|s| !s.is_empty()),
        accepted_s: d.accepted.map(|a| a.as_secs_f64()),
        done_s: done.map(|t| t.as_secs_f64()),
        leg_done_s: ev.map(|(at, _)| at.saturating_duration_since(t0).as_secs_f64()),
        leg_done_reason: ev.and_then(|(_, e)| {
            e["reason"]
                .as_str()
                .or(e["error"].as_str())
                .map(str::to_owned)
        }),
        gbps,
        errors: sink.map(|s| s.errors.clone()).unwrap_or_default(),
    }
}

fn finish(
    mode: Mode,
    devices: Vec<DeviceResult>,
    sender_s: Vec<f64>,
    relay_cores: Option<f64>,
    tool_cores: Option<f64>,
) -> RunResult {
    let last = devices.iter().filter_map(|d| d.done_s).fold(0.0, f64::max);
    let total: u64 = devices.iter().map(|d| d.bytes).sum();
    RunResult {
        mode,
        aggregate_gbps: if last > 0.0 {
            total as f64 / last / 1e9
        } else {
            0.0
        },
        devices,
        sender_s,
        relay_cores,
        tool_cores,
        relay_cpu_s_per_gb: None,
        tls: false,
    }
}

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

fn start_device(
    p: &Params,
    file: &Bytes,
    base: Instant,
    d: &mut Dev,
    stream: std::net::TcpStream,
    timeout: Duration,
) -> Result<()> {
    let _ = stream.set_nodelay(true);
    let mut ep = Endpoint::new(&d.name, &d.path, &d.relay_uri);
    let sink = FileSink::new(p.verify, file.clone(), d.progress.clone(), base);
    d.conn = Some(Conn::start(
        &d.name,
        stream,
        &mut ep,
        sink,
        read_opts(p, d.role),
        false,
        timeout,
    )?);
    Ok(())
}

fn check_exact(r: &RunResult) -> Result<()> {
    let bad: Vec<String> = r
        .devices
        .iter()
        .filter(|d| !d.exact)
        .map(|d| {
            format!(
                "{} ({:?}: {} bytes, errors {:?})",
                d.name, r.mode, d.bytes, d.errors
            )
        })
        .take(5)
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(LoadError::Verify(bad.join("; ")))
    }
}

fn add_rows(rep: &mut Report, case: &str, r: &RunResult) {
    let push = |rep: &mut Report, metric: &str, unit: &str, cmp: Compare, v: Option<f64>| {
        let Some(v) = v else { return };
        let row = rep.row(case, metric, unit, cmp);
        match r.mode {
            Mode::Relay => row.relay.push(v),
            Mode::Direct => row.direct.push(v),
            Mode::Tcp => row.tcp.push(v),
        }
    };
    push(
        rep,
        "aggregate to devices",
        "GB/s",
        Compare::Ratio,
        Some(r.aggregate_gbps),
    );
    push(
        rep,
        "per fast device (median)",
        "GB/s",
        Compare::Ratio,
        r.median_gbps(Role::Fast),
    );
    push(
        rep,
        "per slow device (median)",
        "GB/s",
        Compare::Ratio,
        r.median_gbps(Role::Slow),
    );
    push(
        rep,
        "per late device (median)",
        "GB/s",
        Compare::Ratio,
        r.median_gbps(Role::Late),
    );
    push(rep, "sender done", "s", Compare::Ratio, median(&r.sender_s));
    push(rep, "relay CPU", "cores", Compare::None, r.relay_cores);
    push(
        rep,
        "relay CPU per GB delivered",
        "s/GB",
        Compare::None,
        r.relay_cpu_s_per_gb,
    );
    push(rep, "load tool CPU", "cores", Compare::None, r.tool_cores);
}

/// The `--tls` ratios of a case: aggregate throughput and relay CPU per
/// GB.
fn tls_ratios(rep: &mut Report, case: &str, tls: &RunResult, plain: &RunResult) {
    super::versus::ratio(
        rep,
        case,
        "aggregate to devices",
        Some(tls.aggregate_gbps),
        Some(plain.aggregate_gbps),
    );
    super::versus::ratio(
        rep,
        case,
        "relay CPU per GB delivered",
        tls.relay_cpu_s_per_gb,
        plain.relay_cpu_s_per_gb,
    );
}

/// The `fanout` scenario.
pub fn run(a: &FanoutArgs) -> Result<Report> {
    let env = Env::open_tls(&a.common, "", &a.tls)?;
    let file = crate::peer::make_file(
        usize::try_from(a.size).map_err(|_| LoadError::Args("size too large".into()))?,
    );
    let digest = hex::encode(Sha256::digest(&file));
    let mut rep = Report::new("fanout", a.common.runs as usize);
    let mut detail = Vec::new();
    let mut plot_points: Vec<(Mode, usize, f64, Option<f64>)> = Vec::new();
    for run in 0..a.common.runs as usize {
        for &m in &a.devices {
            let p = Params {
                sessions: a.sessions,
                devices: m,
                size: a.size,
                chunk: a.chunk,
                window: a.window,
                slow: a.slow,
                slow_rate: a.slow_rate,
                late: a.late,
                late_at: a.late_at,
                verify: a.verify,
                read_buf: a.read_buf as usize,
                names: Vec::new(),
                tls: None,
            };
            p.check()?;
            let mut case = format!("{}x{}", a.sessions, m);
            if a.slow > 0 {
                case.push_str(&format!(" {} slow", a.slow));
            }
            if a.late > 0 {
                case.push_str(&format!(" {} late", a.late));
            }
            let label = format!("run {} {case}", run + 1);
            let r = relay_case(&env, &p, &file, &format!("r{run}m{m}"), &label)?;
            add_rows(&mut rep, &case, &r);
            plot_points.push((Mode::Relay, m, r.aggregate_gbps, r.median_gbps(Role::Fast)));
            // The same case with every relay leg over TLS, right after.
            let tls_run = match &env.tls {
                Some(cfg) => {
                    let pt = Params {
                        tls: Some(cfg.clone()),
                        ..p.clone()
                    };
                    let tcase = format!("{case} tls");
                    let label = format!("run {} {tcase}", run + 1);
                    let rt = relay_case(&env, &pt, &file, &format!("r{run}m{m}tls"), &label)?;
                    add_rows(&mut rep, &tcase, &rt);
                    tls_ratios(&mut rep, &tcase, &rt, &r);
                    Some(rt)
                }
                None => None,
            };
            let mut runs = vec![r];
            for b in &a.common.baseline {
                let mode = match b {
                    Baseline::Direct => Mode::Direct,
                    Baseline::Tcp => Mode::Tcp,
                };
                let r = run_baseline(mode, &p, &file, env.timeout)?;
                check_exact(&r)?;
                add_rows(&mut rep, &case, &r);
                plot_points.push((mode, m, r.aggregate_gbps, r.median_gbps(Role::Fast)));
                runs.push(r);
            }
            if a.slow > 0 && !a.no_slow_reference {
                let p0 = Params {
                    slow: 0,
                    ..p.clone()
                };
                let r0 = run_relay(&env, &p0, &file, &format!("r{run}m{m}ref"), &mut |_| {})?;
                check_exact(&r0)?;
                settle(&env);
                // The same fast devices (by index) with and without slow peers.
                let fast_idx: Vec<String> = runs[0]
                    .devices
                    .iter()
                    .filter(|d| d.role == Role::Fast)
                    .map(|d| d.name.clone())
                    .collect();
                let without: Vec<f64> = r0
                    .devices
                    .iter()
                    .filter(|d| fast_idx.contains(&d.name))
                    .map(|d| d.gbps)
                    .collect();
                if let (Some(w), Some(f)) = (median(&without), runs[0].median_gbps(Role::Fast)) {
                    rep.row(
                        &case,
                        "fast devices, no slow peers (median)",
                        "GB/s",
                        Compare::None,
                    )
                    .relay
                    .push(w);
                    rep.row(&case, "fast with slow / without", "×", Compare::None)
                        .relay
                        .push(f / w);
                }
            }
            if run + 1 == a.common.runs as usize {
                detail.push(json!({"case": case, "runs": runs, "tls": tls_run}));
            }
        }
    }
    rep.notes.push(format!(
        "file {} in {} chunks, window {}, every device verified byte-exact ({}); SHA-256 {}",
        fmt_size(a.size),
        fmt_size(a.chunk),
        a.window,
        match a.verify {
            Verify::Sha256 => "SHA-256 of what it received",
            Verify::Compare => "each byte compared with the file",
            Verify::None => "byte count only",
        },
        &digest[..16]
    ));
    if a.common.baseline.contains(&Baseline::Tcp) && (a.late > 0 || a.slow > 0) {
        rep.notes.push("tcp baseline: late devices get the stream from the start; a slow device slows every device (no per-leg backpressure)".into());
    }
    if env.tls.is_some() {
        super::versus::note(
            &mut rep,
            "a `tls` case is the case before it with the sender's and every device's leg over TLS, run right after it on the same relay",
        );
    }
    rep.detail = json!({"cases": detail});
    if let Some(dir) = &a.common.plot {
        plot(dir, &plot_points)?;
    }
    Ok(rep)
}

/// The modes of the throughput plot, one line each, in drawing order.
const PLOT_LINES: [Mode; 3] = [Mode::Relay, Mode::Direct, Mode::Tcp];

/// `throughput.svg` of (mode, devices, aggregate GB/s, median fast
/// device's GB/s) points.
fn plot(dir: &Path, points: &[(Mode, usize, f64, Option<f64>)]) -> Result<()> {
    let names: Vec<String> = PLOT_LINES.iter().map(|m| format!("{m:?}")).collect();
    let lines: Vec<&str> = names.iter().map(String::as_str).collect();
    let runs: Vec<crate::plot::Run> = points
        .iter()
        .filter_map(|&(mode, devices, aggregate, per_device)| {
            Some(crate::plot::Run {
                line: PLOT_LINES.iter().position(|m| *m == mode)?,
                devices,
                aggregate,
                per_device,
            })
        })
        .collect();
    crate::plot::throughput(dir, &lines, &runs)
}

/// One relay run with a progress bar, checked byte-exact, then settled.
fn relay_case(env: &Env, p: &Params, file: &Bytes, tag: &str, label: &str) -> Result<RunResult> {
    let total = (p.sessions * p.devices) as u64 * p.size;
    let pb = super::bar(total, label);
    let r = run_relay(env, p, file, tag, &mut |v| {
        pb.set_position(
            v.iter()
                .flatten()
                .map(|d| d.bytes.load(Ordering::Relaxed))
                .sum(),
        );
    })?;
    pb.finish_and_clear();
    check_exact(&r)?;
    settle(env);
    Ok(r)
}

/// Lets the relay finish the sessions just run (their `session-ended`),
/// so that runs do not overlap; forgets the events.
fn settle(env: &Env) {
    let _ = env.ctl.events.wait(Duration::from_secs(10), |ev| {
        let ended: std::collections::HashSet<&str> = ev
            .iter()
            .filter(|(_, e)| e["event"] == "session-ended")
            .filter_map(|(_, e)| e["call-id"].as_str())
            .collect();
        let started: std::collections::HashSet<&str> = ev
            .iter()
            .filter_map(|(_, e)| e["call-id"].as_str())
            .collect();
        started.is_subset(&ended)
    });
    env.ctl.events.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(m: usize, slow: usize, late: usize) -> Params {
        Params {
            sessions: 1,
            devices: m,
            size: 10,
            chunk: 4,
            window: 1,
            slow,
            slow_rate: 1,
            late,
            late_at: 0.5,
            verify: Verify::Compare,
            read_buf: 1024,
            names: Vec::new(),
            tls: None,
        }
    }

    #[test]
    fn roles_put_device_0_on_time() {
        let p = params(5, 2, 1);
        let roles: Vec<Role> = (0..5).map(|j| p.role(j)).collect();
        assert_eq!(
            roles,
            vec![Role::Fast, Role::Fast, Role::Late, Role::Slow, Role::Slow]
        );
        assert!(p.check().is_ok());
        assert!(params(3, 2, 1).check().is_err());
        assert!(params(1, 0, 0).check().is_ok());
        assert_eq!(params(1, 0, 0).role(0), Role::Fast);
    }

    #[test]
    fn sink_checks_order_and_bytes() {
        use msrp_relay::msrp::{Decoder, Event, Limits};
        let file = crate::peer::make_file(1000);
        let prog = Arc::new(Progress::default());
        let mut sink = FileSink::new(Verify::Compare, file.clone(), prog.clone(), Instant::now());
        let mut ep = Endpoint::new("s", "msrp://a:1/a;tcp", "msrp://b:1/b;tcp");
        let mut wire = bytes::BytesMut::new();
        for (a, b) in [(0u64, 400u64), (400, 1000)] {
            let (h, t) = ep.chunk_frame(b"msg-1", b"x/y", a, b, 1000);
            wire.extend_from_slice(&h);
            wire.extend_from_slice(&file[a as usize..b as usize]);
            wire.extend_from_slice(&t);
        }
        let mut dec = Decoder::new(Limits::default());
        dec.feed(wire.freeze());
        let mut out = bytes::BytesMut::new();
        while let Some(ev) = dec.poll().unwrap() {
            match ev {
                Event::Request(h) => sink.request(&h, Instant::now()),
                Event::Body(b) => sink.body(&b),
                Event::End(f) => sink.end(f, Instant::now(), &mut out),
                _ => {}
            }
        }
        assert!(sink.exact(""));
        assert_eq!(prog.bytes.load(Ordering::Relaxed), 1000);
        assert!(prog.done().is_some());
        // A wrong byte is caught.
        let mut bad = FileSink::new(
            Verify::Compare,
            file.clone(),
            Arc::default(),
            Instant::now(),
        );
        bad.in_content = true;
        bad.body(&Bytes::from_static(b"nope"));
        assert!(bad.mismatch.is_some());
    }
}
