//! From reward-model scores to the per-token rewards PPO optimises (SPEC §A.4.2–A.4.3):
//!
//! 1. the missing-EOS penalty (TRL `missing_eos_penalty`): a response that hit
//!    `max_new_tokens` without an EOS has its score lowered (the cached reference response is
//!    penalised by the same rule, so `r̃ ≈ 0` still holds at the start);
//! 2. shaping with `rlhf_debias::shape_rewards`: the reference reward `r(x,y) − r(x,y_ref)`,
//!    optional running normalisation, optional clipping;
//! 3. per token: `r_t = −β · KL_t` on every response token, plus the sequence reward on the
//!    **last real token** of the response (the EOS when there is one).

use rlhf_debias::{RunningMeanStd, ShapingConfig, clip_rewards, shape_rewards};

use crate::error::{PpoError, Result};
use crate::kl::KlEstimator;

/// Scores after the missing-EOS penalty: `score − penalty` where `finished` is false.
pub fn apply_eos_penalty(scores: &[f32], finished: &[bool], penalty: Option<f64>) -> Vec<f64> {
    scores
        .iter()
        .zip(finished)
        .map(|(&s, &f)| match penalty {
            Some(p) if !f => s as f64 - p,
            _ => s as f64,
        })
        .collect()
}

/// The sequence reward of every row: penalty (on both the score and the reference score),
/// then [`shape_rewards`] (reference baseline → running norm → clip).
///
/// `reference` holds the cached reference scores and whether each reference response ended on
/// an EOS; it is required when `shaping.reference_baseline` is on.
///
/// # Errors
/// Shaping errors (missing reference scores, non-finite scores, bad settings).
pub fn sequence_rewards(
    scores: &[f32],
    finished: &[bool],
    reference: Option<(&[f32], &[bool])>,
    missing_eos_penalty: Option<f64>,
    shaping: &ShapingConfig,
    running: &mut RunningMeanStd,
) -> Result<Vec<f64>> {
    let s = apply_eos_penalty(scores, finished, missing_eos_penalty);
    let r = reference.map(|(rs, rf)| apply_eos_penalty(rs, rf, missing_eos_penalty));
    Ok(shape_rewards(&s, r.as_deref(), shaping, running)?)
}

/// ReMax's baselines, shaped like the sequence rewards they are subtracted from: the
/// missing-EOS penalty, then (with `shaping.running_norm`) the running statistics *as they
/// stand* (the rollout's rewards updated them; the baselines do not), then the clip. No
/// reference baseline (ReMax refuses it). Per prompt, so a data-parallel rank shaping its
/// own prompts' baselines gets what one process gets.
///
/// # Errors
/// Non-finite scores, bad settings.
pub fn baseline_rewards(
    scores: &[f32],
    finished: &[bool],
    missing_eos_penalty: Option<f64>,
    shaping: &ShapingConfig,
    running: &RunningMeanStd,
) -> Result<Vec<f64>> {
    let mut b = apply_eos_penalty(scores, finished, missing_eos_penalty);
    if shaping.running_norm {
        b = running.normalize(&b, shaping.running_norm_shift_mean, shaping.eps)?;
    }
    if let Some(c) = shaping.clip {
        b = clip_rewards(&b, c)?;
    }
    Ok(b)
}

/// Per-token rewards and KL of a batch, row-major `[rows, width]`, zero past each row's length.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRewards {
    /// `r_t`: `−β KL_t`, plus the sequence reward at the row's last real token.
    pub rewards: Vec<f32>,
    /// `KL_t` (the estimator's value per token).
    pub kl: Vec<f32>,
    /// Per row: `Σ_t KL_t` (TRL's `objective/kl` averages this).
    pub kl_sum: Vec<f64>,
    /// Per row: `Σ_t −β KL_t` (TRL's `objective/non_score_reward`).
    pub non_score: Vec<f64>,
}

