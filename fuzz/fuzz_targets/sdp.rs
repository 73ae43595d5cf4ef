//! Fuzz target `sdp`: the SDP parser and the MSRP rewrite on arbitrary
//! bytes. Neither may panic. When a body parses and rewrites, the result
//! parses again, its MSRP media point at the relay (`a=path`) with the
//! relay's `a=setup` and forced `a=accept-types`, and rewriting it once
//! more changes nothing (the rewrite is idempotent).

#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use libfuzzer_sys::fuzz_target;
use msrp_control::sdp::{Rewrite, Sdp, Setup};

const PATH: &str = "msrp://192.0.2.7:2855/abcdefghijklmnopqrst;tcp";

fuzz_target!(|data: &[u8]| {
    let Ok(sdp) = Sdp::parse(data) else {
        return;
    };
    let _ = sdp.msrp_media();
    let rw = Rewrite {
        address: "192.0.2.7",
        port: 2855,
        path: PATH,
        setup: Setup::Passive,
        direction: None,
        accept_types: Some("message/cpim"),
        proto: None,
    };
    let Ok(out) = sdp.rewrite(&rw) else {
        return;
    };
    let again = Sdp::parse(out.as_bytes()).expect("a rewritten SDP parses");
    let media = again.msrp_media().expect("its MSRP media parse");
    let ours = media
        .iter()
        .find(|m| m.peer_uri() == Some(PATH))
        .unwrap_or_else(|| panic!("no media points at the relay:\n{out}"));
    assert_eq!(ours.path, [PATH], "{out}");
    assert_eq!(ours.setup, Some(Setup::Passive), "{out}");
    assert_eq!(ours.accept_types, ["message/cpim"], "{out}");
    let twice = again.rewrite(&rw).expect("a rewritten SDP rewrites");
    assert_eq!(out, twice, "rewrite is not idempotent");
});
