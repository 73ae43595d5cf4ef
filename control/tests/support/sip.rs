//! A small SIP user agent over UDP for the Kamailio tests (these machines
//! have no sipp): REGISTER, an INVITE answered by several forked 200 OKs,
//! ACK and BYE within each dialog (RFC 3261 §12: route set from
//! Record-Route, remote target from Contact), and a UAS that answers
//! INVITE and BYE. It does not retransmit: on loopback nothing is lost,
//! and a lost message shows as a failed wait, not as a hang.

use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::WAIT;

static SEQ: AtomicU64 = AtomicU64::new(1);

/// A fresh token for branches, tags and Call-IDs.
pub fn token(prefix: &str) -> String {
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// One SIP message: start line, headers in order, body.
#[derive(Clone, Debug)]
pub struct SipMsg {
    pub start: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Compact header forms (RFC 3261 §7.3.3) the proxy may use.
fn long_name(name: &str) -> &str {
    match name.to_ascii_lowercase().as_str() {
        "v" => "via",
        "f" => "from",
        "t" => "to",
        "i" => "call-id",
        "m" => "contact",
        "l" => "content-length",
        "c" => "content-type",
        _ => name,
    }
}

impl SipMsg {
    pub fn new(start: String) -> SipMsg {
        SipMsg {
            start,
            headers: Vec::new(),
            body: String::new(),
        }
    }

    pub fn parse(bytes: &[u8]) -> SipMsg {
        let text = String::from_utf8_lossy(bytes);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.split("\r\n");
        let start = lines.next().unwrap_or_default().to_owned();
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                if let Some(last) = headers.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(line.trim());
                }
                continue;
            }
            let (n, v) = line.split_once(':').unwrap_or((line, ""));
            headers.push((
                long_name(n.trim()).to_ascii_lowercase(),
                v.trim().to_owned(),
            ));
        }
        SipMsg {
            start,
            headers,
            body: body.to_owned(),
        }
    }

    pub fn add(&mut self, name: &str, value: &str) -> &mut SipMsg {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// Every value of a header, comma-separated values split
    /// (Via, Record-Route).
    pub fn all(&self, name: &str) -> Vec<String> {
        let name = long_name(name).to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(n, _)| *n == name)
            .flat_map(|(_, v)| split_list(v))
            .collect()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        let name = long_name(name).to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn status(&self) -> Option<u16> {
        let rest = self.start.strip_prefix("SIP/2.0 ")?;
        rest.get(..3)?.parse().ok()
    }

    pub fn method(&self) -> Option<&str> {
        if self.start.starts_with("SIP/2.0 ") {
            return None;
        }
        self.start.split(' ').next()
    }

    /// The CSeq method (which request a response answers).
    pub fn cseq_method(&self) -> &str {
        self.get("cseq")
            .and_then(|c| c.split_whitespace().nth(1))
            .unwrap_or("")
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut out = format!("{}\r\n", self.start);
        for (n, v) in self.headers.iter().filter(|(n, _)| n != "content-length") {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        out.push_str(&format!(
            "content-length: {}\r\n\r\n{}",
            self.body.len(),
            self.body
        ));
        out.into_bytes()
    }
}

/// Splits a header value at commas outside `<…>` and quotes.
fn split_list(v: &str) -> Vec<String> {
    let (mut out, mut cur, mut angle, mut quote) = (Vec::new(), String::new(), false, false);
    for ch in v.chars() {
        match ch {
            '"' => quote = !quote,
            '<' if !quote => angle = true,
            '>' if !quote => angle = false,
            ',' if !angle && !quote => {
                out.push(cur.trim().to_owned());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_owned());
    }
    out
}

/// The URI inside `<…>` of a name-addr, or the value itself.
pub fn uri_of(v: &str) -> String {
    match (v.find('<'), v.find('>')) {
        (Some(a), Some(b)) if a < b => v[a + 1..b].to_owned(),
        _ => v.split(';').next().unwrap_or(v).trim().to_owned(),
    }
}

/// The `tag` parameter of a From or To value.
pub fn tag_of(v: &str) -> Option<String> {
    let params = v.rsplit_once('>').map_or(v, |(_, p)| p);
    params
        .split(';')
        .find_map(|p| p.trim().strip_prefix("tag="))
        .map(str::to_owned)
}

/// One dialog as the sender (UAC) holds it after a 2xx.
#[derive(Clone, Debug)]
pub struct Dialog {
    pub call_id: String,
    pub from: String,
    pub to: String,
    pub remote_tag: String,
    pub target: String,
    pub route: Vec<String>,
    /// The answer's SDP as the proxy forwarded it (the relay's rewrite).
    pub sdp: String,
}

/// A user agent on its own UDP socket on 127.0.0.1, talking to `proxy`.
pub struct Ua {
    sock: UdpSocket,
    pub addr: SocketAddr,
    pub proxy: SocketAddr,
    pub user: String,
    pending: VecDeque<(SipMsg, SocketAddr)>,
}

impl Ua {
    pub fn new(user: &str, proxy: SocketAddr) -> Ua {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        Ua {
            sock,
            addr,
            proxy,
            user: user.to_owned(),
            pending: VecDeque::new(),
        }
    }

    pub fn contact(&self) -> String {
        format!("<sip:{}@{}>", self.user, self.addr)
    }

    fn via(&self) -> String {
        format!(
            "SIP/2.0/UDP {};branch={};rport",
            self.addr,
            token("z9hG4bK-")
        )
    }

    pub fn send(&self, msg: &SipMsg, to: SocketAddr) {
        self.sock.send_to(&msg.bytes(), to).unwrap();
    }

    /// The next message for which `pred` holds; others are kept for later
    /// waits. Panics after [`WAIT`] (a failed test, not a hang).
    pub fn wait(&mut self, what: &str, pred: impl Fn(&SipMsg) -> bool) -> (SipMsg, SocketAddr) {
        if let Some(i) = self.pending.iter().position(|(m, _)| pred(m)) {
            return self.pending.remove(i).unwrap();
        }
        let deadline = Instant::now() + WAIT;
        let mut buf = vec![0u8; 65_536];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{}: no {what} within {WAIT:?}; kept {:?}",
                self.user,
                self.pending
            );
            self.sock.set_read_timeout(Some(left)).unwrap();
            let Ok((n, from)) = self.sock.recv_from(&mut buf) else {
                continue;
            };
            let m = SipMsg::parse(&buf[..n]);
            if pred(&m) {
                return (m, from);
            }
            self.pending.push_back((m, from));
        }
    }

    /// A request of this UA's own, outside any dialog.
    fn request(
        &self,
        method: &str,
        ruri: &str,
        from: &str,
        to: &str,
        call_id: &str,
        cseq: u32,
    ) -> SipMsg {
        let mut m = SipMsg::new(format!("{method} {ruri} SIP/2.0"));
        m.add("via", &self.via())
            .add("max-forwards", "70")
            .add("from", from)
            .add("to", to)
            .add("call-id", call_id)
            .add("cseq", &format!("{cseq} {method}"))
            .add("contact", &self.contact());
        m
    }

    /// Registers this UA's contact for `aor_user` at the proxy; waits for
    /// the 200.
    pub fn register(&mut self, aor_user: &str) {
        let aor = format!("<sip:{aor_user}@127.0.0.1>");
        let from = format!("{aor};tag={}", token("r"));
        let mut m = self.request(
            "REGISTER",
            &format!("sip:{}", self.proxy),
            &from,
            &aor,
            &token("reg-"),
            1,
        );
        m.add("expires", "600");
        self.send(&m, self.proxy);
        let (r, _) = self.wait("REGISTER 200", |m| {
            m.cseq_method() == "REGISTER" && m.status().is_some_and(|s| s >= 200)
        });
        assert_eq!(r.status(), Some(200), "{r:?}");
    }

    /// Sends an INVITE for `to_user` with an SDP body; returns its
    /// Call-ID and From (with tag).
    pub fn invite(&self, to_user: &str, sdp: &str) -> (String, String) {
        self.invite_as(&token("call-"), to_user, sdp)
    }

    /// [`Ua::invite`] with a given Call-ID (the proxy picks the relay by
    /// Call-ID).
    pub fn invite_as(&self, call_id: &str, to_user: &str, sdp: &str) -> (String, String) {
        let call_id = call_id.to_owned();
        let from = format!("<sip:{}@127.0.0.1>;tag={}", self.user, token("s"));
        let to = format!("<sip:{to_user}@127.0.0.1>");
        let ruri = format!("sip:{to_user}@{}", self.proxy);
        let mut m = self.request("INVITE", &ruri, &from, &to, &call_id, 1);
        m.add("content-type", "application/sdp");
        m.body = sdp.to_owned();
        self.send(&m, self.proxy);
        (call_id, from)
    }

    /// Waits for `n` 2xx answers to the INVITE `call_id`, each from a
    /// different device (To tag), ACKs each, and returns the dialogs.
    pub fn collect_answers(&mut self, call_id: &str, from: &str, n: usize) -> Vec<Dialog> {
        let mut dialogs: Vec<Dialog> = Vec::new();
        while dialogs.len() < n {
            let (r, _) = self.wait("a 2xx to the INVITE", |m| {
                m.get("call-id") == Some(call_id)
                    && m.cseq_method() == "INVITE"
                    && m.status().is_some_and(|s| s >= 200)
            });
            assert_eq!(r.status(), Some(200), "a device refused: {r:?}");
            let to = r.get("to").unwrap().to_owned();
            let remote_tag = tag_of(&to).expect("To tag on a 2xx");
            if dialogs.iter().any(|d| d.remote_tag == remote_tag) {
                continue; // a retransmitted 2xx
            }
            let mut route: Vec<String> = r.all("record-route");
            route.reverse();
            let d = Dialog {
                call_id: call_id.to_owned(),
                from: from.to_owned(),
                to,
                remote_tag,
                target: uri_of(r.get("contact").expect("Contact on a 2xx")),
                route,
                sdp: r.body.clone(),
            };
            self.send(&self.in_dialog(&d, "ACK", 1), self.proxy);
            dialogs.push(d);
        }
        dialogs
    }

    fn in_dialog(&self, d: &Dialog, method: &str, cseq: u32) -> SipMsg {
        let mut m = self.request(method, &d.target, &d.from, &d.to, &d.call_id, cseq);
        for r in &d.route {
            m.add("route", r);
        }
        m
    }

    /// Sends a BYE on one dialog (answer it with [`Ua::bye_done`] once the
    /// device has answered).
    pub fn send_bye(&self, d: &Dialog) {
        self.send(&self.in_dialog(d, "BYE", 2), self.proxy);
    }

    /// The final response to the BYE of dialog `d`.
    pub fn bye_done(&mut self, d: &Dialog) -> u16 {
        let tag = d.remote_tag.clone();
        let (r, _) = self.wait("the BYE's response", |m| {
            m.cseq_method() == "BYE"
                && m.status().is_some_and(|s| s >= 200)
                && m.get("to").and_then(tag_of).as_deref() == Some(tag.as_str())
        });
        r.status().unwrap_or(0)
    }

    /// As a device: waits for an INVITE, answers 200 with `sdp` (a fresh
    /// To tag); returns the INVITE (its body is the relay's offer).
    pub fn answer_invite(&mut self, sdp: &str) -> SipMsg {
        let (inv, from) = self.wait("an INVITE", |m| m.method() == Some("INVITE"));
        let mut r = response_to(&inv, 200, "OK", Some(&token("d")));
        r.add("contact", &self.contact())
            .add("content-type", "application/sdp");
        r.body = sdp.to_owned();
        self.send(&r, from);
        inv
    }

    /// As a device: waits for the ACK of its 200 on `call_id`, then for a
    /// BYE on it, answers 200; returns the BYE.
    pub fn accept_bye(&mut self, call_id: &str) -> SipMsg {
        let on = |m: &SipMsg, method: &str| {
            m.method() == Some(method) && m.get("call-id") == Some(call_id)
        };
        self.wait("the ACK", |m| on(m, "ACK"));
        let (bye, from) = self.wait("a BYE", |m| on(m, "BYE"));
        self.send(&response_to(&bye, 200, "OK", None), from);
        bye
    }
}

/// A response to `req`: its Via, Record-Route, From, Call-ID, CSeq; To
/// with `to_tag` added when given.
pub fn response_to(req: &SipMsg, code: u16, reason: &str, to_tag: Option<&str>) -> SipMsg {
    let mut r = SipMsg::new(format!("SIP/2.0 {code} {reason}"));
    for (n, v) in &req.headers {
        match n.as_str() {
            "via" | "record-route" | "from" | "call-id" | "cseq" => {
                r.add(n, v);
            }
            "to" => {
                let to = match to_tag {
                    Some(t) if tag_of(v).is_none() => format!("{v};tag={t}"),
                    _ => v.clone(),
                };
                r.add("to", &to);
            }
            _ => {}
        }
    }
    r
}
