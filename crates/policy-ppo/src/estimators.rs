//! The advantage estimators beside GAE (`adv_estimator`, `docs/estimators.md`), as pure host
//! functions in float64 over a rollout of `k` responses per prompt.
//!
//! Rows are grouped prompt-major: rows `g·k .. (g+1)·k` are the `k` responses of prompt `g`
//! (a data-parallel rank holds whole groups). Per-token quantities are row-major
//! `[rows, width]`, zero past each row's length. The per-token rewards are the PPO ones
//! ([`crate::token_rewards`]): `−β·KL_t` on every response token plus the sequence reward on
//! the last, so every estimator sees the same KL penalty; a response's return `R` is their
//! sum.
//!
//! | estimator | advantage of every token of response `i` of group `g` |
//! | --- | --- |
//! | GRPO (TRL) | `(R_i − mean_g R) / (std_g R + 1e-4)`, std unbiased; without `scale_rewards` only centred |
//! | RLOO (TRL) | `R_i − (Σ_g R − R_i) / (k − 1)` |
//! | REINFORCE++ (veRL) | token `t`: `G_t = Σ_{s≥t} γ^{s−t} r_s`, whitened over every real token of the batch |
//! | ReMax (veRL) | token `t`: `Σ_{s≥t} r_s − b_g`, `b_g` the reward of the greedy response to prompt `g` |
//!
//! Golden values: `tests/golden/estimators.py` (standard-library Python, independent of this
//! file) on two prompts with `k = 3`, one group with equal rewards.

use crate::advantage::Advantages;
use crate::config::{AdvEstimator, PpoConfig};
use crate::error::{PpoError, Result};

/// GRPO's constant added to the group standard deviation (TRL `GRPOTrainer`).
pub const GRPO_STD_EPS: f64 = 1e-4;

fn check_groups(n: usize, k: usize, what: &str) -> Result<()> {
    if k == 0 || !n.is_multiple_of(k) {
        return Err(PpoError::Data(format!(
            "{what}: {n} rows are not whole groups of k = {k}"
        )));
    }
    Ok(())
}

/// Mean and unbiased standard deviation of one group (std 0 for a group of one).
fn mean_std(g: &[f64]) -> (f64, f64) {
    let k = g.len() as f64;
    let m = g.iter().sum::<f64>() / k;
    if g.len() < 2 {
        return (m, 0.0);
    }
    let var = g.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (k - 1.0);
    (m, var.sqrt())
}

/// GRPO's advantage of every row from its return `returns[r]` (see the module table).
///
/// # Errors
/// [`PpoError::Data`] when the rows are not whole groups of `k`.
pub fn grpo_advantages(returns: &[f64], k: usize, scale_rewards: bool) -> Result<Vec<f64>> {
    check_groups(returns.len(), k, "GRPO")?;
    Ok(returns
        .chunks(k)
        .flat_map(|g| {
            let (m, sd) = mean_std(g);
            g.iter().map(move |x| {
                if scale_rewards {
                    (x - m) / (sd + GRPO_STD_EPS)
                } else {
                    x - m
                }
            })
        })
        .collect())
}

/// RLOO's advantage of every row: its return minus the mean return of the other `k − 1`
/// responses to the same prompt.
///
/// # Errors
/// [`PpoError::Data`] when the rows are not whole groups of `k`, or `k < 2`.
pub fn rloo_advantages(returns: &[f64], k: usize) -> Result<Vec<f64>> {
    check_groups(returns.len(), k, "RLOO")?;
    if k < 2 {
        return Err(PpoError::Data(
            "RLOO needs k >= 2 responses per prompt".into(),
        ));
    }
    Ok(returns
        .chunks(k)
        .flat_map(|g| {
            let s: f64 = g.iter().sum();
            g.iter().map(move |x| x - (s - x) / (k - 1) as f64)
        })
        .collect())
}

/// The fraction of groups whose `k` rewards are all equal (standard deviation below 1e-8,
/// TRL's `frac_reward_zero_std`): their group-relative advantages are 0, so they teach
/// nothing.
///
/// # Errors
/// [`PpoError::Data`] when the rows are not whole groups of `k`.
pub fn frac_reward_zero_std(rewards: &[f64], k: usize) -> Result<f64> {
    check_groups(rewards.len(), k, "frac_reward_zero_std")?;
    let groups = rewards.len() / k;
    if groups == 0 {
        return Ok(0.0);
    }
    let zero = rewards.chunks(k).filter(|g| mean_std(g).1 < 1e-8).count();
    Ok(zero as f64 / groups as f64)
}

