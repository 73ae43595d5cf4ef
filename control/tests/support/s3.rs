//! A real S3-compatible server for the content store's S3 backend: moto
//! in server mode (`moto_server`, installed by
//! `control/tests/s3/install.sh`), on 127.0.0.1 and an ephemeral port,
//! killed when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

/// One moto server with one bucket.
#[derive(Debug)]
pub struct S3Server {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    /// The bucket created at start.
    pub bucket: String,
}

impl S3Server {
    /// Starts `moto_server` and creates `bucket`. Fails with the way out
    /// when moto is not installed: the test must not pass by skipping
    /// itself on the machine that is meant to run it.
    pub fn start(bucket: &str) -> S3Server {
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = child.unwrap_or_else(|e| {
            panic!("moto_server: {e}: run `bash control/tests/s3/install.sh` (as .ci/run does)")
        });
        let err = child.stderr.take().unwrap();
        let mut lines = BufReader::new(err).lines();
        // werkzeug: " * Running on http://127.0.0.1:43905"
        let endpoint = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                panic!("moto_server ended before it listened");
            };
            if let Some(at) = line.find("http://127.0.0.1:") {
                break line[at..].trim().to_owned();
            }
        };
        // Keep draining its log so that it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let s = S3Server {
            child,
            endpoint,
            bucket: bucket.to_owned(),
        };
        s.create_bucket();
        s
    }

    /// `PUT /<bucket>` (moto does not check signatures).
    fn create_bucket(&self) {
        let hostport = self.endpoint.trim_start_matches("http://");
        let mut c = TcpStream::connect(hostport).unwrap();
        write!(
            c,
            "PUT /{} HTTP/1.1\r\nHost: {hostport}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.bucket
        )
        .unwrap();
        let mut reply = String::new();
        c.read_to_string(&mut reply).unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "create bucket: {reply}");
    }

    /// The relay's `[store]` table for this server.
    pub fn store_toml(&self) -> String {
        format!(
            "[store]\ns3-bucket = {:?}\ns3-endpoint = {:?}\ns3-allow-http = true\ns3-access-key-id = \"test\"\ns3-secret-access-key = \"test\"\npart-bytes = 5242880\n",
            self.bucket, self.endpoint
        )
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
