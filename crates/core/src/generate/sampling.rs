//! Sampling strategies as plain data, and the host-side sampler (temperature, top-k, top-p)
//! with an explicit seed.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// How the next token is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Sampling {
    /// Argmax at every step.
    Greedy,
    /// Sample from `softmax(logits / temperature)`, optionally truncated.
    Sample {
        /// Softmax temperature (> 0).
        temperature: f32,
        /// Keep only the `k` most likely tokens.
        top_k: Option<usize>,
        /// Keep the smallest set of tokens whose probability reaches `p` (nucleus).
        top_p: Option<f32>,
    },
}

impl Sampling {
    /// The temperature the policy's log-probs are taken at (1 for greedy).
    pub fn temperature(&self) -> f32 {
        match self {
            Sampling::Greedy => 1.0,
            Sampling::Sample { temperature, .. } => *temperature,
        }
    }

    /// Checks the parameters.
    ///
    /// # Errors
    /// A message naming the bad parameter.
    pub fn validate(&self) -> Result<(), String> {
        if let Sampling::Sample {
            temperature,
            top_k,
            top_p,
        } = self
        {
            if temperature.is_nan() || *temperature <= 0.0 || !temperature.is_finite() {
                return Err(format!("temperature must be > 0, got {temperature}"));
            }
            if *top_k == Some(0) {
                return Err("top_k must be >= 1".into());
            }
            if let Some(p) = top_p
                && !(*p > 0.0 && *p <= 1.0)
            {
                return Err(format!("top_p must be in (0, 1], got {p}"));
            }
        }
        Ok(())
    }
}

/// A seeded random source for one row of a batch.
#[derive(Debug, Clone)]
pub struct RowRng(StdRng);

impl RowRng {
    /// The generator of row `row` for `seed`.
    pub fn new(seed: u64, row: usize) -> Self {
        RowRng(StdRng::seed_from_u64(
            seed ^ (row as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        ))
    }
}

/// Draws one token from `logp` (log-probs at the sampling temperature, one row).
///
/// Returns the token and its log-prob under the truncated distribution actually sampled from.
pub fn sample_row(
    logp: &[f32],
    top_k: Option<usize>,
    top_p: Option<f32>,
    rng: &mut RowRng,
) -> (u32, f32) {
    let mut order: Vec<u32> = (0..logp.len() as u32).collect();
    let keep_k = top_k.unwrap_or(logp.len()).min(logp.len());
    if keep_k < logp.len() {
        order.select_nth_unstable_by(keep_k - 1, |&a, &b| {
            logp[b as usize].total_cmp(&logp[a as usize])
        });
        order.truncate(keep_k);
    }
    order.sort_by(|&a, &b| {
        logp[b as usize]
            .total_cmp(&logp[a as usize])
            .then(a.cmp(&b))
    });
    let mut probs: Vec<f64> = order
        .iter()
        .map(|&i| (logp[i as usize] as f64).exp())
        .collect();
    if let Some(p) = top_p {
        let total: f64 = probs.iter().sum();
        let mut acc = 0.0;
        let mut cut = probs.len();
        for (i, q) in probs.iter().enumerate() {
            acc += q / total;
            if acc >= p as f64 {
                cut = i + 1;
                break;
            }
        }
        probs.truncate(cut);
        order.truncate(cut);
    }
    let total: f64 = probs.iter().sum();
    let u: f64 = rng.0.random::<f64>() * total;
    let mut acc = 0.0;
    let mut pick = probs.len() - 1;
    for (i, q) in probs.iter().enumerate() {
        acc += q;
        if u < acc {
            pick = i;
            break;
        }
    }
    (order[pick], (probs[pick] / total).ln() as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logp(p: &[f64]) -> Vec<f32> {
        p.iter().map(|x| x.ln() as f32).collect()
    }

    #[test]
    fn top_k_one_is_argmax() {
        let lp = logp(&[0.1, 0.6, 0.3]);
        let mut rng = RowRng::new(7, 0);
        for _ in 0..20 {
            let (t, l) = sample_row(&lp, Some(1), None, &mut rng);
            assert_eq!(t, 1);
            assert!(l.abs() < 1e-6);
        }
    }

    #[test]
    fn top_p_drops_the_tail() {
        let lp = logp(&[0.05, 0.7, 0.25]);
        let mut rng = RowRng::new(3, 1);
        for _ in 0..200 {
            let (t, _) = sample_row(&lp, None, Some(0.9), &mut rng);
            assert_ne!(t, 0, "token 0 is outside the 0.9 nucleus");
        }
    }

    #[test]
    fn frequencies_follow_the_distribution() {
        let lp = logp(&[0.2, 0.5, 0.3]);
        let mut rng = RowRng::new(11, 0);
        let mut counts = [0usize; 3];
        for _ in 0..20_000 {
            counts[sample_row(&lp, None, None, &mut rng).0 as usize] += 1;
        }
        let f: Vec<f64> = counts.iter().map(|&c| c as f64 / 20_000.0).collect();
        assert!(
            (f[0] - 0.2).abs() < 0.015 && (f[1] - 0.5).abs() < 0.015,
            "{f:?}"
        );
    }

    #[test]
    fn same_seed_same_draws() {
        let lp = logp(&[0.2, 0.5, 0.3]);
        let draw = |seed| {
            let mut rng = RowRng::new(seed, 2);
            (0..50)
                .map(|_| sample_row(&lp, None, None, &mut rng).0)
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(5), draw(5));
        assert_ne!(draw(5), draw(6));
    }
}
