//! Parsing of the command line.

use super::*;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("msrp-load").chain(args.iter().copied()))
}

#[test]
fn fanout_arguments() {
    let c = parse(&[
        "fanout",
        "-m",
        "1,10,100",
        "--size",
        "256M",
        "--chunk",
        "64k",
        "--slow",
        "2",
        "--late-at",
        "0.25",
        "--baseline",
        "direct,tcp",
        "--runs",
        "5",
        "--verify",
        "compare",
    ])
    .unwrap();
    let Command::Fanout(f) = c.command else {
        panic!("not fanout")
    };
    assert_eq!(f.devices, vec![1, 10, 100]);
    assert_eq!(f.size, 256 << 20);
    assert_eq!(f.chunk, 65536);
    assert_eq!(f.slow, 2);
    assert_eq!(f.late_at, 0.25);
    assert_eq!(f.verify, Verify::Compare);
    assert_eq!(f.common.baseline, vec![Baseline::Direct, Baseline::Tcp]);
    assert_eq!(f.common.runs, 5);
    assert!(f.common.control.is_none());
}

#[test]
fn defaults_and_bad_values() {
    let Command::Chat(c) = parse(&["chat"]).unwrap().command else {
        panic!("not chat")
    };
    assert_eq!(
        (c.devices, c.size, c.rate, c.imdn.as_str()),
        (3, 200, 1000.0, "on")
    );
    assert!(parse(&["fanout", "--late-at", "1.5"]).is_err());
    assert!(parse(&["fanout", "--size", "12q"]).is_err());
    assert!(parse(&["fanout", "--runs", "0"]).is_err());
    assert!(parse(&["chat", "--imdn", "maybe"]).is_err());
    assert!(parse(&["setup", "--control", "/x", "--spawn"]).is_err());
    assert!(parse(&["fanout", "--tls-ca", "/ca.pem"]).is_err());
}

#[test]
fn tls_arguments() {
    let Command::Fanout(f) = parse(&["fanout", "--tls"]).unwrap().command else {
        panic!("not fanout")
    };
    assert!(f.tls.tls && f.tls.tls_ca.is_none());
    let Command::Idle(i) = parse(&["idle", "--tls", "--tls-ca", "/ca.pem", "--legs", "10"])
        .unwrap()
        .command
    else {
        panic!("not idle")
    };
    assert_eq!(i.tls.tls_ca, Some(PathBuf::from("/ca.pem")));
    let Command::Handshake(h) = parse(&["handshake", "--legs", "500", "--workers", "1"])
        .unwrap()
        .command
    else {
        panic!("not handshake")
    };
    assert_eq!((h.legs, h.threads, h.common.workers), (500, 4, 1));
    assert_eq!(h.tls_kx, crate::tls::Kx::X25519);
    assert!(parse(&["handshake", "--tls-kx", "p384"]).is_ok());
    assert!(parse(&["chat", "--tls"]).is_ok());
}

#[test]
fn hidden_relay_subcommand() {
    let Command::Relay { config } = parse(&["relay", "--config", "/tmp/r.toml"])
        .unwrap()
        .command
    else {
        panic!("not relay")
    };
    assert_eq!(config, PathBuf::from("/tmp/r.toml"));
}