/// The discounted reward-to-go `G_t = Σ_{s≥t} γ^{s−t} r_s` of every real token,
/// `[lens.len(), width]` row-major (zero past each length).
pub fn reward_to_go(token_rewards: &[f32], lens: &[usize], width: usize, gamma: f64) -> Vec<f64> {
    let mut out = vec![0.0; lens.len() * width];
    for (r, &len) in lens.iter().enumerate() {
        let mut acc = 0.0;
        for t in (0..len).rev() {
            acc = token_rewards[r * width + t] as f64 + gamma * acc;
            out[r * width + t] = acc;
        }
    }
    out
}

/// Every real token of row `r` gets `per_row[r]`, `[lens.len(), width]` row-major.
pub fn broadcast(per_row: &[f64], lens: &[usize], width: usize) -> Vec<f64> {
    let mut out = vec![0.0; lens.len() * width];
    for (r, (&len, &a)) in lens.iter().zip(per_row).enumerate() {
        out[r * width..r * width + len].fill(a);
    }
    out
}

/// The return of every row: the sum of its per-token rewards.
pub fn row_returns(token_rewards: &[f32], lens: &[usize], width: usize) -> Vec<f64> {
    lens.iter()
        .enumerate()
        .map(|(r, &len)| {
            token_rewards[r * width..r * width + len]
                .iter()
                .map(|&x| x as f64)
                .sum()
        })
        .collect()
}

