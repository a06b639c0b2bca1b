//! Training and evaluation metrics under TRL's names (`loss`, `accuracy`, `rewards/chosen`,
//! `rewards/rejected`, `rewards/margins`, …; evaluation entries carry the `eval_` prefix as in
//! TRL's log history), their accumulation over a logging window, and the `metrics.jsonl` file.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use rlhf_train::{append_jsonl, read_jsonl, write_jsonl};

/// One training log entry (a line of `metrics.jsonl`): averages over the optimizer steps since
/// the previous entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainLog {
    /// Optimizer steps done.
    pub step: usize,
    /// Epochs done, fractional (pairs consumed / training pairs).
    pub epoch: f64,
    /// Mean objective per step (ranking + λ penalty, weighted).
    pub loss: f64,
    /// Fraction of pairs with `r_c > r_r`.
    pub accuracy: f64,
    /// Mean chosen score.
    #[serde(rename = "rewards/chosen")]
    pub rewards_chosen: f64,
    /// Mean rejected score.
    #[serde(rename = "rewards/rejected")]
    pub rewards_rejected: f64,
    /// Mean `r_c − r_r`.
    #[serde(rename = "rewards/margins")]
    pub rewards_margins: f64,
    /// Mean of all scores (chosen and rejected): drifts away from 0 without the prior.
    #[serde(rename = "score/mean")]
    pub score_mean: f64,
    /// Standard deviation of all scores (population).
    #[serde(rename = "score/std")]
    pub score_std: f64,
    /// Global gradient norm before clipping, averaged over the window.
    pub grad_norm: f64,
    /// Learning rate of the last step of the window.
    pub lr: f64,
}

/// One evaluation log entry (held-out set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalLog {
    /// Optimizer steps done.
    pub step: usize,
    /// Epochs done, fractional.
    pub epoch: f64,
    /// Mean objective (ranking + λ penalty, unweighted).
    pub eval_loss: f64,
    /// Fraction of pairs with `r_c > r_r`.
    pub eval_accuracy: f64,
    /// Mean chosen score.
    #[serde(rename = "eval_rewards/chosen")]
    pub eval_rewards_chosen: f64,
    /// Mean rejected score.
    #[serde(rename = "eval_rewards/rejected")]
    pub eval_rewards_rejected: f64,
    /// Mean margin.
    #[serde(rename = "eval_rewards/margins")]
    pub eval_rewards_margins: f64,
    /// Mean of all scores.
    #[serde(rename = "eval_score/mean")]
    pub eval_score_mean: f64,
    /// Standard deviation of all scores.
    #[serde(rename = "eval_score/std")]
    pub eval_score_std: f64,
}

/// A line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LogEntry {
    /// Training window.
    Train(TrainLog),
    /// Held-out evaluation.
    Eval(EvalLog),
}

/// Sums over the optimizer steps since the last log entry (saved in checkpoints, so a resumed
/// run logs the same numbers as an uninterrupted one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Window {
    steps: usize,
    loss: f64,
    grad_norm: f64,
    pairs: usize,
    correct: usize,
    sum_c: f64,
    sum_r: f64,
    sum_s: f64,
    sum_s2: f64,
}

/// Mean and population standard deviation.
pub(crate) fn mean_std(xs: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut n, mut s, mut s2) = (0usize, 0.0, 0.0);
    for x in xs {
        n += 1;
        s += x;
        s2 += x * x;
    }
    if n == 0 {
        return (0.0, 0.0);
    }
    let m = s / n as f64;
    (m, (s2 / n as f64 - m * m).max(0.0).sqrt())
}

impl Window {
    /// Adds one optimizer step's loss, gradient norm and per-pair scores.
    pub fn add_step(&mut self, loss: f64, grad_norm: f64, chosen: &[f32], rejected: &[f32]) {
        self.steps += 1;
        self.loss += loss;
        self.grad_norm += grad_norm;
        for (&c, &r) in chosen.iter().zip(rejected) {
            let (c, r) = (c as f64, r as f64);
            self.pairs += 1;
            self.correct += usize::from(c > r);
            self.sum_c += c;
            self.sum_r += r;
            self.sum_s += c + r;
            self.sum_s2 += c * c + r * r;
        }
    }

