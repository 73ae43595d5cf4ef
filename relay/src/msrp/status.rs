//! MSRP status codes (RFC 4975 §10, RFC 4976 §6 for the relay codes).

/// An MSRP status code: three digits (RFC 4975 §9 `status-code`).
///
/// Kept as a number rather than a closed enum because extension documents
/// may define more codes and a relay must pass unknown ones through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusCode(pub u16);

impl StatusCode {
    /// 200: the request was received (hop by hop), or delivered (REPORT).
    pub const OK: StatusCode = StatusCode(200);
    /// 400: the request was unintelligible; the message is dropped (§10).
    pub const BAD_REQUEST: StatusCode = StatusCode(400);
    /// 401: authentication required (RFC 4976 §6).
    pub const UNAUTHORIZED: StatusCode = StatusCode(401);
    /// 403: the action is not allowed.
    pub const FORBIDDEN: StatusCode = StatusCode(403);
    /// 408: a transaction timed out (used in REPORTs; never sent on the wire as a response).
    pub const TIMEOUT: StatusCode = StatusCode(408);
    /// 413: the receiver wants the sender to stop sending this message.
    pub const STOP_SENDING: StatusCode = StatusCode(413);
    /// 415: the media type is not understood.
    pub const UNSUPPORTED_MEDIA_TYPE: StatusCode = StatusCode(415);
    /// 423: a parameter is out of bounds (RFC 4976: Expires interval).
    pub const OUT_OF_BOUNDS: StatusCode = StatusCode(423);
    /// 481: the session does not exist (or the path does not match it).
    pub const NO_SUCH_SESSION: StatusCode = StatusCode(481);
    /// 501: the method is not understood.
    pub const NOT_IMPLEMENTED: StatusCode = StatusCode(501);
    /// 506: the request arrived on a connection bound to another session.
    pub const WRONG_CONNECTION: StatusCode = StatusCode(506);

    /// The reason phrase RFC 4975 §10 (and RFC 4976) give the code, used as
    /// the response comment; `None` for codes without a registered phrase.
    pub fn reason(self) -> Option<&'static str> {
        Some(match self.0 {
            200 => "OK",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            408 => "Request Timeout",
            413 => "Stop Sending Message",
            415 => "Unsupported Media Type",
            423 => "Interval Out-of-Bounds",
            481 => "Session Does Not Exist",
            501 => "Method Not Implemented",
            506 => "Wrong Connection",
            _ => return None,
        })
    }

    /// True for 2xx codes.
    pub fn is_success(self) -> bool {
        (200..300).contains(&self.0)
    }
}

impl std::fmt::Display for StatusCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:03}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_phrases_cover_the_rfc_codes() {
        for code in [200, 400, 401, 403, 408, 413, 415, 423, 481, 501, 506] {
            assert!(StatusCode(code).reason().is_some(), "{code}");
        }
        assert_eq!(StatusCode(299).reason(), None);
        assert!(StatusCode::OK.is_success());
        assert!(!StatusCode::NO_SUCH_SESSION.is_success());
        assert_eq!(StatusCode(7).to_string(), "007");
    }
}
