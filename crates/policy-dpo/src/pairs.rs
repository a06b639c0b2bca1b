//! The paper's DPO pairs (SPEC §A.4.5): for each prompt, sample `k` replies from the SFT
//! policy, score them with the trained reward model, and pair the best with the worst; a pair
//! whose reward margin is below a threshold carries no reliable preference and is skipped.

use burn::prelude::*;
use rlhf_core::generate::{GenerationConfig, Sampling, generate};
use rlhf_core::text::TextCodec;
use rlhf_core::tokenizer::Message;
use rlhf_core::{CausalLm, ScalarModel};
use rlhf_reward::{PreferencePair, score_replies};
use serde::{Deserialize, Serialize};

use crate::error::{DpoError, Result};

/// Parameters of [`build_rm_pairs`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PairBuildConfig {
    /// Replies sampled per prompt (≥ 2). Default 4.
    pub k: usize,
    /// New tokens per reply. Default 128.
    pub max_new_tokens: usize,
    /// Sampling temperature. Default 1.0.
    pub temperature: f32,
    /// Nucleus sampling threshold. Default `None`.
    pub top_p: Option<f32>,
    /// Seed of the sampler. Default 0.
    pub seed: u64,
    /// Skip a prompt whose best−worst reward margin is below this. Default 0.1.
    pub min_margin: f64,
    /// Prompts per generation batch (each expands to `k` rows). Default 8.
    pub batch_prompts: usize,
    /// Longest scored row (prompt + reply) in tokens. Default 1024.
    pub max_length: usize,
    /// Use only the first this many prompts (`None` = all). Default `None`.
    pub max_prompts: Option<usize>,
}

impl Default for PairBuildConfig {
    fn default() -> Self {
        PairBuildConfig {
            k: 4,
            max_new_tokens: 128,
            temperature: 1.0,
            top_p: None,
            seed: 0,
            min_margin: 0.1,
            batch_prompts: 8,
            max_length: 1024,
            max_prompts: None,
        }
    }
}

/// A pair built by [`build_rm_pairs`] with the scores it was built from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RmPair {
    /// The pair (id = the prompt's id, category kept).
    pub pair: PreferencePair,
    /// RM score of the chosen reply.
    pub chosen_score: f32,
    /// RM score of the rejected reply.
    pub rejected_score: f32,
    /// Scores of all `k` samples.
    pub scores: Vec<f32>,
}

/// Counts of a [`build_rm_pairs`] run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PairBuildReport {
    /// Prompts seen.
    pub prompts: usize,
    /// Pairs kept.
    pub pairs: usize,
    /// Prompts skipped because the margin was below `min_margin`.
    pub skipped_margin: usize,
    /// Prompts skipped because every sample was the same text, or fewer than two were
    /// non-empty (an empty reply cannot be a DPO row: the pair readers refuse it).
    pub skipped_identical: usize,
    /// Mean margin of the kept pairs.
    pub mean_margin: f64,
    /// Mean reply length in characters of chosen replies.
    pub mean_chosen_chars: f64,
    /// Mean reply length in characters of rejected replies.
    pub mean_rejected_chars: f64,
}

