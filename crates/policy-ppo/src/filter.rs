//! The RL prompt filter (SPEC §A.4.1): prompts whose sampled responses all get about the same
//! reward teach PPO nothing, so sample `k` responses per prompt with the SFT policy, score them,
//! and drop the prompt when the (population) variance of its `k` scores is below ε.

use burn::prelude::*;
use rlhf_core::CausalLm;
use rlhf_core::generate::{GenerationConfig, Sampling, generate};
use serde::{Deserialize, Serialize};

use crate::config::FilterConfig;
use crate::data::EncodedPrompt;
use crate::error::{PpoError, Result};
use crate::frozen::Frozen;
use crate::scorer::Scorer;
use crate::sequences::PackedSequences;

/// One prompt's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilteredPrompt {
    /// The prompt's id.
    pub id: String,
    /// The `k` scores.
    pub scores: Vec<f32>,
    /// Their population variance.
    pub variance: f64,
    /// Whether the prompt is kept (`variance >= epsilon`).
    pub kept: bool,
}

/// The filter's result (written to `RUN_DIR/prompt_filter.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilterReport {
    /// The settings.
    pub config: FilterConfig,
    /// Identifies the policy, reward model and prompts the report was computed with.
    pub fingerprint: String,
    /// Prompts in, prompts kept.
    pub n_input: usize,
    /// Prompts kept.
    pub n_kept: usize,
    /// Per prompt, in input order.
    pub prompts: Vec<FilteredPrompt>,
}

impl FilterReport {
    /// Indices (into the filtered prompt list) of the kept prompts.
    pub fn kept_indices(&self) -> Vec<usize> {
        self.prompts
            .iter()
            .enumerate()
            .filter(|(_, p)| p.kept)
            .map(|(i, _)| i)
            .collect()
    }
}

/// Population variance in float64.
pub fn variance(xs: &[f32]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let n = xs.len() as f64;
    let mean = xs.iter().map(|&x| x as f64).sum::<f64>() / n;
    xs.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n
}

/// Samples `cfg.k` responses per prompt (batches of `cfg.batch_prompts` prompts, each repeated
/// `k` times, seed `base.seed + batch`), scores them and applies the threshold. `base` gives the
/// lengths, EOS and pad ids; its sampling is replaced by temperature `cfg.temperature`.
///
/// # Errors
/// Generation errors; [`PpoError::Data`] when every prompt would be dropped.
pub fn filter_prompts<B: Backend>(
    policy: &mut Frozen<B, CausalLm<B>>,
    scorer: &mut dyn Scorer<B>,
    prompts: &[EncodedPrompt],
    cfg: &FilterConfig,
    base: &GenerationConfig,
    fingerprint: String,
    device: &B::Device,
) -> Result<FilterReport> {
    let mut out = Vec::with_capacity(prompts.len());
    for (c, chunk) in prompts.chunks(cfg.batch_prompts.max(1)).enumerate() {
        let rows: Vec<Vec<u32>> = chunk
            .iter()
            .flat_map(|p| std::iter::repeat_n(p.ids.clone(), cfg.k))
            .collect();
        let gen_cfg = GenerationConfig {
            sampling: Sampling::Sample {
                temperature: cfg.temperature,
                top_k: None,
                top_p: None,
            },
            seed: base.seed.wrapping_add(c as u64),
            ..base.clone()
        };
        let res = policy.with(device, |m| generate(m, &rows, &gen_cfg, device))?;
        let seqs = PackedSequences::new(&rows, &res.new_ids, gen_cfg.pad_id);
        let scores = crate::scorer::checked_scores(scorer, &seqs, device)?;
        for (i, p) in chunk.iter().enumerate() {
            let s = scores[i * cfg.k..(i + 1) * cfg.k].to_vec();
            let v = variance(&s);
            out.push(FilteredPrompt {
                id: p.id.clone(),
                scores: s,
                variance: v,
                kept: v >= cfg.epsilon,
            });
        }
    }
    let n_kept = out.iter().filter(|p| p.kept).count();
    if n_kept == 0 {
        return Err(PpoError::Data(format!(
            "the prompt filter dropped all {} prompts (epsilon {}); lower filter.epsilon",
            prompts.len(),
            cfg.epsilon
        )));
    }
    tracing::info!(n_input = prompts.len(), n_kept, "prompt filter");
    Ok(FilterReport {
        config: cfg.clone(),
        fingerprint,
        n_input: prompts.len(),
        n_kept,
        prompts: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn population_variance() {
        assert_eq!(variance(&[1.0, 1.0, 1.0]), 0.0);
        assert!((variance(&[1.0, 3.0]) - 1.0).abs() < 1e-12);
        assert!((variance(&[0.0, 1.0, 2.0, 3.0]) - 1.25).abs() < 1e-12);
    }
}
