//! File-transfer resume from the store (FT-RESUME, RFC 5547 §6, §8.2.2).
//!
//! A device that lost a file transfer part-way pulls the rest: its offer
//! is `recvonly`, names the file by `a=file-selector` and the octets it
//! still needs by `a=file-range:START-STOP`. If the store holds that file
//! whole (a stored file-transfer item whose push offer's selector the
//! pull's selects), the relay serves the range itself; the original
//! sender need not send again.
//!
//! **The file, not the MSRP body.** `a=file-range` counts octets of the
//! file (from 1). A sender may have wrapped the file in `message/cpim`
//! (RFC 5547 §8.7); the file is then the wrapper's payload, after the CPIM
//! headers and the payload's MIME headers (RFC 3862 §3), and it is served
//! bare, with the payload's own Content-Type.
//!
//! **Byte-Range of the served chunks.** RFC 5547 §8.7: the range is a
//! whole MSRP message to MSRP, numbered from octet 1 ("MSRP will consider
//! the delivered content as a whole message, and will start numbering
//! bytes with the number 1"); its total is the range's length. The file
//! offset lives in the SDP's `a=file-range`, which the relay's answer
//! echoes (RFC 5547 §8.3.2).
//!
//! Finding the file lists the store's items (metadata reads): a backend
//! round trip per item, on an offer that carries `a=file-range` only.

use std::ops::Range;

use super::StoreError;
use super::meta::{ItemMeta, ItemState, KIND_FILE_TRANSFER};
use super::service::{Role, StoreService, Target, lock, token};
use crate::sdp::{FileRange, FileSelector, Sdp};

/// The most of a `message/cpim` body searched for the payload's start.
const WRAPPER_MAX: u64 = 16 * 1024;

/// One message the store's endpoint sends: `range` of body `index`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The body's object index.
    pub index: u32,
    /// The Message-ID to send it under.
    pub message_id: String,
    /// Its Content-Type.
    pub content_type: Option<String>,
    /// Which body octets (0-based, end exclusive).
    pub range: Range<u64>,
    /// Byte-Range total to declare.
    pub total: u64,
    /// End it with `#` (the sender interrupted it).
    pub interrupted: bool,
}

/// A pull the store serves.
#[derive(Debug, Clone)]
pub struct Resume {
    /// Where the relay's sender leg connects.
    pub target: Target,
    /// The file's size in octets (the payload, not a wrapper).
    pub file_size: u64,
}

/// Where the payload of a `message/cpim` body starts, and its
/// Content-Type: after the CPIM header block and the MIME header block,
/// each ended by an empty line (RFC 3862 §3.1).
pub fn cpim_payload(head: &[u8]) -> Option<(u64, Option<String>)> {
    let blank =
        |from: usize| memchr::memmem::find(&head[from..], b"\r\n\r\n").map(|i| from + i + 4);
    let mime = blank(0)?;
    let payload = blank(mime)?;
    let content_type = std::str::from_utf8(&head[mime..payload])
        .ok()?
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.trim().to_owned());
    Some((payload as u64, content_type))
}

fn selector_of(meta: &ItemMeta) -> Option<FileSelector> {
    let sdp = Sdp::parse_str(&meta.sender_sdp).ok()?;
    let media = sdp.msrp_media().ok()?;
    let m = media.iter().find(|m| m.port != 0)?;
    FileSelector::parse(m.file_selector.as_deref()?)
}

impl StoreService {
    /// The stored file `want` selects, served from `range` (see the module
    /// docs); `None` if the store holds no such file whole. A range past
    /// the file's end is refused.
    pub(super) fn find_resume(
        &self,
        want: &FileSelector,
        range: FileRange,
    ) -> Result<Option<Resume>, StoreError> {
        let mut held: Vec<ItemMeta> = self
            .store
            .list()?
            .into_iter()
            .filter(|m| {
                m.state == ItemState::Stored
                    && m.complete
                    && m.kind == KIND_FILE_TRANSFER
                    && matches!(m.messages.as_slice(), [f] if !f.interrupted)
                    && selector_of(m).is_some_and(|s| want.selects(&s))
            })
            .collect();
        // The newest copy, if a file was sent more than once.
        held.sort_by_key(|m| std::cmp::Reverse(m.created_ms));
        let Some(meta) = held.into_iter().next() else {
            return Ok(None);
        };
        let Some(file) = meta.messages.first() else {
            return Ok(None);
        };
        let wrapped = file
            .content_type
            .as_deref()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("message/cpim"));
        let (offset, content_type) = if wrapped {
            let head =
                self.store
                    .read_range(&meta.item, file.index, 0..file.bytes.min(WRAPPER_MAX))?;
            cpim_payload(&head).ok_or_else(|| {
                StoreError::Refused(format!(
                    "item {:?}: the file's start in its message/cpim wrapper is not found",
                    meta.item
                ))
            })?
        } else {
            (0, file.content_type.clone())
        };
        let file_size = file.bytes.saturating_sub(offset);
        let stop = range.stop.unwrap_or(file_size);
        if range.start > file_size || stop > file_size {
            return Err(StoreError::Refused(format!(
                "a=file-range:{}-{} is past the end of the {file_size}-octet file \
                 (RFC 5547 §6: octets count from 1)",
                range.start,
                range.stop.map_or("*".to_owned(), |s| s.to_string()),
            )));
        }
        let t = token()?;
        let part = Part {
            index: file.index,
            message_id: token()?,
            content_type,
            range: offset + range.start - 1..offset + stop,
            total: stop + 1 - range.start,
            interrupted: false,
        };
        tracing::info!(
            item = %meta.item,
            start = range.start,
            stop,
            file_size,
            "file-range served from the store"
        );
        lock(&self.state).roles.insert(
            t.clone(),
            Role::Resume {
                item: meta.item.clone(),
                part,
            },
        );
        Ok(Some(Resume {
            target: Target {
                item: meta.item,
                uri: self.uri(&t),
                addr: self.addr,
            },
            file_size,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ft_resume_cpim_payload_found_after_both_header_blocks() {
        let body = b"From: <sip:a@x>\r\nDateTime: 2026-01-01T00:00:00Z\r\n\r\n\
                     Content-Type: image/jpeg\r\nContent-Length: 3\r\n\r\nabc";
        let (at, ct) = cpim_payload(body).expect("found");
        assert_eq!(&body[at as usize..], b"abc");
        assert_eq!(ct.as_deref(), Some("image/jpeg"));
        assert_eq!(
            cpim_payload(b"From: <sip:a@x>\r\n\r\nContent-Type: x/y\r\n"),
            None
        );
        assert_eq!(cpim_payload(b""), None);
    }
}
