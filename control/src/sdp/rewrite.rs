//! Rewriting the MSRP media of an SDP body to point at the relay.

use std::net::IpAddr;

use super::media::check_msrp_uri;
use super::{Direction, LineEnding, Sdp, SdpError, SdpLine, Setup};

/// What to put in the MSRP media of a leg's SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewrite<'a> {
    /// The relay's IP address for this leg (`c=`). IPv6 gives `IP6`.
    pub address: &'a str,
    /// The relay's port (`m=`); RFC 4975 §8.1 wants it equal to the port in
    /// [`path`](Self::path).
    pub port: u16,
    /// The relay's own MSRP URI for this leg: the whole new `a=path`. The
    /// relay is a B2BUA (RFC 4975 §5.4), so the peer's path is not kept.
    pub path: &'a str,
    /// `a=setup` to put; [`Setup::Holdconn`] is refused (RFC 6135 §4.2.1).
    pub setup: Setup,
    /// Direction to force, e.g. `recvonly` in a Large Message answer
    /// (PF-LMM-FIRST200); `None` keeps what the body says.
    pub direction: Option<Direction>,
    /// `a=accept-types` value to force, e.g. `message/cpim` in a Large
    /// Message answer (PF-LMM-FIRST200); `None` keeps it.
    pub accept_types: Option<&'a str>,
    /// The `m=` protocol to put, `TCP/MSRP` or `TCP/TLS/MSRP`: a leg may
    /// run over another transport than the peer it is made from (a plain
    /// sender fanned out to TLS devices, RFC 4975 §8.1); `None` keeps it.
    pub proto: Option<&'a str>,
}

#[derive(Default)]
struct Edits {
    replace: Vec<(usize, String)>,
    insert_after: Vec<(usize, String)>,
}

