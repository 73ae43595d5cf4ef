//! The file every sender sends and every verifier checks against.

use bytes::Bytes;

/// A deterministic file of `size` bytes (not compressible, not periodic at
/// chunk sizes), shared by every sender and every verifier.
pub fn make_file(size: usize) -> Bytes {
    let mut v = Vec::with_capacity(size);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while v.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(size);
    Bytes::from(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_is_deterministic_and_sized() {
        assert_eq!(make_file(12345).len(), 12345);
        assert_eq!(make_file(100), make_file(100));
        assert_ne!(make_file(64)[..32], make_file(64)[32..]);
    }
}
