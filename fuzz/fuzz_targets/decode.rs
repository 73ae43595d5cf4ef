//! Fuzz target `decode`: the streaming MSRP decoder on arbitrary bytes, fed
//! whole and in segments chosen by the input. The input layout and the
//! invariants checked are documented in `fuzz/harness/decode.rs` (shared
//! with the regression test `relay/tests/codec_fuzz_regressions.rs`) and in
//! `docs/fuzzing.md`.

#![no_main]
// Fuzz code: a panic (a failed assert or unwrap) is exactly what a finding is.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use libfuzzer_sys::fuzz_target;

#[path = "../harness/decode.rs"]
mod harness;

fuzz_target!(|data: &[u8]| harness::check(data));