impl Sdp {
    /// Produces the body with the single active MSRP media line pointing at
    /// the relay. Changed: the `c=` that applies to that media, its `m=`
    /// port, `a=path`, `a=setup`, and direction / `a=accept-types` when
    /// asked. Every other byte — `o=`, `s=`, `t=`, `a=file-selector`,
    /// `a=file-transfer-id`, `a=file-disposition`, `a=file-icon`, unknown
    /// attributes, other media, line endings — is kept (FT-SELECTOR).
    ///
    /// Which `c=` is rewritten: the media-level one if the MSRP media has
    /// one; else the session-level one, unless another media section also
    /// relies on it (an audio stream beside the chat must keep its
    /// address), in which case a media-level `c=` is inserted after the
    /// `m=` (and `i=`) line, as RFC 4566 §5 orders them; an SDP with no
    /// `c=` at all gets a media-level one.
    pub fn rewrite(&self, rw: &Rewrite<'_>) -> Result<String, SdpError> {
        let addr: IpAddr = rw
            .address
            .parse()
            .map_err(|_| SdpError::BadRelayAddress(rw.address.to_owned()))?;
        let addrtype = if addr.is_ipv4() { "IP4" } else { "IP6" };
        check_msrp_uri(rw.path).map_err(|reason| SdpError::BadRelayUri {
            uri: rw.path.to_owned(),
            reason,
        })?;
        let active: Vec<_> = self
            .msrp_media()?
            .into_iter()
            .filter(|m| m.port != 0)
            .collect();
        let [msrp] = active.as_slice() else {
            return Err(SdpError::MultipleMsrpMedia {
                count: active.len(),
            });
        };
        let media = msrp.index;
        let Some(section) = self.media.get(media) else {
            return Err(SdpError::NoMsrpMedia);
        };
        let proto = match rw.proto {
            None => section.proto.as_str(),
            Some(p) if p == "TCP/MSRP" || p == "TCP/TLS/MSRP" => p,
            Some(p) => {
                return Err(SdpError::BadRelayUri {
                    uri: rw.path.to_owned(),
                    reason: format!("{p:?} is not an MSRP protocol (TCP/MSRP, TCP/TLS/MSRP)"),
                });
            }
        };
        let secure_uri = rw
            .path
            .get(..6)
            .is_some_and(|s| s.eq_ignore_ascii_case("msrps:"));
        if secure_uri != proto.eq_ignore_ascii_case("TCP/TLS/MSRP") {
            return Err(SdpError::BadRelayUri {
                uri: rw.path.to_owned(),
                reason: format!("scheme does not match the media protocol {proto}"),
            });
        }
        if rw.setup == Setup::Holdconn {
            return Err(SdpError::BadAttribute {
                media,
                name: "setup".into(),
                value: "holdconn (an MSRP UA MUST NOT send it, RFC 6135 §4.2.1)".into(),
            });
        }

        let mut edits = Edits::default();
        let c_line = format!("c=IN {addrtype} {addr}");
        let shared_session_c = self
            .media
            .iter()
            .any(|m| m.index != media && m.connection.is_none());
        match (section.connection, self.session_connection) {
            (Some(line), _) => edits.replace.push((line, c_line)),
            (None, Some(line)) if !shared_session_c => edits.replace.push((line, c_line)),
            _ => {
                let mut after = section.m_line;
                while self
                    .lines
                    .get(after + 1)
                    .is_some_and(|l| l.kind() == Some(b'i'))
                {
                    after += 1;
                }
                edits.insert_after.push((after, c_line));
            }
        }

        let m_text = &self.lines[section.m_line].text;
        let (from, to) = section.port_span;
        let port = rw.port.to_string();
        let mut rest = m_text[to..].to_owned();
        // The protocol is the field right after the port's (the port's own
        // `/<number of ports>` may come first): replaced there, never at
        // the first look-alike in the line (found by the `sdp` fuzz target).
        if !proto.eq_ignore_ascii_case(&section.proto)
            && let Some(i) = rest.find(' ').map(|sp| sp + 1)
            && rest[i..].starts_with(section.proto.as_str())
        {
            rest.replace_range(i..i + section.proto.len(), proto);
        }
        edits
            .replace
            .push((section.m_line, format!("{}{port}{rest}", &m_text[..from])));

        let attrs = section.m_line + 1..section.end;
        let find = |name: &str| {
            attrs
                .clone()
                .find(|&i| self.lines[i].attribute().is_some_and(|(n, _)| n == name))
        };
        let Some(path_line) = find("path") else {
            return Err(SdpError::MissingPath { media });
        };
        edits
            .replace
            .push((path_line, format!("a=path:{}", rw.path)));

        let mut upsert = |line: Option<usize>, text: String| match line {
            Some(i) => edits.replace.push((i, text)),
            None => edits.insert_after.push((path_line, text)),
        };
        upsert(find("setup"), format!("a=setup:{}", rw.setup.as_str()));
        if let Some(dir) = rw.direction {
            let existing: Vec<usize> = attrs
                .clone()
                .filter(|&i| matches!(self.lines[i].attribute(), Some((n, None)) if Direction::parse(n).is_some()))
                .collect();
            if existing.is_empty() {
                upsert(None, format!("a={}", dir.as_str()));
            }
            for i in existing {
                upsert(Some(i), format!("a={}", dir.as_str()));
            }
        }
        if let Some(types) = rw.accept_types {
            upsert(find("accept-types"), format!("a=accept-types:{types}"));
        }
        Ok(self.apply(edits))
    }

