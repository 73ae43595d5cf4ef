//! Fuzz target `control_line`: one control-protocol line (JSON) as the SIP
//! front end's socket delivers it. `decode_request` must not panic; a line
//! it refuses gets an error reply that encodes to one JSON object on one
//! line (the reply the server writes back), naming the request's `id` when
//! it could read one.

#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use libfuzzer_sys::fuzz_target;
use msrp_control::protocol::{decode_request, encode_reply};

fuzz_target!(|data: &[u8]| {
    match decode_request(data, 64 * 1024) {
        Ok(req) => {
            // Decoding is a pure function of the bytes.
            let again = decode_request(data, 64 * 1024).unwrap();
            assert_eq!(format!("{req:?}"), format!("{again:?}"));
        }
        Err(e) => {
            let line = encode_reply(&e.to_reply());
            assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(v["result"], "error", "{line}");
            assert!(v["error-reason"].is_string(), "{line}");
        }
    }
});
