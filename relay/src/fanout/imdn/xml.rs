//! The `message/imdn+xml` document of RFC 5438 §11.
//!
//! Elements are matched by namespace URI and local name (quick-xml's
//! `NsReader` resolves prefixes), so `<imdn xmlns="urn:ietf:params:xml:ns:imdn">`
//! and `<i:imdn xmlns:i="urn:ietf:params:xml:ns:imdn">` are the same.
//! Elements of other namespaces are extensions (§11.1.9 `anyIMDN`) and are
//! skipped; unknown elements of the IMDN namespace are rejected where the
//! schema lists the allowed ones (inside `<status>`), ignored elsewhere.

use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};

use super::{IMDN_XML_NAMESPACE, ImdnError, MAX_ID_LEN, Notification, NotificationKind, Status};

/// Deepest element nesting accepted (the schema needs 4; extensions a few
/// more). Bounds the reader's namespace stack on hostile input.
const MAX_DEPTH: usize = 16;
/// Longest text kept for `<datetime>` and `<recipient-uri>`.
const MAX_TEXT_LEN: usize = 1024;

/// What an open element is, for the elements that matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    Root,
    MessageId,
    DateTime,
    RecipientUri,
    Notification,
    Status,
    Other,
}

/// The document being collected.
#[derive(Debug, Default)]
struct Collected {
    message_id: Option<String>,
    datetime: Option<String>,
    recipient_uri: Option<String>,
    kind: Option<NotificationKind>,
    status: Option<Status>,
}

impl Collected {
    fn text(&mut self, frame: Frame) -> Option<(&mut Option<String>, usize, &'static str)> {
        match frame {
            Frame::MessageId => Some((&mut self.message_id, MAX_ID_LEN, "message-id")),
            Frame::DateTime => Some((&mut self.datetime, MAX_TEXT_LEN, "datetime")),
            Frame::RecipientUri => Some((&mut self.recipient_uri, MAX_TEXT_LEN, "recipient-uri")),
            _ => None,
        }
    }

    fn push_text(&mut self, frame: Frame, text: &str) -> Result<(), ImdnError> {
        if let Some((slot, max, what)) = self.text(frame) {
            let value = slot.get_or_insert_with(String::new);
            if value.len() + text.len() > max {
                return Err(ImdnError::TooLong(what));
            }
            value.push_str(text);
        }
        Ok(())
    }

    /// Classifies a starting element given the frame it opens in.
    fn open(
        &mut self,
        parent: Option<Frame>,
        ns: &ResolveResult<'_>,
        local: &[u8],
    ) -> Result<Frame, ImdnError> {
        let ours = match ns {
            ResolveResult::Bound(Namespace(uri)) => *uri == IMDN_XML_NAMESPACE.as_bytes(),
            _ => false,
        };
        let Some(parent) = parent else {
            return if ours && local == b"imdn" {
                Ok(Frame::Root)
            } else {
                Err(ImdnError::NotImdn(
                    "root is not <imdn> in the IMDN namespace",
                ))
            };
        };
        if !ours {
            return Ok(Frame::Other);
        }
        Ok(match (parent, local) {
            (Frame::Root, b"message-id") => once(&self.message_id, Frame::MessageId)?,
            (Frame::Root, b"datetime") => once(&self.datetime, Frame::DateTime)?,
            (Frame::Root, b"recipient-uri") => once(&self.recipient_uri, Frame::RecipientUri)?,
            (
                Frame::Root,
                b"delivery-notification" | b"display-notification" | b"processing-notification",
            ) => {
                if self.kind.is_some() {
                    return Err(ImdnError::NotImdn("more than one notification element"));
                }
                self.kind = Some(match local {
                    b"delivery-notification" => NotificationKind::Delivery,
                    b"display-notification" => NotificationKind::Display,
                    _ => NotificationKind::Processing,
                });
                Frame::Notification
            }
            (Frame::Notification, b"status") => Frame::Status,
            (Frame::Status, name) => {
                let status = match name {
                    b"delivered" => Status::Delivered,
                    b"displayed" => Status::Displayed,
                    b"processed" => Status::Processed,
                    b"stored" => Status::Stored,
                    b"failed" => Status::Failed,
                    b"forbidden" => Status::Forbidden,
                    b"error" => Status::Error,
                    _ => return Err(ImdnError::NotImdn("unknown status element")),
                };
                if self.status.replace(status).is_some() {
                    return Err(ImdnError::NotImdn("more than one status"));
                }
                Frame::Other
            }
            _ => Frame::Other,
        })
    }

