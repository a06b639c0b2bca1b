//! The score-distribution figure (the paper's per-task reward distributions, SPEC §A.3.4): one
//! panel per category with overlaid histograms of chosen and rejected scores, as SVG, drawn by
//! [`rlhf_util::plot`].

use rlhf_util::plot::{Bars, Chart, Legend, bin_counts, panels_svg};

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

/// Fractions of `xs` in each of `bins` equal bins over `[lo, hi]`.
fn histogram(xs: &[f64], lo: f64, hi: f64, bins: usize) -> Vec<f64> {
    let n = xs.len().max(1) as f64;
    bin_counts(xs.iter().copied(), lo, hi, bins)
        .into_iter()
        .map(|c| c as f64 / n)
        .collect()
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
    let panels: Vec<Chart> = groups
        .iter()
        .map(|g| {
            let hc = histogram(&g.chosen, lo, hi, bins);
            let hr = histogram(&g.rejected, lo, hi, bins);
            let top = hc.iter().chain(&hr).fold(0.05f64, |a, &b| a.max(b)) * 1.1;
            Chart::histogram(
                &format!("{} (n = {})", g.name, g.chosen.len()),
                "score",
                "fraction",
                (lo, hi),
                vec![Bars::new("chosen", hc), Bars::new("rejected", hr)],
            )
            .y_max(top)
            .legend(Legend::UpperMiddle)
        })
        .collect();
    panels_svg("Reward-model score distribution", &panels, 3, (380, 280))
        .map_err(|e| RewardError::Plot(e.to_string()))
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
