//! SVG plots (plotters, SVG backend only): throughput against device
//! count, latency percentiles, and a value over time. Each takes plain
//! numbers and labels; a scenario turns its results into them.

use std::path::Path;

use plotters::prelude::*;

use crate::error::{LoadError, Result};

fn err(e: impl std::fmt::Display) -> LoadError {
    LoadError::Output(format!("plot: {e}"))
}

const COLORS: [RGBColor; 3] = [
    RGBColor(200, 40, 40),
    RGBColor(40, 90, 200),
    RGBColor(40, 150, 60),
];

/// One run in [`throughput`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Run {
    /// The line it belongs to: an index into the line names.
    pub line: usize,
    /// Devices per session.
    pub devices: usize,
    /// Aggregate GB/s.
    pub aggregate: f64,
    /// The median fast device's GB/s.
    pub per_device: Option<f64>,
}

/// `throughput.svg`: aggregate GB/s (and the median fast device's) against
/// devices per session, one line per name in `lines` (e.g. one per mode);
/// repeated runs are averaged per point.
pub fn throughput(dir: &Path, lines: &[&str], points: &[Run]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(err)?;
    let path = dir.join("throughput.svg");
    let xmax = points.iter().map(|p| p.devices).max().unwrap_or(1).max(2) as f64;
    let ymax = points.iter().map(|p| p.aggregate).fold(0.1, f64::max) * 1.15;
    let root = SVGBackend::new(&path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("fan-out throughput against devices", ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d((1f64..xmax * 1.2).log_scale(), 0f64..ymax)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("devices per session")
        .y_desc("GB/s")
        .draw()
        .map_err(err)?;
    for (i, name) in lines.iter().enumerate() {
        for (per_device, style) in [(false, 0), (true, 1)] {
            let mut xs: Vec<usize> = points
                .iter()
                .filter(|p| p.line == i)
                .map(|p| p.devices)
                .collect();
            xs.sort_unstable();
            xs.dedup();
            let series: Vec<(f64, f64)> = xs
                .iter()
                .filter_map(|&x| {
                    let v: Vec<f64> = points
                        .iter()
                        .filter(|p| p.line == i && p.devices == x)
                        .filter_map(|p| {
                            if per_device {
                                p.per_device
                            } else {
                                Some(p.aggregate)
                            }
                        })
                        .collect();
                    (!v.is_empty()).then(|| (x as f64, v.iter().sum::<f64>() / v.len() as f64))
                })
                .collect();
            if series.is_empty() {
                continue;
            }
            let color = COLORS[i % COLORS.len()];
            let label = format!(
                "{name} {}",
                if per_device {
                    "per device"
                } else {
                    "aggregate"
                }
            )
            .to_lowercase();
            let stroke = if style == 0 {
                color.stroke_width(2)
            } else {
                color.mix(0.5).stroke_width(1)
            };
            chart
                .draw_series(LineSeries::new(series.clone(), stroke))
                .map_err(err)?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], stroke));
            chart
                .draw_series(
                    series
                        .iter()
                        .map(|&(x, y)| Circle::new((x, y), 3, color.filled())),
                )
                .map_err(err)?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    println!("  plot: {}", path.display());
    Ok(())
}

/// `<name>.svg`: latency (µs, log scale) at each percentile, one line per
/// series; the x axis is the percentile's "nines" (−log10(1 − q)).
pub fn latency(
    dir: &Path,
    name: &str,
    title: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(err)?;
    let path = dir.join(format!("{name}.svg"));
    let nines = |q: f64| -(1.0 - q.min(0.99999)).log10();
    let ymax = series
        .iter()
        .flat_map(|s| s.1.iter().map(|p| p.1))
        .fold(1.0, f64::max)
        * 1.5;
    let ymin = series
        .iter()
        .flat_map(|s| s.1.iter().map(|p| p.1))
        .fold(f64::MAX, f64::min)
        .max(0.1)
        / 1.5;
    let root = SVGBackend::new(&path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..5.0, (ymin..ymax).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (µs)")
        .x_labels(6)
        .x_label_formatter(&|x| {
            format!("{}", (100_000.0 * (1.0 - 10f64.powf(-x))).round() / 1000.0)
        })
        .draw()
        .map_err(err)?;
    for (i, (label, pts)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let data: Vec<(f64, f64)> = pts
            .iter()
            .map(|&(q, us)| (nines(q), us.max(ymin)))
            .collect();
        chart
            .draw_series(LineSeries::new(data, color.stroke_width(2)))
            .map_err(err)?
            .label(label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    println!("  plot: {}", path.display());
    Ok(())
}

/// `file`: one series of `(seconds, value)` points over time.
pub fn series(dir: &Path, file: &str, title: &str, unit: &str, pts: &[(f64, f64)]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(err)?;
    let path = dir.join(file);
    let xmax = pts.iter().map(|p| p.0).fold(1.0, f64::max);
    let ymax = pts.iter().map(|p| p.1).fold(1.0, f64::max) * 1.15;
    let root = SVGBackend::new(&path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..xmax, 0f64..ymax)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc(unit)
        .draw()
        .map_err(err)?;
    chart
        .draw_series(LineSeries::new(
            pts.iter().copied(),
            COLORS[1].stroke_width(2),
        ))
        .map_err(err)?;
    root.present().map_err(err)?;
    println!("  plot: {}", path.display());
    Ok(())
}