    /// The log entry of the steps since the last one; empties the window.
    pub fn finish(&mut self, step: usize, epoch: f64, lr: f64) -> TrainLog {
        let w = std::mem::take(self);
        let n = w.pairs.max(1) as f64;
        let mean = w.sum_s / (2.0 * n);
        let var = (w.sum_s2 / (2.0 * n) - mean * mean).max(0.0);
        TrainLog {
            step,
            epoch,
            loss: w.loss / w.steps.max(1) as f64,
            accuracy: w.correct as f64 / n,
            rewards_chosen: w.sum_c / n,
            rewards_rejected: w.sum_r / n,
            rewards_margins: (w.sum_c - w.sum_r) / n,
            score_mean: mean,
            score_std: var.sqrt(),
            grad_norm: w.grad_norm / w.steps.max(1) as f64,
            lr,
        }
    }
}

/// Appends one entry to `metrics.jsonl` (creating it).
///
/// # Errors
/// IO errors naming the file.
pub fn append_metrics(path: &Path, entry: &LogEntry) -> Result<()> {
    Ok(append_jsonl(path, entry)?)
}

/// Rewrites `metrics.jsonl` with exactly `entries` (atomically): used on resume, so entries
/// logged after the checkpoint by an interrupted run do not appear twice.
///
/// # Errors
/// IO errors naming the file.
pub fn write_metrics(path: &Path, entries: &[LogEntry]) -> Result<()> {
    Ok(write_jsonl(path, entries)?)
}

/// Reads `metrics.jsonl`.
///
/// # Errors
/// IO errors and JSON errors naming the line.
pub fn read_metrics(path: &Path) -> Result<Vec<LogEntry>> {
    Ok(read_jsonl(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_averages_and_uses_trl_names() {
        let mut w = Window::default();
        w.add_step(0.5, 2.0, &[1.0, 0.0], &[0.0, 1.0]);
        w.add_step(0.3, 4.0, &[2.0], &[-2.0]);
        let log = w.finish(2, 0.5, 1e-5);
        assert_eq!(w, Window::default());
        assert!((log.loss - 0.4).abs() < 1e-12);
        assert!((log.grad_norm - 3.0).abs() < 1e-12);
        assert!((log.accuracy - 2.0 / 3.0).abs() < 1e-12);
        assert!((log.rewards_chosen - 1.0).abs() < 1e-12);
        assert!((log.rewards_rejected + 1.0 / 3.0).abs() < 1e-12);
        assert!((log.rewards_margins - 4.0 / 3.0).abs() < 1e-12);
        // scores 1, 0, 2, 0, 1, -2: mean 1/3, population variance (1+0+4+0+1+4)/6 - 1/9
        assert!((log.score_mean - 1.0 / 3.0).abs() < 1e-12);
        assert!((log.score_std - (10.0f64 / 6.0 - 1.0 / 9.0).sqrt()).abs() < 1e-12);
        let json = serde_json::to_value(LogEntry::Train(log)).unwrap();
        for key in [
            "loss",
            "accuracy",
            "rewards/chosen",
            "rewards/rejected",
            "rewards/margins",
            "score/mean",
            "score/std",
            "lr",
            "step",
            "epoch",
            "grad_norm",
        ] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
    }

    #[test]
    fn jsonl_roundtrip_tells_train_from_eval() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        let mut w = Window::default();
        w.add_step(0.7, 1.0, &[0.1], &[0.2]);
        let t = LogEntry::Train(w.finish(1, 0.1, 1e-4));
        let e = LogEntry::Eval(EvalLog {
            step: 1,
            epoch: 0.1,
            eval_loss: 0.69,
            eval_accuracy: 0.5,
            eval_rewards_chosen: 0.0,
            eval_rewards_rejected: 0.0,
            eval_rewards_margins: 0.0,
            eval_score_mean: 0.0,
            eval_score_std: 0.0,
        });
        append_metrics(&path, &t).unwrap();
        append_metrics(&path, &e).unwrap();
        assert_eq!(read_metrics(&path).unwrap(), vec![t.clone(), e]);
        write_metrics(&path, std::slice::from_ref(&t)).unwrap();
        assert_eq!(read_metrics(&path).unwrap(), vec![t]);
    }
}
