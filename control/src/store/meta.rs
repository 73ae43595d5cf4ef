//! An item's metadata: `items/<id>/meta.json`.
//!
//! JSON with kebab-case field names. Fields added after the first release
//! carry `#[serde(default)]`, so a meta written by an older relay still
//! parses; unknown fields are ignored, so an older relay reads a newer
//! meta too. The identifying fields (`item`, `call-id`, `from-tag`,
//! `kind`, `created-ms`) are required: a meta without them is corrupt.
//!
//! [`ItemState`] is serde's externally tagged form: `"recording"`,
//! `"stored"`, or `{"failed": "reason"}`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// [`ItemMeta::kind`] of a chat session's messages.
pub const KIND_CHAT: &str = "chat";
/// [`ItemMeta::kind`] of a file transfer (RFC 5547).
pub const KIND_FILE_TRANSFER: &str = "file-transfer";
/// [`ItemMeta::kind`] of a large message (CPM pager mode over MSRP).
pub const KIND_LARGE_MESSAGE: &str = "large-message";

/// One stored item: what a sender sent while some of the recipient's
/// devices were unavailable, and who should still get it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ItemMeta {
    /// The item id (`[A-Za-z0-9]+`), also the object key prefix.
    pub item: String,
    /// The SIP Call-ID of the sender's session.
    pub call_id: String,
    /// The sender's From tag.
    pub from_tag: String,
    /// `"chat"`, `"file-transfer"` or `"large-message"` (the `KIND_*`
    /// constants).
    pub kind: String,
    /// The sender's SDP offer, to rebuild offers toward late devices.
    #[serde(default)]
    pub sender_sdp: String,
    /// When the item was created, Unix milliseconds; `expire` counts the
    /// retention from here.
    pub created_ms: u64,
    /// The MSRP messages of the item, in the order they started.
    #[serde(default)]
    pub messages: Vec<StoredMessage>,
    /// Every message ended (`$`) and its body finished.
    #[serde(default)]
    pub complete: bool,
    /// Devices that should still get the item.
    #[serde(default)]
    pub pending: Vec<PendingDevice>,
    /// Where the recording stands.
    #[serde(default)]
    pub state: ItemState,
}

/// One MSRP message of an item; its body is `items/<id>/body-<index>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct StoredMessage {
    /// The body's object index.
    pub index: u32,
    /// The sender's Message-ID.
    pub message_id: String,
    /// The Content-Type, if the message had one.
    #[serde(default)]
    pub content_type: Option<String>,
    /// Body bytes stored.
    #[serde(default)]
    pub bytes: u64,
    /// SHA-256 of the stored body, lowercase hex.
    #[serde(default)]
    pub sha256: String,
    /// The Byte-Range total the sender declared, if it declared one.
    #[serde(default)]
    pub total: Option<u64>,
    /// The sender ended the message with `#` (or the session dropped)
    /// before its last byte.
    #[serde(default)]
    pub interrupted: bool,
}

/// A device that should still get an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PendingDevice {
    /// The Via branch the front end forked toward the device with.
    pub via_branch: String,
    /// The device's `+sip.instance`, when it registered one.
    #[serde(default)]
    pub instance_id: Option<String>,
}

impl PendingDevice {
    /// The key that names the device: its instance id if set, else the
    /// Via branch. This is the `device` of
    /// [`Store::mark_delivered`](super::Store::mark_delivered).
    pub fn key(&self) -> &str {
        self.instance_id.as_deref().unwrap_or(&self.via_branch)
    }
}

/// Where an item's recording stands.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ItemState {
    /// The sender is still sending; bodies are being written.
    #[default]
    Recording,
    /// Every body is written; the item can be replayed.
    Stored,
    /// Recording failed; the reason.
    Failed(String),
}

impl fmt::Display for ItemState {
    /// `recording`, `stored`, or `failed: <reason>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ItemState::Recording => f.write_str("recording"),
            ItemState::Stored => f.write_str("stored"),
            ItemState::Failed(reason) => write!(f, "failed: {reason}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pf_defer_meta_json_form() {
        let meta = ItemMeta {
            item: "a1".into(),
            call_id: "c".into(),
            from_tag: "f".into(),
            kind: KIND_CHAT.into(),
            sender_sdp: String::new(),
            created_ms: 5,
            messages: vec![],
            complete: false,
            pending: vec![PendingDevice {
                via_branch: "b1".into(),
                instance_id: Some("i1".into()),
            }],
            state: ItemState::Failed("cut".into()),
        };
        let json = serde_json::to_value(&meta).expect("json");
        assert_eq!(json["call-id"], "c");
        assert_eq!(json["created-ms"], 5);
        assert_eq!(json["pending"][0]["via-branch"], "b1");
        assert_eq!(json["state"], serde_json::json!({"failed": "cut"}));
        let back: ItemMeta = serde_json::from_value(json).expect("parse");
        assert_eq!(back, meta);
        assert_eq!(meta.pending[0].key(), "i1");
        assert_eq!(
            PendingDevice {
                via_branch: "b2".into(),
                instance_id: None
            }
            .key(),
            "b2"
        );
        assert_eq!(ItemState::Stored.to_string(), "stored");
        assert_eq!(meta.state.to_string(), "failed: cut");
    }

    #[test]
    fn pf_defer_meta_old_form_parses() {
        let old = r#"{"item":"a1","call-id":"c","from-tag":"f","kind":"chat","created-ms":1,
            "messages":[{"index":0,"message-id":"m"}],"unknown-later":true}"#;
        let meta: ItemMeta = serde_json::from_str(old).expect("old meta");
        assert_eq!(meta.state, ItemState::Recording);
        assert_eq!(meta.messages[0].total, None);
        assert!(meta.pending.is_empty());
        let stored = r#"{"item":"a1","call-id":"c","from-tag":"f","kind":"chat","created-ms":1,"state":"stored"}"#;
        assert_eq!(
            serde_json::from_str::<ItemMeta>(stored)
                .expect("parse")
                .state,
            ItemState::Stored
        );
        assert!(serde_json::from_str::<ItemMeta>(r#"{"item":"a1"}"#).is_err());
    }
}
