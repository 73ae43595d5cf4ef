//! A connection with its reader thread.

use std::io::Write;
use std::net::Shutdown;
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use super::endpoint::Endpoint;
use super::reader::{Handler, ReadEnd, ReadOpts, SharedWriter, read_loop};
use crate::error::{Context, LoadError, Result};
use crate::sync::lock;
use crate::wire::Wire;

/// A connection with its reader thread; the thread returns the handler
/// when the stream ends.
#[derive(Debug)]
pub struct Conn<H> {
    /// The write side.
    pub writer: SharedWriter,
    thread: Option<JoinHandle<(H, ReadEnd)>>,
}

impl<H: Handler + Send + 'static> Conn<H> {
    /// Starts a reader on `stream`. With `bind`, first writes a bodiless
    /// SEND and waits (at most `wait`) for its `200`.
    pub fn start(
        name: &str,
        stream: impl Into<Wire>,
        ep: &mut Endpoint,
        mut handler: H,
        opts: ReadOpts,
        bind: bool,
        wait: Duration,
    ) -> Result<Conn<H>> {
        let stream = stream.into();
        let writer: SharedWriter = Arc::new(Mutex::new(
            stream
                .try_clone()
                .context(|| format!("{name}: clone socket"))?,
        ));
        let (tx, rx) = mpsc::channel();
        let mut watch = None;
        if bind {
            let (tid, frame) = ep.bind_frame();
            lock(&writer)
                .write_all(&frame)
                .context(|| format!("{name}: bind"))?;
            watch = Some((tid, tx));
        }
        let (w, me) = (writer.clone(), ep.local_uri.clone().into_bytes());
        let stack = if opts.buf > (64 << 10) {
            512 << 10
        } else {
            256 << 10
        };
        let thread = std::thread::Builder::new()
            .name(format!("peer-{name}"))
            .stack_size(stack)
            .spawn(move || {
                let end = read_loop(stream, &w, &me, &mut handler, opts, watch);
                (handler, end)
            })
            .context(|| format!("{name}: spawn reader"))?;
        let conn = Conn {
            writer,
            thread: Some(thread),
        };
        if bind {
            match rx.recv_timeout(wait) {
                Ok(200) => {}
                Ok(code) => return Err(LoadError::Msrp(format!("{name}: bind answered {code}"))),
                Err(_) => {
                    return Err(LoadError::Timeout(format!(
                        "{name}: no response to its bind"
                    )));
                }
            }
        }
        Ok(conn)
    }

    /// Writes raw bytes.
    pub fn write(&self, bytes: &[u8]) -> Result<()> {
        lock(&self.writer)
            .write_all(bytes)
            .context(|| "MSRP write".into())
    }

    /// Shuts the socket down (both ways), which ends the reader.
    pub fn shutdown(&self) {
        let _ = lock(&self.writer).shutdown(Shutdown::Both);
    }

    /// Waits for the reader to end; returns the handler and why it ended.
    pub fn join(mut self) -> Result<(H, ReadEnd)> {
        self.thread
            .take()
            .ok_or_else(|| LoadError::Msrp("reader joined twice".into()))?
            .join()
            .map_err(|_| LoadError::Msrp("a reader thread panicked".into()))
    }
}

impl<H> Drop for Conn<H> {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = lock(&self.writer).shutdown(Shutdown::Both);
        }
    }
}
