//! Fuzz target `sdp`: the SDP parser and the MSRP rewrite on arbitrary
//! bytes, and `a=file-selector` (FT-RESUME). None may panic. When a body parses and rewrites, the result
//! parses again, its MSRP media point at the relay (`a=path`) with the
//! relay's `a=setup` and forced `a=accept-types`, and rewriting it once
//! more changes nothing (the rewrite is idempotent). Half the inputs (by
//! their length) are made into a TLS leg's (`Rewrite::proto`): the
//! result must then say `TCP/TLS/MSRP` on the TLS port, whatever the
//! body's own protocol.

#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use libfuzzer_sys::fuzz_target;
use msrp_control::sdp::{FileSelector, Rewrite, Sdp, Setup};

const PATH: &str = "msrp://192.0.2.7:2855/abcdefghijklmnopqrst;tcp";
const TLS_PATH: &str = "msrps://192.0.2.7:2856/abcdefghijklmnopqrst;tcp";

fuzz_target!(|data: &[u8]| {
    // The pull selector of FT-RESUME: a selector selects itself.
    if let Some(sel) = std::str::from_utf8(data).ok().and_then(FileSelector::parse) {
        assert!(sel.selects(&sel), "{sel:?}");
    }
    let Ok(sdp) = Sdp::parse(data) else {
        return;
    };
    let _ = sdp.msrp_media();
    let tls = data.len() % 2 == 1;
    let (path, port) = if tls { (TLS_PATH, 2856) } else { (PATH, 2855) };
    let rw = Rewrite {
        address: "192.0.2.7",
        port,
        path,
        setup: Setup::Passive,
        direction: None,
        accept_types: Some("message/cpim"),
        proto: tls.then_some("TCP/TLS/MSRP"),
    };
    let Ok(out) = sdp.rewrite(&rw) else {
        return;
    };
    let again = Sdp::parse(out.as_bytes()).expect("a rewritten SDP parses");
    let media = again.msrp_media().expect("its MSRP media parse");
    let ours = media
        .iter()
        // The active one: a disabled media (port 0) may carry any path,
        // the relay's too, and is left as it was.
        .find(|m| m.port != 0 && m.peer_uri() == Some(path))
        .unwrap_or_else(|| panic!("no media points at the relay:\n{out}"));
    assert_eq!(ours.path, [path], "{out}");
    if tls {
        assert!(ours.tls && ours.port == 2856, "{out}");
    }
    assert_eq!(ours.setup, Some(Setup::Passive), "{out}");
    assert_eq!(ours.accept_types, ["message/cpim"], "{out}");
    let twice = again.rewrite(&rw).expect("a rewritten SDP rewrites");
    assert_eq!(out, twice, "rewrite is not idempotent");
});
