//! Reward shaping for PPO: reference-reward baseline, running normalisation, clipping, whitening.
//!
//! All functions are pure (the running statistics are an explicit, serialisable value) and
//! accept `f32` or `f64` slices, accumulating in `f64`.
//!
//! ChatGLM-RLHF (SPEC §A.4.2–A.4.3) uses `r(x, y) − r(x, y_ref)` and *no* reward or advantage
//! normalisation; the other pieces are here for ablations and for TRL-style baselines.

use crate::config::ShapingConfig;
use crate::num::{Real, check_finite, check_same_len};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// The reference reward (SPEC §A.4.3): `scores[i] − ref_scores[i]`, where `ref_scores[i]` is the
/// reward model's score of the cached reference-policy response to the same prompt.
///
/// # Shapes
/// - `scores`, `ref_scores`: `[batch]`
/// - output: `[batch]`
///
/// # Errors
/// [`Error::LengthMismatch`] if the lengths differ, [`Error::NonFinite`] for NaN/infinite input.
pub fn reference_baseline<T: Real>(scores: &[T], ref_scores: &[T]) -> Result<Vec<T>> {
    check_same_len(
        "reference_baseline scores/ref_scores",
        scores.len(),
        ref_scores.len(),
    )?;
    check_finite("reference_baseline scores", scores)?;
    check_finite("reference_baseline ref_scores", ref_scores)?;
    Ok(scores
        .iter()
        .zip(ref_scores)
        .map(|(s, r)| T::from_f64(s.to_f64() - r.to_f64()))
        .collect())
}

/// The reference reward when several responses share a prompt: `scores[i] −
/// ref_scores[prompt_of[i]]`, with one cached reference score per prompt.
///
/// # Shapes
/// - `scores`, `prompt_of`: `[batch]`; `ref_scores`: `[num_prompts]`
/// - output: `[batch]`
///
/// # Errors
/// [`Error::LengthMismatch`] if `scores` and `prompt_of` differ in length,
/// [`Error::IndexOutOfRange`] for a prompt index `>= ref_scores.len()`, [`Error::NonFinite`].
pub fn reference_baseline_indexed<T: Real>(
    scores: &[T],
    prompt_of: &[usize],
    ref_scores: &[T],
) -> Result<Vec<T>> {
    check_same_len(
        "reference_baseline_indexed scores/prompt_of",
        scores.len(),
        prompt_of.len(),
    )?;
    check_finite("reference_baseline_indexed scores", scores)?;
    check_finite("reference_baseline_indexed ref_scores", ref_scores)?;
    scores
        .iter()
        .zip(prompt_of)
        .map(|(s, &p)| {
            let r = ref_scores.get(p).ok_or(Error::IndexOutOfRange {
                index: p,
                len: ref_scores.len(),
            })?;
            Ok(T::from_f64(s.to_f64() - r.to_f64()))
        })
        .collect()
}

/// Clips every value to `[-bound, bound]` (TRL `score_clip`).
///
/// # Errors
/// [`Error::OutOfRange`] unless `bound` is finite and > 0; [`Error::NonFinite`] for NaN input
/// (infinite values are clipped).
pub fn clip_rewards<T: Real>(xs: &[T], bound: f64) -> Result<Vec<T>> {
    if !(bound.is_finite() && bound > 0.0) {
        return Err(Error::OutOfRange {
            name: "clip",
            expected: "finite and > 0",
            value: bound,
        });
    }
    if let Some(index) = xs.iter().position(|x| x.to_f64().is_nan()) {
        return Err(Error::NonFinite {
            what: "clip_rewards",
            index,
        });
    }
    Ok(xs
        .iter()
        .map(|x| T::from_f64(x.to_f64().clamp(-bound, bound)))
        .collect())
}

fn check_eps(eps: f64) -> Result<()> {
    if eps.is_finite() && eps > 0.0 {
        Ok(())
    } else {
        Err(Error::OutOfRange {
            name: "eps",
            expected: "finite and > 0",
            value: eps,
        })
    }
}

