//! The reward and KL curves of one or more PPO runs (the paper's Figure 4), as SVG: two panels
//! side by side, the training reward (`objective/shaped_scores`) and `objective/kl` against the
//! PPO step, one line per run, drawn by [`rlhf_util::plot`].

use rlhf_util::plot::{Chart, Legend, Series, panels_svg};

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

/// Draws the reward and KL panels for `runs`.
///
/// # Errors
/// [`PpoError::Plot`] if drawing fails; [`PpoError::Data`] when there is nothing to draw.
pub fn reward_kl_svg(title: &str, runs: &[PlotRun]) -> Result<String> {
    if runs.iter().all(|r| r.reward.is_empty()) {
        return Err(PpoError::Data("no PPO steps to plot".into()));
    }
    let panel = |label: &str, get: fn(&PlotRun) -> &Vec<(f64, f64)>| {
        let series = runs
            .iter()
            .map(|r| Series::new(r.name.clone(), get(r).clone()))
            .collect();
        Chart::lines(label, "PPO step", "", series).legend(Legend::UpperLeft)
    };
    let panels = [
        panel("reward (objective/shaped_scores)", |r| &r.reward),
        panel("KL to the reference (objective/kl)", |r| &r.kl),
    ];
    panels_svg(title, &panels, 2, (480, 360)).map_err(|e| PpoError::Plot(e.to_string()))
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
