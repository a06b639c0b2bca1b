//! The PPO losses as pure tensor functions over response tokens (TRL `PPOTrainer` semantics):
//! the clipped surrogate with its clip fraction and approximate KL, the clipped value loss,
//! the masked mean they share, and the entropy of the policy.
//!
//! Every mean is over the real tokens of the minibatch (token-level, TRL's `masked_mean`).

use burn::prelude::*;

use crate::config::LossAggMode;

/// `Σ x·mask / Σ mask` (a `[1]` tensor; 0 when the mask is empty).
///
/// # Shapes
/// - `x`, `mask`: `[rows, width]`, mask 1.0 on real tokens
pub fn masked_mean<B: Backend>(x: Tensor<B, 2>, mask: Tensor<B, 2>) -> Tensor<B, 1> {
    let n = mask.clone().sum().clamp_min(1.0);
    (x * mask).sum() / n
}

/// The clipped surrogate and its statistics.
#[derive(Debug, Clone)]
pub struct PolicyLoss<B: Backend> {
    /// `mean_t max(−A_t ρ_t, −A_t clip(ρ_t, 1−ε, 1+ε))`, `ρ_t = exp(log π − log π_old)`.
    pub loss: Tensor<B, 1>,
    /// Fraction of tokens where the clipped term is the larger (TRL `policy/clipfrac_avg`).
    pub clipfrac: Tensor<B, 1>,
    /// `½ mean_t (log π − log π_old)²` (TRL `policy/approxkl_avg`).
    pub approx_kl: Tensor<B, 1>,
    /// Mean ratio over real tokens (TRL `val/ratio`).
    pub ratio: Tensor<B, 1>,
}

/// The PPO clipped surrogate objective (to minimise), symmetric clip, token mean:
/// [`policy_loss_with`] with `cliprange` on both sides and [`LossAggMode::TokenMean`].
///
/// # Shapes
/// - every input: `[rows, width]`; `mask` is 1.0 on response tokens
pub fn policy_loss<B: Backend>(
    logprobs: Tensor<B, 2>,
    old_logprobs: Tensor<B, 2>,
    advantages: Tensor<B, 2>,
    mask: Tensor<B, 2>,
    cliprange: f64,
) -> PolicyLoss<B> {
    policy_loss_with(
        logprobs,
        old_logprobs,
        advantages,
        mask,
        (cliprange, cliprange),
        LossAggMode::TokenMean,
    )
}

/// The per-token values `x` of a minibatch reduced to one number by `agg`:
/// - `TokenMean`: `Σ x·mask / Σ mask`;
/// - `SeqMean`: the mean over rows of each row's token mean;
/// - `SeqSum`: the mean over rows of each row's token sum.
///
/// Rows without a real token count in neither mean over rows.
///
/// # Shapes
/// - `x`, `mask`: `[rows, width]` → `[1]`
pub fn aggregate<B: Backend>(
    x: Tensor<B, 2>,
    mask: Tensor<B, 2>,
    agg: LossAggMode,
) -> Tensor<B, 1> {
    if agg == LossAggMode::TokenMean {
        return masked_mean(x, mask);
    }
    let per_row_n = mask.clone().sum_dim(1); // [rows, 1]
    let rows_present = per_row_n.clone().greater_elem(0.0).float();
    let n_rows = rows_present.clone().sum().clamp_min(1.0);
    let sums = (x * mask).sum_dim(1); // [rows, 1]
    let per_row = match agg {
        LossAggMode::SeqMean => sums / per_row_n.clamp_min(1.0),
        _ => sums,
    };
    (per_row * rows_present).sum() / n_rows
}

/// The PPO clipped surrogate with an asymmetric clip (DAPO's clip-higher) and a loss
/// aggregation: per token `max(−A ρ, −A clip(ρ, 1 − ε_low, 1 + ε_high))`, reduced by
/// [`aggregate`]; the statistics stay token means.
///
/// Golden values: `tests/golden/estimators.py`.
///
/// # Shapes
/// - every input: `[rows, width]`; `mask` is 1.0 on response tokens
pub fn policy_loss_with<B: Backend>(
    logprobs: Tensor<B, 2>,
    old_logprobs: Tensor<B, 2>,
    advantages: Tensor<B, 2>,
    mask: Tensor<B, 2>,
    (eps_low, eps_high): (f64, f64),
    agg: LossAggMode,
) -> PolicyLoss<B> {
    let log_ratio = logprobs - old_logprobs;
    let ratio = log_ratio.clone().exp();
    let pg1 = advantages.clone().neg() * ratio.clone();
    let pg2 = advantages.neg() * ratio.clone().clamp(1.0 - eps_low, 1.0 + eps_high);
    let clipped = pg2.clone().greater(pg1.clone()).float().detach();
    let loss = aggregate(pg1.max_pair(pg2), mask.clone(), agg);
    PolicyLoss {
        loss,
        clipfrac: masked_mean(clipped, mask.clone()),
        approx_kl: masked_mean(log_ratio.detach().powi_scalar(2), mask.clone()) * 0.5,
        ratio: masked_mean(ratio.detach(), mask),
    }
}

