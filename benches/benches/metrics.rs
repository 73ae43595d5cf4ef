//! What one Prometheus scrape costs the relay at 10,000 sessions (issue
//! 13): the real data plane (two workers) and control table holding
//! 10,000 sessions of one device leg each, created by `offer` commands;
//! then, side by side in one run,
//!
//! - `scrape`: the whole `GET /metrics` body (table snapshot under the
//!   lock, one statistics round trip per worker, OpenMetrics encoding),
//!   HTTP excluded;
//! - `plane-stats`: the workers' round trips alone (the baseline: what the
//!   `statistics` command also pays);
//! - `table-snapshot`: the table's pass under its lock alone (the part
//!   that holds up control commands).
//!
//! `cargo bench -p msrp-benches --bench metrics`

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic here is a failed run

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use msrp_control::metrics::{ControlMetrics, Sources};
use msrp_control::plane::DataPlane;
use msrp_control::protocol::decode_request;
use msrp_control::server::{Server, ServerConfig};
use msrp_control::table::{ConnId, Core, TableConfig};
use msrp_relay::io::{Relay, RelayConfig};

const SESSIONS: usize = 10_000;

const SDP: &str = "v=0\\r\\no=alice 1 1 IN IP4 127.0.0.1\\r\\ns=-\\r\\nc=IN IP4 127.0.0.1\\r\\nt=0 0\\r\\nm=message 7654 TCP/MSRP *\\r\\na=sendonly\\r\\na=accept-types:message/cpim\\r\\na=setup:actpass\\r\\na=path:msrp://127.0.0.1:7654/a;tcp\\r\\n";

fn metrics(c: &mut Criterion) {
    let relay = Relay::start(RelayConfig {
        workers: 2,
        listen: "127.0.0.1:0".parse().unwrap(),
        ..RelayConfig::default()
    })
    .unwrap();
    let plane: Arc<dyn DataPlane> = Arc::new(relay.handle());
    let table = TableConfig {
        max_sessions: SESSIONS + 1,
        relay_port: relay.local_addr().port(),
        ..TableConfig::default()
    };
    let mut core = Core::new(table, plane.clone());
    for i in 0..SESSIONS {
        let line = format!(
            r#"{{"id":{i},"command":"offer","call-id":"c{i}","from-tag":"f","via-branch":"b","kind":"chat","sdp":"{SDP}"}}"#
        );
        let req = decode_request(line.as_bytes(), 1 << 16).unwrap();
        let out = core.handle(ConnId(1), req, Instant::now());
        assert!(
            matches!(out.reply.body, msrp_control::protocol::ReplyBody::Ok(_)),
            "{:?}",
            out.reply
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(ServerConfig::new(dir.path().join("c.sock")), core).unwrap();
    let sources = Sources {
        control: ControlMetrics::default(),
        table: server.table_probe(),
        plane: plane.clone(),
        drivers: Some(relay.counter_probe()),
    };
    let text = sources.render();
    assert!(
        text.contains("msrp_relay_sessions{state=\"active\"} 10000"),
        "{text}"
    );
    let mut g = c.benchmark_group("metrics-10000-sessions");
    g.bench_function("scrape", |b| b.iter(|| black_box(sources.render())));
    g.bench_function("plane-stats", |b| {
        b.iter(|| black_box(plane.stats().unwrap()))
    });
    let probe = server.table_probe();
    g.bench_function("table-snapshot", |b| b.iter(|| black_box(probe.snapshot())));
    g.finish();
    drop(server);
    relay.shutdown(std::time::Duration::from_secs(1));
}

criterion_group!(benches, metrics);
criterion_main!(benches);
