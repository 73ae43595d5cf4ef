//! A sender the relay connected to (RFC 6135: the sender offered
//! `a=setup:passive`, e.g. the content store replaying an item) that sends
//! its chunks back to back: every chunk is answered `200` (PF-LMM-SEND).

use super::harness::{Got, H, cfg};
use crate::fanout::{Answer, Setup};
use crate::msrp::{Flag, StatusCode};

#[test]
fn pf_lmm_send_pipelined_chunks_from_an_active_side_sender_are_all_answered() {
    let mut h = H::new(cfg());
    let (sid, up) = h
        .eng
        .create_session(crate::fanout::LegParams::default(), h.now)
        .unwrap();
    let dev = h
        .eng
        .add_leg(sid, crate::fanout::LegParams::default(), h.now)
        .unwrap();
    h.connect_and_bind(dev, "msrp://d.example:1/dev1;tcp");
    let store = "msrp://127.0.0.1:9/store1;tcp";
    h.eng
        .answer(
            up,
            Answer {
                peer_path: vec![bytes::Bytes::from_static(store.as_bytes())],
                setup: Setup::Active(std::net::SocketAddr::from(([127, 0, 0, 1], 9))),
            },
            h.now,
        )
        .unwrap();
    h.run();
    let conn = h.connected_out(up, store);
    let data: Vec<u8> = (0..20 * 256 * 1024).map(|i| (i % 251) as u8).collect();
    let mut wire = Vec::new();
    let chunk = 256 * 1024;
    for at in (0..data.len()).step_by(chunk) {
        let end = (at + chunk).min(data.len());
        let flag = if end == data.len() {
            Flag::Complete
        } else {
            Flag::More
        };
        wire.extend(h.chunk(
            conn,
            "store-msg",
            (at as u64 + 1, end as u64, Some(data.len() as u64)),
            &data[at..end],
            flag,
            "",
        ));
    }
    h.send_raw(conn, &wire);
    let oks = h.peers[&conn]
        .got
        .iter()
        .filter(|g| matches!(g, Got::Response(r) if r.code == StatusCode::OK))
        .count();
    assert_eq!(oks, 20, "one 200 per chunk");
}
