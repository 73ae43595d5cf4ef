//! SDP rewrite on real-looking bodies: everything but the MSRP media's
//! address, port, `a=path`, `a=setup` and (when asked) direction and
//! `a=accept-types` must come out byte for byte, line endings included.

// Test helpers outside #[test] fns: unwrap is the assertion here.
#![allow(clippy::unwrap_used)]

use msrp_control::sdp::{Direction, Rewrite, Sdp, Setup, negotiate_setup};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/sdp/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap()
}

const RELAY_V4: Rewrite<'static> = Rewrite {
    address: "192.0.2.10",
    port: 2855,
    path: "msrp://192.0.2.10:2855/Xk3vQ9pLm2Rt7sWz;tcp",
    setup: Setup::Actpass,
    direction: None,
    accept_types: None,
    proto: None,
};

/// Splits keeping each line's ending attached.
fn raw_lines(s: &str) -> Vec<&str> {
    s.split_inclusive('\n').collect()
}

/// Is this line one the rewrite may touch? `c=` lines are compared
/// separately by the caller; `m=message` and the MSRP attributes here.
fn rewritable(line: &str, rw: &Rewrite<'_>) -> bool {
    let text = line.trim_end_matches(['\r', '\n']);
    let dir = ["a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"].contains(&text);
    text.starts_with("m=message ")
        || text.starts_with("c=")
        || text.starts_with("a=path:")
        || text.starts_with("a=setup:")
        || (rw.direction.is_some() && dir)
        || (rw.accept_types.is_some() && text.starts_with("a=accept-types:"))
}

/// Every line the rewrite may not touch appears in the output, byte for
/// byte, in the same order, and nothing else was added.
fn assert_untouched_lines_identical(original: &str, out: &str, rw: &Rewrite<'_>) {
    let keep_in: Vec<_> = raw_lines(original)
        .into_iter()
        .filter(|l| !rewritable(l, rw))
        .collect();
    let keep_out: Vec<_> = raw_lines(out)
        .into_iter()
        .filter(|l| !rewritable(l, rw))
        .collect();
    assert_eq!(keep_in, keep_out);
    // And the output is itself valid, pointing at the relay.
    let media = Sdp::parse_str(out).unwrap().msrp_media().unwrap();
    let msrp = media.iter().find(|m| m.port != 0).unwrap();
    assert_eq!(msrp.path, [rw.path]);
    assert_eq!(msrp.port, rw.port);
    assert_eq!(msrp.connection.as_deref(), Some(rw.address));
    assert_eq!(msrp.setup, Some(rw.setup));
    if let Some(d) = rw.direction {
        assert_eq!(msrp.direction, Some(d));
    }
}

#[test]
fn every_fixture_parses_and_serialises_byte_for_byte() {
    for name in [
        "chat_offer.sdp",
        "file_transfer_offer.sdp",
        "large_message_answer.sdp",
        "setup_active_offer.sdp",
        "setup_passive_answer.sdp",
        "setup_actpass_offer.sdp",
    ] {
        let body = fixture(name);
        let sdp = Sdp::parse(body.as_bytes()).unwrap();
        assert_eq!(sdp.to_string(), body, "{name}");
        assert!(sdp.msrp_media().is_ok(), "{name}");
    }
}

/// PF-LMM-FORK: the offer sent to each device carries the relay's own path
/// and address; the rest of the sender's offer is untouched.
#[test]
fn pf_lmm_fork_chat_offer_points_at_the_relay_and_keeps_the_rest() {
    let body = fixture("chat_offer.sdp");
    let out = Sdp::parse_str(&body).unwrap().rewrite(&RELAY_V4).unwrap();
    let expected = body
        .replace("c=IN IP4 198.51.100.21\r\n", "c=IN IP4 192.0.2.10\r\n")
        .replace("m=message 7394 ", "m=message 2855 ")
        .replace(
            "a=path:msrp://198.51.100.21:7394/2s93i9ek2a;tcp\r\n",
            "a=path:msrp://192.0.2.10:2855/Xk3vQ9pLm2Rt7sWz;tcp\r\n",
        );
    assert_eq!(out, expected);
    assert_untouched_lines_identical(&body, &out, &RELAY_V4);
}

/// FT-SELECTOR: file name, size, type, hash, transfer id, disposition, date
/// and thumbnail reference pass byte for byte (RFC 5547 §5, §6, §8.8).
#[test]
fn ft_selector_file_transfer_offer_keeps_selector_id_disposition_and_icon() {
    let body = fixture("file_transfer_offer.sdp");
    let rw = Rewrite {
        path: "msrps://192.0.2.10:2855/Ft7Yq2Lp9Xw3Mz8K;tcp",
        ..RELAY_V4
    };
    let out = Sdp::parse_str(&body).unwrap().rewrite(&rw).unwrap();
    assert_untouched_lines_identical(&body, &out, &rw);
    for kept in [
        "a=file-selector:name:\"My cool picture.jpg\" type:image/jpeg size:4092 hash:sha-1:72:24:5F:E8:65:3D:DA:F3:71:36:2F:86:D4:71:91:3E:E4:A2:CE:2E\r\n",
        "a=file-transfer-id:Q6LMoGymJdh0IKIgD6wD0jkcfgva4xvE\r\n",
        "a=file-disposition:render\r\n",
        "a=file-date:creation:\"Mon, 15 May 2006 15:01:31 +0300\"\r\n",
        "a=file-icon:cid:id2@alicepc.example.com\r\n",
        "i=This is my latest picture\r\n",
        "a=sendonly\r\n",
    ] {
        assert!(out.contains(kept), "{kept:?} lost");
    }
    let m = &Sdp::parse_str(&out).unwrap().msrp_media().unwrap()[0];
    assert!(m.tls && m.file_icon);
    assert_eq!(
        m.file_transfer_id.as_deref(),
        Some("Q6LMoGymJdh0IKIgD6wD0jkcfgva4xvE")
    );
    assert_eq!(m.max_size, Some(4_194_304));
}

