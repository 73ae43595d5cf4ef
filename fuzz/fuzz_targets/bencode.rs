//! Fuzz target `bencode`: the ng listener's bencode decoder and message
//! splitter on arbitrary bytes. None may panic, and:
//! - a value that decodes re-encodes to bytes that decode to the same
//!   value, and re-encoding those gives the same bytes (canonical form);
//! - the decoder respects its bounds: no value nested deeper than
//!   `max_depth` is returned;
//! - `decode_prefix` agrees with `decode` on the bytes it consumed;
//! - the TCP framer (`wire::cut`) never reports more bytes consumed than
//!   it was given.

#![no_main]
// Fuzz code: a panic (a failed assert or unwrap) is exactly what a finding is.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use libfuzzer_sys::fuzz_target;
use msrp_control::ng::bencode::{self, Limits, Value};
use msrp_control::ng::wire;

fn depth(v: &Value) -> usize {
    match v {
        Value::List(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Dict(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_depth: 8,
        max_items: 1024,
    };
    if let Ok(v) = bencode::decode(data, limits) {
        assert!(depth(&v) <= limits.max_depth);
        let again = bencode::encode(&v);
        let back = bencode::decode(
            &again,
            Limits {
                max_depth: 8,
                max_items: usize::MAX,
            },
        )
        .unwrap();
        assert_eq!(back, v);
        assert_eq!(bencode::encode(&back), again);
    }
    if let Ok((v, used)) = bencode::decode_prefix(data, limits) {
        assert!(used <= data.len());
        assert_eq!(bencode::decode(&data[..used], limits).unwrap(), v);
    }
    if let Ok((_, body)) = wire::split(data) {
        let _ = bencode::decode(body, limits);
    }
    if let Ok(Some(c)) = wire::cut(data, 4096, limits) {
        assert!(c.consumed <= data.len());
        assert!(c.message.len() <= 4096);
    }
});
