//! Criterion micro-benchmarks of msrp-relay's protocol cores (the MSRP codec
//! and the fan-out engine). The benchmarks live in `benches/benches/`; this
//! library holds the inputs they share, so that every bench measures the
//! same bytes. Run them with `cargo bench -p msrp-benches`.
