//! One rollout: KV-cache generation from the current policy on a batch of prompts, then the
//! frozen reference's log-probs, the critic's values and the reward model's scores for the
//! same tokens (SPEC §A.4.2).
//!
//! The policy's log-probs are the ones generation computed through the KV cache
//! (`GenerationOutput::logprobs`, at the sampling temperature): they equal a fresh forward
//! pass's log-probs of the packed rows to float rounding (a test checks 1e-4), so no second
//! policy forward is needed. The reference's log-probs use the same temperature (as TRL does).

use std::time::Instant;

use burn::prelude::*;
use rlhf_core::generate::{GenerationConfig, generate_rows};
use rlhf_core::logprobs::gather_logprobs;
use rlhf_core::{CausalLm, ScalarModel};

use crate::error::Result;
use crate::frozen::Frozen;
use crate::scorer::Scorer;
use crate::sequences::{PackedSequences, rows_to_vecs};

/// Wall time of each rollout phase, seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RolloutTimings {
    /// Generation (prefill + decode steps).
    pub generate: f64,
    /// The reference model's forward pass and log-probs.
    pub reference: f64,
    /// The critic's forward pass.
    pub values: f64,
    /// The reward model.
    pub reward: f64,
}

/// What one rollout produced, per row (one row per prompt).
#[derive(Debug, Clone, PartialEq)]
pub struct Rollout {
    /// Prompts and responses, packed for the training forward passes.
    pub seqs: PackedSequences,
    /// Whether each response ended on an EOS id (false: it hit `max_new_tokens`).
    pub finished: Vec<bool>,
    /// `log π_old(y_t | s_t)` at the sampling temperature, one per response token.
    pub logprobs: Vec<Vec<f32>>,
    /// `log π_ref(y_t | s_t)` at the same temperature.
    pub ref_logprobs: Vec<Vec<f32>>,
    /// The critic's `V(s_t)` before each response token.
    pub values: Vec<Vec<f32>>,
    /// The reward model's score of each whole row (read at its last real token).
    pub scores: Vec<f32>,
    /// Time per phase.
    pub timings: RolloutTimings,
}

/// Generates one response per prompt with `policy` and scores it (see the module docs).
///
/// # Errors
/// Generation errors (empty prompt, ids outside the vocabulary, sequence too long).
pub fn rollout<B: Backend>(
    policy: &CausalLm<B>,
    critic: &ScalarModel<B>,
    reference: &mut Frozen<B, CausalLm<B>>,
    scorer: &mut dyn Scorer<B>,
    prompts: &[Vec<u32>],
    gen_cfg: &GenerationConfig,
    device: &B::Device,
) -> Result<Rollout> {
    rollout_rows(
        policy,
        Some(critic),
        reference,
        scorer,
        prompts,
        0,
        gen_cfg,
        device,
    )
}

/// [`rollout`] of rows `first_row..first_row + prompts.len()` of a larger batch: sampling uses
/// the random stream of each prompt's position in the whole batch
/// ([`rlhf_core::generate::generate_rows`]), so a data-parallel rank generating its contiguous
/// shard draws what one process generating the whole batch draws for those prompts.
///
/// Without a critic (a critic-free estimator) the values are 0.
///
/// # Errors
/// As [`rollout`].
#[allow(clippy::too_many_arguments)]
pub fn rollout_rows<B: Backend>(
    policy: &CausalLm<B>,
    critic: Option<&ScalarModel<B>>,
    reference: &mut Frozen<B, CausalLm<B>>,
    scorer: &mut dyn Scorer<B>,
    prompts: &[Vec<u32>],
    first_row: usize,
    gen_cfg: &GenerationConfig,
    device: &B::Device,
) -> Result<Rollout> {
    let mut timings = RolloutTimings::default();
    let t = Instant::now();
    let out = generate_rows(policy, prompts, gen_cfg, first_row, device)?;
    timings.generate = t.elapsed().as_secs_f64();

    let seqs = PackedSequences::new(prompts, &out.new_ids, gen_cfg.pad_id);
    let temperature = gen_cfg.sampling.temperature() as f64;
    let lens = seqs.response_lens.clone();

    let t = Instant::now();
    let ref_lp = reference.with(device, |m| {
        let logits = seqs.policy_response_logits(m, temperature, device);
        gather_logprobs(logits, seqs.response_ids_tensor(device))
    });
    let ref_logprobs = rows_to_vecs(ref_lp, &lens);
    timings.reference = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let values = match critic {
        Some(critic) => rows_to_vecs(
            seqs.response_values(critic.forward_all(&seqs.tokens, device)),
            &lens,
        ),
        None => lens.iter().map(|&l| vec![0.0; l]).collect(),
    };
    timings.values = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let scores = crate::scorer::checked_scores(scorer, &seqs, device)?;
    timings.reward = t.elapsed().as_secs_f64();

    Ok(Rollout {
        seqs,
        finished: out.finished,
        logprobs: out.logprobs,
        ref_logprobs,
        values,
        scores,
        timings,
    })
}

/// ReMax's baselines: the current policy's greedy response to each prompt, scored (the score
/// and whether it ended on an EOS, per prompt). Greedy decoding draws nothing, so the result
/// does not depend on the rank or row position.
///
/// # Errors
/// Generation and scoring errors.
pub fn greedy_scores<B: Backend>(
    policy: &CausalLm<B>,
    scorer: &mut dyn Scorer<B>,
    prompts: &[Vec<u32>],
    gen_cfg: &GenerationConfig,
    device: &B::Device,
) -> Result<(Vec<f32>, Vec<bool>)> {
    let cfg = GenerationConfig {
        sampling: rlhf_core::generate::Sampling::Greedy,
        ..gen_cfg.clone()
    };
    let out = generate_rows(policy, prompts, &cfg, 0, device)?;
    let seqs = PackedSequences::new(prompts, &out.new_ids, cfg.pad_id);
    let scores = crate::scorer::checked_scores(scorer, &seqs, device)?;
    Ok((scores, out.finished))
}
