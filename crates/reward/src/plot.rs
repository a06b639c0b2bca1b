//! The score-distribution figure (the paper's per-task reward distributions, SPEC §A.3.4): one
//! panel per category with overlaid histograms of chosen and rejected scores, as SVG.
//!
//! plotters' SVG backend without font support: text goes into the SVG as `<text>` elements and
//! label sizes are estimated, so no system fonts are needed.

use plotters::prelude::*;

use crate::error::{Result, RewardError};

/// Scores of one panel.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreGroup {
    /// Panel title (a category, or "all").
    pub name: String,
    /// Scores of the chosen replies.
    pub chosen: Vec<f64>,
    /// Scores of the rejected replies.
    pub rejected: Vec<f64>,
}

fn plot_err<E: std::fmt::Display>(e: E) -> RewardError {
    RewardError::Plot(e.to_string())
}

/// Fractions of `xs` in each of `bins` equal bins over `[lo, hi]`.
fn histogram(xs: &[f64], lo: f64, hi: f64, bins: usize) -> Vec<f64> {
    let mut h = vec![0.0; bins];
    if xs.is_empty() {
        return h;
    }
    let width = (hi - lo) / bins as f64;
    for &x in xs {
        let i = (((x - lo) / width).floor().max(0.0) as usize).min(bins - 1);
        h[i] += 1.0;
    }
    let n = xs.len() as f64;
    h.iter_mut().for_each(|v| *v /= n);
    h
}

/// Draws the panels into an SVG string. All panels share the x range (so categories can be
/// compared by eye); bars are the fraction of the panel's chosen (blue) or rejected (red)
/// scores in each of `bins` bins.
///
/// # Errors
/// [`RewardError::Plot`] if drawing fails; [`RewardError::Data`] for no group or no finite score.
pub fn score_distribution_svg(groups: &[ScoreGroup], bins: usize) -> Result<String> {
    if groups.is_empty() {
        return Err(RewardError::Data("no score groups to plot".into()));
    }
    let bins = bins.max(1);
    let all = groups
        .iter()
        .flat_map(|g| g.chosen.iter().chain(&g.rejected))
        .copied()
        .filter(|x| x.is_finite());
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    if !lo.is_finite() {
        return Err(RewardError::Data("no finite score to plot".into()));
    }
    let pad = ((hi - lo) * 0.05).max(1e-3);
    let (lo, hi) = (lo - pad, hi + pad);
    let width = (hi - lo) / bins as f64;
    let cols = groups.len().min(3);
    let rows = groups.len().div_ceil(cols);
    let (w, h) = (380 * cols as u32, 280 * rows as u32 + 40);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let root = root
            .titled("Reward-model score distribution", ("sans-serif", 20))
            .map_err(plot_err)?;
        let panels = root.split_evenly((rows, cols));
        for (area, g) in panels.iter().zip(groups) {
            let hc = histogram(&g.chosen, lo, hi, bins);
            let hr = histogram(&g.rejected, lo, hi, bins);
            let ymax = hc
                .iter()
                .chain(&hr)
                .fold(0.0f64, |a, &b| a.max(b))
                .max(0.05)
                * 1.1;
            let mut chart = ChartBuilder::on(area)
                .caption(
                    format!("{} (n = {})", g.name, g.chosen.len()),
                    ("sans-serif", 15),
                )
                .margin(10)
                .x_label_area_size(32)
                .y_label_area_size(40)
                .build_cartesian_2d(lo..hi, 0f64..ymax)
                .map_err(plot_err)?;
            chart
                .configure_mesh()
                .light_line_style(TRANSPARENT)
                .x_desc("score")
                .y_desc("fraction")
                .x_labels(6)
                .y_labels(5)
                .draw()
                .map_err(plot_err)?;
            for (hist, color, label) in [(&hc, BLUE, "chosen"), (&hr, RED, "rejected")] {
                let style = color.mix(0.45).filled();
                let bars =
                    hist.iter()
                        .enumerate()
                        .filter(|(_, v)| **v > 0.0)
                        .map(move |(i, &v)| {
                            let x0 = lo + i as f64 * width;
                            Rectangle::new([(x0, 0.0), (x0 + width, v)], style)
                        });
                chart
                    .draw_series(bars)
                    .map_err(plot_err)?
                    .label(label)
                    .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], style));
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperMiddle)
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
    fn histogram_fractions_sum_to_one_and_clamp_the_ends() {
        let h = histogram(&[0.0, 0.5, 1.0, 1.0], 0.0, 1.0, 2);
        assert_eq!(h, vec![0.25, 0.75]);
    }

    #[test]
    fn draws_one_panel_per_group() {
        let g = |name: &str, shift: f64| ScoreGroup {
            name: name.into(),
            chosen: (0..50).map(|i| shift + i as f64 / 25.0).collect(),
            rejected: (0..50).map(|i| shift - 1.0 + i as f64 / 25.0).collect(),
        };
        let svg = score_distribution_svg(&[g("all", 0.0), g("math", 0.5), g("writing", -0.5)], 20)
            .unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..60]);
        for name in [
            "all (n = 50)",
            "math (n = 50)",
            "writing (n = 50)",
            "chosen",
            "rejected",
        ] {
            assert!(svg.contains(name), "missing {name}");
        }
        assert!(score_distribution_svg(&[], 10).is_err());
    }
}