/// Whitens a batch: `(x − mean) / sqrt(var + eps)` with the unbiased (n − 1) variance, as TRL's
/// `masked_whiten`. With `shift_mean = false` the mean is added back, so only the scale changes.
///
/// # Shapes
/// - `xs`: `[batch]`; output: `[batch]`
///
/// # Errors
/// [`Error::TooFewValues`] for fewer than 2 values, [`Error::OutOfRange`] for a bad `eps`,
/// [`Error::NonFinite`].
pub fn whiten<T: Real>(xs: &[T], shift_mean: bool, eps: f64) -> Result<Vec<T>> {
    check_eps(eps)?;
    check_finite("whiten", xs)?;
    let n = xs.len();
    if n < 2 {
        return Err(Error::TooFewValues {
            what: "whiten",
            got: n,
            need: 2,
        });
    }
    let mean = xs.iter().map(|x| x.to_f64()).sum::<f64>() / n as f64;
    let var = xs.iter().map(|x| (x.to_f64() - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let inv = 1.0 / (var + eps).sqrt();
    let back = if shift_mean { 0.0 } else { mean };
    Ok(xs
        .iter()
        .map(|x| T::from_f64((x.to_f64() - mean) * inv + back))
        .collect())
}

/// Running mean and variance (Welford), serialisable so it can be checkpointed with the run.
///
/// Updating one value at a time from a restored state gives bit-identical results to an
/// uninterrupted run; [`merge`](Self::merge) combines two states (Chan et al.) and agrees with a
/// single pass up to rounding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RunningMeanStd {
    /// Number of values seen.
    pub count: u64,
    /// Their mean (0 when `count == 0`).
    pub mean: f64,
    /// Sum of squared deviations from the mean.
    pub m2: f64,
}

impl RunningMeanStd {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds every value of `xs`, in order.
    ///
    /// # Errors
    /// [`Error::NonFinite`]; the state is left unchanged in that case.
    pub fn update<T: Real>(&mut self, xs: &[T]) -> Result<()> {
        check_finite("RunningMeanStd::update", xs)?;
        for x in xs {
            self.count += 1;
            let x = x.to_f64();
            let d = x - self.mean;
            self.mean += d / self.count as f64;
            self.m2 += d * (x - self.mean);
        }
        Ok(())
    }

    /// Folds `other` into `self`, as if `self` had also seen `other`'s values.
    pub fn merge(&mut self, other: &RunningMeanStd) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *other;
            return;
        }
        let (na, nb) = (self.count as f64, other.count as f64);
        let n = na + nb;
        let d = other.mean - self.mean;
        self.mean += d * nb / n;
        self.m2 += other.m2 + d * d * na * nb / n;
        self.count += other.count;
    }

    /// Population variance `m2 / count` (0 when empty).
    pub fn variance(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.m2 / self.count as f64
        }
    }

    /// Unbiased variance `m2 / (count − 1)`; `None` for fewer than 2 values.
    pub fn sample_variance(&self) -> Option<f64> {
        (self.count >= 2).then(|| self.m2 / (self.count - 1) as f64)
    }

    /// Population standard deviation.
    pub fn std(&self) -> f64 {
        self.variance().sqrt()
    }

    /// `(x − mean) / sqrt(variance + eps)` with the current statistics (population variance);
    /// with `shift_mean = false` only divides, `x / sqrt(variance + eps)`.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] for a bad `eps`.
    pub fn normalize<T: Real>(&self, xs: &[T], shift_mean: bool, eps: f64) -> Result<Vec<T>> {
        check_eps(eps)?;
        let inv = 1.0 / (self.variance() + eps).sqrt();
        let shift = if shift_mean { self.mean } else { 0.0 };
        Ok(xs
            .iter()
            .map(|x| T::from_f64((x.to_f64() - shift) * inv))
            .collect())
    }

    /// JSON text of the state (bit-exact on reload).
    ///
    /// # Errors
    /// [`Error::Json`] (not expected for finite states).
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string(self)?)
    }

    /// Restores a state written by [`to_json`](Self::to_json).
    ///
    /// # Errors
    /// [`Error::Json`] for malformed input.
    pub fn from_json(s: &str) -> Result<Self> {
        Ok(serde_json::from_str(s)?)
    }
}

