//! Generalised advantage estimation (Schulman et al. 2016) over the response tokens of a
//! rollout, on the host in float64.
//!
//! Conventions (TRL's `PPOTrainer`): position `t` of a row is the state before response token
//! `t`; `values[t]` is the critic's value there; the value after the last real token is 0
//! (the episode ends), and padding positions get advantage and return 0.

use crate::error::{PpoError, Result};

/// Advantages and returns of a batch, row-major `[rows, width]`, zero past each row's length.
#[derive(Debug, Clone, PartialEq)]
pub struct Advantages {
    /// `Â_t = Σ_l (γλ)^l δ_{t+l}`, `δ_t = r_t + γ V_{t+1} − V_t`.
    pub advantages: Vec<f32>,
    /// `Â_t + V_t`: the critic's regression target.
    pub returns: Vec<f32>,
}

/// GAE of one row of `len` real tokens.
///
/// # Panics
/// If `rewards` or `values` is shorter than `len`.
pub fn gae_row(rewards: &[f32], values: &[f32], len: usize, gamma: f64, lam: f64) -> Vec<f64> {
    let mut adv = vec![0.0; len];
    let mut last = 0.0f64;
    for t in (0..len).rev() {
        let next = if t + 1 < len {
            values[t + 1] as f64
        } else {
            0.0
        };
        let delta = rewards[t] as f64 + gamma * next - values[t] as f64;
        last = delta + gamma * lam * last;
        adv[t] = last;
    }
    adv
}

/// GAE of every row of a `[lens.len(), width]` batch.
///
/// With `whiten`, advantages are whitened over all real tokens of the batch (TRL
/// `masked_whiten`, unbiased variance, mean shifted to 0) *after* the returns are computed, as
/// TRL does; ChatGLM-RLHF turns this off (SPEC §A.4.2) and so does the default config.
///
/// # Errors
/// [`PpoError::Data`] when the inputs do not have `lens.len() × width` entries or a length
/// exceeds `width`; whitening errors (fewer than 2 real tokens).
pub fn compute_gae(
    rewards: &[f32],
    values: &[f32],
    lens: &[usize],
    width: usize,
    gamma: f64,
    lam: f64,
    whiten: bool,
) -> Result<Advantages> {
    let n = lens.len() * width;
    if rewards.len() != n || values.len() != n {
        return Err(PpoError::Data(format!(
            "GAE: {} rewards and {} values for {} rows of width {width}",
            rewards.len(),
            values.len(),
            lens.len()
        )));
    }
    if let Some(&l) = lens.iter().find(|&&l| l > width) {
        return Err(PpoError::Data(format!(
            "GAE: row length {l} exceeds width {width}"
        )));
    }
    let mut advantages = vec![0.0f32; n];
    let mut returns = vec![0.0f32; n];
    for (r, &len) in lens.iter().enumerate() {
        let row = r * width..r * width + width;
        let adv = gae_row(&rewards[row.clone()], &values[row.clone()], len, gamma, lam);
        for (t, a) in adv.iter().enumerate() {
            advantages[r * width + t] = *a as f32;
            returns[r * width + t] = (*a + values[r * width + t] as f64) as f32;
        }
    }
    if whiten {
        let real: Vec<f64> = lens
            .iter()
            .enumerate()
            .flat_map(|(r, &len)| (0..len).map(move |t| r * width + t))
            .map(|i| advantages[i] as f64)
            .collect();
        let w = rlhf_debias::whiten(&real, true, 1e-8)?;
        let mut k = 0;
        for (r, &len) in lens.iter().enumerate() {
            for t in 0..len {
                advantages[r * width + t] = w[k] as f32;
                k += 1;
            }
        }
    }
    Ok(Advantages {
        advantages,
        returns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference, Python 3 float64 (TRL's loop with values/rewards zeroed past the length):
    //   r = [0.1, -0.2, 1.5];  v = [0.5, 0.4, 0.3];  g, l = 0.9, 0.8
    //   d2 = 1.5 + 0 - 0.3            = 1.2
    //   d1 = -0.2 + 0.9*0.3 - 0.4     = -0.33
    //   d0 = 0.1 + 0.9*0.4 - 0.5      = -0.04
    //   A2 = 1.2; A1 = -0.33 + 0.72*1.2 = 0.534; A0 = -0.04 + 0.72*0.534 = 0.34448
    //   returns = A + v = [0.84448, 0.934, 1.5]
    #[test]
    fn golden_gae() {
        let out = compute_gae(
            &[0.1, -0.2, 1.5, 9.0, 0.3, 0.0, 0.0, 0.0],
            &[0.5, 0.4, 0.3, 7.0, 0.2, 0.0, 0.0, 0.0],
            &[3, 1],
            4,
            0.9,
            0.8,
            false,
        )
        .unwrap();
        let want_a = [0.34448, 0.534, 1.2, 0.0, 0.1, 0.0, 0.0, 0.0];
        let want_r = [0.84448, 0.934, 1.5, 0.0, 0.3, 0.0, 0.0, 0.0];
        for i in 0..8 {
            assert!((out.advantages[i] - want_a[i]).abs() < 1e-6, "{i}: {out:?}");
            assert!((out.returns[i] - want_r[i]).abs() < 1e-6, "{i}: {out:?}");
        }
    }

    // γ = λ = 1: the advantage is the reward-to-go minus the value (Monte Carlo).
    #[test]
    fn gamma_lambda_one_is_reward_to_go() {
        let r = [1.0, 2.0, 3.0, 4.0];
        let v = [0.5, -1.0, 2.0, 0.25];
        let a = gae_row(&r, &v, 4, 1.0, 1.0);
        let togo = [10.0, 9.0, 7.0, 4.0];
        for t in 0..4 {
            assert!((a[t] - (togo[t] - v[t] as f64)).abs() < 1e-12);
        }
        // λ = 0: one-step TD errors.
        let a = gae_row(&r, &v, 4, 1.0, 0.0);
        assert!((a[0] - (1.0 - 1.0 - 0.5)).abs() < 1e-12);
        assert!((a[3] - (4.0 - 0.25)).abs() < 1e-12);
    }

    #[test]
    fn whitening_is_over_real_tokens_only() {
        let out = compute_gae(
            &[1.0, 0.0, 0.0, 2.0, 0.0, 0.0],
            &[0.0; 6],
            &[1, 2],
            3,
            1.0,
            1.0,
            true,
        )
        .unwrap();
        // Real advantages [1, 2, 2] -> mean 5/3, whitened; padding stays 0.
        let real = [out.advantages[0], out.advantages[3], out.advantages[4]];
        let mean: f32 = real.iter().sum::<f32>() / 3.0;
        assert!(mean.abs() < 1e-6);
        assert_eq!(out.advantages[1], 0.0);
        assert_eq!(out.advantages[5], 0.0);
        // Returns are computed before whitening.
        assert_eq!(out.returns[0], 1.0);
        assert!(compute_gae(&[0.0; 5], &[0.0; 6], &[1, 2], 3, 1.0, 1.0, false).is_err());
        assert!(compute_gae(&[0.0; 6], &[0.0; 6], &[4, 2], 3, 1.0, 1.0, false).is_err());
    }
}
