//! What a run prints and writes: one row per metric, the relay's value
//! beside each baseline's and their ratio (or difference, for latency), all
//! medians over the runs; the machine and its load.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::error::{LoadError, Result};
use crate::stats::median;

/// How a metric compares with its baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Compare {
    /// relay / baseline (throughput, rates).
    Ratio,
    /// relay − baseline (latency: the latency the relay adds).
    Difference,
    /// Not compared (counts, memory).
    None,
}

/// One metric, sampled once per run in each mode.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Case within the scenario, e.g. `1x10` (sessions × devices).
    pub case: String,
    /// What is measured, e.g. `aggregate throughput`.
    pub metric: String,
    /// Unit of the values, e.g. `GB/s`.
    pub unit: String,
    /// How to set it against a baseline.
    pub compare: Compare,
    /// The relay's value in each run.
    pub relay: Vec<f64>,
    /// The direct baseline's value in each run (empty: not run).
    pub direct: Vec<f64>,
    /// The TCP fan-out baseline's value in each run (empty: not run).
    pub tcp: Vec<f64>,
}

impl Row {
    /// Median of the relay's runs.
    pub fn relay_median(&self) -> Option<f64> {
        median(&self.relay)
    }

    /// `relay` against `baseline` medians, as the row's [`Compare`] says.
    pub fn versus(&self, baseline: &[f64]) -> Option<f64> {
        let (r, b) = (median(&self.relay)?, median(baseline)?);
        match self.compare {
            Compare::Ratio if b != 0.0 => Some(r / b),
            Compare::Difference => Some(r - b),
            _ => None,
        }
    }
}

/// The machine a run was measured on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Machine {
    /// Online cores.
    pub cores: usize,
    /// CPU model.
    pub cpu: String,
    /// Kernel release.
    pub kernel: String,
    /// 1-minute load average before the run.
    pub load_before: Option<f64>,
    /// 1-minute load average after the run.
    pub load_after: Option<f64>,
}

impl Machine {
    /// Reads the machine now (load after is filled in by [`Report::finish`]).
    pub fn now() -> Machine {
        Machine {
            cores: crate::sys::cores(),
            cpu: crate::sys::cpu_model(),
            kernel: crate::sys::kernel(),
            load_before: crate::sys::load1(),
            load_after: None,
        }
    }
}

/// A whole run's report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// The command line that produced it.
    pub command: String,
    /// Runs each value is the median of.
    pub runs: usize,
    /// Where it ran.
    pub machine: Machine,
    /// The metrics.
    pub rows: Vec<Row>,
    /// Remarks (verification results, what was not measured, …).
    pub notes: Vec<String>,
    /// Scenario-specific details (per-device results, percentile curves).
    pub detail: serde_json::Value,
}

impl Report {
    /// An empty report for `scenario`, stamped with the command line and
    /// the machine.
    pub fn new(scenario: &str, runs: usize) -> Report {
        Report {
            scenario: scenario.into(),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            runs,
            machine: Machine::now(),
            rows: Vec::new(),
            notes: Vec::new(),
            detail: serde_json::Value::Null,
        }
    }

    /// The row for (`case`, `metric`), created on first use.
    pub fn row(&mut self, case: &str, metric: &str, unit: &str, compare: Compare) -> &mut Row {
        let i = match self
            .rows
            .iter()
            .position(|r| r.case == case && r.metric == metric)
        {
            Some(i) => i,
            None => {
                self.rows.push(Row {
                    case: case.into(),
                    metric: metric.into(),
                    unit: unit.into(),
                    compare,
                    relay: Vec::new(),
                    direct: Vec::new(),
                    tcp: Vec::new(),
                });
                self.rows.len() - 1
            }
        };
        &mut self.rows[i]
    }

    /// Stamps the load after the run.
    pub fn finish(&mut self) {
        self.machine.load_after = crate::sys::load1();
    }

    /// Writes the report as pretty JSON, with the medians and ratios
    /// computed.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        let rows: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "case": r.case, "metric": r.metric, "unit": r.unit, "compare": r.compare,
                    "relay": r.relay, "direct": r.direct, "tcp": r.tcp,
                    "relay-median": r.relay_median(),
                    "direct-median": median(&r.direct),
                    "tcp-median": median(&r.tcp),
                    "vs-direct": r.versus(&r.direct),
                    "vs-tcp": r.versus(&r.tcp),
                })
            })
            .collect();
        let v = serde_json::json!({
            "scenario": self.scenario, "command": self.command, "runs": self.runs,
            "machine": self.machine, "rows": rows, "notes": self.notes, "detail": self.detail,
        });
        let text = serde_json::to_string_pretty(&v)
            .map_err(|e| LoadError::Output(format!("JSON: {e}")))?;
        std::fs::write(path, text + "\n")
            .map_err(|e| LoadError::Output(format!("{}: {e}", path.display())))
    }
}

