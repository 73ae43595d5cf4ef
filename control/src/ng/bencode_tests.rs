#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;

use super::*;

fn lim() -> Limits {
    Limits::default()
}

#[test]
fn ng_bencode_decodes_each_type() {
    assert_eq!(decode(b"i42e", lim()), Ok(Value::Int(42)));
    assert_eq!(decode(b"i-7e", lim()), Ok(Value::Int(-7)));
    assert_eq!(decode(b"i0e", lim()), Ok(Value::Int(0)));
    assert_eq!(decode(b"4:spam", lim()), Ok(Value::str("spam")));
    assert_eq!(decode(b"0:", lim()), Ok(Value::Bytes(Vec::new())));
    assert_eq!(
        decode(b"l4:spami3ee", lim()),
        Ok(Value::List(vec![Value::str("spam"), Value::Int(3)]))
    );
    let d = decode(b"d7:command4:ping3:keyli1eee", lim()).unwrap();
    assert_eq!(d.get("command").and_then(Value::as_str), Some("ping"));
    assert_eq!(d.get("key"), Some(&Value::List(vec![Value::Int(1)])));
}

#[test]
fn ng_bencode_encodes_sorted_keys() {
    let v = dict([("z", Value::Int(1)), ("a", Value::str("x"))]);
    assert_eq!(encode(&v), b"d1:a1:x1:zi1ee");
    // Unsorted input is accepted.
    assert_eq!(decode(b"d1:zi1e1:a1:xe", lim()), Ok(v));
}

#[test]
fn ng_bad_input_bencode_malformed_is_an_error_not_a_panic() {
    for bad in [
        &b"x"[..],
        b"i01e",
        b"i-0e",
        b"i+1e",
        b"ie",
        b"i1.5e",
        b"03:abc",
        b"d1:a",
        b"di1ei2ee",
        b"l",
        b"5:abc",
        b"i99999999999999999999999e",
        b"d1:ai1e1:ai2ee",
        b"99999999999999999999999:x",
    ] {
        assert!(
            decode(bad, lim()).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(decode(b"5:abc", lim()), Err(BencodeError::Incomplete));
    assert_eq!(decode(b"i1", lim()), Err(BencodeError::Incomplete));
    assert_eq!(decode(b"i1ei2e", lim()), Err(BencodeError::Trailing(3)));
    assert!(matches!(
        decode(b"di1ei2ee", lim()),
        Err(BencodeError::KeyNotString { .. })
    ));
    assert!(matches!(
        decode(b"d1:ai1e1:ai2ee", lim()),
        Err(BencodeError::DuplicateKey(_))
    ));
}

#[test]
fn ng_bad_input_bencode_depth_and_item_bounds() {
    let limits = Limits {
        max_depth: 4,
        max_items: 10,
    };
    assert_eq!(decode(b"llllee", limits), Err(BencodeError::Incomplete));
    assert!(decode(b"lllleeee", limits).is_ok());
    assert_eq!(
        decode(b"llllleeeee", limits),
        Err(BencodeError::TooDeep { max: 4 })
    );
    // A hostile depth far beyond the bound stops at the bound (no stack
    // overflow).
    let deep: Vec<u8> = std::iter::repeat_n(b'l', 100_000).collect();
    assert_eq!(
        decode(&deep, Limits::default()),
        Err(BencodeError::TooDeep { max: 16 })
    );
    assert_eq!(
        decode(b"li1ei2ei3ei4ei5ei6ei7ei8ei9ei10ee", limits),
        Err(BencodeError::TooManyItems { max: 10 })
    );
}

#[test]
fn ng_bencode_prefix_reports_length() {
    let (v, n) = decode_prefix(b"d1:ai1eeREST", lim()).unwrap();
    assert_eq!(v, dict([("a", Value::Int(1))]));
    assert_eq!(n, 8);
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Value::Int),
        proptest::collection::vec(any::<u8>(), 0..24).prop_map(Value::Bytes),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
            proptest::collection::btree_map(
                proptest::collection::vec(any::<u8>(), 0..8),
                inner,
                0..6
            )
            .prop_map(Value::Dict),
        ]
    })
}

proptest! {
    /// encode → decode is the identity, and decoding is canonical:
    /// re-encoding gives the same bytes.
    #[test]
    fn ng_bencode_round_trip(v in value()) {
        let bytes = encode(&v);
        let back = decode(&bytes, Limits { max_depth: 16, max_items: 100_000 }).unwrap();
        prop_assert_eq!(&back, &v);
        prop_assert_eq!(encode(&back), bytes);
    }

    /// Arbitrary bytes never panic the decoder.
    #[test]
    fn ng_bad_input_bencode_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode(&bytes, Limits::default());
    }
}
