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
///
/// Cost, for a vocabulary of V tokens:
/// - no top-k and no top-p: no sort — the mass, then partitions of halving ranges (about two
///   passes over the vocabulary, see `sample_full`);
/// - top-k: a partial selection of the k largest (O(V)), then a sort of those k;
/// - top-p: the nucleus is found by partial selections of growing prefixes (64, 256, …) sorted
///   only until their mass reaches p, so a peaked distribution never sorts the vocabulary.
///
/// Ties are broken by the smaller token id, so truncation keeps the same set as a full sort.
pub fn sample_row(
    logp: &[f32],
    top_k: Option<usize>,
    top_p: Option<f32>,
    rng: &mut RowRng,
) -> (u32, f32) {
    let v = logp.len();
    let keep_k = top_k.unwrap_or(v).min(v);
    if keep_k == v && top_p.is_none_or(|p| p >= 1.0) {
        return sample_full(logp, rng);
    }
    let mass = |i: u32| (logp[i as usize] as f64).exp();
    let by_prob = |a: &u32, b: &u32| {
        logp[*b as usize]
            .total_cmp(&logp[*a as usize])
            .then(a.cmp(b))
    };
    let mut order: Vec<u32> = (0..v as u32).collect();
    // The candidates: the k most likely (all tokens without top-k), their total mass.
    if keep_k < v {
        order.select_nth_unstable_by(keep_k - 1, by_prob);
        order.truncate(keep_k);
    }
    if top_p.is_none() {
        order.sort_by(by_prob);
    }
    let total: f64 = order.iter().map(|&i| mass(i)).sum();
    // The smallest most-likely prefix whose share of `total` reaches p.
    let mut cut = order.len();
    if let Some(p) = top_p {
        let mut sorted = 0;
        let mut acc = 0.0;
        let mut chunk = 64usize;
        'grow: loop {
            let end = (sorted + chunk).min(order.len());
            if end < order.len() {
                order[sorted..].select_nth_unstable_by(end - sorted - 1, by_prob);
            }
            order[sorted..end].sort_by(by_prob);
            for (j, &i) in order[sorted..end].iter().enumerate() {
                acc += mass(i) / total;
                if acc >= p as f64 {
                    cut = sorted + j + 1;
                    break 'grow;
                }
            }
            sorted = end;
            if sorted == order.len() {
                break;
            }
            chunk *= 4;
        }
    }
    order.truncate(cut);
    let kept: f64 = order.iter().map(|&i| mass(i)).sum();
    let u: f64 = rng.0.random::<f64>() * kept;
    let mut acc = 0.0;
    let mut pick = order.len() - 1;
    for (j, &i) in order.iter().enumerate() {
        acc += mass(i);
        if u < acc {
            pick = j;
            break;
        }
    }
    let t = order[pick];
    (t, (mass(t) / kept).ln() as f32)
}