/// Samples `k` replies per prompt of `prompts` (`(id, category, messages)`) from `policy`,
/// scores them with `rm`, and returns best-vs-worst pairs whose margin reaches
/// `cfg.min_margin`. `on_progress` is told how many prompts are done.
///
/// # Errors
/// Invalid config, generation and tokenizer errors.
#[allow(clippy::type_complexity)]
pub fn build_rm_pairs<B: Backend>(
    policy: &CausalLm<B>,
    rm: &ScalarModel<B>,
    encoder: &TextCodec<'_>,
    prompts: &[(String, Option<String>, Vec<Message>)],
    cfg: &PairBuildConfig,
    device: &B::Device,
    mut on_progress: impl FnMut(usize),
) -> Result<(Vec<RmPair>, PairBuildReport)> {
    if cfg.k < 2 {
        return Err(DpoError::Config(format!("k must be >= 2, got {}", cfg.k)));
    }
    if cfg.batch_prompts == 0 || cfg.max_new_tokens == 0 {
        return Err(DpoError::Config(
            "batch_prompts and max_new_tokens must be >= 1".into(),
        ));
    }
    let sampling = Sampling::Sample {
        temperature: cfg.temperature,
        top_k: None,
        top_p: cfg.top_p,
    };
    sampling.validate().map_err(DpoError::Config)?;
    let prompts = &prompts[..cfg.max_prompts.unwrap_or(prompts.len()).min(prompts.len())];
    let pad = encoder.pad_id();
    let mut out = Vec::new();
    let mut report = PairBuildReport::default();
    for (chunk_no, chunk) in prompts.chunks(cfg.batch_prompts).enumerate() {
        let mut rows = Vec::with_capacity(chunk.len() * cfg.k);
        for (_, _, msgs) in chunk {
            let ids = encoder.encode_prompt(msgs)?;
            rows.extend(std::iter::repeat_n(ids, cfg.k));
        }
        let gen_cfg = GenerationConfig {
            max_new_tokens: cfg.max_new_tokens,
            sampling,
            seed: cfg.seed.wrapping_add(chunk_no as u64),
            eos_ids: encoder.eos_ids(),
            pad_id: pad,
        };
        let g = generate(policy, &rows, &gen_cfg, device)?;
        for (p, (id, category, msgs)) in chunk.iter().enumerate() {
            report.prompts += 1;
            let replies: Vec<String> = (0..cfg.k)
                .map(|j| encoder.decode(&g.new_ids[p * cfg.k + j]))
                .collect::<rlhf_core::Result<_>>()?;
            let items: Vec<(&[Message], &str)> = replies
                .iter()
                .map(|r| (msgs.as_slice(), if r.is_empty() { " " } else { r.as_str() }))
                .collect();
            let scores = score_replies(rm, encoder, &items, cfg.max_length, cfg.k, device)?;
            let (Some(best), Some(worst)) = (
                argmax(&scores, &replies, true),
                argmax(&scores, &replies, false),
            ) else {
                report.skipped_identical += 1;
                continue;
            };
            if replies[best] == replies[worst] {
                report.skipped_identical += 1;
                continue;
            }
            let margin = (scores[best] - scores[worst]) as f64;
            if margin < cfg.min_margin {
                report.skipped_margin += 1;
                continue;
            }
            let mut pair =
                PreferencePair::new(id.clone(), msgs.clone(), &replies[best], &replies[worst]);
            if let Some(c) = category {
                pair = pair.with_category(c.clone());
            }
            report.mean_margin += margin;
            report.mean_chosen_chars += replies[best].chars().count() as f64;
            report.mean_rejected_chars += replies[worst].chars().count() as f64;
            out.push(RmPair {
                pair,
                chosen_score: scores[best],
                rejected_score: scores[worst],
                scores,
            });
        }
        on_progress(report.prompts);
    }
    report.pairs = out.len();
    if report.pairs > 0 {
        let n = report.pairs as f64;
        report.mean_margin /= n;
        report.mean_chosen_chars /= n;
        report.mean_rejected_chars /= n;
    }
    Ok((out, report))
}

/// Index of the highest (or lowest) score among the non-empty replies (ties go to the
/// first), `None` when every reply is empty.
fn argmax(scores: &[f32], replies: &[String], highest: bool) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, &s) in scores.iter().enumerate() {
        if replies[i].trim().is_empty() {
            continue;
        }
        best = match best {
            None => Some(i),
            Some(b) if (highest && s > scores[b]) || (!highest && s < scores[b]) => Some(i),
            keep => keep,
        };
    }
    best
}

#[cfg(test)]
mod tests {
    use super::argmax;

    #[test]
    fn empty_replies_are_never_chosen_nor_rejected() {
        let r = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // The empty reply has the lowest score; the worst non-empty one is rejected instead.
        let replies = r(&["a", "", "bb", " "]);
        let scores = [0.5, -3.0, 0.9, 2.0];
        assert_eq!(argmax(&scores, &replies, true), Some(2));
        assert_eq!(argmax(&scores, &replies, false), Some(0));
        assert_eq!(argmax(&[1.0, 2.0], &r(&["", "  "]), true), None);
        assert_eq!(argmax(&[1.0, 2.0], &r(&["", "  "]), false), None);
    }
}
