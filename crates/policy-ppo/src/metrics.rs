//! Per-step PPO metrics with TRL's names (`objective/kl`, `policy/clipfrac_avg`, …), appended to
//! `RUN_DIR/metrics.jsonl` one JSON object per logged step.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// One logged PPO iteration. Averages over minibatch steps are `_avg`; `objective/*` are means
/// over the rollout's responses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PpoLog {
    /// PPO iterations done.
    pub step: usize,
    /// Responses generated so far (TRL `episode`).
    pub episode: usize,
    /// Passes over the prompt set so far (TRL `epoch`).
    pub epoch: f64,
    /// Mean over responses of `Σ_t KL_t` (the configured estimator).
    #[serde(rename = "objective/kl")]
    pub kl: f64,
    /// Mean over responses of `Σ_t −log π_old(y_t)` (TRL's sampled-token entropy).
    #[serde(rename = "objective/entropy")]
    pub entropy: f64,
    /// Mean over responses of `Σ_t −β KL_t`.
    #[serde(rename = "objective/non_score_reward")]
    pub non_score_reward: f64,
    /// Mean total return: sequence reward + non-score reward.
    #[serde(rename = "objective/rlhf_reward")]
    pub rlhf_reward: f64,
    /// Mean reward-model score (after the missing-EOS penalty).
    #[serde(rename = "objective/scores")]
    pub scores: f64,
    /// Mean cached reference score `r(x, y_ref)` of the batch's prompts (baseline on).
    #[serde(rename = "objective/reference_scores")]
    pub reference_scores: Option<f64>,
    /// Mean sequence reward PPO optimised: `r(x,y) − r(x,y_ref)` with the baseline (the reward
    /// curve of the paper's Figure 4), the plain score without.
    #[serde(rename = "objective/shaped_scores")]
    pub shaped_scores: f64,
    /// β used for this rollout.
    #[serde(rename = "objective/kl_coef")]
    pub kl_coef: f64,
    /// Mean `½ (log π − log π_old)²` over minibatch steps.
    #[serde(rename = "policy/approxkl_avg")]
    pub approxkl_avg: f64,
    /// Mean policy clip fraction.
    #[serde(rename = "policy/clipfrac_avg")]
    pub clipfrac_avg: f64,
    /// Mean entropy of the policy's next-token distributions on response tokens.
    #[serde(rename = "policy/entropy_avg")]
    pub entropy_avg: f64,
    /// Mean clipped-surrogate loss.
    #[serde(rename = "loss/policy_avg")]
    pub policy_loss_avg: f64,
    /// Mean value loss.
    #[serde(rename = "loss/value_avg")]
    pub value_loss_avg: f64,
    /// Mean NTP loss (NLL per SFT response token), when the regulariser is on.
    #[serde(rename = "loss/ntp_avg")]
    pub ntp_loss_avg: Option<f64>,
    /// Mean ratio `π / π_old`.
    #[serde(rename = "val/ratio")]
    pub ratio: f64,
    /// Mean value clip fraction.
    #[serde(rename = "val/clipfrac_avg")]
    pub value_clipfrac_avg: f64,
    /// Responses that ended on an EOS.
    #[serde(rename = "val/num_eos_tokens")]
    pub num_eos_tokens: usize,
    /// Mean response length in tokens.
    #[serde(rename = "val/response_length")]
    pub response_length: f64,
    /// Mean actor gradient norm (before clipping).
    #[serde(rename = "grad_norm/policy")]
    pub grad_norm_policy: f64,
    /// Mean critic gradient norm (before clipping).
    #[serde(rename = "grad_norm/value")]
    pub grad_norm_value: f64,
    /// Actor learning rate of the last minibatch step.
    pub lr: f64,
    /// With `num_generations ≥ 2`: the fraction of prompts whose responses all got the same
    /// sequence reward (TRL's name; their group-relative advantages are 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frac_reward_zero_std: Option<f64>,
    /// Rollout wall time (generation, reference, values, reward), seconds.
    #[serde(rename = "time/rollout")]
    pub time_rollout: f64,
    /// Update wall time (all PPO epochs), seconds.
    #[serde(rename = "time/update")]
    pub time_update: f64,
}

/// Appends one entry to `metrics.jsonl` (creating it).
///
/// # Errors
/// IO errors naming the file.
pub fn append_log(path: &Path, entry: &PpoLog) -> Result<()> {
    Ok(rlhf_train::append_jsonl(path, entry)?)
}

/// Rewrites `metrics.jsonl` with exactly `entries` (atomically; used on resume).
///
/// # Errors
/// IO errors naming the file.
pub fn write_logs(path: &Path, entries: &[PpoLog]) -> Result<()> {
    Ok(rlhf_train::write_jsonl(path, entries)?)
}

/// Reads `metrics.jsonl`.
///
/// # Errors
/// IO errors and [`PpoError::Json`](crate::PpoError::Json) naming the line.
pub fn read_logs(path: &Path) -> Result<Vec<PpoLog>> {
    Ok(rlhf_train::read_jsonl(path)?)
}
