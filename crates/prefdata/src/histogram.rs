//! SVG histogram of chosen − rejected length differences (the length-bias picture).
//!
//! Rendered with `plotters`' SVG backend and no font feature: text is written as SVG `<text>`
//! elements with a `font-family` attribute and laid out with plotters' built-in size
//! estimate, so no system font is read and rendering works offline; the viewer picks the font.

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Settings of [`length_diff_histogram_svg`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistogramOptions {
    /// Number of bins. Default 40.
    pub bins: usize,
    /// Image width in pixels. Default 800.
    pub width: u32,
    /// Image height in pixels. Default 480.
    pub height: u32,
    /// Title drawn above the plot.
    pub title: String,
    /// Label of the x axis.
    pub x_label: String,
    /// Share of values cut from each tail when choosing the x range (they are counted in the
    /// edge bins). Default 0.01; 0 shows the full range.
    pub clip_quantile: f64,
}

impl Default for HistogramOptions {
    fn default() -> Self {
        Self {
            bins: 40,
            width: 800,
            height: 480,
            title: "chosen - rejected length difference".into(),
            x_label: "tokens (chosen - rejected)".into(),
            clip_quantile: 0.01,
        }
    }
}

/// Bin counts: `(left edge, right edge, count)` for each bin.
pub(crate) fn bin_counts(values: &[i64], bins: usize, clip: f64) -> Vec<(f64, f64, u64)> {
    if values.is_empty() || bins == 0 {
        return Vec::new();
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let q = |p: f64| {
        let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
        sorted[idx.min(sorted.len() - 1)] as f64
    };
    let clip = clip.clamp(0.0, 0.49);
    let (mut lo, mut hi) = (q(clip), q(1.0 - clip));
    if hi <= lo {
        lo -= 0.5;
        hi += 0.5;
    }
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0u64; bins];
    for &v in values {
        let b = (((v as f64) - lo) / width).floor();
        let b = b.clamp(0.0, (bins - 1) as f64) as usize;
        counts[b] += 1;
    }
    counts
        .into_iter()
        .enumerate()
        .map(|(i, c)| (lo + i as f64 * width, lo + (i + 1) as f64 * width, c))
        .collect()
}

fn plot_err(e: impl std::fmt::Display) -> Error {
    Error::Plot(e.to_string())
}

/// Renders a histogram of `diffs` (chosen − rejected lengths) as an SVG document.
///
/// A red line marks zero: mass to its right means longer replies tend to win.
///
/// # Errors
/// [`Error::InvalidConfig`] for zero bins or size; [`Error::Plot`] if drawing fails.
pub fn length_diff_histogram_svg(diffs: &[i64], opts: &HistogramOptions) -> Result<String> {
    if opts.bins == 0 || opts.width == 0 || opts.height == 0 {
        return Err(Error::InvalidConfig(
            "histogram bins, width and height must be > 0".into(),
        ));
    }
    let bins = bin_counts(diffs, opts.bins, opts.clip_quantile);
    let (lo, hi) = match (bins.first(), bins.last()) {
        (Some(f), Some(l)) => (f.0, l.1),
        _ => (-1.0, 1.0),
    };
    let ymax = bins.iter().map(|b| b.2).max().unwrap_or(0).max(1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (opts.width, opts.height)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&opts.title, ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(lo..hi, 0u64..ymax + ymax / 20 + 1)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc(opts.x_label.as_str())
            .y_desc("pairs")
            .draw()
            .map_err(plot_err)?;
        chart
            .draw_series(
                bins.iter()
                    .map(|&(x0, x1, c)| Rectangle::new([(x0, 0), (x1, c)], BLUE.mix(0.6).filled())),
            )
            .map_err(plot_err)?;
        if lo < 0.0 && hi > 0.0 {
            chart
                .draw_series(LineSeries::new(
                    vec![(0.0, 0), (0.0, ymax)],
                    RED.stroke_width(2),
                ))
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
    fn bins_cover_all_values() {
        let values: Vec<i64> = (-50..=50).collect();
        let bins = bin_counts(&values, 10, 0.0);
        assert_eq!(bins.len(), 10);
        assert_eq!(bins.iter().map(|b| b.2).sum::<u64>(), 101);
        assert_eq!(bins[0].0, -50.0);
        assert_eq!(bins[9].1, 50.0);
        // Clipping keeps every value, piling the tails into the edge bins.
        let mut tailed = values.clone();
        tailed.push(10_000);
        let clipped = bin_counts(&tailed, 10, 0.01);
        assert_eq!(clipped.iter().map(|b| b.2).sum::<u64>(), 102);
        assert!(clipped[9].1 < 10_000.0);
        // A constant input still gets a non-empty range.
        let flat = bin_counts(&[3, 3, 3], 4, 0.0);
        assert_eq!(flat.iter().map(|b| b.2).sum::<u64>(), 3);
        assert!(bin_counts(&[], 4, 0.0).is_empty());
    }

    #[test]
    fn renders_an_svg_with_text_labels() {
        let diffs: Vec<i64> = (0..500).map(|i| (i % 97) - 40).collect();
        let svg = length_diff_histogram_svg(&diffs, &HistogramOptions::default()).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..100.min(svg.len())]);
        assert!(svg.contains("<rect"));
        assert!(svg.contains("<text"));
        assert!(svg.contains("chosen - rejected length difference"));
        assert!(svg.trim_end().ends_with("</svg>"));
        // Empty input renders an empty frame rather than failing.
        assert!(length_diff_histogram_svg(&[], &HistogramOptions::default()).is_ok());
        let bad = HistogramOptions {
            bins: 0,
            ..HistogramOptions::default()
        };
        assert!(length_diff_histogram_svg(&diffs, &bad).is_err());
    }
}
