#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;

use super::*;

fn pair(bound: usize) -> (Arc<Outbox>, UnixStream, BufReader<UnixStream>) {
    let (a, b) = UnixStream::pair().unwrap();
    let outbox = Arc::new(Outbox::new(bound, a.try_clone().unwrap()));
    (outbox, a, BufReader::new(b))
}

fn line(r: &mut BufReader<UnixStream>) -> String {
    let mut l = String::new();
    r.read_line(&mut l).unwrap();
    l
}

/// The writer thread of `conn.rs`, over this outbox.
fn writer(outbox: &Arc<Outbox>, mut out: UnixStream) -> std::thread::JoinHandle<()> {
    let o = outbox.clone();
    std::thread::spawn(move || {
        while let Some(bytes) = o.writer_next() {
            if !o.write(&mut out, bytes, true) {
                return;
            }
        }
        let _ = out.shutdown(Shutdown::Write);
    })
}

#[test]
fn a_batch_is_written_once_with_its_events_after_their_reply() {
    let (outbox, mut a, mut r) = pair(16);
    outbox.begin_batch();
    outbox.push_reply("{\"id\":1}\n");
    outbox.push_event("{\"event\":\"e1\"}\n");
    outbox.push_reply("{\"id\":2}\n");
    assert!(outbox.flush(&mut a));
    assert_eq!(line(&mut r), "{\"id\":1}\n");
    assert_eq!(line(&mut r), "{\"event\":\"e1\"}\n");
    assert_eq!(line(&mut r), "{\"id\":2}\n");
}

#[test]
fn an_event_outside_a_batch_is_written_by_the_writer_thread() {
    let (outbox, a, mut r) = pair(16);
    let w = writer(&outbox, a);
    outbox.push_event("{\"event\":\"e1\"}\n");
    assert_eq!(line(&mut r), "{\"event\":\"e1\"}\n");
    // A batch's lines still go out in order whoever writes them.
    outbox.begin_batch();
    outbox.push_reply("{\"id\":1}\n");
    outbox.push_event("{\"event\":\"e2\"}\n");
    outbox.close();
    w.join().unwrap();
    assert_eq!(line(&mut r), "{\"id\":1}\n");
    assert_eq!(line(&mut r), "{\"event\":\"e2\"}\n");
    assert_eq!(line(&mut r), "", "closed after the queued lines");
}

#[test]
fn a_subscriber_that_lets_events_pile_up_is_closed() {
    let (outbox, _a, mut r) = pair(2);
    // No writer runs: nothing is taken.
    outbox.begin_batch();
    for _ in 0..8 {
        outbox.push_event("{\"event\":\"e\"}\n");
    }
    assert_eq!(lock(&outbox.state).waiting, 8, "not closed at 4 × bound");
    outbox.push_event("{\"event\":\"e\"}\n");
    assert!(!outbox.wait_room(), "closed");
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "the queued events were dropped");
}

#[test]
fn the_reader_waits_for_room_until_a_write_makes_it() {
    let (outbox, mut a, mut r) = pair(2);
    outbox.begin_batch();
    outbox.push_reply("{\"id\":1}\n");
    outbox.push_reply("{\"id\":2}\n");
    let o = outbox.clone();
    let waiter = std::thread::spawn(move || o.wait_room());
    assert!(outbox.flush(&mut a));
    assert!(waiter.join().unwrap());
    assert_eq!(line(&mut r), "{\"id\":1}\n");
    assert_eq!(line(&mut r), "{\"id\":2}\n");
}

#[test]
fn a_failed_write_aborts_the_connection() {
    let (outbox, mut a, r) = pair(4);
    drop(r);
    outbox.begin_batch();
    outbox.push_reply("{\"id\":1}\n");
    assert!(!outbox.flush(&mut a));
    assert!(!outbox.wait_room());
}