    fn apply(&self, edits: Edits) -> String {
        let default_ending = match self.lines.first().map(SdpLine::ending) {
            Some(LineEnding::Lf) => LineEnding::Lf,
            _ => LineEnding::CrLf,
        };
        let mut out: Vec<SdpLine> = Vec::with_capacity(self.lines.len() + edits.insert_after.len());
        for (i, line) in self.lines.iter().enumerate() {
            match edits.replace.iter().rev().find(|(l, _)| *l == i) {
                Some((_, text)) => out.push(SdpLine::new(text.clone(), line.ending)),
                None => out.push(line.clone()),
            }
            for (_, text) in edits.insert_after.iter().filter(|(l, _)| *l == i) {
                out.push(SdpLine::new(text.clone(), default_ending));
            }
        }
        // Only the original last line may lack an ending; if lines were
        // inserted after it, it gets one and the new last line takes over.
        let n = out.len();
        for (i, line) in out.iter_mut().enumerate() {
            if line.ending == LineEnding::None && i + 1 < n {
                line.ending = default_ending;
            } else if i + 1 == n
                && self
                    .lines
                    .last()
                    .is_some_and(|l| l.ending == LineEnding::None)
            {
                line.ending = LineEnding::None;
            }
        }
        let mut s = String::with_capacity(out.iter().map(|l| l.text.len() + 2).sum());
        for line in &out {
            s.push_str(&line.text);
            s.push_str(line.ending.as_str());
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RELAY: Rewrite<'static> = Rewrite {
        address: "192.0.2.10",
        port: 2855,
        path: "msrp://192.0.2.10:2855/rl4y;tcp",
        setup: Setup::Passive,
        direction: None,
        accept_types: None,
        proto: None,
    };

    fn rw(body: &str, r: &Rewrite<'_>) -> Result<String, SdpError> {
        Sdp::parse_str(body)?.rewrite(r)
    }

    /// A repeated `a=setup` (or `a=path`) must not leave the peer's value
    /// beside the relay's: the parser refuses it, so the rewrite does too.
    #[test]
    fn repeated_setup_or_path_is_refused() {
        for extra in [
            "a=setup:active\r\na=setup:passive",
            "a=path:msrp://h:1/t;tcp",
            "a=accept-types:a/b\r\na=accept-types:c/d",
            // Found by the `sdp` fuzz target: an empty one first.
            "a=accept-types:\r\na=accept-types:c/d",
            "a=setup\r\na=setup:active",
        ] {
            let body = format!(
                "v=0\r\nc=IN IP4 192.0.2.1\r\nm=message 7 TCP/MSRP *\r\na=path:msrp://h:7/s;tcp\r\n{extra}\r\n"
            );
            let r = rw(&body, &RELAY);
            assert!(r.is_err(), "{extra}: {r:?}");
        }
    }

    /// The protocol is replaced in its own field, not where the same
    /// letters first appear (found by the `sdp` fuzz target).
    #[test]
    fn protocol_replaced_in_its_field_only() {
        let out = rw(
            "v=0\r\nc=IN IP4 192.0.2.1\r\nm=message 7/2 TCP/MSRP TCP/MSRP\r\na=path:msrp://h:7/s;tcp\r\n",
            &Rewrite {
                port: 2856,
                path: "msrps://192.0.2.10:2856/rl4y;tcp",
                proto: Some("TCP/TLS/MSRP"),
                ..RELAY
            },
        )
        .unwrap();
        assert!(
            out.contains("m=message 2856/2 TCP/TLS/MSRP TCP/MSRP\r\n"),
            "{out}"
        );
    }

    #[test]
    fn session_c_is_rewritten_when_only_msrp_uses_it() {
        let out = rw(
            "v=0\r\nc=IN IP4 h.example\r\nm=message 7 TCP/MSRP *\r\na=path:msrp://h.example:7/s;tcp\r\n",
            &RELAY,
        )
        .unwrap();
        assert_eq!(
            out,
            "v=0\r\nc=IN IP4 192.0.2.10\r\nm=message 2855 TCP/MSRP *\r\na=path:msrp://192.0.2.10:2855/rl4y;tcp\r\na=setup:passive\r\n"
        );
    }

    #[test]
    fn shared_session_c_is_kept_and_a_media_c_inserted_after_i() {
        let body = "v=0\nc=IN IP4 198.51.100.1\nm=audio 4000 RTP/AVP 0\nm=message 7 TCP/MSRP *\ni=chat\na=setup:actpass\na=path:msrp://h:7/s;tcp";
        let r = Rewrite {
            address: "2001:db8::10",
            path: "msrp://[2001:db8::10]:2855/x;tcp",
            ..RELAY
        };
        assert_eq!(
            rw(body, &r).unwrap(),
            "v=0\nc=IN IP4 198.51.100.1\nm=audio 4000 RTP/AVP 0\nm=message 2855 TCP/MSRP *\ni=chat\nc=IN IP6 2001:db8::10\na=setup:passive\na=path:msrp://[2001:db8::10]:2855/x;tcp"
        );
    }

    #[test]
    fn direction_and_accept_types_are_replaced_or_inserted() {
        let r = Rewrite {
            direction: Some(Direction::RecvOnly),
            accept_types: Some("message/cpim"),
            ..RELAY
        };
        let with = "v=0\r\nm=message 7 TCP/MSRP *\r\nc=IN IP4 h\r\na=sendrecv\r\na=accept-types:text/plain\r\na=path:msrp://h:7/s;tcp\r\n";
        assert_eq!(
            rw(with, &r).unwrap(),
            "v=0\r\nm=message 2855 TCP/MSRP *\r\nc=IN IP4 192.0.2.10\r\na=recvonly\r\na=accept-types:message/cpim\r\na=path:msrp://192.0.2.10:2855/rl4y;tcp\r\na=setup:passive\r\n"
        );
        let without = "v=0\r\nm=message 7 TCP/MSRP *\r\nc=IN IP4 h\r\na=path:msrp://h:7/s;tcp\r\n";
        assert_eq!(
            rw(without, &r).unwrap(),
            "v=0\r\nm=message 2855 TCP/MSRP *\r\nc=IN IP4 192.0.2.10\r\na=path:msrp://192.0.2.10:2855/rl4y;tcp\r\na=setup:passive\r\na=recvonly\r\na=accept-types:message/cpim\r\n"
        );
    }

    /// A plain sender's offer made into a TLS device's: `m=` protocol and
    /// port, `msrps:` path; and back, for the answer.
    #[test]
    fn the_protocol_is_changed_both_ways() {
        let plain = "v=0\r\nc=IN IP4 h\r\nm=message 7/2 TCP/MSRP *\r\na=path:msrp://h:7/s;tcp\r\n";
        let tls = Rewrite {
            port: 2856,
            path: "msrps://192.0.2.10:2856/rl4y;tcp",
            proto: Some("TCP/TLS/MSRP"),
            ..RELAY
        };
        let out = rw(plain, &tls).unwrap();
        assert!(out.contains("m=message 2856/2 TCP/TLS/MSRP *\r\n"), "{out}");
        assert!(
            out.contains("a=path:msrps://192.0.2.10:2856/rl4y;tcp"),
            "{out}"
        );
        let back = Rewrite {
            proto: Some("TCP/MSRP"),
            ..RELAY
        };
        let out = rw(&out, &back).unwrap();
        assert!(out.contains("m=message 2855/2 TCP/MSRP *\r\n"), "{out}");
        // The scheme must agree with the protocol put, and only MSRP goes.
        assert!(
            rw(
                plain,
                &Rewrite {
                    proto: Some("TCP/TLS/MSRP"),
                    ..RELAY
                }
            )
            .is_err()
        );
        assert!(
            rw(
                plain,
                &Rewrite {
                    proto: Some("RTP/AVP"),
                    ..RELAY
                }
            )
            .is_err()
        );
    }

    #[test]
    fn bad_relay_parameters_are_refused() {
        let body = "v=0\r\nm=message 7 TCP/MSRP *\r\nc=IN IP4 h\r\na=path:msrp://h:7/s;tcp\r\n";
        let cases = [
            Rewrite {
                address: "relay.example",
                ..RELAY
            },
            Rewrite {
                path: "msrp://192.0.2.10/x;tcp",
                ..RELAY
            },
            Rewrite {
                path: "msrps://192.0.2.10:2855/x;tcp",
                ..RELAY
            },
            Rewrite {
                setup: Setup::Holdconn,
                ..RELAY
            },
        ];
        for r in cases {
            assert!(rw(body, &r).is_err(), "{r:?}");
        }
    }

    #[test]
    fn several_active_msrp_lines_are_refused_rejected_ones_ignored() {
        let two = "v=0\r\nc=IN IP4 h\r\nm=message 7 TCP/MSRP *\r\na=path:msrp://h:7/s;tcp\r\nm=message 8 TCP/MSRP *\r\na=path:msrp://h:8/t;tcp\r\n";
        assert_eq!(
            rw(two, &RELAY),
            Err(SdpError::MultipleMsrpMedia { count: 2 })
        );
        let one_rejected = "v=0\r\nc=IN IP4 h\r\nm=message 0 TCP/MSRP *\r\nm=message 8 TCP/MSRP *\r\na=path:msrp://h:8/t;tcp\r\n";
        let out = rw(one_rejected, &RELAY).unwrap();
        assert!(out.contains("m=message 0 TCP/MSRP *\r\n"));
        assert!(out.contains("m=message 2855 TCP/MSRP *\r\n"));
        // The session c= is shared with the rejected line, so it stays.
        assert!(out.starts_with("v=0\r\nc=IN IP4 h\r\n"));
    }
}
