//! The learning-rate schedule: linear warm-up, then cosine decay, as a pure function of the
//! optimizer step (so a resumed run needs only the step count to continue it exactly).

/// Linear warm-up to `peak` over `warmup` steps, then a half cosine from `peak` down to
/// `peak × min_ratio` at the last step.
///
/// For optimizer step `s` (0-based) of `total`:
/// - `s < warmup`: `peak · (s + 1) / warmup` (the first step already moves; HF's
///   `get_cosine_schedule_with_warmup` uses `s / warmup`, i.e. lr 0 on step 0);
/// - otherwise, with `p = (s − warmup) / max(1, total − warmup − 1)` clamped to `[0, 1]`:
///   `min + (peak − min) · ½ (1 + cos(π p))`, where `min = peak · min_ratio`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrSchedule {
    /// Peak learning rate.
    pub peak: f64,
    /// Warm-up steps.
    pub warmup: usize,
    /// Total optimizer steps.
    pub total: usize,
    /// Final lr as a fraction of the peak.
    pub min_ratio: f64,
}

impl LrSchedule {
    /// The learning rate of optimizer step `step` (0-based).
    pub fn lr(&self, step: usize) -> f64 {
        if step < self.warmup {
            return self.peak * (step + 1) as f64 / self.warmup as f64;
        }
        let span = self.total.saturating_sub(self.warmup + 1).max(1) as f64;
        let p = ((step - self.warmup) as f64 / span).clamp(0.0, 1.0);
        let min = self.peak * self.min_ratio;
        min + (self.peak - min) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
    }
}

/// AdamW with the betas, epsilon and weight decay of a trainer's config (every trainer of the
/// workspace stores them as `f64`).
pub fn adamw(beta1: f64, beta2: f64, epsilon: f64, weight_decay: f64) -> burn::optim::AdamWConfig {
    burn::optim::AdamWConfig::new()
        .with_beta_1(beta1 as f32)
        .with_beta_2(beta2 as f32)
        .with_epsilon(epsilon as f32)
        .with_weight_decay(weight_decay as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }

    #[test]
    fn warms_up_linearly_then_decays_by_cosine() {
        let s = LrSchedule {
            peak: 1.0,
            warmup: 4,
            total: 14,
            min_ratio: 0.1,
        };
        close(s.lr(0), 0.25);
        close(s.lr(3), 1.0);
        close(s.lr(4), 1.0);
        // Middle of the decay: (4 + 13) / 2 = 8.5 -> between 8 and 9; step 9 is p = 5/9.
        close(
            s.lr(9),
            0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * 5.0 / 9.0).cos()),
        );
        close(s.lr(13), 0.1);
        close(s.lr(100), 0.1);
        // Monotone after warm-up.
        for k in 4..13 {
            assert!(s.lr(k + 1) <= s.lr(k));
        }
    }

    #[test]
    fn no_warmup_starts_at_peak() {
        let s = LrSchedule {
            peak: 3e-4,
            warmup: 0,
            total: 1,
            min_ratio: 0.0,
        };
        close(s.lr(0), 3e-4);
    }
}
