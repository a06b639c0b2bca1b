//! Batched generation with a per-layer KV cache on left-padded prompts: greedy or sampled
//! (temperature, top-k, top-p, seed), stopping per row on EOS, returning the new ids and their
//! log-probs.

mod sampling;

use burn::prelude::*;
use burn::tensor::activation::log_softmax;

pub use sampling::{RowRng, Sampling, sample_row};

use crate::error::{CoreError, Result};
use crate::model::{CausalLm, PadSide, TokenBatch};

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationConfig {
    /// Upper bound on new tokens per row.
    pub max_new_tokens: usize,
    /// Greedy or sampled.
    pub sampling: Sampling,
    /// Seed of the per-row random generators.
    pub seed: u64,
    /// A row stops after emitting any of these (empty: never stop early).
    pub eos_ids: Vec<u32>,
    /// Id written after a row has stopped, and used for left padding.
    pub pad_id: u32,
}

impl GenerationConfig {
    /// Greedy decoding of `max_new_tokens` with no EOS stop.
    pub fn greedy(max_new_tokens: usize, pad_id: u32) -> Self {
        GenerationConfig {
            max_new_tokens,
            sampling: Sampling::Greedy,
            seed: 0,
            eos_ids: Vec::new(),
            pad_id,
        }
    }
}

/// The result of [`generate`], one entry per prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationOutput {
    /// New tokens per row, up to and including the EOS that stopped it.
    pub new_ids: Vec<Vec<u32>>,
    /// Per new token: `log softmax(logits / T)` at the chosen id, the policy's log-prob at the
    /// sampling temperature (T = 1 for greedy). This is the "old log-prob" of PPO.
    pub logprobs: Vec<Vec<f32>>,
    /// Per new token: its log-prob under the truncated (top-k/top-p) distribution that was
    /// actually sampled from (0 for greedy).
    pub sampler_logprobs: Vec<Vec<f32>>,
    /// Whether each row ended on an EOS id (false: it hit `max_new_tokens`).
    pub finished: Vec<bool>,
}

/// Generates continuations of `prompts` (unpadded, any lengths) in one batch.
///
/// Prompts are left-padded and run through the model once; then one token per row and step is
/// appended through the KV cache. Rows that emitted EOS stop growing (their later steps are
/// masked padding and are not returned).
///
/// # Errors
/// [`CoreError::BadInput`] for an empty prompt or bad sampling parameters,
/// [`CoreError::TokenOutOfVocab`], [`CoreError::SequenceTooLong`].
pub fn generate<B: Backend>(
    model: &CausalLm<B>,
    prompts: &[Vec<u32>],
    cfg: &GenerationConfig,
    device: &B::Device,
) -> Result<GenerationOutput> {
    generate_rows(model, prompts, cfg, 0, device)
}

/// [`generate`] on rows `first_row..first_row + prompts.len()` of a larger batch: row `r` of
/// `prompts` samples from `RowRng::new(cfg.seed, first_row + r)`, so generating a batch in
/// contiguous parts (one per data-parallel rank) draws the same random numbers per prompt as
/// generating it whole. `generate` is `generate_rows(.., 0, ..)`.
///
/// # Errors
/// As [`generate`].
pub fn generate_rows<B: Backend>(
    model: &CausalLm<B>,
    prompts: &[Vec<u32>],
    cfg: &GenerationConfig,
    first_row: usize,
    device: &B::Device,
) -> Result<GenerationOutput> {
    cfg.sampling.validate().map_err(CoreError::BadInput)?;
    let b = prompts.len();
    let mut out = GenerationOutput {
        new_ids: vec![Vec::new(); b],
        logprobs: vec![Vec::new(); b],
        sampler_logprobs: vec![Vec::new(); b],
        finished: vec![false; b],
    };
    if b == 0 {
        return Ok(out);
    }
    if let Some(i) = prompts.iter().position(Vec::is_empty) {
        return Err(CoreError::BadInput(format!("prompt {i} is empty")));
    }
    let batch = TokenBatch::from_rows(prompts, cfg.pad_id, PadSide::Left);
    let vocab = model.vocab_size();
    batch.check_vocab(vocab)?;
    let max_pos = model.trunk.rope.max_len();
    let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
    if longest + cfg.max_new_tokens > max_pos {
        return Err(CoreError::SequenceTooLong {
            actual: longest + cfg.max_new_tokens,
            max: max_pos,
        });
    }
    let temperature = cfg.sampling.temperature();
    let mut rngs: Vec<RowRng> = (0..b)
        .map(|r| RowRng::new(cfg.seed, first_row + r))
        .collect();
    let mut cache = model.new_cache(b);
    let logits = model.forward_cached(&batch, &mut cache, device);
    let [_, t, _] = logits.dims();
    let mut last = logits.slice([0..b, t - 1..t, 0..vocab]).reshape([b, vocab]);
    for step in 0..cfg.max_new_tokens {
        let logp = log_softmax(last / temperature as f64, 1);
        let (tokens, lps, slps): (Vec<u32>, Vec<f32>, Vec<f32>) = match cfg.sampling {
            Sampling::Greedy => {
                let ids = logp.clone().argmax(1);
                let lp = logp.gather(1, ids.clone());
                let ids: Vec<i64> = ids.into_data().convert::<i64>().into_vec().expect("ints");
                let lp: Vec<f32> = lp.into_data().convert::<f32>().into_vec().expect("floats");
                (ids.iter().map(|&i| i as u32).collect(), lp, vec![0.0; b])
            }
            Sampling::Sample { top_k, top_p, .. } => {
                let all: Vec<f32> = logp
                    .into_data()
                    .convert::<f32>()
                    .into_vec()
                    .expect("floats");
                let mut toks = Vec::with_capacity(b);
                let mut lps = Vec::with_capacity(b);
                let mut slps = Vec::with_capacity(b);
                for (r, rng) in rngs.iter_mut().enumerate() {
                    let row = &all[r * vocab..(r + 1) * vocab];
                    let (tok, slp) = sample_row(row, top_k, top_p, rng);
                    toks.push(tok);
                    lps.push(row[tok as usize]);
                    slps.push(slp);
                }
                (toks, lps, slps)
            }
        };
        let mut step_rows = Vec::with_capacity(b);
        let mut step_mask = Vec::with_capacity(b);
        for r in 0..b {
            if out.finished[r] {
                step_rows.push(cfg.pad_id);
                step_mask.push(0u8);
                continue;
            }
            out.new_ids[r].push(tokens[r]);
            out.logprobs[r].push(lps[r]);
            out.sampler_logprobs[r].push(slps[r]);
            if cfg.eos_ids.contains(&tokens[r]) {
                out.finished[r] = true;
            }
            step_rows.push(tokens[r]);
            step_mask.push(1u8);
        }
        if out.finished.iter().all(|&f| f) || step + 1 == cfg.max_new_tokens {
            break;
        }
        let step = TokenBatch {
            batch: b,
            seq: 1,
            ids: step_rows,
            mask: step_mask,
        };
        last = model
            .forward_cached(&step, &mut cache, device)
            .reshape([b, vocab]);
    }
    Ok(out)
}
