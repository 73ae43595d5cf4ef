//! MSRP over TLS through the real binary (issue 11): `[tls]` in the
//! configuration, a plain sender fanned out to a TLS device and a plain
//! one in the same session. The TLS device is a third-party client —
//! Python's `ssl` module (OpenSSL), `tests/tls/msrp_device.py` — which
//! verifies the relay's certificate against the test CA; the front end
//! picks the device leg's transport with the `offer`'s `transport`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use serde_json::json;
use support::msrp_peer::{MsrpPeer, sha256_hex};
use support::sdp::path_of;
use support::{Control, RelayProcess};

const CALL: &str = "tls-call-1";
const FROM: &str = "ft-1";

/// A test CA, and leaves for 127.0.0.1 signed by it.
struct Pki {
    ca: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
}

impl Pki {
    fn new() -> Pki {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        // Distinct names: OpenSSL takes a leaf whose subject is its
        // issuer's for self-signed.
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "msrp-relay test CA");
        let ca = p.self_signed(&ca_key).unwrap();
        Pki { ca, ca_key }
    }

    /// Writes `ca.pem`, and a fresh leaf as `cert.pem` / `key.pem`, to
    /// `dir`: their paths.
    fn write(&self, dir: &std::path::Path) -> [String; 3] {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut lp = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        lp.distinguished_name
            .push(rcgen::DnType::CommonName, "msrp-relay");
        let leaf = lp.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        let files = [
            ("ca.pem", self.ca.pem()),
            ("cert.pem", leaf.pem()),
            ("key.pem", key.serialize_pem()),
        ];
        files.map(|(name, text)| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path.display().to_string()
        })
    }
}

fn tls_section(ca: &str, cert: &str, key: &str) -> String {
    format!("[tls]\nlisten = \"127.0.0.1:0\"\ncert = {cert:?}\nkey = {key:?}\nca = {ca:?}\n")
}

fn offer_sdp(size: usize) -> String {
    format!(
        "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=message 7654 TCP/MSRP *\r\na=sendonly\r\na=accept-types:image/jpeg\r\na=setup:actpass\r\na=path:msrp://127.0.0.1:7654/alice1;tcp\r\na=file-selector:name:\"x.jpg\" type:image/jpeg size:{size}\r\n"
    )
}

fn answer_sdp(proto: &str, path: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=message 9 {proto} *\r\na=recvonly\r\na=accept-types:image/jpeg\r\na=setup:active\r\na=path:{path}\r\n"
    )
}

fn m_line(sdp: &str) -> String {
    sdp.lines()
        .find(|l| l.starts_with("m=message"))
        .unwrap()
        .to_owned()
}

#[test]
fn msrps_plain_sender_to_python_ssl_device_and_plain_device() {
    for io in support::drivers() {
        eprintln!("msrp.io = {io}");
        plain_sender_to_tls_and_plain(io);
    }
}

