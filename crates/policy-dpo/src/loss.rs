//! The DPO family of losses as pure tensor functions of sequence log-probs.
//!
//! Every loss takes the summed log-probs of the chosen and rejected replies under the policy
//! (`π`) and the reference (`π_ref`), all `[n]`, and the reply lengths in tokens. With
//! `z = (log π(y_c) − log π_ref(y_c)) − (log π(y_r) − log π_ref(y_r))` (per-token means instead of
//! sums when `length_normalize` is on):
//!
//! | [`DpoLossType`] | per-pair loss | reference |
//! | --- | --- | --- |
//! | `Sigmoid` | `−(1−ε) log σ(βz) − ε log σ(−βz)` (ε = `label_smoothing`; ε > 0 is conservative DPO) | Rafailov et al. 2023; Mitchell 2023 |
//! | `Robust` | `(−(1−ε) log σ(βz) + ε log σ(−βz)) / (1 − 2ε)` | Chowdhury et al. 2024 |
//! | `Hinge` | `max(0, 1 − βz)` | SLiC (Zhao et al. 2023) |
//! | `Ipo` | `(z − 1/(2β))²` | Azar et al. 2023 |
//! | `Simpo` | `−(1−ε) log σ(βΔ − γ) − ε log σ(−(βΔ − γ))`, `Δ = log π(y_c)/|y_c| − log π(y_r)/|y_r|`, no reference | Meng et al. 2024 |
//!
//! plus, for any type, the RPO term `α · NLL(y_c)` (mean negative log-likelihood per chosen
//! token, Pang et al. 2024). The implicit rewards are `β (log π − log π_ref)` (SimPO:
//! `β log π / |y|`), as TRL reports them.

use burn::prelude::*;
use burn::tensor::activation::{log_sigmoid, relu};
use serde::{Deserialize, Serialize};

/// Which member of the DPO family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DpoLossType {
    /// Sigmoid DPO; with `label_smoothing > 0`, conservative DPO (cDPO).
    #[default]
    Sigmoid,
    /// Robust DPO: unbiased under label noise ε.
    Robust,
    /// Hinge loss (SLiC).
    Hinge,
    /// Identity preference optimisation, on summed log-probs unless `length_normalize` is on
    /// (TRL always divides IPO's log-probs by the length: that is `length_normalize = true`).
    Ipo,
    /// Reference-free, length-normalised, with target margin γ.
    Simpo,
}

impl DpoLossType {
    /// Whether the loss reads the reference log-probs.
    pub fn needs_reference(self) -> bool {
        self != DpoLossType::Simpo
    }
}

/// Hyper-parameters of [`dpo_loss`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DpoLossConfig {
    /// The loss.
    pub loss_type: DpoLossType,
    /// β: the inverse temperature / strength of the implicit KL constraint.
    pub beta: f64,
    /// ε: probability that a label is flipped (Sigmoid = cDPO, Robust, SimPO). In `[0, 0.5)`.
    pub label_smoothing: f64,
    /// γ: SimPO's target reward margin.
    pub simpo_gamma: f64,
    /// α of the RPO term (mean NLL of the chosen reply); `None` = off.
    pub rpo_alpha: Option<f64>,
    /// Use per-token mean log-probs instead of sums (SimPO always does).
    pub length_normalize: bool,
}

impl Default for DpoLossConfig {
    fn default() -> Self {
        DpoLossConfig {
            loss_type: DpoLossType::Sigmoid,
            beta: 0.1,
            label_smoothing: 0.0,
            simpo_gamma: 0.5,
            rpo_alpha: None,
            length_normalize: false,
        }
    }
}

impl DpoLossConfig {
    /// Checks ranges; the message names the field.
    ///
    /// # Errors
    /// A description of the first invalid field.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !(self.beta.is_finite() && self.beta > 0.0) {
            return Err(format!("beta must be > 0, got {}", self.beta));
        }
        if !(0.0..0.5).contains(&self.label_smoothing) {
            return Err(format!(
                "label_smoothing must be in [0, 0.5), got {}",
                self.label_smoothing
            ));
        }
        if !self.simpo_gamma.is_finite() {
            return Err("simpo_gamma must be finite".into());
        }
        if let Some(a) = self.rpo_alpha
            && !(a.is_finite() && a >= 0.0)
        {
            return Err(format!("rpo_alpha must be >= 0, got {a}"));
        }
        Ok(())
    }
}

/// Sequence log-probs of a batch of pairs (all `[n]`).
#[derive(Debug, Clone)]
pub struct PairLogps<B: Backend> {
    /// Σ log π(y_c | x) over the chosen reply's tokens.
    pub chosen: Tensor<B, 1>,
    /// Σ log π(y_r | x).
    pub rejected: Tensor<B, 1>,
}

/// What [`dpo_loss`] returns.
#[derive(Debug, Clone)]
pub struct DpoLoss<B: Backend> {
    /// Mean over pairs, weighted when weights are given (`[1]`).
    pub loss: Tensor<B, 1>,
    /// Per-pair loss, `[n]` (without the RPO term).
    pub losses: Tensor<B, 1>,
    /// Implicit reward of the chosen replies, `[n]`, detached.
    pub chosen_rewards: Tensor<B, 1>,
    /// Implicit reward of the rejected replies, `[n]`, detached.
    pub rejected_rewards: Tensor<B, 1>,
}