/// [`sample_row`] without truncation: the inverse CDF over the tokens ranked by probability
/// (ties by id), as a full sort would walk it, found by halving partitions instead of a sort:
/// each round splits the remaining range around its median ([`slice::select_nth_unstable_by`],
/// linear) and keeps the half that holds `u`, so the whole draw costs about two passes over
/// the vocabulary. The token drawn for a given `u` is the sorted walk's (sums of the same
/// masses in another order can differ in the last bits, which moves a draw only when `u` falls
/// within that rounding of a boundary).
fn sample_full(logp: &[f32], rng: &mut RowRng) -> (u32, f32) {
    let mass = |i: u32| (logp[i as usize] as f64).exp();
    let by_prob = |a: &u32, b: &u32| {
        logp[*b as usize]
            .total_cmp(&logp[*a as usize])
            .then(a.cmp(b))
    };
    let mut order: Vec<u32> = (0..logp.len() as u32).collect();
    let total: f64 = order.iter().map(|&i| mass(i)).sum();
    let mut u: f64 = rng.0.random::<f64>() * total;
    let (mut lo, mut hi) = (0, order.len());
    while hi - lo > 64 {
        let mid = lo + (hi - lo) / 2;
        order[lo..hi].select_nth_unstable_by(mid - lo, by_prob);
        let upper: f64 = order[lo..mid].iter().map(|&i| mass(i)).sum();
        if u < upper {
            hi = mid;
        } else {
            u -= upper;
            lo = mid;
        }
    }
    let rest = &mut order[lo..hi];
    rest.sort_by(by_prob);
    let mut acc = 0.0;
    // The last token of the range, should rounding leave `u` past its sum.
    let mut pick = rest[rest.len() - 1];
    for &i in rest.iter() {
        acc += mass(i);
        if u < acc {
            pick = i;
            break;
        }
    }
    (pick, (mass(pick) / total).ln() as f32)
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

    /// The nucleus and top-k sets of a full sort (the previous implementation), for comparison.
    fn kept_by_full_sort(lp: &[f32], k: Option<usize>, p: Option<f32>) -> Vec<u32> {
        let mut order: Vec<u32> = (0..lp.len() as u32).collect();
        order.sort_by(|&a, &b| lp[b as usize].total_cmp(&lp[a as usize]).then(a.cmp(&b)));
        order.truncate(k.unwrap_or(lp.len()));
        if let Some(p) = p {
            let total: f64 = order.iter().map(|&i| (lp[i as usize] as f64).exp()).sum();
            let mut acc = 0.0;
            let cut = order
                .iter()
                .position(|&i| {
                    acc += (lp[i as usize] as f64).exp() / total;
                    acc >= p as f64
                })
                .map_or(order.len(), |c| c + 1);
            order.truncate(cut);
        }
        order
    }

    #[test]
    fn partial_selection_keeps_exactly_the_full_sorts_set() {
        // A 1,000-token row with ties and a long flat tail, so top-p needs several prefixes.
        let mut rng = StdRng::seed_from_u64(9);
        let raw: Vec<f64> = (0..1000)
            .map(|i| if i % 7 == 0 { 0.5 } else { rng.random::<f64>() })
            .collect();
        let z: f64 = raw.iter().sum();
        let lp: Vec<f32> = raw.iter().map(|x| (x / z).ln() as f32).collect();
        for (k, p) in [
            (None, Some(0.3)),
            (None, Some(0.95)),
            (Some(50), None),
            (Some(300), Some(0.5)),
            (Some(1), Some(0.9)),
        ] {
            let want = kept_by_full_sort(&lp, k, p);
            let mut seen = std::collections::BTreeSet::new();
            let mut r = RowRng::new(1, 0);
            for _ in 0..4000 {
                let (t, l) = sample_row(&lp, k, p, &mut r);
                assert!(
                    want.contains(&t),
                    "{k:?} {p:?}: token {t} is outside the kept set"
                );
                // Its log-prob is renormalised over the kept set.
                let kept: f64 = want.iter().map(|&i| (lp[i as usize] as f64).exp()).sum();
                let expect = ((lp[t as usize] as f64).exp() / kept).ln() as f32;
                assert!((l - expect).abs() < 1e-5, "{l} vs {expect}");
                seen.insert(t);
            }
            if want.len() <= 60 {
                assert_eq!(
                    seen.len(),
                    want.len(),
                    "{k:?} {p:?}: every kept token drawn"
                );
            }
        }
    }

    /// The draw of the previous implementation: sort the whole row, walk the cumulative mass.
    fn draw_by_full_sort(lp: &[f32], rng: &mut RowRng) -> u32 {
        let mut order: Vec<u32> = (0..lp.len() as u32).collect();
        order.sort_by(|&a, &b| lp[b as usize].total_cmp(&lp[a as usize]).then(a.cmp(&b)));
        let probs: Vec<f64> = order
            .iter()
            .map(|&i| (lp[i as usize] as f64).exp())
            .collect();
        let total: f64 = probs.iter().sum();
        let u = rng.0.random::<f64>() * total;
        let mut acc = 0.0;
        for (j, q) in probs.iter().enumerate() {
            acc += q;
            if u < acc {
                return order[j];
            }
        }
        order[order.len() - 1]
    }

    #[test]
    fn untruncated_draws_are_the_full_sorts_draws_without_a_sort() {
        let mut g = StdRng::seed_from_u64(21);
        let raw: Vec<f64> = (0..5000).map(|_| g.random::<f64>().powi(4)).collect();
        let z: f64 = raw.iter().sum();
        let lp: Vec<f32> = raw.iter().map(|x| (x / z).ln() as f32).collect();
        let (mut a, mut b) = (RowRng::new(3, 1), RowRng::new(3, 1));
        for _ in 0..3000 {
            assert_eq!(
                sample_row(&lp, None, None, &mut a).0,
                draw_by_full_sort(&lp, &mut b)
            );
        }
    }

    #[test]
    fn without_truncation_the_log_prob_is_the_tokens_own() {
        let lp = logp(&[0.2, 0.5, 0.3]);
        let mut rng = RowRng::new(4, 0);
        for _ in 0..50 {
            let (t, l) = sample_row(&lp, None, Some(1.0), &mut rng);
            assert!((l - lp[t as usize]).abs() < 1e-6);
        }
        // A row with masked (-inf) tokens never draws them.
        let masked = [f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY];
        for _ in 0..50 {
            assert_eq!(sample_row(&masked, None, None, &mut rng), (1, 0.0));
        }
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
