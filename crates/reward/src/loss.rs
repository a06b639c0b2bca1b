//! The reward-model objective as pure tensor functions: Bradley–Terry ranking (optionally with a
//! margin) plus the paper's zero-mean Gaussian prior on scores (SPEC §A.3.2), with per-pair
//! weights for re-weighted length balancing.
//!
//! Per pair `i` with scores `c = r(x, y_w)`, `r = r(x, y_l)`, margin `m ≥ 0` and weight `w`:
//!
//! ```text
//! ℓ_i = −log σ(c_i − r_i − m_i) + λ (c_i² + r_i²)
//! L   = (1/n) Σ_i w_i ℓ_i
//! ```
//!
//! With `m = 0`, `w = 1` this is the issue's `−log σ(r_c − r_r) + λ·mean(r_c² + r_r²)`. The
//! penalty is the *sum* of the two squares averaged over pairs; the SPEC's alternative reading
//! "mean of the two squares" is the same thing with λ halved. Reading the penalty as a Gaussian
//! prior `N(0, σ²)` on every score, `λ = 1/(2σ²)`. The margin replaces the plain ranking term
//! (Llama 2's margin loss: `−log σ(c − r − m)`), it is not added to it.
//!
//! The reduction divides by the number of pairs `n`, not by `Σ w`: weights from
//! [`rlhf_debias::balance_lengths`] in re-weight mode then down-weight the majority side instead
//! of being renormalised away inside each batch (the training loop rescales the weights of the
//! whole training set to mean 1 so the loss keeps its scale).

use burn::prelude::*;
use burn::tensor::activation::log_sigmoid;

/// The knobs of [`reward_loss`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossConfig {
    /// Coefficient λ of the score penalty `λ (c² + r²)`. 0 turns it off. Default 1e-3.
    pub lambda_reg: f64,
    /// A constant margin `m` in `−log σ(c − r − m)`; `None` (the default) means 0.
    pub margin: Option<f64>,
}

impl Default for LossConfig {
    fn default() -> Self {
        LossConfig {
            lambda_reg: 1e-3,
            margin: None,
        }
    }
}

/// The reduced loss and its parts, all still on the autodiff graph.
#[derive(Debug, Clone)]
pub struct RewardLoss<B: Backend> {
    /// `(1/n) Σ w_i ℓ_i`, shape `[1]`: what is back-propagated.
    pub loss: Tensor<B, 1>,
    /// `ℓ_i`, unweighted, shape `[n]`.
    pub per_pair: Tensor<B, 1>,
}

/// Bradley–Terry ranking term per pair: `−log σ(c − r − m)`.
///
/// # Shapes
/// - `chosen`, `rejected`: `[n]` scores of the preferred and the dispreferred response
/// - `margin`: `[n]` (or `None` for 0)
/// - output: `[n]`
///
/// # Panics
/// If the shapes differ.
pub fn ranking_loss<B: Backend>(
    chosen: Tensor<B, 1>,
    rejected: Tensor<B, 1>,
    margin: Option<Tensor<B, 1>>,
) -> Tensor<B, 1> {
    assert_eq!(chosen.dims(), rejected.dims(), "chosen/rejected shapes");
    let mut diff = chosen - rejected;
    if let Some(m) = margin {
        assert_eq!(m.dims(), diff.dims(), "margin shape");
        diff = diff - m;
    }
    log_sigmoid(diff).neg()
}

/// The Gaussian-prior penalty per pair, before λ: `c² + r²`.
///
/// # Shapes
/// - `chosen`, `rejected`: `[n]`
/// - output: `[n]`
pub fn score_penalty<B: Backend>(chosen: Tensor<B, 1>, rejected: Tensor<B, 1>) -> Tensor<B, 1> {
    chosen.powi_scalar(2) + rejected.powi_scalar(2)
}

/// The per-pair objective `ℓ_i = −log σ(c_i − r_i − m_i) + λ (c_i² + r_i²)`.
///
/// # Shapes
/// - `chosen`, `rejected`, `margin`: `[n]`
/// - output: `[n]`
pub fn per_pair_loss<B: Backend>(
    chosen: Tensor<B, 1>,
    rejected: Tensor<B, 1>,
    margin: Option<Tensor<B, 1>>,
    lambda_reg: f64,
) -> Tensor<B, 1> {
    let rank = ranking_loss(chosen.clone(), rejected.clone(), margin);
    if lambda_reg == 0.0 {
        rank
    } else {
        rank + score_penalty(chosen, rejected).mul_scalar(lambda_reg)
    }
}