/// Assembles per-token rewards from the rollout's log-probs (one vector per row, its length
/// being the row's response length) and the sequence rewards.
///
/// # Errors
/// [`PpoError::Data`] when the rows disagree in number or length, or a row is wider than
/// `width`.
pub fn token_rewards(
    logprobs: &[Vec<f32>],
    ref_logprobs: &[Vec<f32>],
    seq_rewards: &[f64],
    width: usize,
    kl_coef: f64,
    estimator: KlEstimator,
) -> Result<TokenRewards> {
    let rows = logprobs.len();
    if ref_logprobs.len() != rows || seq_rewards.len() != rows {
        return Err(PpoError::Data(format!(
            "token rewards: {rows} log-prob rows, {} reference rows, {} sequence rewards",
            ref_logprobs.len(),
            seq_rewards.len()
        )));
    }
    let mut out = TokenRewards {
        rewards: vec![0.0; rows * width],
        kl: vec![0.0; rows * width],
        kl_sum: vec![0.0; rows],
        non_score: vec![0.0; rows],
    };
    for r in 0..rows {
        let (lp, rp) = (&logprobs[r], &ref_logprobs[r]);
        if lp.len() != rp.len() || lp.len() > width {
            return Err(PpoError::Data(format!(
                "token rewards: row {r} has {} log-probs, {} reference log-probs, width {width}",
                lp.len(),
                rp.len()
            )));
        }
        for t in 0..lp.len() {
            let kl = estimator.estimate(lp[t] as f64, rp[t] as f64);
            let mut reward = -kl_coef * kl;
            out.kl_sum[r] += kl;
            out.non_score[r] += reward;
            if t + 1 == lp.len() {
                reward += seq_rewards[r];
            }
            out.kl[r * width + t] = kl as f32;
            out.rewards[r * width + t] = reward as f32;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baselines_are_shaped_without_updating_the_running_statistics() {
        let mut running = RunningMeanStd::new();
        running.update(&[1.0, 3.0]).unwrap();
        let shaping = ShapingConfig {
            reference_baseline: false,
            running_norm: true,
            clip: Some(1.0),
            ..ShapingConfig::default()
        };
        let before = running;
        // Scores 4 (finished) and 4 − 1 = 3 (penalised), normalised by the statistics of
        // [1, 3] as they stand, then clipped to ±1.
        let b =
            baseline_rewards(&[4.0, 4.0], &[true, false], Some(1.0), &shaping, &running).unwrap();
        assert_eq!(running, before);
        let want = running
            .normalize(&[4.0, 3.0], shaping.running_norm_shift_mean, shaping.eps)
            .unwrap();
        assert_eq!(
            b,
            want.iter()
                .map(|x: &f64| x.clamp(-1.0, 1.0))
                .collect::<Vec<_>>()
        );
        assert!(b.iter().all(|x| x.abs() <= 1.0));
        let plain = ShapingConfig {
            reference_baseline: false,
            ..ShapingConfig::default()
        };
        assert_eq!(
            baseline_rewards(&[4.0, 4.0], &[true, false], Some(1.0), &plain, &running).unwrap(),
            vec![4.0, 3.0]
        );
    }

    #[test]
    fn penalty_hits_only_unfinished_rows_and_the_reference_alike() {
        assert_eq!(
            apply_eos_penalty(&[1.0, 2.0], &[true, false], Some(1.5)),
            vec![1.0, 0.5]
        );
        assert_eq!(
            apply_eos_penalty(&[1.0, 2.0], &[true, false], None),
            vec![1.0, 2.0]
        );
        let mut st = RunningMeanStd::new();
        let shaping = ShapingConfig::default();
        // Row 0 finished, its reference did not: 3 - (1 - 2) = 4. Row 1: (2 - 2) - 0.5 = -0.5.
        let r = sequence_rewards(
            &[3.0, 2.0],
            &[true, false],
            Some((&[1.0, 0.5], &[false, true])),
            Some(2.0),
            &shaping,
            &mut st,
        )
        .unwrap();
        assert_eq!(r, vec![4.0, -0.5]);
        // The ablation: no baseline, raw (penalised) scores.
        let off = ShapingConfig {
            reference_baseline: false,
            ..ShapingConfig::default()
        };
        let r = sequence_rewards(&[3.0, 2.0], &[true, false], None, Some(2.0), &off, &mut st);
        assert_eq!(r.unwrap(), vec![3.0, 0.0]);
        assert!(sequence_rewards(&[3.0], &[true], None, None, &shaping, &mut st).is_err());
    }

    // Reference (float64 by hand): β = 0.1, k1.
    //   row 0: lp = [-1, -2, -0.5], ref = [-1.5, -1, -0.5] -> kl = [0.5, -1, 0]
    //          r = [-0.05, 0.1, 0 + 2.0] ; kl_sum = -0.5 ; non_score = 0.05
    //   row 1: lp = [-0.25], ref = [-0.75] -> kl = [0.5]; r = [-0.05 - 1.0]
    #[test]
    fn golden_token_rewards() {
        let out = token_rewards(
            &[vec![-1.0, -2.0, -0.5], vec![-0.25]],
            &[vec![-1.5, -1.0, -0.5], vec![-0.75]],
            &[2.0, -1.0],
            4,
            0.1,
            KlEstimator::K1,
        )
        .unwrap();
        let want = [-0.05, 0.1, 2.0, 0.0, -1.05, 0.0, 0.0, 0.0];
        for (a, b) in out.rewards.iter().zip(want) {
            assert!((*a as f64 - b).abs() < 1e-7, "{:?}", out.rewards);
        }
        assert_eq!(out.kl, vec![0.5, -1.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0]);
        assert!((out.kl_sum[0] + 0.5).abs() < 1e-12);
        assert!((out.non_score[0] - 0.05).abs() < 1e-12);
        assert!((out.non_score[1] + 0.05).abs() < 1e-12);
        // With β = 0 the rewards are the sequence reward at the last token only.
        let out = token_rewards(
            &[vec![-1.0; 3]],
            &[vec![-9.0; 3]],
            &[0.7],
            3,
            0.0,
            KlEstimator::K3,
        )
        .unwrap();
        assert_eq!(out.rewards, vec![0.0, 0.0, 0.7]);
        assert!(
            token_rewards(
                &[vec![0.0; 5]],
                &[vec![0.0; 5]],
                &[0.0],
                4,
                0.1,
                KlEstimator::K1
            )
            .is_err()
        );
    }
}
