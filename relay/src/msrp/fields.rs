//! A head's header fields as offsets into one shared block: parsing a head
//! makes no `Bytes` per field (each would be an atomic count to take and
//! drop), and a field is materialised as a [`HeaderField`] only when asked.

use std::ops::Range;

use bytes::Bytes;
use smallvec::SmallVec;

use super::header::HeaderField;

/// Every header field of a head, in wire order. Two are equal when they
/// hold the same names and values in the same order, however the bytes
/// around them were laid out (`name:value` and `name: value` are one
/// field).
#[derive(Clone, Default)]
pub struct Fields {
    block: Bytes,
    /// Per field: name start, name end, value start, value end in `block`
    /// (inline up to 8 fields, which covers nearly every head).
    spans: SmallVec<[[u32; 4]; 8]>,
}

impl Fields {
    pub(crate) fn new(block: Bytes, spans: SmallVec<[[u32; 4]; 8]>) -> Fields {
        Fields { block, spans }
    }

    /// Fields built from whole header fields (heads the relay composes).
    pub fn from_fields(fields: &[HeaderField]) -> Fields {
        let mut block = Vec::new();
        let mut spans = SmallVec::with_capacity(fields.len());
        for f in fields {
            let n = block.len() as u32;
            block.extend_from_slice(&f.name);
            let v = block.len() as u32;
            block.extend_from_slice(&f.value);
            spans.push([n, v, v, block.len() as u32]);
        }
        Fields {
            block: Bytes::from(block),
            spans,
        }
    }

    /// How many fields.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    fn range(&self, i: usize, value: bool) -> Option<Range<usize>> {
        let s = self.spans.get(i)?;
        let (a, b) = if value { (s[2], s[3]) } else { (s[0], s[1]) };
        Some(a as usize..b as usize)
    }

    /// `(name, value)` of every field, in order, as borrowed bytes.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.spans.iter().map(|s| {
            (
                &self.block[s[0] as usize..s[1] as usize],
                &self.block[s[2] as usize..s[3] as usize],
            )
        })
    }

    /// Field `i` as an owned [`HeaderField`] (slices of the head's bytes).
    pub fn field(&self, i: usize) -> Option<HeaderField> {
        Some(HeaderField {
            name: self.block.slice(self.range(i, false)?),
            value: self.block.slice(self.range(i, true)?),
        })
    }

    /// The value of field `i` as a slice handle of the head's bytes.
    pub(crate) fn value_bytes(&self, i: usize) -> Option<Bytes> {
        Some(self.block.slice(self.range(i, true)?))
    }

    /// Every field as owned [`HeaderField`]s.
    pub fn to_vec(&self) -> Vec<HeaderField> {
        (0..self.len()).filter_map(|i| self.field(i)).collect()
    }
}

impl PartialEq for Fields {
    fn eq(&self, other: &Fields) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Fields {}

impl std::fmt::Debug for Fields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|(n, v)| {
                format!(
                    "{}: {}",
                    String::from_utf8_lossy(n),
                    String::from_utf8_lossy(v)
                )
            }))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_through_owned_ones() {
        let owned = vec![
            HeaderField::from_static("To-Path", "msrp://a:1/x;tcp"),
            HeaderField::from_static("X-Ext", ""),
        ];
        let f = Fields::from_fields(&owned);
        assert_eq!(f.len(), 2);
        assert_eq!(f.to_vec(), owned);
        let pairs: Vec<_> = f.iter().collect();
        assert_eq!(pairs[1], (&b"X-Ext"[..], &b""[..]));
        assert!(f.field(2).is_none());
    }
}
