//! The reward and KL curves of one or more PPO runs (the paper's Figure 4), as SVG: two panels
//! side by side, the training reward (`objective/shaped_scores`) and `objective/kl` against the
//! PPO step, one line per run.
//!
//! plotters' SVG backend without font support (text as `<text>` elements), as in
//! `rlhf-reward`'s score plot.

use plotters::prelude::*;

use crate::error::{PpoError, Result};
use crate::metrics::PpoLog;

/// One run's curves.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotRun {
    /// Legend label.
    pub name: String,
    /// `(step, reward)` points.
    pub reward: Vec<(f64, f64)>,
    /// `(step, kl)` points.
    pub kl: Vec<(f64, f64)>,
}

impl PlotRun {
    /// The curves of a run's metrics: reward = `objective/shaped_scores`, KL = `objective/kl`.
    pub fn from_logs(name: impl Into<String>, logs: &[PpoLog]) -> Self {
        PlotRun {
            name: name.into(),
            reward: logs
                .iter()
                .map(|l| (l.step as f64, l.shaped_scores))
                .collect(),
            kl: logs.iter().map(|l| (l.step as f64, l.kl)).collect(),
        }
    }
}

fn plot_err<E: std::fmt::Display>(e: E) -> PpoError {
    PpoError::Plot(e.to_string())
}

fn range(points: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = points
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(1e-3);
    (lo - pad, hi + pad)
}

/// Picks one curve of a run.
type Series = fn(&PlotRun) -> &Vec<(f64, f64)>;

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Draws the reward and KL panels for `runs`.
///
/// # Errors
/// [`PpoError::Plot`] if drawing fails; [`PpoError::Data`] when there is nothing to draw.
pub fn reward_kl_svg(title: &str, runs: &[PlotRun]) -> Result<String> {
    if runs.iter().all(|r| r.reward.is_empty()) {
        return Err(PpoError::Data("no PPO steps to plot".into()));
    }
    let (x0, x1) = range(runs.iter().flat_map(|r| r.reward.iter().map(|p| p.0)));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 400)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let root = root.titled(title, ("sans-serif", 18)).map_err(plot_err)?;
        let panels = root.split_evenly((1, 2));
        let series: [(&str, Series); 2] = [
            ("reward (objective/shaped_scores)", |r| &r.reward),
            ("KL to the reference (objective/kl)", |r| &r.kl),
        ];
        for (area, (label, get)) in panels.iter().zip(series) {
            let (y0, y1) = range(runs.iter().flat_map(|r| get(r).iter().map(|p| p.1)));
            let mut chart = ChartBuilder::on(area)
                .caption(label, ("sans-serif", 15))
                .margin(12)
                .x_label_area_size(32)
                .y_label_area_size(52)
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(plot_err)?;
            chart
                .configure_mesh()
                .light_line_style(TRANSPARENT)
                .x_desc("PPO step")
                .x_labels(6)
                .y_labels(6)
                .draw()
                .map_err(plot_err)?;
            for (i, run) in runs.iter().enumerate() {
                let color = COLORS[i % COLORS.len()];
                chart
                    .draw_series(LineSeries::new(
                        get(run).iter().copied(),
                        color.stroke_width(2),
                    ))
                    .map_err(plot_err)?
                    .label(run.name.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_both_panels_and_every_run() {
        let run = |name: &str, k: f64| PlotRun {
            name: name.into(),
            reward: (1..=10).map(|s| (s as f64, k * s as f64)).collect(),
            kl: (1..=10).map(|s| (s as f64, 0.1 * s as f64)).collect(),
        };
        let svg = reward_kl_svg("fig", &[run("with baseline", 0.1), run("without", 0.3)]).unwrap();
        assert!(svg.starts_with("<svg"));
        for s in [
            "with baseline",
            "without",
            "objective/kl",
            "objective/shaped_scores",
        ] {
            assert!(svg.contains(s), "missing {s}");
        }
        assert!(reward_kl_svg("x", &[]).is_err());
    }
}
