//! Chat over real sockets: messages both ways, a device's message mirrored
//! to its sibling devices (CPM-MLD-007a); `delivered` IMDNs from every
//! device reach the sender exactly once (CPM-MLD-024).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::*;

fn say(p: &Peer, mid: &str, ct: &str, body: &[u8]) {
    let tids = p.send_message(mid, ct, body, 64 << 10, |_| {});
    for t in tids {
        assert_eq!(p.response(&t, WAIT), 200, "{}: {mid}", p.name);
    }
}

fn chat(driver: Driver) {
    let relay = start_relay(driver, 2, |_| {});
    let (session, snd) = sender(&relay, "sender");
    let devs: Vec<Peer> = devices(&relay, session, 3, PeerOpts::default())
        .into_iter()
        .map(|d| d.1)
        .collect();
    say(&snd, "m-s1", "text/plain", b"hello from sender");
    for d in &devs {
        d.wait("the sender's text", WAIT, |s| {
            s.texts("text/plain").contains(&"hello from sender".into())
        });
    }
    for (i, d) in devs.iter().enumerate() {
        say(
            d,
            &format!("m-d{i}"),
            "text/plain",
            format!("hi from dev{i}").as_bytes(),
        );
    }
    let all: Vec<String> = (0..3).map(|i| format!("hi from dev{i}")).collect();
    snd.wait("every device's text", WAIT, |s| {
        all.iter().all(|t| s.texts("text/plain").contains(t))
    });
    // A last message from the sender: whatever was mirrored reached each
    // device before it.
    say(&snd, "m-s2", "text/plain", b"sentinel");
    for (i, d) in devs.iter().enumerate() {
        d.wait("the sentinel", WAIT, |s| {
            s.texts("text/plain").contains(&"sentinel".into())
        });
        let mut got = d.state().texts("text/plain");
        got.sort();
        let mut want: Vec<String> = all.iter().filter(|t| **t != all[i]).cloned().collect();
        want.extend(["hello from sender".into(), "sentinel".into()]);
        want.sort();
        assert_eq!(got, want, "{}", d.name);
    }
    let mut got = snd.state().texts("text/plain");
    got.sort();
    assert_eq!(got, all, "the sender got its own text back, or twice");
    relay.shutdown(Duration::from_secs(5));
}

#[test]
fn cpm_mld_007a_chat_3_devices_both_ways_mirrored_to_siblings() {
    for d in drivers() {
        chat(d);
    }
}

const CPIM_MESSAGE: &str = "From: <sip:alice@example.com>\r\nTo: <sip:bob@example.com>\r\nNS: imdn <urn:ietf:params:imdn>\r\nimdn.Message-ID: imdn-42\r\nDateTime: 2024-01-01T00:00:00Z\r\nimdn.Disposition-Notification: positive-delivery\r\n\r\nContent-Type: text/plain\r\n\r\nHello Bob\r\n";

fn delivered(i: usize) -> String {
    format!(
        "From: <sip:bob@example.com>\r\nTo: <sip:alice@example.com>\r\nNS: imdn <urn:ietf:params:imdn>\r\nimdn.Message-ID: dlv-{i}\r\nDateTime: 2024-01-01T00:00:0{i}Z\r\n\r\nContent-Type: message/imdn+xml\r\nContent-Disposition: notification\r\n\r\n<imdn xmlns=\"urn:ietf:params:xml:ns:imdn\"><message-id>imdn-42</message-id><datetime>2024-01-01T00:00:0{i}Z</datetime><delivery-notification><status><delivered/></status></delivery-notification></imdn>"
    )
}

fn imdn_once(driver: Driver) {
    let relay = start_relay(driver, 2, |_| {});
    let (session, snd) = sender(&relay, "sender");
    let devs: Vec<Peer> = devices(&relay, session, 3, PeerOpts::default())
        .into_iter()
        .map(|d| d.1)
        .collect();
    say(&snd, "msg-cpim-1", "message/cpim", CPIM_MESSAGE.as_bytes());
    for (i, d) in devs.iter().enumerate() {
        d.wait("the CPIM message", WAIT, |s| {
            s.texts("message/cpim")
                .iter()
                .any(|t| t.contains("imdn-42"))
        });
        say(
            d,
            &format!("dlv-{i}"),
            "message/cpim",
            delivered(i).as_bytes(),
        );
    }
    // Every IMDN was answered, so classified; a later text from a device
    // reaches the sender after any IMDN forwarded.
    say(&devs[0], "m-after", "text/plain", b"sentinel");
    snd.wait("the sentinel", WAIT, |s| {
        s.texts("text/plain").contains(&"sentinel".into())
    });
    let imdns: Vec<String> = snd
        .state()
        .texts("message/cpim")
        .into_iter()
        .filter(|t| t.contains("<delivered/>"))
        .collect();
    assert_eq!(imdns.len(), 1, "the sender got {imdns:?}");
    assert!(imdns[0].contains("imdn-42"));
    relay.shutdown(Duration::from_secs(5));
}

#[test]
fn cpm_mld_024_delivered_imdn_from_3_devices_reaches_sender_once() {
    for d in drivers() {
        imdn_once(d);
    }
}
