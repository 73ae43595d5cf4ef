//! The scrape endpoint: HTTP/1.1 `GET /metrics` on a TCP listener, one
//! connection at a time on its own thread (a scraper is one client every
//! few seconds). Requests are read with a deadline and a size bound and
//! parsed with `httparse`; anything but `GET /metrics` (or `/`) gets a
//! plain error status, and every response closes the connection.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Largest request head read.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its request or read the reply.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// OpenMetrics text, which Prometheus reads natively.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `render()` to each scrape until `stop` is set; whoever sets it
/// then connects once to the listener to wake the blocking accept.
pub(crate) fn serve(listener: TcpListener, stop: Arc<AtomicBool>, render: impl Fn() -> String) {
    loop {
        let accepted = listener.accept();
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match accepted {
            Ok((stream, peer)) => {
                if let Err(e) = answer(stream, &render) {
                    tracing::debug!(%peer, error = %e, "metrics request failed");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                // Out of descriptors, typically: say so, and do not spin.
                tracing::warn!(error = %e, "metrics listener accept failed");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

fn answer(mut s: TcpStream, render: &impl Fn() -> String) -> std::io::Result<()> {
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut buf = vec![0u8; MAX_HEAD];
    let mut len = 0;
    let (status, body) = loop {
        let n = s.read(&mut buf[len..])?;
        if n == 0 {
            return Ok(());
        }
        len += n;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf[..len]) {
            Ok(httparse::Status::Complete(_)) => break route(req.method, req.path, render),
            Ok(httparse::Status::Partial) if len < MAX_HEAD => {}
            Ok(httparse::Status::Partial) => {
                break ("431 Request Header Fields Too Large", String::new());
            }
            Err(_) => break ("400 Bad Request", String::new()),
        }
    };
    let ct = if status.starts_with("200") {
        CONTENT_TYPE
    } else {
        "text/plain; charset=utf-8"
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body.as_bytes())?;
    s.flush()
}

fn route(
    method: Option<&str>,
    path: Option<&str>,
    render: &impl Fn() -> String,
) -> (&'static str, String) {
    let path = path.map(|p| p.split('?').next().unwrap_or(p));
    match (method, path) {
        (Some("GET"), Some("/metrics" | "/")) => ("200 OK", render()),
        (Some("GET"), _) => ("404 Not Found", "try /metrics\n".into()),
        _ => ("405 Method Not Allowed", "GET /metrics only\n".into()),
    }
}