fn plain_sender_to_tls_and_plain(io: &str) {
    let dir = tempfile::tempdir().unwrap();
    let [ca, cert, key] = Pki::new().write(dir.path());
    let relay = RelayProcess::start_io(io, "", &tls_section(&ca, &cert, &key));
    let msrp: SocketAddr = relay.msrp.parse().unwrap();
    let msrps: SocketAddr = relay.ready_word("msrps").unwrap().parse().unwrap();
    let mut fe = Control::connect(&relay.socket);
    let size = 300 * 1024 + 7;
    let body: Vec<u8> = (0..size).map(|i| (i * 7 % 253) as u8).collect();

    // The TLS device's branch: TCP/TLS/MSRP on the TLS port.
    let r = fe.ok(
        json!({"command": "offer", "call-id": CALL, "from-tag": FROM, "via-branch": "py",
        "kind": "file-transfer", "transport": "TCP/TLS/MSRP", "sdp": offer_sdp(size)}),
    );
    let py_sdp = r["sdp"].as_str().unwrap().to_owned();
    assert_eq!(
        m_line(&py_sdp),
        format!("m=message {} TCP/TLS/MSRP *", msrps.port())
    );
    let py_relay = path_of(&py_sdp);
    assert!(
        py_relay.starts_with(&format!("msrps://127.0.0.1:{}/", msrps.port())),
        "{py_relay}"
    );
    // The plain device's branch: the sender's transport.
    let r = fe.ok(
        json!({"command": "offer", "call-id": CALL, "from-tag": FROM, "via-branch": "rs",
        "kind": "file-transfer", "sdp": offer_sdp(size)}),
    );
    let rs_sdp = r["sdp"].as_str().unwrap().to_owned();
    assert_eq!(
        m_line(&rs_sdp),
        format!("m=message {} TCP/MSRP *", msrp.port())
    );

    // A TLS offer answered in plain TCP is refused.
    let bad = fe.call(
        json!({"command": "answer", "call-id": CALL, "from-tag": FROM, "via-branch": "py",
        "to-tag": "t0", "sdp": answer_sdp("TCP/MSRP", "msrp://127.0.0.1:9/py1;tcp")}),
    );
    assert_eq!(bad["result"], "error", "{bad}");

    let py_uri = "msrps://127.0.0.1:9/py1;tcp";
    let r = fe.ok(
        json!({"command": "answer", "call-id": CALL, "from-tag": FROM, "via-branch": "py",
        "to-tag": "t1", "sdp": answer_sdp("TCP/TLS/MSRP", py_uri)}),
    );
    assert_eq!(r["forward"], true);
    // The sender's answer keeps the sender's plain transport.
    let sender_sdp = r["sdp"].as_str().unwrap().to_owned();
    assert_eq!(
        m_line(&sender_sdp),
        format!("m=message {} TCP/MSRP *", msrp.port())
    );

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tls/msrp_device.py");
    let mut py = Command::new("python3")
        .args([
            script,
            "127.0.0.1",
            &msrps.port().to_string(),
            &ca,
            &py_relay,
            py_uri,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut out = BufReader::new(py.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("tls TLSv1."), "python: {line:?}");

    let rs_uri = "msrp://127.0.0.1:9/rs1;tcp";
    fe.ok(
        json!({"command": "answer", "call-id": CALL, "from-tag": FROM, "via-branch": "rs",
        "to-tag": "t2", "sdp": answer_sdp("TCP/MSRP", rs_uri)}),
    );
    let rs = MsrpPeer::connect("rsdev", msrp, rs_uri, &path_of(&rs_sdp));
    rs.bind();

    let sender = MsrpPeer::connect(
        "alice",
        msrp,
        "msrp://127.0.0.1:7654/alice1;tcp",
        &path_of(&sender_sdp),
    );
    sender.send_message("file-tls-1", "image/jpeg", &body);
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(
        line.trim(),
        format!("sha256 {} {size}", sha256_hex(&body)),
        "the Python TLS device's copy"
    );
    assert!(py.wait().unwrap().success());
    drop(rs.wait("the whole file", |s| s.complete));
    assert_eq!(rs.state().digest(), sha256_hex(&body));
    fe.ok(json!({"command": "delete", "call-id": CALL, "from-tag": FROM}));
    assert!(relay.terminate().success());
}

/// The certificate the relay presents to a fresh handshake, as PEM
/// without line breaks (Python's `ssl.get_server_certificate`).
fn presented(addr: SocketAddr) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import ssl,sys; print(ssl.get_server_certificate((sys.argv[1], int(sys.argv[2]))))",
            "127.0.0.1",
            &addr.port().to_string(),
        ])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .collect()
}

fn pem_of(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .split_whitespace()
        .collect()
}

/// SIGHUP re-reads the certificate and key even when the configuration
/// file did not change (a renewal rewrites them in place): the next
/// handshake presents the new leaf. systemd's RELOADING=1 … READY=1 on
/// the test's notify socket frame the reload.
#[test]
fn msrps_sighup_rereads_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let [ca, cert, key] = pki.write(dir.path());
    let sock = support::notify::Notify::bind();
    let relay = RelayProcess::start_with(
        "epoll",
        "",
        &tls_section(&ca, &cert, &key),
        None,
        &[sock.env()],
    );
    assert!(sock.next().contains("READY=1"));
    let msrps: SocketAddr = relay.ready_word("msrps").unwrap().parse().unwrap();
    let before = presented(msrps);
    assert_eq!(before, pem_of(&cert));
    pki.write(dir.path());
    assert_ne!(pem_of(&cert), before, "a new leaf on disk");
    relay.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(sock.next().contains("RELOADING=1"));
    assert!(sock.next().contains("READY=1"));
    assert_eq!(presented(msrps), pem_of(&cert), "the renewed leaf");
    assert!(relay.terminate().success());
}