/// The clipped value loss and its clip fraction.
#[derive(Debug, Clone)]
pub struct ValueLoss<B: Backend> {
    /// `½ mean_t max((V − R)², (V_old + clip(V − V_old, −c, c) − R)²)`.
    pub loss: Tensor<B, 1>,
    /// Fraction of tokens where the clipped term is the larger (TRL `val/clipfrac_avg`).
    pub clipfrac: Tensor<B, 1>,
}

/// The PPO value loss with value clipping (TRL `cliprange_value`).
///
/// # Shapes
/// - every input: `[rows, width]`
pub fn value_loss<B: Backend>(
    values: Tensor<B, 2>,
    old_values: Tensor<B, 2>,
    returns: Tensor<B, 2>,
    mask: Tensor<B, 2>,
    cliprange_value: f64,
) -> ValueLoss<B> {
    let clipped =
        old_values.clone() + (values.clone() - old_values).clamp(-cliprange_value, cliprange_value);
    let l1 = (values - returns.clone()).powi_scalar(2);
    let l2 = (clipped - returns).powi_scalar(2);
    let frac = l2.clone().greater(l1.clone()).float().detach();
    ValueLoss {
        loss: masked_mean(l1.max_pair(l2), mask.clone()) * 0.5,
        clipfrac: masked_mean(frac, mask),
    }
}