/// The reward-model loss `(1/n) Σ_i w_i ℓ_i` (see the module docs).
///
/// `weights` of `None` means 1 for every pair (a plain mean). The constant margin of `cfg` is
/// used for every pair.
///
/// # Shapes
/// - `chosen`, `rejected`, `weights`: `[n]`, `n ≥ 1`
/// - output: `loss` `[1]`, `per_pair` `[n]`
///
/// # Panics
/// If the shapes differ.
pub fn reward_loss<B: Backend>(
    chosen: Tensor<B, 1>,
    rejected: Tensor<B, 1>,
    weights: Option<Tensor<B, 1>>,
    cfg: &LossConfig,
) -> RewardLoss<B> {
    let margin = cfg
        .margin
        .filter(|&m| m != 0.0)
        .map(|m| chosen.zeros_like().add_scalar(m));
    let per_pair = per_pair_loss(chosen, rejected, margin, cfg.lambda_reg);
    let loss = match weights {
        Some(w) => {
            assert_eq!(w.dims(), per_pair.dims(), "weights shape");
            (per_pair.clone() * w).mean()
        }
        None => per_pair.clone().mean(),
    };
    RewardLoss { loss, per_pair }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::flex::FlexDevice;
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::{TensorData, Tolerance};

    type Ad = Autodiff<Flex>;

    fn t<B: Backend<Device = FlexDevice>>(v: &[f32]) -> Tensor<B, 1> {
        Tensor::from_floats(v, &FlexDevice)
    }

    const C: [f32; 4] = [1.5, -0.25, 0.0, 3.0];
    const R: [f32; 4] = [0.5, 0.75, 0.0, -2.0];
    const W: [f32; 4] = [1.0, 2.0, 0.5, 1.0];

    fn tol() -> Tolerance<f32> {
        Tolerance::absolute(1e-6)
    }

    /// Loss and its gradients with respect to `chosen` and `rejected`.
    fn run(cfg: LossConfig, weights: bool) -> (Vec<f32>, f32, Vec<f32>, Vec<f32>) {
        let c = t::<Ad>(&C).require_grad();
        let r = t::<Ad>(&R).require_grad();
        let w = weights.then(|| t::<Ad>(&W));
        let out = reward_loss(c.clone(), r.clone(), w, &cfg);
        let per = out.per_pair.into_data().to_vec::<f32>().unwrap();
        let loss = out.loss.clone().into_scalar();
        let grads = out.loss.backward();
        let gc = c.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
        let gr = r.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
        (per, loss, gc, gr)
    }

    fn check(got: &[f32], want: &[f64]) {
        let want: Vec<f32> = want.iter().map(|&x| x as f32).collect();
        TensorData::from(got).assert_approx_eq::<f32>(&TensorData::from(want.as_slice()), tol());
    }

    // Reference values in float64 (pure Python, no numpy):
    //
    //   import math
    //   sp  = lambda x: max(x, 0) + math.log1p(math.exp(-abs(x)))   # softplus
    //   sig = lambda x: 1 / (1 + math.exp(-x))
    //   c = [1.5, -0.25, 0.0, 3.0]; r = [0.5, 0.75, 0.0, -2.0]; w = [1.0, 2.0, 0.5, 1.0]
    //   for lam, m, W in [(0.0, 0.0, [1]*4), (0.1, 0.0, [1]*4), (0.1, 0.5, w), (1e-3, 0.0, w)]:
    //       n = 4
    //       per = [sp(-(ci - ri - m)) + lam * (ci*ci + ri*ri) for ci, ri in zip(c, r)]
    //       L = sum(wi * p for wi, p in zip(W, per)) / n
    //       gc = [wi / n * (-sig(-(ci - ri - m)) + 2 * lam * ci) for wi, ci, ri in zip(W, c, r)]
    //       gr = [wi / n * ( sig(-(ci - ri - m)) + 2 * lam * ri) for wi, ci, ri in zip(W, c, r)]

    #[test]
    fn plain_bradley_terry_matches_reference() {
        let cfg = LossConfig {
            lambda_reg: 0.0,
            margin: None,
        };
        let (per, loss, gc, gr) = run(cfg, false);
        check(
            &per,
            &[
                0.313_261_687_518_222_86,
                1.313_261_687_518_222_8,
                std::f64::consts::LN_2, // σ(0): an exact tie
                0.006_715_348_489_118_068,
            ],
        );
        check(&[loss], &[0.581_596_476_021_377_3]);
        check(
            &gc,
            &[
                -0.067_235_355_342_498_78,
                -0.182_764_644_657_501_22,
                -0.125,
                -0.001_673_212_731_071_213_9,
            ],
        );
        check(
            &gr,
            &[
                0.067_235_355_342_498_78,
                0.182_764_644_657_501_22,
                0.125,
                0.001_673_212_731_071_213_9,
            ],
        );
    }

    #[test]
    fn gaussian_prior_matches_reference() {
        let cfg = LossConfig {
            lambda_reg: 0.1,
            margin: None,
        };
        let (per, loss, gc, gr) = run(cfg, false);
        check(
            &per,
            &[
                0.563_261_687_518_222_8,
                1.375_761_687_518_222_8,
                std::f64::consts::LN_2, // σ(0): an exact tie
                1.306_715_348_489_118,
            ],
        );
        check(&[loss], &[0.984_721_476_021_377_3]);
        check(
            &gc,
            &[
                0.007_764_644_657_501_235,
                -0.195_264_644_657_501_24,
                -0.125,
                0.148_326_787_268_928_8,
            ],
        );
        check(
            &gr,
            &[
                0.092_235_355_342_498_77,
                0.220_264_644_657_501_23,
                0.125,
                -0.098_326_787_268_928_8,
            ],
        );
    }

    #[test]
    fn margin_and_weights_match_reference() {
        let cfg = LossConfig {
            lambda_reg: 0.1,
            margin: Some(0.5),
        };
        let (per, loss, gc, gr) = run(cfg, true);
        check(
            &per,
            &[
                0.724_076_984_180_106_7,
                1.763_913_277_982_752_4,
                0.974_076_984_180_106_7,
                1.311_047_744_848_593_8,
            ],
        );
        check(&[loss], &[1.512_497_444_271_064_6]);
        check(
            &gc,
            &[
                -0.019_385_167_199_536_34,
                -0.433_787_238_096_821_85,
                -0.077_807_416_400_231_82,
                0.147_253_264_342_351_73,
            ],
        );
        check(
            &gr,
            &[
                0.119_385_167_199_536_35,
                0.483_787_238_096_821_84,
                0.077_807_416_400_231_82,
                -0.097_253_264_342_351_71,
            ],
        );
    }

    #[test]
    fn default_lambda_with_weights_matches_reference() {
        let (_, loss, gc, gr) = run(LossConfig::default(), true);
        check(&[loss], &[0.827_456_000_330_939_9]);
        check(
            &gc,
            &[
                -0.066_485_355_342_498_78,
                -0.365_779_289_315_002_4,
                -0.0625,
                -0.000_173_212_731_071_213_83,
            ],
        );
        check(
            &gr,
            &[
                0.067_485_355_342_498_78,
                0.366_279_289_315_002_4,
                0.0625,
                0.000_673_212_731_071_213_8,
            ],
        );
    }

    // Property: equal scores cost ln 2 per pair whatever their level when λ = 0, and the
    // ranking term is invariant to a shared shift of both scores.
    #[test]
    fn ranking_term_is_shift_invariant_and_ln2_at_ties() {
        let x = t::<Flex>(&[-3.0, 0.0, 7.5]);
        let tie = ranking_loss(x.clone(), x.clone(), None);
        tie.into_data().assert_approx_eq::<f32>(
            &TensorData::from([std::f32::consts::LN_2; 3]),
            Tolerance::default(),
        );
        let a = ranking_loss(t::<Flex>(&[1.0, -2.0]), t::<Flex>(&[0.0, 0.5]), None);
        let b = ranking_loss(t::<Flex>(&[11.0, 8.0]), t::<Flex>(&[10.0, 10.5]), None);
        a.into_data()
            .assert_approx_eq::<f32>(&b.into_data(), Tolerance::default());
    }

    // Property: huge margins stay finite (log σ is computed stably).
    #[test]
    fn large_differences_stay_finite() {
        let l = ranking_loss(
            t::<Flex>(&[-200.0, 200.0]),
            t::<Flex>(&[200.0, -200.0]),
            None,
        );
        let v = l.into_data().to_vec::<f32>().unwrap();
        assert!((v[0] - 400.0).abs() < 1e-3, "{v:?}");
        assert!(v[1].abs() < 1e-6, "{v:?}");
    }

    #[test]
    #[should_panic(expected = "chosen/rejected shapes")]
    fn mismatched_shapes_panic() {
        let _ = ranking_loss(t::<Flex>(&[1.0, 2.0]), t::<Flex>(&[1.0]), None);
    }
}
