//! Fuzz regressions: every saved crash input under
//! `tests/fixtures/fuzz-regressions/` and every RFC fixture runs through the
//! checks of the `decode` fuzz target (`fuzz/harness/decode.rs`, included
//! here so that an input replays exactly as the fuzzer ran it): no panic,
//! the same messages whole-fed and split-fed, fatal errors that stick,
//! bounded buffering, and re-encoded messages that decode to themselves.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

#[path = "../../fuzz/harness/decode.rs"]
mod harness;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use bytes::Bytes;
use msrp_relay::msrp::{DecodeError, Decoder, Limits};

/// Every file in `dir` except Markdown notes, sorted by name.
fn inputs(dir: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.is_file() && p.extension().is_none_or(|x| x != "md")).then(|| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(&p).unwrap())
            })
        })
        .collect();
    out.sort();
    out
}

/// Runs `harness::check` on each case and lists the ones that panicked.
fn run(cases: Vec<(String, Vec<u8>)>) {
    let failed: Vec<String> = cases
        .into_iter()
        .filter(|(_, data)| catch_unwind(AssertUnwindSafe(|| harness::check(data))).is_err())
        .map(|(name, _)| name)
        .collect();
    assert!(failed.is_empty(), "fuzz checks failed for: {failed:?}");
}

/// The decoder alone must never panic on a saved input: the file's bytes
/// (control byte and all) as a stream, fed whole and one byte at a time,
/// with the default and the harness's small limits.
#[test]
fn saved_fuzz_inputs_do_not_panic_the_decoder() {
    let mut failed = Vec::new();
    for (name, data) in inputs("tests/fixtures/fuzz-regressions") {
        let whole = vec![Bytes::from(data.clone())];
        let bytewise: Vec<Bytes> = data.iter().map(|&b| Bytes::from(vec![b])).collect();
        for (mode, segments) in [("whole", whole), ("bytewise", bytewise)] {
            for limits in [Limits::default(), harness::SMALL] {
                let ok = catch_unwind(AssertUnwindSafe(|| {
                    let mut d = Decoder::new(limits);
                    for seg in &segments {
                        d.feed(seg.clone());
                        // Poll until more bytes are needed or the stream is lost.
                        loop {
                            match d.poll() {
                                Ok(None) | Err(DecodeError::Fatal(_)) => break,
                                Ok(Some(_)) | Err(_) => {}
                            }
                        }
                    }
                    let _ = d.finish();
                }));
                if ok.is_err() {
                    failed.push(format!("{name} ({mode}, {limits:?})"));
                }
            }
        }
    }
    assert!(failed.is_empty(), "the decoder panicked on: {failed:?}");
}

/// Every saved crash replays through all the fuzz target's checks exactly
/// as the fuzzer ran it (the first byte may be a control byte).
#[test]
fn saved_fuzz_crashes_replay_without_failing() {
    run(inputs("tests/fixtures/fuzz-regressions"));
}

/// The fixtures as the seed corpus gives them to the fuzzer: raw (cut into
/// the harness's cycle of segment sizes), whole with default limits, one
/// byte at a time, and with small limits (head 256 B, 8 headers, chunk
/// 64 B), whole and one byte at a time.
#[test]
fn rfc_fixtures_pass_the_fuzz_checks() {
    let mut cases = Vec::new();
    for (name, data) in inputs("tests/fixtures/rfc") {
        for (mode, control) in [
            ("raw", None),
            ("whole", Some(0x00u8)),
            ("bytewise", Some(0x0f)),
            ("small", Some(0x10)),
            ("small-bytewise", Some(0x1f)),
        ] {
            let mut input = Vec::with_capacity(data.len() + 1);
            input.extend(control);
            input.extend_from_slice(&data);
            cases.push((format!("{name} ({mode})"), input));
        }
    }
    run(cases);
}
