//! The PPO losses as pure tensor functions over response tokens (TRL `PPOTrainer` semantics):
//! the clipped surrogate with its clip fraction and approximate KL, the clipped value loss,
//! the masked mean they share, and the entropy of the policy.
//!
//! Every mean is over the real tokens of the minibatch (token-level, TRL's `masked_mean`).

use burn::prelude::*;

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

/// The PPO clipped surrogate objective (to minimise).
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
    let log_ratio = logprobs - old_logprobs;
    let ratio = log_ratio.clone().exp();
    let pg1 = advantages.clone().neg() * ratio.clone();
    let pg2 = advantages.neg() * ratio.clone().clamp(1.0 - cliprange, 1.0 + cliprange);
    let clipped = pg2.clone().greater(pg1.clone()).float().detach();
    let loss = masked_mean(pg1.max_pair(pg2), mask.clone());
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
