//! What a chat sends: CPIM messages asking for delivery notifications,
//! and the IMDN `delivered` notification a device sends back.

/// The CPIM message `n` of session `s` with `size` bytes of text.
pub fn cpim(s: usize, n: u64, size: usize, imdn: bool) -> Vec<u8> {
    let mut v = format!(
        "From: <sip:alice@example.com>\r\nTo: <sip:bob@example.com>\r\nNS: imdn <urn:ietf:params:imdn>\r\nimdn.Message-ID: {s}-{n}\r\nDateTime: 2024-01-01T00:00:00Z\r\n{}\r\nContent-Type: text/plain\r\n\r\n",
        if imdn { "imdn.Disposition-Notification: positive-delivery\r\n" } else { "" }
    )
    .into_bytes();
    v.resize(v.len() + size, b'x');
    v
}

/// The `delivered` notification device `j` sends for message `s-n`.
pub fn delivered(s: usize, j: usize, n: u64) -> String {
    format!(
        "From: <sip:bob@example.com>\r\nTo: <sip:alice@example.com>\r\nNS: imdn <urn:ietf:params:imdn>\r\nimdn.Message-ID: dlv-{j}-{n}\r\nDateTime: 2024-01-01T00:00:00Z\r\n\r\nContent-Type: message/imdn+xml\r\nContent-Disposition: notification\r\n\r\n<imdn xmlns=\"urn:ietf:params:xml:ns:imdn\"><message-id>{s}-{n}</message-id><datetime>2024-01-01T00:00:00Z</datetime><delivery-notification><status><delivered/></status></delivery-notification></imdn>"
    )
}

/// The message number in an IMDN body's `<message-id>s-n</message-id>`.
pub fn imdn_target(body: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<message-id>")? + "<message-id>".len();
    let end = start + text[start..].find("</message-id>")?;
    text[start..end].rsplit('-').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imdn_names_its_message() {
        assert_eq!(imdn_target(delivered(3, 1, 42).as_bytes()), Some(42));
        assert_eq!(imdn_target(b"no imdn here"), None);
        let m = cpim(0, 7, 200, true);
        assert!(m.ends_with(&[b'x'; 200]));
        assert!(String::from_utf8_lossy(&m).contains("imdn.Message-ID: 0-7"));
        assert!(!String::from_utf8_lossy(&cpim(0, 7, 1, false)).contains("Disposition"));
    }
}