/// Mean entropy of the policy's next-token distributions over the masked positions.
///
/// # Shapes
/// - `logits`: `[rows, width, vocab]` (already divided by the temperature); `mask`: `[rows, width]`
pub fn mean_entropy<B: Backend>(logits: Tensor<B, 3>, mask: Tensor<B, 2>) -> Tensor<B, 1> {
    masked_mean(rlhf_core::logprobs::entropy(logits), mask)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::backend::flex::FlexDevice;

    fn t(v: &[f32], rows: usize) -> Tensor<Flex, 2> {
        let w = v.len() / rows;
        Tensor::from_data(TensorData::new(v.to_vec(), [rows, w]), &FlexDevice)
    }

    fn scalar(x: Tensor<Flex, 1>) -> f64 {
        x.into_scalar() as f64
    }

    /// The float64 reference loop (TRL's formulas, one token at a time).
    fn reference_policy(
        lp: &[f32],
        old: &[f32],
        adv: &[f32],
        mask: &[f32],
        eps: f64,
    ) -> (f64, f64, f64, f64) {
        let (mut loss, mut frac, mut kl, mut ratio, mut n) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for i in 0..lp.len() {
            if mask[i] == 0.0 {
                continue;
            }
            let lr = lp[i] as f64 - old[i] as f64;
            let r = lr.exp();
            let a = adv[i] as f64;
            let pg1 = -a * r;
            let pg2 = -a * r.clamp(1.0 - eps, 1.0 + eps);
            loss += pg1.max(pg2);
            frac += f64::from(u8::from(pg2 > pg1));
            kl += 0.5 * lr * lr;
            ratio += r;
            n += 1.0;
        }
        (loss / n, frac / n, kl / n, ratio / n)
    }

    #[test]
    fn golden_policy_loss() {
        let lp = [-1.0, -0.5, -2.0, -0.1, -3.0, -1.0];
        let old = [-1.2, -0.9, -1.5, -0.1, -2.0, -9.0];
        let adv = [1.0, -0.5, 2.0, 0.3, -1.0, 5.0];
        let mask = [1.0, 1.0, 1.0, 1.0, 1.0, 0.0];
        let out = policy_loss(t(&lp, 2), t(&old, 2), t(&adv, 2), t(&mask, 2), 0.2);
        let (l, f, k, r) = reference_policy(&lp, &old, &adv, &mask, 0.2);
        assert!((scalar(out.loss) - l).abs() < 1e-6, "{l}");
        assert!((scalar(out.clipfrac) - f).abs() < 1e-6, "{f}");
        assert!((scalar(out.approx_kl) - k).abs() < 1e-6, "{k}");
        assert!((scalar(out.ratio) - r).abs() < 1e-6, "{r}");
        // Clipped (the clipped term is the larger): token 0 (ratio 1.22 > 1.2, A > 0) and
        // token 4 (ratio 0.37 < 0.8, A < 0); tokens 1 and 2 move against their advantage and
        // stay unclipped: 2 of 5 real tokens.
        assert!((f - 0.4).abs() < 1e-12);
    }

    /// `tests/golden/estimators.py`: two sequences (3 tokens and 1), symmetric clip 0.2 and
    /// clip-higher 0.28, each aggregation.
    #[test]
    fn golden_clip_higher_and_aggregations() {
        let lp = t(&[-1.0, -0.5, -2.0, -0.3, 0.0, 0.0], 2);
        let old = t(&[-1.2, -0.4, -2.0, -0.6, 0.0, 0.0], 2);
        let adv = t(&[1.0, 1.0, -0.5, 2.0, 9.0, 9.0], 2);
        let mask = t(&[1.0, 1.0, 1.0, 1.0, 0.0, 0.0], 2);
        let golden = [
            (
                (0.2, 0.2),
                [-1.001209354509, -1.467472903006, -2.002418709018],
            ),
            (
                (0.2, 0.28),
                [-1.046560044049, -1.551040029366, -2.093120088098],
            ),
        ];
        let modes = [
            LossAggMode::TokenMean,
            LossAggMode::SeqMean,
            LossAggMode::SeqSum,
        ];
        for (clip, want) in golden {
            for (agg, w) in modes.into_iter().zip(want) {
                let out = policy_loss_with(
                    lp.clone(),
                    old.clone(),
                    adv.clone(),
                    mask.clone(),
                    clip,
                    agg,
                );
                let got = scalar(out.loss);
                assert!((got - w).abs() < 1e-5, "{clip:?} {agg:?}: {got} vs {w}");
            }
        }
        // A row without tokens counts in no mean over rows.
        let m0 = t(&[1.0, 1.0, 1.0, 0.0, 0.0, 0.0], 2);
        let x = t(&[1.0, 2.0, 3.0, 7.0, 7.0, 7.0], 2);
        assert!(
            (scalar(aggregate(x.clone(), m0.clone(), LossAggMode::SeqMean)) - 2.0).abs() < 1e-6
        );
        assert!((scalar(aggregate(x, m0, LossAggMode::SeqSum)) - 6.0).abs() < 1e-6);
    }

    // Property: ratio = 1 everywhere ⇒ clip fraction 0, approx KL 0, loss = −mean(A).
    #[test]
    fn ratio_one_means_no_clipping() {
        let lp = [-1.0, -0.5, -2.0, -0.1];
        let adv = [1.0, -0.5, 2.0, 0.3];
        let mask = [1.0, 1.0, 1.0, 0.0];
        let out = policy_loss(t(&lp, 2), t(&lp, 2), t(&adv, 2), t(&mask, 2), 0.2);
        assert_eq!(scalar(out.clipfrac), 0.0);
        assert_eq!(scalar(out.approx_kl), 0.0);
        assert!((scalar(out.ratio) - 1.0).abs() < 1e-7);
        assert!((scalar(out.loss) + 2.5 / 3.0).abs() < 1e-6);
    }

    // The float64 reference loop below, checked once more by hand.
    #[test]
    fn golden_value_loss() {
        let v = [1.0, 2.0, 0.5, 9.0];
        let old = [0.5, 2.5, 0.5, 0.0];
        let ret = [2.0, 1.0, 1.0, 0.0];
        let mask = [1.0, 1.0, 1.0, 0.0];
        let out = value_loss(t(&v, 1), t(&old, 1), t(&ret, 1), t(&mask, 1), 0.2);
        let (mut l, mut f) = (0.0, 0.0);
        for i in 0..3 {
            let (vi, oi, ri) = (v[i] as f64, old[i] as f64, ret[i] as f64);
            let vc = oi + (vi - oi).clamp(-0.2, 0.2);
            let (a, b) = ((vi - ri).powi(2), (vc - ri).powi(2));
            l += a.max(b);
            f += f64::from(u8::from(b > a));
        }
        let (l, f) = (0.5 * l / 3.0, f / 3.0);
        // By hand: token 0: (1-2)² = 1 vs (0.7-2)² = 1.69 -> 1.69 (clipped); token 1:
        // (2-1)² = 1 vs (2.3-1)² = 1.69 -> 1.69 (clipped); token 2: 0.25 vs 0.25 -> 0.25.
        assert!((l - 0.5 * (1.69 + 1.69 + 0.25) / 3.0).abs() < 1e-12);
        assert!((f - 2.0 / 3.0).abs() < 1e-12);
        assert!((scalar(out.loss) - l).abs() < 1e-6);
        assert!((scalar(out.clipfrac) - f).abs() < 1e-6);
    }

    /// A two-token example worked by hand: every term of the PPO step loss, and the total as
    /// `step::ppo_gradients` assembles it from these pure functions with the crate's
    /// coefficients. step.rs: `actor_terms` computes `policy_loss − ent_coef × entropy`,
    /// `critic_terms` returns `vf_coef × value_loss`, and the fused branch of `ppo_gradients`
    /// adds the two, then `ntp_coef × nll_loss` of the SFT batch (the unfused branch
    /// backpropagates the same three terms separately).
    ///
    /// The inputs are exact in f32; the only rounding is f32 `exp`/`ln`, hence 1e-6.
    #[test]
    fn two_token_example_worked_by_hand() {
        use crate::config::PpoConfig;
        use crate::step::StepConfig;

        let cfg = StepConfig::from(&PpoConfig::default());
        // The crate's coefficients, which the arithmetic below uses.
        assert_eq!(
            (cfg.cliprange, cfg.cliprange_value, cfg.vf_coef),
            (0.2, 0.2, 0.1)
        );
        assert_eq!((cfg.ent_coef, cfg.ntp_coef), (0.0, 0.0));
        let close = |got: f64, want: f64, what: &str| {
            assert!(
                got.is_finite() && (got - want).abs() < 1e-6,
                "{what}: {got}, by hand {want}"
            );
        };
        let mask = t(&[1.0, 1.0], 1);

        // Clipped surrogate, ε = 0.2, one row of two tokens.
        // Token 0, inside the clip range: log π − log π_old = −1 − (−1.125) = 0.125,
        //   ρ = e^0.125 = 1.1331484530668263 ∈ [0.8, 1.2], A = 2:
        //   max(−2 × 1.1331484530668263, −2 × 1.1331484530668263) = −2.2662969061336526.
        // Token 1, outside: log π − log π_old = −2 − (−1.5) = −0.5, ρ = e^−0.5 =
        //   0.6065306597126334 < 0.8, A = −1: max(1 × 0.6065306597126334, 1 × 0.8) = 0.8
        //   (the clipped term wins).
        // Mean: (−2.2662969061336526 + 0.8) / 2 = −0.7331484530668263; clip fraction 1/2;
        // approx KL ½ (0.125² + 0.5²) / 2 = ½ × 0.265625 / 2 = 0.06640625.
        let pl = policy_loss(
            t(&[-1.0, -2.0], 1),
            t(&[-1.125, -1.5], 1),
            t(&[2.0, -1.0], 1),
            mask.clone(),
            cfg.cliprange,
        );
        let policy = scalar(pl.loss);
        close(policy, -0.7331484530668263, "policy loss");
        close(scalar(pl.clipfrac), 0.5, "policy clipfrac");
        close(scalar(pl.approx_kl), 0.06640625, "approx KL");

        // Clipped value loss, clip 0.2.
        // Token 0, inside: V = 1.5, V_old = 1.375, R = 2: V − V_old = 0.125 is kept, so both
        //   terms are (1.5 − 2)² = 0.25.
        // Token 1, outside: V = 0.5, V_old = 1, R = 0.25: V − V_old = −0.5 → −0.2, V_clip = 0.8;
        //   (0.5 − 0.25)² = 0.0625 vs (0.8 − 0.25)² = 0.3025 → 0.3025.
        // ½ × (0.25 + 0.3025) / 2 = 0.138125; clip fraction 1/2.
        let vl = value_loss(
            t(&[1.5, 0.5], 1),
            t(&[1.375, 1.0], 1),
            t(&[2.0, 0.25], 1),
            mask.clone(),
            cfg.cliprange_value,
        );
        let value = scalar(vl.loss);
        close(value, 0.138125, "value loss");
        close(scalar(vl.clipfrac), 0.5, "value clipfrac");

        // Entropy, vocab 4. Token 0: logits 0,0,0,0 → uniform, H = ln 4 = 1.3862943611198906.
        // Token 1: logits ln 2,0,0,0 → p = (0.4, 0.2, 0.2, 0.2),
        //   H = 0.4 ln 2.5 + 0.6 ln 5 = 0.36651629274966204 + 0.9656627474604602
        //     = 1.3321790402101222.
        // Mean: 1.3592367006650064.
        let ln2 = std::f32::consts::LN_2;
        let logits = Tensor::<Flex, 3>::from_data(
            TensorData::new(vec![0.0, 0.0, 0.0, 0.0, ln2, 0.0, 0.0, 0.0], [1, 2, 4]),
            &FlexDevice,
        );
        let entropy = scalar(mean_entropy(logits, mask));
        close(entropy, 1.3592367006650064, "entropy");

        // NTP term: one SFT row ids (0, 1, 2), targets 1 and 2 counted (mask 0, 1, 1).
        // Target 1 from the logits at position 0 (0,0,0,0): −ln ¼ = ln 4.
        // Target 2 from position 1 (0,0,ln 2,0): −ln 0.4 = ln 2.5.
        // The last position's logits predict nothing (set large to show they are unused).
        // Mean NLL: (ln 4 + ln 2.5) / 2 = ln 10 / 2 = 1.1512925464970229.
        let ntp_logits = Tensor::<Flex, 3>::from_data(
            TensorData::new(
                vec![
                    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, ln2, 0.0, 50.0, -50.0, 9.0, 0.0,
                ],
                [1, 3, 4],
            ),
            &FlexDevice,
        );
        let ids = Tensor::<Flex, 2, Int>::from_data(
            TensorData::new(vec![0i64, 1, 2], [1, 3]),
            &FlexDevice,
        );
        let ntp = scalar(rlhf_core::logprobs::nll_loss(
            ntp_logits,
            ids,
            t(&[0.0, 1.0, 1.0], 1),
        ));
        close(ntp, std::f64::consts::LN_10 / 2.0, "NTP loss");

        // The total, as step.rs assembles it: policy − ent_coef·H + vf_coef·V + ntp_coef·NTP.
        let total =
            |c: &StepConfig| policy - c.ent_coef * entropy + c.vf_coef * value + c.ntp_coef * ntp;
        // Crate defaults (entropy bonus and NTP off): −0.7331484530668263 + 0.1 × 0.138125
        //   = −0.7331484530668263 + 0.0138125 = −0.7193359530668263.
        close(
            total(&cfg),
            -0.7193359530668263,
            "total, default coefficients",
        );
        // With ent_coef = 0.01 and ntp_coef = 0.5 switched on:
        //   −0.7331484530668263 − 0.013592367006650064 + 0.0138125 + 0.5756462732485114
        //   = −0.15728204682496505.
        let on = StepConfig {
            ent_coef: 0.01,
            ntp_coef: 0.5,
            ..cfg
        };
        close(
            total(&on),
            -0.15728204682496505,
            "total, entropy and NTP on",
        );
    }

    // Uniform logits over V tokens: entropy ln V at every position.
    #[test]
    fn entropy_of_uniform_is_log_vocab() {
        let logits = Tensor::<Flex, 3>::zeros([2, 3, 7], &FlexDevice);
        let mask = t(&[1.0, 1.0, 0.0, 1.0, 0.0, 0.0], 2);
        let e = scalar(mean_entropy(logits, mask));
        assert!((e - 7f64.ln()).abs() < 1e-6);
    }

    // The gradient of the clipped surrogate vanishes where the clip is active.
    #[test]
    fn clipped_tokens_carry_no_gradient() {
        use burn::backend::Autodiff;
        type Ad = Autodiff<Flex>;
        let lp =
            Tensor::<Ad, 2>::from_data(TensorData::new(vec![0.5f32, 0.0], [1, 2]), &FlexDevice)
                .require_grad();
        let old = Tensor::<Ad, 2>::zeros([1, 2], &FlexDevice);
        let adv = Tensor::<Ad, 2>::ones([1, 2], &FlexDevice);
        let mask = Tensor::<Ad, 2>::ones([1, 2], &FlexDevice);
        let out = policy_loss(lp.clone(), old, adv, mask, 0.2);
        let grads = out.loss.backward();
        let g: Vec<f32> = lp.grad(&grads).unwrap().into_data().to_vec().unwrap();
        // Token 0: ratio e^0.5 > 1.2 with A > 0 -> clipped, zero gradient. Token 1: ratio 1,
        // d/dlp (−A e^lp) / 2 = −0.5.
        assert_eq!(g[0], 0.0);
        assert!((g[1] + 0.5).abs() < 1e-6, "{g:?}");
    }
}
