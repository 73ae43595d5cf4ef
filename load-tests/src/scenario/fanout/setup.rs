//! A fan-out run's ends: each device and sender, how it is connected and
//! started, and what a device yields once closed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};

use super::params::{Params, Role};
use super::report::DeviceResult;
use super::verify::{FileSink, Progress};
use crate::control::answer_sdp;
use crate::error::{Context, Result};
use crate::peer::{AckHandler, Acks, Conn, Endpoint, ReadOpts, send_file};
use crate::scenario::Env;
use crate::stats::gb_per_s;
use crate::wire::{self, Wire};

pub(super) struct Dev {
    pub(super) name: String,
    pub(super) branch: String,
    pub(super) path: String,
    pub(super) relay_uri: String,
    pub(super) addr: SocketAddr,
    pub(super) role: Role,
    pub(super) progress: Arc<Progress>,
    pub(super) conn: Option<Conn<FileSink>>,
    pub(super) accepted: Option<Duration>,
}

impl Dev {
    /// Closes the device's connection, if it has one, and returns what its
    /// reader collected.
    pub(super) fn close(&mut self) -> Result<Option<FileSink>> {
        match self.conn.take() {
            Some(c) => {
                c.shutdown();
                Ok(Some(c.join()?.0))
            }
            None => Ok(None),
        }
    }
}

pub(super) type SenderThread = JoinHandle<Result<(Duration, Conn<AckHandler>)>>;

pub(super) struct Sess {
    pub(super) call: String,
    pub(super) devs: Vec<Dev>,
    pub(super) sent: Arc<AtomicU64>,
    pub(super) sender: Option<SenderThread>,
    pub(super) sender_done: Option<Duration>,
    pub(super) sender_conn: Option<Conn<AckHandler>>,
    pub(super) late_done: bool,
    pub(super) deleted: bool,
}

pub(super) const FROM_TAG: &str = "load";

fn read_opts(p: &Params, role: Role) -> ReadOpts {
    ReadOpts {
        buf: p.read_buf,
        rate: (role == Role::Slow).then_some(p.slow_rate),
    }
}

#[allow(clippy::too_many_arguments)] // internal, three call sites
pub(super) fn spawn_sender(
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

pub(super) fn answer(env: &Env, call: &str, d: &Dev) -> Result<Value> {
    env.ctl.ok(
        json!({"command": "answer", "call-id": call, "from-tag": FROM_TAG, "via-branch": d.branch,
        "to-tag": format!("t{}", d.branch), "sdp": answer_sdp(&d.path, true)}),
    )
}

pub(super) fn connect_device(
    env: &Env,
    p: &Params,
    file: &Bytes,
    base: Instant,
    d: &mut Dev,
) -> Result<()> {
    let stream = wire::connect(d.addr, p.tls.as_ref(), (None, None), env.timeout)?;
    start_conn(p, file, base, d, stream, true, env.timeout)
}

pub(super) fn device_result(
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

pub(super) fn start_device(
    p: &Params,
    file: &Bytes,
    base: Instant,
    d: &mut Dev,
    stream: std::net::TcpStream,
    timeout: Duration,
) -> Result<()> {
    let _ = stream.set_nodelay(true);
    start_conn(p, file, base, d, stream, false, timeout)
}

/// Starts `d`'s reader on `stream`, checking the file it receives;
/// `bind`: first a bodiless SEND, answered `200`, as a device that dialled.
fn start_conn(
    p: &Params,
    file: &Bytes,
    base: Instant,
    d: &mut Dev,
    stream: impl Into<Wire>,
    bind: bool,
    timeout: Duration,
) -> Result<()> {
    let mut ep = Endpoint::new(&d.name, &d.path, &d.relay_uri);
    let sink = FileSink::new(p.verify, file.clone(), d.progress.clone(), base);
    d.conn = Some(Conn::start(
        &d.name,
        stream,
        &mut ep,
        sink,
        read_opts(p, d.role),
        bind,
        timeout,
    )?);
    Ok(())
}
