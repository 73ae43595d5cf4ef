//! SDP bodies of the end-to-end tests: a sender's image offer and a
//! device's answer, and the `a=path` of a body.

/// A sender's offer of `image/jpeg` with `a=path:<sender_path>` and
/// `extra` lines (e.g. an `a=file-selector`) at the end.
pub fn offer(sender_path: &str, extra: &str) -> String {
    format!(
        "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=message 7654 TCP/MSRP *\r\na=sendonly\r\na=accept-types:image/jpeg\r\na=setup:actpass\r\na=path:{sender_path}\r\n{extra}"
    )
}

/// A device's answer: `recvonly`, `a=setup:active`, `a=path:<path>`.
pub fn answer(path: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=message 9 TCP/MSRP *\r\na=recvonly\r\na=accept-types:image/jpeg\r\na=setup:active\r\na=path:{path}\r\n"
    )
}

/// The `a=path` value of an SDP body.
pub fn path_of(sdp: &str) -> String {
    sdp.lines()
        .find_map(|l| l.strip_prefix("a=path:"))
        .unwrap_or_else(|| panic!("no a=path in {sdp}"))
        .to_owned()
}

/// A chat offer (`message/cpim`, `a=setup:actpass`) of the service tests.
pub const CHAT_OFFER: &str = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=message 7654 TCP/MSRP *\r\na=sendonly\r\na=accept-types:message/cpim\r\na=setup:actpass\r\na=path:msrp://127.0.0.1:7654/s;tcp\r\n";
