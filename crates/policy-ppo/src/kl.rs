//! The KL penalty to the reference policy: per-token estimators (Schulman's k1 and k3) and the
//! coefficient controller (fixed, or adaptive as in Ziegler et al. 2019 / TRL's
//! `AdaptiveKLController`).

use serde::{Deserialize, Serialize};

use crate::error::{PpoError, Result};

/// How the per-token KL `KL(π‖π_ref)` is estimated from the sampled token's log-probs
/// (<http://joschu.net/blog/kl-approx.html>; TRL `kl_estimator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KlEstimator {
    /// `k1 = log π(y) − log π_ref(y)`: unbiased, can be negative per token (TRL default).
    #[default]
    K1,
    /// `k3 = (r − 1) − log r` with `r = π_ref(y) / π(y)`: unbiased, never negative, lower
    /// variance.
    K3,
}

impl KlEstimator {
    /// The estimate for one sampled token from its policy and reference log-probs.
    pub fn estimate(self, logprob: f64, ref_logprob: f64) -> f64 {
        let log_ratio = ref_logprob - logprob;
        match self {
            KlEstimator::K1 => -log_ratio,
            KlEstimator::K3 => log_ratio.exp_m1() - log_ratio,
        }
    }
}

/// The adaptive controller's parameters (Ziegler et al. 2019, TRL `AdaptiveKLController`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdaptiveKl {
    /// The KL (summed over a response, averaged over the batch) the coefficient steers to.
    pub target: f64,
    /// The horizon in episodes (responses): how fast the coefficient moves.
    pub horizon: f64,
}

/// KL-penalty settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KlConfig {
    /// The per-token estimator.
    pub estimator: KlEstimator,
    /// β: the (initial) coefficient. SPEC §A.8 proposes 0.05 fixed; TRL's `kl_coef` is 0.05.
    pub coef: f64,
    /// Adapt β towards a target KL; `None` keeps it fixed.
    pub adaptive: Option<AdaptiveKl>,
}

impl Default for KlConfig {
    fn default() -> Self {
        KlConfig {
            estimator: KlEstimator::K1,
            coef: 0.05,
            adaptive: None,
        }
    }
}

impl KlConfig {
    /// Checks `coef >= 0` and, when adaptive, `target > 0` and `horizon > 0`.
    ///
    /// # Errors
    /// [`PpoError::Config`].
    pub fn validate(&self) -> Result<()> {
        if !(self.coef.is_finite() && self.coef >= 0.0) {
            return Err(PpoError::config(
                "kl.coef",
                format!("must be finite and >= 0, got {}", self.coef),
            ));
        }
        if let Some(a) = self.adaptive {
            if !(a.target.is_finite() && a.target > 0.0) {
                return Err(PpoError::config(
                    "kl.adaptive.target",
                    format!("must be > 0, got {}", a.target),
                ));
            }
            if !(a.horizon.is_finite() && a.horizon > 0.0) {
                return Err(PpoError::config(
                    "kl.adaptive.horizon",
                    format!("must be > 0, got {}", a.horizon),
                ));
            }
        }
        Ok(())
    }

    /// The controller at the start of training.
    pub fn controller(&self) -> KlController {
        KlController {
            coef: self.coef,
            adaptive: self.adaptive,
        }
    }
}

/// The current β and how it moves: the controller's whole state (checkpointed as JSON).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KlController {
    /// The coefficient used for the next rollout.
    pub coef: f64,
    /// `None`: fixed.
    pub adaptive: Option<AdaptiveKl>,
}

impl KlController {
    /// Updates β after a rollout whose mean (per-response) KL was `current`, over `n_steps`
    /// episodes: `e = clip(current / target − 1, −0.2, 0.2)`, `β ← β (1 + e · n_steps / horizon)`.
    /// A fixed controller does nothing.
    pub fn update(&mut self, current: f64, n_steps: usize) {
        if let Some(a) = self.adaptive {
            let err = (current / a.target - 1.0).clamp(-0.2, 0.2);
            self.coef *= 1.0 + err * n_steps as f64 / a.horizon;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol, "{a} vs {b}");
    }

    // Reference (Python 3, float64):
    //   lp, rp = -1.2, -0.7; lr = rp - lp             # 0.5
    //   k1 = -lr                                      # -0.5
    //   k3 = math.expm1(lr) - lr                      # 0.14872127070012819
    //   lp, rp = -0.3, -2.3; lr = -2.0
    //   k1 = 2.0; k3 = math.expm1(-2.0) + 2.0         # 1.1353352832366128
    #[test]
    fn golden_estimators() {
        close(KlEstimator::K1.estimate(-1.2, -0.7), -0.5, 1e-12);
        close(
            KlEstimator::K3.estimate(-1.2, -0.7),
            0.148_721_270_700_128_2,
            1e-12,
        );
        close(KlEstimator::K1.estimate(-0.3, -2.3), 2.0, 1e-12);
        close(
            KlEstimator::K3.estimate(-0.3, -2.3),
            1.135_335_283_236_612_8,
            1e-12,
        );
        // Equal log-probs: both zero; k3 is never negative.
        for e in [KlEstimator::K1, KlEstimator::K3] {
            assert_eq!(e.estimate(-3.0, -3.0), 0.0);
        }
        for (a, b) in [(-0.1, -5.0), (-5.0, -0.1), (-2.0, -2.5)] {
            assert!(KlEstimator::K3.estimate(a, b) >= 0.0);
        }
    }

    // Reference: TRL AdaptiveKLController(init 0.2, target 6, horizon 10000), update(current, 64):
    //   e = clip(current/6 - 1, -0.2, 0.2); value *= 1 + e * 64 / 10000
    //   update(9.0): e = 0.2 -> 0.2 * 1.00128 = 0.200256
    //   then update(3.0): e = -0.2 -> 0.200256 * 0.99872 = 0.20000 (0.19999967232)
    //   then update(6.6): e = 0.1 -> * 1.00064
    #[test]
    fn golden_adaptive_controller() {
        let cfg = KlConfig {
            coef: 0.2,
            adaptive: Some(AdaptiveKl {
                target: 6.0,
                horizon: 10_000.0,
            }),
            ..KlConfig::default()
        };
        cfg.validate().unwrap();
        let mut c = cfg.controller();
        c.update(9.0, 64);
        close(c.coef, 0.200_256, 1e-15);
        c.update(3.0, 64);
        close(c.coef, 0.199_999_672_32, 1e-14);
        c.update(6.6, 64);
        close(c.coef, 0.199_999_672_32 * 1.000_64, 1e-14);
        let mut fixed = KlConfig::default().controller();
        fixed.update(100.0, 64);
        assert_eq!(fixed.coef, 0.05);
    }

    #[test]
    fn rejects_bad_settings() {
        let bad = KlConfig {
            coef: -1.0,
            ..KlConfig::default()
        };
        assert!(bad.validate().is_err());
        let bad = KlConfig {
            adaptive: Some(AdaptiveKl {
                target: 0.0,
                horizon: 1.0,
            }),
            ..KlConfig::default()
        };
        assert!(bad.validate().is_err());
    }
}
