//! TRL-named DPO metrics and `metrics.jsonl`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// One training log entry, averaged over the steps since the previous one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainLog {
    /// Optimizer steps done.
    pub step: usize,
    /// Epochs done (pairs consumed / training pairs).
    pub epoch: f64,
    /// Mean loss.
    pub loss: f64,
    /// Mean implicit reward of chosen replies, β (log π − log π_ref).
    #[serde(rename = "rewards/chosen")]
    pub rewards_chosen: f64,
    /// Mean implicit reward of rejected replies.
    #[serde(rename = "rewards/rejected")]
    pub rewards_rejected: f64,
    /// Fraction of pairs whose chosen reward is higher.
    #[serde(rename = "rewards/accuracies")]
    pub rewards_accuracies: f64,
    /// Mean reward margin.
    #[serde(rename = "rewards/margins")]
    pub rewards_margins: f64,
    /// Mean summed log π of chosen replies.
    #[serde(rename = "logps/chosen")]
    pub logps_chosen: f64,
    /// Mean summed log π of rejected replies.
    #[serde(rename = "logps/rejected")]
    pub logps_rejected: f64,
    /// Global gradient norm before clipping (mean over the window).
    pub grad_norm: f64,
    /// Learning rate of the last step.
    pub learning_rate: f64,
}

/// One held-out evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalLog {
    /// Optimizer steps done.
    pub step: usize,
    /// Epochs done.
    pub epoch: f64,
    /// Mean loss.
    pub eval_loss: f64,
    /// Mean chosen reward.
    #[serde(rename = "eval_rewards/chosen")]
    pub eval_rewards_chosen: f64,
    /// Mean rejected reward.
    #[serde(rename = "eval_rewards/rejected")]
    pub eval_rewards_rejected: f64,
    /// Preference accuracy of the implicit reward.
    #[serde(rename = "eval_rewards/accuracies")]
    pub eval_rewards_accuracies: f64,
    /// Mean margin.
    #[serde(rename = "eval_rewards/margins")]
    pub eval_rewards_margins: f64,
    /// Mean summed log π of chosen replies.
    #[serde(rename = "eval_logps/chosen")]
    pub eval_logps_chosen: f64,
    /// Mean summed log π of rejected replies.
    #[serde(rename = "eval_logps/rejected")]
    pub eval_logps_rejected: f64,
}

/// A line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LogEntry {
    /// Training.
    Train(TrainLog),
    /// Evaluation.
    Eval(EvalLog),
}

/// Per-pair quantities of some steps, reduced into a log entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Window {
    steps: usize,
    loss: f64,
    grad_norm: f64,
    pairs: usize,
    chosen: f64,
    rejected: f64,
    correct: usize,
    logp_c: f64,
    logp_r: f64,
}

/// Host copies of a batch's per-pair quantities.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PairStats {
    /// Implicit chosen rewards.
    pub chosen_rewards: Vec<f32>,
    /// Implicit rejected rewards.
    pub rejected_rewards: Vec<f32>,
    /// Policy log-probs of chosen replies.
    pub logps_chosen: Vec<f32>,
    /// Policy log-probs of rejected replies.
    pub logps_rejected: Vec<f32>,
}

impl PairStats {
    /// Appends another batch.
    pub fn extend(&mut self, o: &PairStats) {
        self.chosen_rewards.extend(&o.chosen_rewards);
        self.rejected_rewards.extend(&o.rejected_rewards);
        self.logps_chosen.extend(&o.logps_chosen);
        self.logps_rejected.extend(&o.logps_rejected);
    }

    /// Fraction of pairs whose chosen reward is strictly higher.
    pub fn accuracy(&self) -> f64 {
        let n = self.chosen_rewards.len().max(1);
        let k = self
            .chosen_rewards
            .iter()
            .zip(&self.rejected_rewards)
            .filter(|(c, r)| c > r)
            .count();
        k as f64 / n as f64
    }
}

fn mean(v: &[f32]) -> f64 {
    v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64
}

impl Window {
    /// Adds one optimizer step.
    pub fn add_step(&mut self, loss: f64, grad_norm: f64, s: &PairStats) {
        self.steps += 1;
        self.loss += loss;
        self.grad_norm += grad_norm;
        self.pairs += s.chosen_rewards.len();
        self.chosen += s.chosen_rewards.iter().map(|&x| x as f64).sum::<f64>();
        self.rejected += s.rejected_rewards.iter().map(|&x| x as f64).sum::<f64>();
        self.correct += s
            .chosen_rewards
            .iter()
            .zip(&s.rejected_rewards)
            .filter(|(c, r)| c > r)
            .count();
        self.logp_c += s.logps_chosen.iter().map(|&x| x as f64).sum::<f64>();
        self.logp_r += s.logps_rejected.iter().map(|&x| x as f64).sum::<f64>();
    }

    /// The entry for the steps so far; resets the window.
    pub fn finish(&mut self, step: usize, epoch: f64, lr: f64) -> TrainLog {
        let s = self.steps.max(1) as f64;
        let p = self.pairs.max(1) as f64;
        let log = TrainLog {
            step,
            epoch,
            loss: self.loss / s,
            rewards_chosen: self.chosen / p,
            rewards_rejected: self.rejected / p,
            rewards_accuracies: self.correct as f64 / p,
            rewards_margins: (self.chosen - self.rejected) / p,
            logps_chosen: self.logp_c / p,
            logps_rejected: self.logp_r / p,
            grad_norm: self.grad_norm / s,
            learning_rate: lr,
        };
        *self = Window::default();
        log
    }
}

/// An evaluation entry from per-pair statistics and the mean loss.
pub fn eval_log(step: usize, epoch: f64, loss: f64, s: &PairStats) -> EvalLog {
    let c = mean(&s.chosen_rewards);
    let r = mean(&s.rejected_rewards);
    EvalLog {
        step,
        epoch,
        eval_loss: loss,
        eval_rewards_chosen: c,
        eval_rewards_rejected: r,
        eval_rewards_accuracies: s.accuracy(),
        eval_rewards_margins: c - r,
        eval_logps_chosen: mean(&s.logps_chosen),
        eval_logps_rejected: mean(&s.logps_rejected),
    }
}

/// Appends one entry to `metrics.jsonl`.
///
/// # Errors
/// IO errors naming the file.
pub fn append_metrics(path: &Path, entry: &LogEntry) -> Result<()> {
    Ok(rlhf_train::append_jsonl(path, entry)?)
}

/// Rewrites `metrics.jsonl` with `entries` (atomically; used when a run resumes).
///
/// # Errors
/// IO errors naming the file.
pub fn write_metrics(path: &Path, entries: &[LogEntry]) -> Result<()> {
    Ok(rlhf_train::write_jsonl(path, entries)?)
}

/// Reads `metrics.jsonl`.
///
/// # Errors
/// IO errors, and a malformed line named by its number.
pub fn read_metrics(path: &Path) -> Result<Vec<LogEntry>> {
    Ok(rlhf_train::read_jsonl(path)?)
}
