//! Scraping the relay's metrics endpoint in the end-to-end tests.

use std::io::{Read, Write};
use std::net::TcpStream;

use super::WAIT;

/// One HTTP exchange: the status line and the body.
pub fn http(addr: &str, request: &[u8]) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(request).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

/// The value of the sample `name` (with its labels, exactly as printed).
pub fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {name} in:\n{text}"))
        .parse()
        .unwrap()
}

/// The value of the sample `name` in one scrape of `GET /metrics`.
pub fn metric(addr: &str, name: &str) -> f64 {
    let (_, text) = http(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    sample(&text, name)
}