/// PF-LMM-FIRST200: the answer to the sender of a Large Message carries the
/// relay's path, `recvonly` and `message/cpim`, whatever the device said.
#[test]
fn pf_lmm_first200_large_message_answer_is_recvonly_cpim_with_relay_path() {
    let body = fixture("large_message_answer.sdp");
    let device = &Sdp::parse_str(&body).unwrap().msrp_media().unwrap()[0];
    let n = negotiate_setup(Some(Setup::Actpass), true);
    assert_eq!(device.setup, Some(Setup::Active));
    let rw = Rewrite {
        setup: n.answer,
        direction: Some(Direction::RecvOnly),
        accept_types: Some("message/cpim"),
        ..RELAY_V4
    };
    let out = Sdp::parse_str(&body).unwrap().rewrite(&rw).unwrap();
    let expected = body
        .replace("m=message 9 ", "m=message 2855 ")
        .replace("c=IN IP4 10.20.30.40\r\n", "c=IN IP4 192.0.2.10\r\n")
        .replace("a=setup:active\r\n", "a=setup:passive\r\n")
        .replace(
            "a=accept-types:message/cpim text/plain\r\n",
            "a=accept-types:message/cpim\r\n",
        )
        .replace(
            "a=path:msrp://10.20.30.40:9/kd8d7f6s;tcp\r\n",
            "a=path:msrp://192.0.2.10:2855/Xk3vQ9pLm2Rt7sWz;tcp\r\n",
        )
        .replace("a=sendrecv\r\n", "a=recvonly\r\n");
    assert_eq!(out, expected);
    assert!(out.contains("o=- 3913043010 3913043010 IN IP4 10.20.30.40\r\n"));
    assert_untouched_lines_identical(&body, &out, &rw);
}

/// MSRP-ACM: an `active` offerer (behind a NAT, LF line endings) gets a
/// `passive` relay; LF endings survive.
#[test]
fn msrp_acm_setup_active_offer_gets_passive_answer_with_lf_kept() {
    let body = fixture("setup_active_offer.sdp");
    let sdp = Sdp::parse_str(&body).unwrap();
    let offer = sdp.msrp_media().unwrap()[0].setup;
    let n = negotiate_setup(offer, true);
    assert_eq!(n.answer, Setup::Passive);
    let rw = Rewrite {
        setup: n.answer,
        ..RELAY_V4
    };
    let out = sdp.rewrite(&rw).unwrap();
    assert!(!out.contains('\r'));
    assert!(out.contains("a=setup:passive\n"));
    assert_untouched_lines_identical(&body, &out, &rw);
}

/// MSRP-ACM: a `passive` answer next to an audio stream: the audio keeps
/// the session `c=`, the MSRP media gets its own.
#[test]
fn msrp_acm_setup_passive_answer_keeps_audio_address() {
    let body = fixture("setup_passive_answer.sdp");
    let sdp = Sdp::parse_str(&body).unwrap();
    assert_eq!(sdp.msrp_media().unwrap()[0].setup, Some(Setup::Passive));
    // The relay is the offerer toward this device and offered actpass; the
    // device chose passive, so the relay connects.
    let rw = Rewrite {
        setup: Setup::Passive,
        ..RELAY_V4
    };
    let out = sdp.rewrite(&rw).unwrap();
    assert!(out.contains("c=IN IP4 198.51.100.77\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0 8\r\n"));
    assert!(
        out.contains("m=message 2855 TCP/MSRP *\r\nc=IN IP4 192.0.2.10\r\na=setup:passive\r\n")
    );
    assert_untouched_lines_identical(&body, &out, &rw);
}

/// MSRP-ACM: an `actpass` TLS offer over IPv6 without a final line break.
#[test]
fn msrp_acm_setup_actpass_offer_over_tls_ipv6() {
    let body = fixture("setup_actpass_offer.sdp");
    let sdp = Sdp::parse_str(&body).unwrap();
    assert_eq!(sdp.msrp_media().unwrap()[0].setup, Some(Setup::Actpass));
    let rw = Rewrite {
        address: "2001:db8::10",
        path: "msrps://[2001:db8::10]:2855/Zp4Rk8Qw2Ls6Vn1H;tcp",
        setup: negotiate_setup(Some(Setup::Actpass), true).answer,
        ..RELAY_V4
    };
    let out = sdp.rewrite(&rw).unwrap();
    assert!(
        out.ends_with("a=setup:passive"),
        "no line break added at the end"
    );
    assert!(out.contains("c=IN IP6 2001:db8::10\r\n"));
    assert!(out.contains("o=dave 20 20 IN IP6 2001:db8::21\r\n"));
    assert_untouched_lines_identical(&body, &out, &rw);
}

proptest::proptest! {
    /// Any input: parse either fails with an error or gives back the input
    /// byte for byte; rewrite never panics.
    #[test]
    fn arbitrary_bodies_never_panic_and_round_trip(
        lines in proptest::collection::vec("[vcmoa]=[ -~]{0,40}|m=message [0-9]{1,6} TCP/MSRP \\*|a=path:msrp://h:[0-9]{1,5}/s;tcp|\\r?", 0..12),
        crlf in proptest::bool::ANY,
    ) {
        let body = lines.join(if crlf { "\r\n" } else { "\n" });
        if let Ok(sdp) = Sdp::parse_str(&body) {
            proptest::prop_assert_eq!(sdp.to_string(), body);
            let _ = sdp.msrp_media();
            let _ = sdp.rewrite(&RELAY_V4);
        }
    }
}
