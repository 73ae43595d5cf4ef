//! Transaction ids of the requests the relay sends on a leg: the leg's
//! 4-character prefix and the low 32 bits of the request's sequence number
//! as exactly 8 lowercase hex digits (12 characters, an RFC 4975 `ident`).
//!
//! The fixed width lets a leg keep its start line and paths
//! (`MSRP <tid> SEND` CRLF `To-Path: …` CRLF `From-Path: …` CRLF) ready
//! made ([`StartTemplate`]) and patch only the id per chunk. Ids repeat
//! every [`WINDOW`] sequence numbers, so a leg never has more than that
//! in flight (see `Leg::next_tid`): a response's id then names exactly one
//! of them ([`seq_of`]).

/// Hex digits of the sequence number.
const DIGITS: usize = 8;
/// Length of a transaction id: prefix and digits.
pub(crate) const LEN: usize = 4 + DIGITS;
/// Sequence numbers an id tells apart: at most this many in flight.
pub(crate) const WINDOW: u64 = 1 << (4 * DIGITS);

/// A transaction id.
pub(crate) type Tid = [u8; LEN];

/// The id of the next request on a leg with `pending` requests in flight
/// from sequence number `base` on: `None` when a whole [`WINDOW`] is in
/// flight (its id would repeat one of theirs).
#[inline]
pub(crate) fn next(prefix: [u8; 4], base: u64, pending: usize) -> Option<Tid> {
    let pending = pending as u64;
    (pending < WINDOW).then(|| tid(prefix, base + pending))
}

/// The id of sequence number `seq` (its low 32 bits) on a leg.
#[inline]
pub(crate) fn tid(prefix: [u8; 4], seq: u64) -> Tid {
    let mut t = [0u8; LEN];
    t[..4].copy_from_slice(&prefix);
    t[4..].copy_from_slice(&hex8(seq as u32));
    t
}

/// `v` as 8 lowercase hex digits, most significant first, without a loop:
/// each nibble is spread into its own byte, then offset to `0`…`9` or
/// `a`…`f`.
#[inline]
fn hex8(v: u32) -> [u8; 8] {
    let mut x = u64::from(v);
    x = (x | x << 16) & 0x0000_ffff_0000_ffff;
    x = (x | x << 8) & 0x00ff_00ff_00ff_00ff;
    x = (x | x << 4) & 0x0f0f_0f0f_0f0f_0f0f;
    // 1 in each byte whose nibble is 10 or more (no carry between bytes).
    let alpha = ((x + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
    (x + 0x3030_3030_3030_3030 + alpha * (b'a' - b'0' - 10) as u64).to_be_bytes()
}

/// The sequence number, among `base .. base + WINDOW`, that `tid` stands
/// for on the leg with this prefix; only the exact spelling [`tid`] writes.
pub(crate) fn seq_of(prefix: [u8; 4], base: u64, tid: &[u8]) -> Option<u64> {
    let digits = tid.strip_prefix(&prefix[..])?;
    if digits.len() != DIGITS {
        return None;
    }
    let low = digits.iter().try_fold(0u32, |n, &d| {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => return None,
        };
        Some(n << 4 | u32::from(v))
    })?;
    base.checked_add(u64::from(low.wrapping_sub(base as u32)))
}

/// Where the id stands in a start line (`MSRP ` before it).
const TID_AT: usize = 5;

/// A leg's `MSRP <tid> SEND` CRLF and its paths, ready made: each chunk
/// writes its id in place and copies the whole in one piece.
#[derive(Debug)]
pub(crate) struct StartTemplate(Box<[u8]>);

impl StartTemplate {
    /// The template for a leg with `paths` (`To-Path` … CRLF `From-Path`
    /// … CRLF, or empty before the leg is answered).
    pub(crate) fn new(prefix: [u8; 4], paths: &[u8]) -> StartTemplate {
        let mut t = Vec::with_capacity(TID_AT + LEN + 7 + paths.len());
        t.extend_from_slice(b"MSRP ");
        t.extend_from_slice(&tid(prefix, 0));
        t.extend_from_slice(b" SEND\r\n");
        t.extend_from_slice(paths);
        StartTemplate(t.into_boxed_slice())
    }

    /// The start line and paths of the chunk with id `tid`.
    #[inline]
    pub(crate) fn with(&mut self, tid: &Tid) -> &[u8] {
        // Always there: `new` writes the whole start line.
        if let Some(at) = self.0.get_mut(TID_AT..TID_AT + LEN) {
            at.copy_from_slice(tid);
        }
        &self.0
    }

    /// Its length (the same for every chunk).
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex8_matches_format() {
        for v in [
            0u32,
            1,
            9,
            10,
            15,
            16,
            0xabcdef,
            0x1234_5678,
            0xffff_fffe,
            u32::MAX,
        ]
        .into_iter()
        .chain((0..100_000u32).map(|i| i.wrapping_mul(2_654_435_761)))
        {
            assert_eq!(hex8(v), *format!("{v:08x}").as_bytes(), "{v:#x}");
        }
    }

    #[test]
    fn ids_are_idents_and_map_back_within_the_window() {
        let p = *b"Qx7a";
        for base in [
            0,
            5,
            WINDOW - 3,
            WINDOW,
            7 * WINDOW + 0x1234,
            u64::MAX - WINDOW,
        ] {
            for seq in [base, base + 1, base + 2, base + 0xffff, base + WINDOW - 1] {
                let t = tid(p, seq);
                assert!(crate::msrp::header::is_ident(&t));
                assert_eq!(
                    seq_of(p, base, &t),
                    Some(seq),
                    "base {base:#x} seq {seq:#x}"
                );
            }
        }
        assert_eq!(&tid(p, WINDOW + 0x2f), b"Qx7a0000002f");
        for bad in [
            &b"Qx7a"[..],
            b"Qx7a0000000",
            b"Qx7a000000000",
            b"Qx7a0000000A",
            b"Qx7a0000000g",
            b"Zzzz00000000",
        ] {
            let s = String::from_utf8_lossy(bad);
            assert_eq!(seq_of(p, 0, bad), None, "{s}");
        }
    }

    #[test]
    fn no_id_while_a_whole_window_is_in_flight() {
        let p = *b"Qx7a";
        let last = next(p, 17, (WINDOW - 1) as usize).unwrap();
        assert_eq!(seq_of(p, 17, &last), Some(16 + WINDOW));
        assert!(next(p, 17, WINDOW as usize).is_none());
        assert_eq!(next(p, 17, 0), Some(tid(p, 17)));
    }

    #[test]
    fn template_patches_only_the_id() {
        let mut t = StartTemplate::new(*b"Ab12", b"To-Path: x\r\nFrom-Path: y\r\n");
        let want = b"MSRP Ab12000abc12 SEND\r\nTo-Path: x\r\nFrom-Path: y\r\n";
        assert_eq!(t.with(&tid(*b"Ab12", 0xabc12)), want);
        assert_eq!(t.len(), want.len());
        assert_eq!(
            &StartTemplate::new(*b"Ab12", b"").0[..],
            b"MSRP Ab1200000000 SEND\r\n"
        );
    }
}
