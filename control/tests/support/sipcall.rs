//! A forked call through Kamailio, as the Kamailio tests make it: bob's
//! two devices register, alice INVITEs bob, both devices answer and
//! connect their MSRP to the relay path their INVITE carried, alice
//! connects hers to the path of the 200 OKs; BYE within a dialog.

use std::net::SocketAddr;

use super::kamailio::Kamailio;
use super::msrp_peer::MsrpPeer;
use super::sdp;
use super::sip::{Dialog, Ua, token};

/// The two devices of `bob`, registered at `k`.
pub fn devices(k: &Kamailio) -> Vec<Ua> {
    ["bob-phone", "bob-tablet"]
        .into_iter()
        .map(|name| {
            let mut d = Ua::new(name, k.sip);
            d.register("bob");
            d
        })
        .collect()
}

/// A forked call set up through Kamailio: the sender's dialogs (one per
/// device), each device's MSRP peer, and the sender's MSRP peer.
pub struct Call {
    /// Which of the relays took the call (index into `relays`).
    pub relay: usize,
    pub call_id: String,
    pub dialogs: Vec<Dialog>,
    pub devices: Vec<MsrpPeer>,
    pub sender: MsrpPeer,
}

/// INVITE `offer` from `alice` to bob; each device answers with its own
/// `a=path` and connects to the relay path its INVITE carried at once (as
/// a real device does, possibly before the relay saw the answer); the
/// sender collects both 200 OKs, ACKs them and connects to the relay path
/// of the answer.
pub fn call(
    relays: &[SocketAddr],
    call_id: Option<&str>,
    alice: &mut Ua,
    devs: &mut [Ua],
    offer: &str,
    answer: impl Fn(&str) -> String,
) -> Call {
    let sender_path = sdp::path_of(offer);
    let (call_id, from) = match call_id {
        Some(id) => alice.invite_as(id, "bob", offer),
        None => alice.invite("bob", offer),
    };
    let mut relay = None;
    let mut devices = Vec::new();
    for (i, d) in devs.iter_mut().enumerate() {
        let path = format!("msrp://127.0.0.1:9/{};tcp", token(&format!("kam{i}x")));
        let inv = d.answer_invite(&answer(&path));
        let relay_path = sdp::path_of(&inv.body);
        assert_ne!(
            relay_path, sender_path,
            "Kamailio sent the device the relay's a=path, not the sender's"
        );
        let at = relays
            .iter()
            .position(|r| relay_path.starts_with(&format!("msrp://{r}/")))
            .unwrap_or_else(|| panic!("{relay_path}: none of the relays {relays:?}"));
        assert_eq!(
            *relay.get_or_insert(at),
            at,
            "every branch of one call on one relay"
        );
        let peer = MsrpPeer::connect(&d.user, relays[at], &path, &relay_path);
        peer.bind();
        devices.push(peer);
    }
    // Kamailio forwards the 200 OKs from several processes, in either
    // order: dialogs[i] is made the dialog of devs[i] (its Contact). Each
    // device's bind above waited for the relay to take its answer, so the
    // relay saw devs[0]'s first: dialogs[0] is the first accept's.
    let mut dialogs = alice.collect_answers(&call_id, &from, devs.len());
    dialogs.sort_by_key(|d| {
        devs.iter()
            .position(|u| d.target == format!("sip:{}@{}", u.user, u.addr))
            .unwrap_or_else(|| panic!("{}: the Contact of none of the devices", d.target))
    });
    let toward_sender = sdp::path_of(&dialogs[0].sdp);
    for d in &dialogs {
        assert_eq!(
            sdp::path_of(&d.sdp),
            toward_sender,
            "every 200 OK carries the one sender-side relay path"
        );
    }
    let relay = relay.expect("at least one device");
    let sender = MsrpPeer::connect("alice", relays[relay], &sender_path, &toward_sender);
    Call {
        relay,
        call_id,
        dialogs,
        devices,
        sender,
    }
}

/// The sender's BYE of `d`, relayed by Kamailio to the device `dev`.
pub fn bye(alice: &mut Ua, dev: &mut Ua, d: &Dialog) {
    alice.send_bye(d);
    dev.accept_bye(&d.call_id);
    assert_eq!(alice.bye_done(d), 200);
}
