//! SVG histogram of chosen − rejected length differences (the length-bias picture), drawn by
//! [`rlhf_util::plot`] (no system font is read; the viewer picks the font).

use rlhf_util::plot::{Bars, Chart};
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
    rlhf_util::plot::bin_counts(values.iter().map(|&v| v as f64), lo, hi, bins)
        .into_iter()
        .enumerate()
        .map(|(i, c)| (lo + i as f64 * width, lo + (i + 1) as f64 * width, c))
        .collect()
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
    let range = match (bins.first(), bins.last()) {
        (Some(f), Some(l)) => (f.0, l.1),
        _ => (-1.0, 1.0),
    };
    let counts = Bars::new("", bins.iter().map(|b| b.2 as f64));
    Chart::histogram(&opts.title, &opts.x_label, "pairs", range, vec![counts])
        .marker_x(0.0)
        .svg((opts.width, opts.height))
        .map_err(|e| Error::Plot(e.to_string()))
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