/// A value with a sensible number of digits.
pub fn fmt_value(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn fmt_versus(r: &Row, baseline: &[f64]) -> String {
    match (r.compare, r.versus(baseline)) {
        (Compare::Ratio, Some(x)) => format!("{x:.2}×"),
        (Compare::Difference, Some(x)) => format!(
            "{}{} {}",
            if x >= 0.0 { "+" } else { "" },
            fmt_value(x),
            r.unit
        ),
        _ => "".into(),
    }
}

/// The human table: one line per row, baseline columns only when some
/// row has a baseline value.
pub fn render(rep: &Report) -> String {
    let has_direct = rep.rows.iter().any(|r| !r.direct.is_empty());
    let has_tcp = rep.rows.iter().any(|r| !r.tcp.is_empty());
    let mut head = vec!["case", "metric", "relay"];
    if has_direct {
        head.extend(["direct", "vs direct"]);
    }
    if has_tcp {
        head.extend(["tcp fan-out", "vs tcp"]);
    }
    let med = |v: &[f64], unit: &str| {
        median(v).map_or(String::new(), |m| format!("{} {unit}", fmt_value(m)))
    };
    let mut lines: Vec<Vec<String>> = vec![head.iter().map(|s| s.to_string()).collect()];
    for r in &rep.rows {
        let mut l = vec![r.case.clone(), r.metric.clone(), med(&r.relay, &r.unit)];
        if has_direct {
            l.push(med(&r.direct, &r.unit));
            l.push(fmt_versus(r, &r.direct));
        }
        if has_tcp {
            l.push(med(&r.tcp, &r.unit));
            l.push(fmt_versus(r, &r.tcp));
        }
        lines.push(l);
    }
    let cols = lines[0].len();
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            lines
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let m = &rep.machine;
    let load = |l: Option<f64>| l.map_or("?".into(), |l| format!("{l:.2}"));
    let _ = writeln!(
        out,
        "{} — median of {} run{} — {} cores ({}), loopback, load {} → {}",
        rep.scenario,
        rep.runs,
        if rep.runs == 1 { "" } else { "s" },
        m.cores,
        m.cpu,
        load(m.load_before),
        load(m.load_after),
    );
    for (i, l) in lines.iter().enumerate() {
        let cells: Vec<String> = l
            .iter()
            .enumerate()
            .map(|(c, s)| {
                let pad = widths[c].saturating_sub(s.chars().count());
                if c < 2 {
                    format!("{s}{}", " ".repeat(pad))
                } else {
                    format!("{}{s}", " ".repeat(pad))
                }
            })
            .collect();
        let _ = writeln!(out, "  {}", cells.join("  "));
        if i == 0 {
            let total: usize = widths.iter().sum::<usize>() + 2 * (cols - 1);
            let _ = writeln!(out, "  {}", "-".repeat(total));
        }
    }
    for n in &rep.notes {
        let _ = writeln!(out, "  * {n}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rep() -> Report {
        let mut r = Report::new("fanout", 3);
        r.machine = Machine {
            cores: 2,
            cpu: "cpu".into(),
            kernel: "k".into(),
            load_before: Some(0.5),
            load_after: Some(1.25),
        };
        r
    }

    #[test]
    fn ratio_and_difference() {
        let mut r = rep();
        let row = r.row("1x1", "throughput", "GB/s", Compare::Ratio);
        row.relay = vec![1.0, 3.0, 2.0];
        row.direct = vec![4.0, 4.0, 5.0];
        assert_eq!(row.versus(&row.direct.clone()), Some(0.5));
        let row = r.row("1x3", "p99", "µs", Compare::Difference);
        row.relay = vec![150.0];
        row.direct = vec![100.0];
        assert_eq!(row.versus(&row.direct.clone()), Some(50.0));
        // Same key: same row.
        r.row("1x1", "throughput", "GB/s", Compare::Ratio)
            .relay
            .push(9.0);
        assert_eq!(r.rows.len(), 2);
        assert_eq!(r.rows[0].relay_median(), Some(2.5));
    }

    #[test]
    fn table_shows_baselines_only_when_run() {
        let mut r = rep();
        r.row("1x1", "throughput", "GB/s", Compare::Ratio).relay = vec![1.234];
        let t = render(&r);
        assert!(t.contains("median of 3 runs"), "{t}");
        assert!(t.contains("load 0.50 → 1.25"), "{t}");
        assert!(t.contains("1.23 GB/s"), "{t}");
        assert!(!t.contains("direct"), "{t}");
        let row = r.row("1x1", "throughput", "GB/s", Compare::Ratio);
        row.direct = vec![2.468];
        r.notes.push("every device byte-exact".into());
        let t = render(&r);
        assert!(t.contains("vs direct"), "{t}");
        assert!(t.contains("0.50×"), "{t}");
        assert!(!t.contains("tcp"), "{t}");
        assert!(t.contains("* every device byte-exact"), "{t}");
    }

    #[test]
    fn difference_is_signed_with_unit() {
        let mut r = rep();
        let row = r.row("c", "p99", "µs", Compare::Difference);
        row.relay = vec![80.0];
        row.tcp = vec![100.0];
        let t = render(&r);
        assert!(t.contains("-20.00 µs"), "{t}");
    }

    #[test]
    fn values_keep_a_few_digits() {
        assert_eq!(fmt_value(0.0), "0");
        assert_eq!(fmt_value(0.1234), "0.123");
        assert_eq!(fmt_value(12.345), "12.35");
        assert_eq!(fmt_value(123.45), "123.5");
        assert_eq!(fmt_value(12345.6), "12346");
    }

    #[test]
    fn json_has_medians_and_ratios() {
        let mut r = rep();
        let row = r.row("1x1", "throughput", "GB/s", Compare::Ratio);
        row.relay = vec![1.0];
        row.tcp = vec![2.0];
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        r.write_json(&p).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(v["rows"][0]["vs-tcp"], 0.5);
        assert_eq!(v["machine"]["cores"], 2);
    }
}