    fn finish(self) -> Result<Notification, ImdnError> {
        let original_message_id = self
            .message_id
            .map(|id| id.trim().to_owned())
            .filter(|id| !id.is_empty())
            .ok_or(ImdnError::NotImdn("no <message-id>"))?;
        let kind = self
            .kind
            .ok_or(ImdnError::NotImdn("no notification element"))?;
        let status = self.status.ok_or(ImdnError::NotImdn("no status"))?;
        let valid = match status {
            Status::Delivered | Status::Failed => kind == NotificationKind::Delivery,
            Status::Displayed => kind == NotificationKind::Display,
            Status::Processed | Status::Stored => kind == NotificationKind::Processing,
            Status::Forbidden | Status::Error => true,
        };
        if !valid {
            return Err(ImdnError::InvalidStatus { kind, status });
        }
        Ok(Notification {
            original_message_id,
            kind,
            status,
            datetime: self.datetime.map(|d| d.trim().to_owned()),
            recipient_uri: self.recipient_uri.map(|u| u.trim().to_owned()),
        })
    }
}

/// Rejects a second occurrence of a single-valued element.
fn once(slot: &Option<String>, frame: Frame) -> Result<Frame, ImdnError> {
    if slot.is_some() {
        return Err(ImdnError::NotImdn("repeated element"));
    }
    Ok(frame)
}

/// Parses an IMDN document (RFC 5438 §11.1) into a [`Notification`].
pub(super) fn parse_imdn(content: &[u8]) -> Result<Notification, ImdnError> {
    let mut reader = NsReader::from_reader(content);
    let mut stack: Vec<Frame> = Vec::new();
    let mut doc = Collected::default();
    let mut seen_root = false;
    loop {
        let (ns, event) = reader.read_resolved_event()?;
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                let empty = matches!(event, Event::Empty(_));
                let frame = open(&mut doc, &stack, &ns, start, &mut seen_root)?;
                if !empty {
                    if stack.len() >= MAX_DEPTH {
                        return Err(ImdnError::NotImdn("nesting too deep"));
                    }
                    stack.push(frame);
                }
            }
            Event::End(_) => {
                stack.pop();
            }
            Event::Text(text) => {
                let text = text.decode().map_err(quick_xml::Error::from)?;
                match stack.last() {
                    Some(frame) => doc.push_text(*frame, &text)?,
                    None if !text.trim().is_empty() => {
                        return Err(ImdnError::NotImdn("text outside <imdn>"));
                    }
                    None => {}
                }
            }
            Event::CData(data) => {
                let data = data.decode().map_err(quick_xml::Error::from)?;
                match stack.last() {
                    Some(frame) => doc.push_text(*frame, &data)?,
                    None => return Err(ImdnError::NotImdn("CDATA outside <imdn>")),
                }
            }
            Event::GeneralRef(reference) => {
                let Some(frame) = stack.last().copied() else {
                    return Err(ImdnError::NotImdn("reference outside <imdn>"));
                };
                let resolved = match reference.resolve_char_ref()? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = reference.decode().map_err(quick_xml::Error::from)?;
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or(ImdnError::NotImdn("unknown entity"))?
                            .to_owned()
                    }
                };
                doc.push_text(frame, &resolved)?;
            }
            Event::Eof => {
                if !stack.is_empty() || !seen_root {
                    return Err(ImdnError::NotImdn("truncated document"));
                }
                return doc.finish();
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
}

/// Opens an element: exactly one root, children classified by their parent.
fn open(
    doc: &mut Collected,
    stack: &[Frame],
    ns: &ResolveResult<'_>,
    start: &BytesStart<'_>,
    seen_root: &mut bool,
) -> Result<Frame, ImdnError> {
    if stack.is_empty() {
        if *seen_root {
            return Err(ImdnError::NotImdn("more than one root element"));
        }
        *seen_root = true;
    }
    let name = start.local_name();
    doc.open(stack.last().copied(), ns, name.as_ref())
}