/// The DPO-family loss of a batch of pairs.
///
/// - `policy`, `reference`: summed log-probs (the reference is ignored by SimPO and may be
///   zeros then);
/// - `chosen_tokens`, `rejected_tokens`: reply lengths in tokens (`[n]`, ≥ 1), for length
///   normalisation, SimPO and RPO;
/// - `weights`: optional per-pair weights (`[n]`); the loss is `Σ w·ℓ / Σ w`.
pub fn dpo_loss<B: Backend>(
    policy: PairLogps<B>,
    reference: PairLogps<B>,
    chosen_tokens: Tensor<B, 1>,
    rejected_tokens: Tensor<B, 1>,
    weights: Option<Tensor<B, 1>>,
    cfg: &DpoLossConfig,
) -> DpoLoss<B> {
    let beta = cfg.beta;
    let eps = cfg.label_smoothing;
    let nc = chosen_tokens.clamp_min(1.0);
    let nr = rejected_tokens.clamp_min(1.0);
    let rpo_nll = policy.chosen.clone().neg() / nc.clone();
    let (losses, chosen_rewards, rejected_rewards) = if cfg.loss_type == DpoLossType::Simpo {
        let c = policy.chosen / nc;
        let r = policy.rejected / nr;
        let logits = (c.clone() - r.clone())
            .mul_scalar(beta)
            .sub_scalar(cfg.simpo_gamma);
        let l = smoothed_sigmoid(logits, eps);
        (l, c.mul_scalar(beta), r.mul_scalar(beta))
    } else {
        let (mut pc, mut pr, mut rc, mut rr) = (
            policy.chosen,
            policy.rejected,
            reference.chosen,
            reference.rejected,
        );
        if cfg.length_normalize {
            pc = pc / nc.clone();
            rc = rc / nc;
            pr = pr / nr.clone();
            rr = rr / nr;
        }
        let dc = pc - rc;
        let dr = pr - rr;
        let z = dc.clone() - dr.clone();
        let l = match cfg.loss_type {
            DpoLossType::Sigmoid => smoothed_sigmoid(z.mul_scalar(beta), eps),
            DpoLossType::Robust => {
                let bz = z.mul_scalar(beta);
                (log_sigmoid(bz.clone()).mul_scalar(-(1.0 - eps))
                    + log_sigmoid(bz.neg()).mul_scalar(eps))
                .div_scalar(1.0 - 2.0 * eps)
            }
            DpoLossType::Hinge => relu(z.mul_scalar(-beta).add_scalar(1.0)),
            DpoLossType::Ipo => z.sub_scalar(1.0 / (2.0 * beta)).powi_scalar(2),
            DpoLossType::Simpo => unreachable!("handled above"),
        };
        (l, dc.mul_scalar(beta), dr.mul_scalar(beta))
    };
    let mut per_pair = losses.clone();
    if let Some(alpha) = cfg.rpo_alpha {
        per_pair = per_pair + rpo_nll.mul_scalar(alpha);
    }
    let loss = match weights {
        Some(w) => (per_pair * w.clone()).sum() / w.sum().clamp_min(1e-12),
        None => per_pair.mean(),
    };
    DpoLoss {
        loss,
        losses,
        chosen_rewards: chosen_rewards.detach(),
        rejected_rewards: rejected_rewards.detach(),
    }
}

/// `−(1−ε) log σ(x) − ε log σ(−x)`.
fn smoothed_sigmoid<B: Backend>(x: Tensor<B, 1>, eps: f64) -> Tensor<B, 1> {
    let pos = log_sigmoid(x.clone()).mul_scalar(-(1.0 - eps));
    if eps == 0.0 {
        pos
    } else {
        pos + log_sigmoid(x.neg()).mul_scalar(-eps)
    }
}

/// The same losses in float64 on the host: the reference the tensor version is tested
/// against, and what the tests' finite-difference gradients differentiate.
///
/// Arguments per pair: policy chosen/rejected sums, reference chosen/rejected sums, chosen and
/// rejected token counts. Returns the per-pair loss including the RPO term.
pub fn dpo_loss_f64(
    cfg: &DpoLossConfig,
    pc: f64,
    pr: f64,
    rc: f64,
    rr: f64,
    nc: f64,
    nr: f64,
) -> f64 {
    let ls = |x: f64| -> f64 {
        // log σ(x), stable.
        if x >= 0.0 {
            -(-x).exp().ln_1p()
        } else {
            x - x.exp().ln_1p()
        }
    };
    let (beta, eps) = (cfg.beta, cfg.label_smoothing);
    let (nc, nr) = (nc.max(1.0), nr.max(1.0));
    let base = if cfg.loss_type == DpoLossType::Simpo {
        let x = beta * (pc / nc - pr / nr) - cfg.simpo_gamma;
        -(1.0 - eps) * ls(x) - eps * ls(-x)
    } else {
        let (a, b, c, d) = if cfg.length_normalize {
            (pc / nc, pr / nr, rc / nc, rr / nr)
        } else {
            (pc, pr, rc, rr)
        };
        let z = (a - c) - (b - d);
        match cfg.loss_type {
            DpoLossType::Sigmoid => -(1.0 - eps) * ls(beta * z) - eps * ls(-beta * z),
            DpoLossType::Robust => {
                (-(1.0 - eps) * ls(beta * z) + eps * ls(-beta * z)) / (1.0 - 2.0 * eps)
            }
            DpoLossType::Hinge => (1.0 - beta * z).max(0.0),
            DpoLossType::Ipo => (z - 1.0 / (2.0 * beta)).powi(2),
            DpoLossType::Simpo => unreachable!(),
        }
    };
    base + cfg.rpo_alpha.map_or(0.0, |a| a * (-pc / nc))
}
