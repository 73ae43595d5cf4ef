//! The `tcp` baseline: a minimal fan-out relay that copies the sender's
//! bytes to every device as they come, without parsing MSRP. The first
//! device's bytes go back to the sender (its responses pace the sender's
//! window); the others' are read and dropped. A device that reads slowly
//! slows everyone: the relay's per-leg backpressure is exactly what this
//! baseline does not have.

use std::io::{IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread::JoinHandle;

use bytes::{Bytes, BytesMut};

use crate::error::{Context, Result};
use crate::net::{connect, write_all_vectored};

/// Queued reads per device before the copier blocks.
const QUEUE: usize = 64;

/// A running TCP fan-out for one sender.
#[derive(Debug)]
pub struct TcpFanout {
    /// Where the sender connects.
    pub addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl TcpFanout {
    /// Connects to every device now, then waits (in a thread) for the
    /// sender and copies until it closes.
    pub fn start(devices: &[SocketAddr]) -> Result<TcpFanout> {
        let listener = TcpListener::bind("127.0.0.1:0").context(|| "tcp baseline: bind".into())?;
        let addr = listener
            .local_addr()
            .context(|| "tcp baseline: local address".into())?;
        let streams = devices
            .iter()
            .map(|a| connect(*a, None, None))
            .collect::<Result<Vec<_>>>()?;
        let thread = std::thread::Builder::new()
            .name("tcp-fanout".into())
            .spawn(move || {
                if let Ok((sender, _)) = listener.accept() {
                    let _ = sender.set_nodelay(true);
                    run(sender, streams);
                }
            })
            .context(|| "tcp baseline: spawn".into())?;
        Ok(TcpFanout {
            addr,
            thread: Some(thread),
        })
    }
}

impl Drop for TcpFanout {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(mut sender: TcpStream, devices: Vec<TcpStream>) {
    let mut queues = Vec::new();
    let mut threads = Vec::new();
    for (i, d) in devices.into_iter().enumerate() {
        let (tx, rx) = mpsc::sync_channel::<Bytes>(QUEUE);
        queues.push(tx);
        let Ok(mut back) = d.try_clone() else {
            continue;
        };
        if i == 0 {
            if let Ok(mut to_sender) = sender.try_clone() {
                threads.push(std::thread::spawn(move || {
                    let _ = std::io::copy(&mut back, &mut to_sender);
                }));
            }
        } else {
            threads.push(std::thread::spawn(move || {
                let _ = std::io::copy(&mut back, &mut std::io::sink());
            }));
        }
        threads.push(std::thread::spawn(move || writer(d, &rx)));
    }
    let mut buf = BytesMut::new();
    loop {
        if buf.len() < 16 << 10 {
            buf.clear();
            buf.reserve(256 << 10);
            buf.resize(256 << 10, 0);
        }
        match sender.read(&mut buf[..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let seg = buf.split_to(n).freeze();
                for q in &queues {
                    let _ = q.send(seg.clone());
                }
            }
        }
    }
    drop(queues);
    for t in threads {
        let _ = t.join();
    }
}

fn writer(mut d: TcpStream, rx: &mpsc::Receiver<Bytes>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < 64 {
            match rx.try_recv() {
                Ok(b) => batch.push(b),
                Err(_) => break,
            }
        }
        let mut iov: Vec<IoSlice<'_>> = batch.iter().map(|b| IoSlice::new(b)).collect();
        if write_all_vectored(&mut d, &mut iov).is_err() {
            break;
        }
    }
    let _ = d.flush();
    let _ = d.shutdown(Shutdown::Write);
}