/// Applies a [`ShapingConfig`] to one batch of reward-model scores, in the order
/// reference baseline → running normalisation (update, then normalise, as TRL) → clip.
///
/// `ref_scores` is needed only when `config.reference_baseline`; `running` is read and
/// updated only when `config.running_norm`.
///
/// # Shapes
/// - `scores`, `ref_scores`: `[batch]`; output: `[batch]`
///
/// # Errors
/// [`ShapingConfig::validate`]'s errors, [`Error::MissingReferenceScores`], and the errors of
/// the individual steps.
pub fn shape_rewards<T: Real>(
    scores: &[T],
    ref_scores: Option<&[T]>,
    config: &ShapingConfig,
    running: &mut RunningMeanStd,
) -> Result<Vec<T>> {
    config.validate()?;
    let mut r = if config.reference_baseline {
        reference_baseline(scores, ref_scores.ok_or(Error::MissingReferenceScores)?)?
    } else {
        check_finite("shape_rewards scores", scores)?;
        scores.to_vec()
    };
    if config.running_norm {
        running.update(&r)?;
        r = running.normalize(&r, config.running_norm_shift_mean, config.eps)?;
    }
    if let Some(c) = config.clip {
        r = clip_rewards(&r, c)?;
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol * b.abs().max(1.0), "{a} vs {b}");
    }

    #[test]
    fn baseline_subtracts_elementwise() {
        let r = reference_baseline(&[1.0_f32, 2.5, -1.0], &[0.5, 2.5, 1.0]).unwrap();
        assert_eq!(r, vec![0.5, 0.0, -2.0]);
        // Policy == reference => reward exactly 0 (Figure 4 starts at 0).
        let s = [0.3_f64, -1.7, 4.2];
        assert!(
            reference_baseline(&s, &s)
                .unwrap()
                .iter()
                .all(|&x| x == 0.0)
        );
        assert!(matches!(
            reference_baseline(&[1.0_f32], &[1.0, 2.0]),
            Err(Error::LengthMismatch {
                left: 1,
                right: 2,
                ..
            })
        ));
        assert!(matches!(
            reference_baseline(&[1.0, f64::NAN], &[1.0, 2.0]),
            Err(Error::NonFinite { index: 1, .. })
        ));
    }

    #[test]
    fn indexed_baseline_uses_prompt_reference() {
        let r =
            reference_baseline_indexed(&[1.0, 2.0, 3.0, 4.0], &[0, 0, 1, 1], &[1.0, 5.0]).unwrap();
        assert_eq!(r, vec![0.0, 1.0, -2.0, -1.0]);
        assert!(matches!(
            reference_baseline_indexed(&[1.0], &[2], &[1.0, 5.0]),
            Err(Error::IndexOutOfRange { index: 2, len: 2 })
        ));
        assert!(matches!(
            reference_baseline_indexed(&[1.0], &[0, 1], &[1.0, 5.0]),
            Err(Error::LengthMismatch { .. })
        ));
    }

    #[test]
    fn clipping() {
        let r = clip_rewards(&[-5.0_f32, -1.0, 0.0, 2.9, 3.1, f32::INFINITY], 3.0).unwrap();
        assert_eq!(r, vec![-3.0, -1.0, 0.0, 2.9, 3.0, 3.0]);
        assert!(clip_rewards(&[1.0_f64], 0.0).is_err());
        assert!(clip_rewards(&[f64::NAN], 1.0).is_err());
    }

    // Reference, pure Python 3.11:
    //   x = [1.5, -0.5, 2.0, 4.0, 0.0]; n = len(x); m = sum(x)/n
    //   var = sum((v-m)**2 for v in x)/(n-1)                  # 3.175 (unbiased, as TRL)
    //   [(v-m)/math.sqrt(var+1e-8) for v in x]
    //   -> [0.05612135323825134, -1.0663057115267744, 0.3367281194295078,
    //       1.4591551841945336, -0.785698945335518]
    //   shift_mean=False adds m = 1.4 back.
    #[test]
    fn golden_whiten() {
        let x = [1.5, -0.5, 2.0, 4.0, 0.0];
        let w = whiten(&x, true, 1e-8).unwrap();
        let expect = [
            0.056_121_353_238_251_34,
            -1.066_305_711_526_774_4,
            0.336_728_119_429_507_8,
            1.459_155_184_194_533_6,
            -0.785_698_945_335_518,
        ];
        for (a, b) in w.iter().zip(expect) {
            close(*a, b, 1e-12);
        }
        let mean = w.iter().sum::<f64>() / 5.0;
        close(mean, 0.0, 1e-12);
        let var = w.iter().map(|v| v * v).sum::<f64>() / 4.0;
        close(var, 1.0, 1e-6);
        let w2 = whiten(&x, false, 1e-8).unwrap();
        for (a, b) in w2.iter().zip(expect) {
            close(*a, b + 1.4, 1e-12);
        }
        let f = whiten(&[1.5_f32, -0.5, 2.0, 4.0, 0.0], true, 1e-8).unwrap();
        close(f64::from(f[3]), expect[3], 1e-6);
    }

    #[test]
    fn whiten_edge_cases() {
        assert!(matches!(
            whiten(&[1.0], true, 1e-8),
            Err(Error::TooFewValues { .. })
        ));
        assert!(whiten(&[1.0, 2.0], true, 0.0).is_err());
        // Constant input: eps keeps it finite, output is all zeros.
        assert!(
            whiten(&[3.0, 3.0, 3.0], true, 1e-8)
                .unwrap()
                .iter()
                .all(|&v| v == 0.0)
        );
    }

    fn random_batch(rng: &mut ChaCha8Rng, n: usize) -> Vec<f64> {
        (0..n)
            .map(|_| rng.random_range(-3.0..7.0) * rng.random_range(0.1..10.0))
            .collect()
    }

    #[test]
    fn welford_matches_two_pass() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let xs = random_batch(&mut rng, 1000);
        let mut s = RunningMeanStd::new();
        s.update(&xs).unwrap();
        let m = xs.iter().sum::<f64>() / 1000.0;
        let v = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 1000.0;
        assert_eq!(s.count, 1000);
        close(s.mean, m, 1e-12);
        close(s.variance(), v, 1e-12);
        close(s.sample_variance().unwrap(), v * 1000.0 / 999.0, 1e-12);
        close(s.std(), v.sqrt(), 1e-12);
    }

    // Resume: checkpoint the state to JSON mid-stream, reload, continue => bit-identical to one
    // uninterrupted pass. Merge: per-chunk states merged => one pass up to rounding.
    #[test]
    fn welford_resume_and_merge_equal_one_pass() {
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let batches: Vec<Vec<f64>> = (0..10)
            .map(|i| random_batch(&mut rng, 17 * i + 3))
            .collect();
        let mut one = RunningMeanStd::new();
        for b in &batches {
            one.update(b).unwrap();
        }

        let mut resumed = RunningMeanStd::new();
        for (i, b) in batches.iter().enumerate() {
            if i % 3 == 0 {
                let json = resumed.to_json().unwrap();
                resumed = RunningMeanStd::from_json(&json).unwrap();
            }
            resumed.update(b).unwrap();
        }
        assert_eq!(resumed, one, "resume must be bit-exact");

        let mut merged = RunningMeanStd::new();
        for b in &batches {
            let mut part = RunningMeanStd::new();
            part.update(b).unwrap();
            merged.merge(&part);
        }
        assert_eq!(merged.count, one.count);
        close(merged.mean, one.mean, 1e-12);
        close(merged.m2, one.m2, 1e-10);

        let mut e = RunningMeanStd::new();
        e.merge(&RunningMeanStd::new());
        assert_eq!(e, RunningMeanStd::new());
        e.merge(&one);
        assert_eq!(e, one);
        e.merge(&RunningMeanStd::new());
        assert_eq!(e, one);
    }

    #[test]
    fn welford_rejects_non_finite_without_changing_state() {
        let mut s = RunningMeanStd::new();
        s.update(&[1.0_f32, 2.0]).unwrap();
        let before = s;
        assert!(s.update(&[3.0, f64::NAN]).is_err());
        assert_eq!(s, before);
        assert_eq!(RunningMeanStd::new().variance(), 0.0);
        assert_eq!(before.sample_variance(), Some(0.5));
    }

    #[test]
    fn running_normalize() {
        let mut s = RunningMeanStd::new();
        s.update(&[1.0, 3.0]).unwrap(); // mean 2, population var 1
        let n = s.normalize(&[2.0_f64, 4.0], true, 1e-12).unwrap();
        close(n[0], 0.0, 1e-9);
        close(n[1], 2.0, 1e-9);
        let n = s.normalize(&[4.0_f64], false, 1e-12).unwrap();
        close(n[0], 4.0, 1e-9);
    }

    #[test]
    fn shape_rewards_pipeline() {
        let mut st = RunningMeanStd::new();
        let scores = [3.0_f32, 1.0, -2.0];
        let refs = [1.0_f32, 1.0, 1.0];
        // Paper default: baseline only.
        let r = shape_rewards(&scores, Some(&refs), &ShapingConfig::default(), &mut st).unwrap();
        assert_eq!(r, vec![2.0, 0.0, -3.0]);
        assert_eq!(st.count, 0, "running stats untouched without running_norm");
        assert!(matches!(
            shape_rewards(&scores, None, &ShapingConfig::default(), &mut st),
            Err(Error::MissingReferenceScores)
        ));
        // Baseline + clip.
        let cfg = ShapingConfig {
            clip: Some(1.5),
            ..Default::default()
        };
        assert_eq!(
            shape_rewards(&scores, Some(&refs), &cfg, &mut st).unwrap(),
            vec![1.5, 0.0, -1.5]
        );
        // No baseline, running norm: update then normalise.
        let cfg = ShapingConfig {
            reference_baseline: false,
            running_norm: true,
            ..Default::default()
        };
        let r = shape_rewards(&[1.0_f64, 3.0], None, &cfg, &mut st).unwrap();
        assert_eq!(st.count, 2);
        close(r[0], -1.0, 1e-6);
        close(r[1], 1.0, 1e-6);
        // Invalid config is rejected.
        let bad = ShapingConfig {
            eps: 0.0,
            ..Default::default()
        };
        assert!(shape_rewards(&scores, Some(&refs), &bad, &mut st).is_err());
    }
}
