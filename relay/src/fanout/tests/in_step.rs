//! Legs in step (at the same cursor) share the run read for the first of
//! them and the chunk's header fields; a leg that does not want what the
//! others get (it refused the message) must not be given the shared run,
//! and a run read past segments skipped for one leg must not be shared.

use super::file;
use super::harness::{H, cfg};
use crate::msrp::{Flag, StatusCode};

#[test]
fn legs_in_step_share_a_run_only_when_they_want_its_message() {
    let mut h = H::new(cfg());
    let (_, snd, legs) = h.session(4);
    let devs = h.connect_devices(&legs, "s", "t");
    let a = file(3000);
    let b: Vec<u8> = file(500).iter().map(|x| x ^ 0x55).collect();
    // The first and the third device refuse message A after its first
    // chunk: the first is pumped before the run of A is read (it skips
    // A's segments), the third after (the run is there, not for it).
    let refuse = [devs[0], devs[2]];
    for d in refuse {
        h.peers.get_mut(&d).unwrap().auto_ok = false;
    }
    let w = h.chunk(
        snd,
        "msgA",
        (1, 1000, Some(3000)),
        &a[..1000],
        Flag::More,
        "",
    );
    h.send_raw(snd, &w);
    for d in refuse {
        h.answer_all(d, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        h.peers.get_mut(&d).unwrap().auto_ok = true;
    }
    // A's second chunk: the second device reads the run, the fourth
    // reuses it, the first and the third must not.
    let w = h.chunk(
        snd,
        "msgA",
        (1001, 2000, Some(3000)),
        &a[1000..2000],
        Flag::More,
        "",
    );
    h.send_raw(snd, &w);
    // A's last chunk and a whole message B, indexed before any leg is
    // pumped: the first device skips A's segment and reads B from there,
    // a run the others (who want A) must not reuse.
    let mut w = h.chunk(
        snd,
        "msgA",
        (2001, 3000, Some(3000)),
        &a[2000..],
        Flag::Complete,
        "",
    );
    w.extend(h.chunk(snd, "msgB", (1, 500, Some(500)), &b, Flag::Complete, ""));
    h.send_raw(snd, &w);
    for d in [devs[1], devs[3]] {
        let msgs = h.peers[&d].messages();
        assert_eq!(msgs[&b"msgA".to_vec()], (a.clone(), Flag::Complete));
        assert_eq!(msgs[&b"msgB".to_vec()], (b.clone(), Flag::Complete));
    }
    for d in refuse {
        let msgs = h.peers[&d].messages();
        let (got_a, _) = &msgs[&b"msgA".to_vec()];
        assert_eq!(got_a, &a[..1000], "no more of A after refusing it");
        assert_eq!(msgs[&b"msgB".to_vec()], (b.clone(), Flag::Complete));
    }
}
