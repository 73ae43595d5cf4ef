//! `--tls`: the relay's legs over TLS set against the same case over plain
//! TCP in the same run. Each ratio is taken within one run (the two legs
//! of the pair ran back to back, on the same relay), and the table shows
//! the median of the runs' ratios.

use crate::report::{Compare, Report};

/// Pushes `tls / plain` as the row `{metric}, TLS / plain` of `case`.
pub fn ratio(rep: &mut Report, case: &str, metric: &str, tls: Option<f64>, plain: Option<f64>) {
    if let (Some(t), Some(p)) = (tls, plain)
        && p != 0.0
    {
        rep.row(case, &format!("{metric}, TLS / plain"), "×", Compare::None)
            .relay
            .push(t / p);
    }
}

/// The chat rows: device latency TLS − plain, relay CPU TLS / plain;
/// each side is (p50 µs, p99 µs, relay cores).
pub fn chat(
    rep: &mut Report,
    case: &str,
    tls: (f64, f64, Option<f64>),
    plain: (f64, f64, Option<f64>),
) {
    for (metric, t, p) in [
        ("send → device p50", tls.0, plain.0),
        ("send → device p99", tls.1, plain.1),
    ] {
        rep.row(case, &format!("{metric}, TLS − plain"), "µs", Compare::None)
            .relay
            .push(t - p);
    }
    ratio(rep, case, "relay CPU", tls.2, plain.2);
}

/// The note every `--tls` report carries; `what` says what ran over TLS
/// and against what.
pub fn note(rep: &mut Report, what: &str) {
    rep.notes.push(format!(
        "tls: {what}; msrps: URIs, TCP/TLS/MSRP, rustls with ring on both ends, full handshakes (no resumption); a `TLS / plain` row is the median of the runs' own ratios"
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_are_per_run_and_skip_missing_values() {
        let mut rep = Report::new("t", 2);
        ratio(&mut rep, "c", "x", Some(1.0), Some(2.0));
        ratio(&mut rep, "c", "x", Some(3.0), Some(2.0));
        ratio(&mut rep, "c", "x", None, Some(2.0));
        ratio(&mut rep, "c", "x", Some(1.0), Some(0.0));
        assert_eq!(rep.rows.len(), 1);
        assert_eq!(rep.rows[0].metric, "x, TLS / plain");
        assert_eq!(rep.rows[0].relay, vec![0.5, 1.5]);
        assert_eq!(rep.rows[0].relay_median(), Some(1.0));
    }
}
