//! # msrp-load
//!
//! Load generator and demo for msrp-relay. It plays the SIP front end over
//! the control socket and the senders and devices over real MSRP sockets,
//! against a running relay or one it starts itself, verifies every byte a
//! device receives and reports throughput and latency against baselines run
//! side by side (a direct connection and a plain TCP fan-out).
//!
//! Its scenarios arrive with the load-tool issue; until then it says so.

fn main() {
    eprintln!("msrp-load: no scenario is implemented yet (see the load-tool issue)");
    std::process::exit(2);
}
