//! A chat run's rows in the report.

use super::traffic::ChatRun;
use crate::report::{Compare, Report};
use crate::scenario::fanout::Mode;
use crate::stats::Percentiles;

fn add(
    rep: &mut Report,
    case: &str,
    metric: &str,
    unit: &str,
    cmp: Compare,
    mode: Mode,
    v: Option<f64>,
) {
    let Some(v) = v else { return };
    let row = rep.row(case, metric, unit, cmp);
    match mode {
        Mode::Relay => row.relay.push(v),
        Mode::Direct => row.direct.push(v),
        Mode::Tcp => row.tcp.push(v),
    }
}

/// The rows of one run in `mode`: latencies (`d`: send to device), with
/// IMDN the notifications, losses, and CPU.
pub(super) fn add_rows(
    rep: &mut Report,
    case: &str,
    mode: Mode,
    imdn: bool,
    d: &Percentiles,
    r: &ChatRun,
) {
    add(
        rep,
        case,
        "send → device p50",
        "µs",
        Compare::Difference,
        mode,
        Some(d.p50_us),
    );
    add(
        rep,
        case,
        "send → device p99",
        "µs",
        Compare::Difference,
        mode,
        Some(d.p99_us),
    );
    add(
        rep,
        case,
        "send → device p99.9",
        "µs",
        Compare::Difference,
        mode,
        Some(d.p999_us),
    );
    if imdn {
        let nt = Percentiles::of(&r.notify);
        add(
            rep,
            case,
            "send → notification p50",
            "µs",
            Compare::Difference,
            mode,
            Some(nt.p50_us),
        );
        add(
            rep,
            case,
            "send → notification p99",
            "µs",
            Compare::Difference,
            mode,
            Some(nt.p99_us),
        );
        add(
            rep,
            case,
            "messages without notification",
            "",
            Compare::None,
            mode,
            Some(r.unnotified as f64),
        );
    }
    add(
        rep,
        case,
        "messages lost",
        "",
        Compare::None,
        mode,
        Some(r.lost as f64),
    );
    if mode == Mode::Relay && imdn {
        add(
            rep,
            case,
            "duplicate notifications",
            "",
            Compare::None,
            mode,
            Some(r.duplicates as f64),
        );
    }
    add(
        rep,
        case,
        "relay CPU",
        "cores",
        Compare::None,
        mode,
        r.relay_cores,
    );
    add(
        rep,
        case,
        "load tool CPU",
        "cores",
        Compare::None,
        mode,
        r.tool_cores,
    );
}
