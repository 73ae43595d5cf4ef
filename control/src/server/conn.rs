//! One control connection: a reader thread that decodes and executes the
//! requests of each read in order and then writes their replies (and the
//! events queued meanwhile) with one write, and a writer thread that
//! writes events pushed while the reader is idle ([`super::outbox`]).

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Instant;

use super::Shared;
use super::outbox::Outbox;
use super::outbox::lock;
use crate::protocol::{Command, LineSplitter, ReplyBody, decode_request, encode_reply};
use crate::table::ConnId;

/// Serves one accepted, authorised connection until it closes. Runs on its
/// own thread; spawns the writer.
pub(crate) fn serve(shared: Arc<Shared>, stream: UnixStream, id: ConnId) {
    let outbox = match stream.try_clone() {
        Ok(s) => Arc::new(Outbox::new(shared.cfg.max_queued_lines, s)),
        Err(e) => {
            tracing::warn!(error = %e, "cannot clone control connection");
            return finish(&shared, id);
        }
    };
    lock(&shared.conns).insert(id, outbox.clone());
    let writer = {
        let outbox = outbox.clone();
        let stream = stream.try_clone();
        std::thread::Builder::new()
            .name(format!("ctl-w{}", id.0))
            .spawn(move || match stream {
                Ok(s) => write_loop(&outbox, s),
                Err(_) => outbox.abort(),
            })
    };
    let writer = match writer {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "cannot start control writer");
            outbox.abort();
            return finish(&shared, id);
        }
    };
    read_loop(&shared, &outbox, stream, id);
    outbox.close();
    if writer.join().is_err() {
        tracing::error!("control writer panicked");
    }
    finish(&shared, id);
}

fn write_loop(outbox: &Outbox, mut stream: UnixStream) {
    while let Some(bytes) = outbox.writer_next() {
        if !outbox.write(&mut stream, bytes, true) {
            return;
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Write);
}

fn read_loop(shared: &Arc<Shared>, outbox: &Arc<Outbox>, mut stream: UnixStream, id: ConnId) {
    let max = shared.cfg.max_line;
    let mut splitter = LineSplitter::new(max);
    let mut buf = vec![0u8; 64 * 1024];
    let plane = lock(&shared.core).plane.clone();
    let mut out = match stream.try_clone() {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot clone control connection");
            return;
        }
    };
    while outbox.wait_room() {
        let n = match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::debug!(error = %e, "control connection read failed");
                return;
            }
        };
        outbox.begin_batch();
        for item in splitter.feed(&buf[..n]) {
            let request = item.and_then(|line| decode_request(&line, max));
            let req = match request {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(error = %e, "bad control line");
                    shared.cfg.metrics.bad_line();
                    outbox.push_reply(&encode_reply(&e.to_reply()));
                    continue;
                }
            };
            let subscribe = matches!(req.command, Command::Subscribe(_));
            let name = req.command.name().as_str();
            let began = Instant::now();
            let mut core = lock(&shared.core);
            let outcome = core.handle(id, req, began);
            let ok = matches!(outcome.reply.body, ReplyBody::Ok(_));
            shared.cfg.metrics.command(name, ok, began.elapsed());
            outbox.push_reply(&encode_reply(&outcome.reply));
            if subscribe
                && let ReplyBody::Ok(crate::protocol::OkReply::Subscribe(s)) = &outcome.reply.body
            {
                shared.hub.subscribe(id, &s.events, outbox.clone());
            }
            shared.hub.publish(&outcome.events);
        }
        // The commands posted to the data plane run before the front end
        // can act on their replies.
        plane.wake();
        if !outbox.flush(&mut out) {
            return;
        }
    }
}

fn finish(shared: &Shared, id: ConnId) {
    shared.hub.remove(id);
    lock(&shared.conns).remove(&id);
    let mut core = lock(&shared.core);
    core.connection_closed(id, Instant::now());
    core.wake_plane();
    core.control_connections = core.control_connections.saturating_sub(1);
    tracing::debug!(conn = id.0, "control connection closed");
}