/// The advantages of a critic-free estimator for this rank's rows (whole groups of
/// `cfg.num_generations`): `token_rewards` as [`crate::token_rewards`] gives them,
/// `greedy_baselines` one ReMax baseline per prompt (required for `remax`). REINFORCE++'s
/// returns come back *unwhitened*: whitening is over the whole batch, across ranks, and the
/// caller does it. `returns` (the critic's targets under GAE) equal the advantages.
///
/// # Errors
/// [`PpoError::Data`] on inconsistent sizes or a missing ReMax baseline; GAE is not handled
/// here (the caller runs [`crate::compute_gae`]).
pub fn critic_free_advantages(
    cfg: &PpoConfig,
    token_rewards: &[f32],
    lens: &[usize],
    width: usize,
    greedy_baselines: Option<&[f64]>,
) -> Result<Advantages> {
    let k = cfg.num_generations;
    if token_rewards.len() != lens.len() * width {
        return Err(PpoError::Data(format!(
            "advantages: {} token rewards for {} rows of width {width}",
            token_rewards.len(),
            lens.len()
        )));
    }
    let adv = match cfg.adv_estimator {
        AdvEstimator::Grpo => broadcast(
            &grpo_advantages(
                &row_returns(token_rewards, lens, width),
                k,
                cfg.scale_rewards,
            )?,
            lens,
            width,
        ),
        AdvEstimator::Rloo => broadcast(
            &rloo_advantages(&row_returns(token_rewards, lens, width), k)?,
            lens,
            width,
        ),
        AdvEstimator::ReinforcePp => reward_to_go(token_rewards, lens, width, cfg.gamma),
        AdvEstimator::Remax => {
            check_groups(lens.len(), k, "ReMax")?;
            let b = greedy_baselines
                .filter(|b| b.len() * k == lens.len())
                .ok_or_else(|| {
                    PpoError::Data(format!(
                        "ReMax needs one greedy baseline per prompt ({} prompts)",
                        lens.len() / k
                    ))
                })?;
            let rows: Vec<f64> = (0..lens.len()).map(|r| b[r / k]).collect();
            let mut g = reward_to_go(token_rewards, lens, width, 1.0);
            let base = broadcast(&rows, lens, width);
            g.iter_mut().zip(base).for_each(|(x, b)| *x -= b);
            g
        }
        AdvEstimator::Gae => {
            return Err(PpoError::Data(
                "critic_free_advantages: gae uses the critic (compute_gae)".into(),
            ));
        }
    };
    let advantages: Vec<f32> = adv.iter().map(|&x| x as f32).collect();
    Ok(Advantages {
        returns: advantages.clone(),
        advantages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of tests/golden/estimators.py: two prompts, k = 3, width 3.
    const LENS: [usize; 6] = [2, 1, 3, 1, 2, 2];
    const W: usize = 3;

    fn token_rewards() -> Vec<f32> {
        let rows: [&[f32]; 6] = [
            &[-0.1, -0.2 + 1.0],
            &[0.0],
            &[-0.05, 0.0, -0.1 + 0.5],
            &[2.0],
            &[0.0, 2.0],
            &[0.0, 2.0],
        ];
        let mut out = vec![0.0; 6 * W];
        for (r, row) in rows.iter().enumerate() {
            out[r * W..r * W + row.len()].copy_from_slice(row);
        }
        out
    }

    fn cfg(est: AdvEstimator) -> PpoConfig {
        PpoConfig {
            adv_estimator: est,
            num_generations: 3,
            ..PpoConfig::default()
        }
    }

    fn close(got: &[f32], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((*g as f64 - w).abs() < tol, "{i}: got {g}, want {w}");
        }
    }

    /// Per-row golden values laid out `[6, 3]`.
    fn rows(v: [&[f64]; 6]) -> Vec<f64> {
        let mut out = vec![0.0; 6 * W];
        for (r, row) in v.iter().enumerate() {
            out[r * W..r * W + row.len()].copy_from_slice(row);
        }
        out
    }

    #[test]
    fn golden_grpo_and_rloo_with_a_zero_std_group() {
        let tr = token_rewards();
        let ret = row_returns(&tr, &LENS, W);
        for (g, w) in ret.iter().zip([0.7, 0.0, 0.35, 2.0, 2.0, 2.0]) {
            assert!((g - w).abs() < 1e-6);
        }
        let a = critic_free_advantages(&cfg(AdvEstimator::Grpo), &tr, &LENS, W, None).unwrap();
        let g = 0.999714367324;
        close(
            &a.advantages,
            &rows([&[g, g], &[-g], &[0.0; 3], &[0.0], &[0.0; 2], &[0.0; 2]]),
            1e-6,
        );
        let no_scale = grpo_advantages(&ret, 3, false).unwrap();
        assert!((no_scale[0] - 0.35).abs() < 1e-6 && (no_scale[1] + 0.35).abs() < 1e-6);
        let a = critic_free_advantages(&cfg(AdvEstimator::Rloo), &tr, &LENS, W, None).unwrap();
        close(
            &a.advantages,
            &rows([
                &[0.525, 0.525],
                &[-0.525],
                &[0.0; 3],
                &[0.0],
                &[0.0; 2],
                &[0.0; 2],
            ]),
            1e-6,
        );
        let seq = [1.0, 0.0, 0.5, 2.0, 2.0, 2.0];
        assert_eq!(frac_reward_zero_std(&seq, 3).unwrap(), 0.5);
        assert!(grpo_advantages(&ret, 4, true).is_err());
        assert!(rloo_advantages(&ret[..2], 1).is_err());
    }

    #[test]
    fn golden_reinforce_pp_returns_and_remax() {
        let tr = token_rewards();
        // REINFORCE++'s returns before the batch whitening (the caller's), γ = 0.9.
        let c = PpoConfig {
            gamma: 0.9,
            ..cfg(AdvEstimator::ReinforcePp)
        };
        let a = critic_free_advantages(&c, &tr, &LENS, W, None).unwrap();
        let want = rows([
            &[0.62, 0.8],
            &[0.0],
            &[0.274, 0.36, 0.4],
            &[2.0],
            &[1.8, 2.0],
            &[1.8, 2.0],
        ]);
        close(&a.advantages, &want, 1e-6);
        // Whitened as the loop does (unbiased variance over the 11 real tokens, + 1e-8).
        let real: Vec<f64> = (0..6)
            .flat_map(|r| (0..LENS[r]).map(move |t| r * W + t))
            .map(|i| a.advantages[i] as f64)
            .collect();
        let w = rlhf_debias::whiten(&real, true, 1e-8).unwrap();
        let golden = [
            -0.583043809250,
            -0.362480809190,
            -1.342760809457,
            -1.007014909366,
            -0.901634809337,
            -0.852620809323,
            1.107939191211,
            0.862869191144,
            1.107939191211,
            0.862869191144,
            1.107939191211,
        ];
        for (g, w) in w.iter().zip(golden) {
            assert!((g - w).abs() < 1e-5, "{g} vs {w}");
        }

        let a = critic_free_advantages(&cfg(AdvEstimator::Remax), &tr, &LENS, W, Some(&[0.5, 2.0]))
            .unwrap();
        let want = rows([
            &[0.2, 0.3],
            &[-0.5],
            &[-0.15, -0.1, -0.1],
            &[0.0],
            &[0.0, 0.0],
            &[0.0, 0.0],
        ]);
        close(&a.advantages, &want, 1e-6);
        assert!(critic_free_advantages(&cfg(AdvEstimator::Remax), &tr, &LENS, W, None).is_err());
        assert!(critic_free_advantages(&cfg(AdvEstimator::Gae), &tr, &LENS, W, None).is_err());
    }
}
