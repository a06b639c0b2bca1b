//! What PPO needs from a reward model, as a trait: one score per packed row, and a fingerprint
//! that identifies it (ARCHITECTURE: `policy-ppo` depends on the reward model only through a
//! `Scorer`).
//!
//! - [`RewardModel`]: a frozen `ScalarModel` (an HF `*ForSequenceClassification` checkpoint, e.g.
//!   one trained by `rlhf-reward`), read at each row's last real token;
//! - [`FnScorer`]: a host function of the prompt and response ids, for tests and synthetic
//!   experiments where the reward must be a known function.

use burn::prelude::*;
use rlhf_core::ScalarModel;

use crate::frozen::{Frozen, module_fingerprint};
use crate::sequences::{PackedSequences, gather_last_real};

/// A reward model as PPO sees it.
pub trait Scorer<B: Backend> {
    /// The score of every row of `seqs` (prompt + response).
    fn score(&mut self, seqs: &PackedSequences, device: &B::Device) -> Vec<f32>;

    /// Identifies the scorer's weights (or function): a reference-reward cache built with
    /// another fingerprint is refused.
    fn fingerprint(&self) -> String;
}

/// A frozen scalar reward model, read at the last real token of each row (by the mask, so
/// padding side and pad id do not matter).
#[derive(Debug)]
pub struct RewardModel<B: Backend> {
    model: Frozen<B, ScalarModel<B>>,
    fingerprint: String,
}

impl<B: Backend> RewardModel<B> {
    /// Wraps `model`; with `offload`, its weights live in host memory between uses.
    pub fn new(model: ScalarModel<B>, offload: bool) -> Self {
        let fingerprint = format!("scalar-model:{}", module_fingerprint(&model));
        RewardModel {
            model: Frozen::new(model, offload),
            fingerprint,
        }
    }
}

impl<B: Backend> Scorer<B> for RewardModel<B> {
    fn score(&mut self, seqs: &PackedSequences, device: &B::Device) -> Vec<f32> {
        self.model.with(device, |m| {
            let all = m.forward_all(&seqs.tokens, device);
            gather_last_real(all, &seqs.tokens, device)
                .into_data()
                .convert::<f32>()
                .into_vec()
                .expect("float scores")
        })
    }

    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }
}

/// The function type of an [`FnScorer`]: `(prompt ids, response ids) -> score`.
pub type ScoreFn = dyn Fn(&[u32], &[u32]) -> f32 + Send + Sync;

/// A reward that is a known host function of the token ids.
pub struct FnScorer {
    name: String,
    f: Box<ScoreFn>,
}

impl std::fmt::Debug for FnScorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnScorer")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl FnScorer {
    /// A scorer named `name` (its fingerprint) computing `f(prompt, response)`.
    pub fn new(
        name: impl Into<String>,
        f: impl Fn(&[u32], &[u32]) -> f32 + Send + Sync + 'static,
    ) -> Self {
        FnScorer {
            name: name.into(),
            f: Box::new(f),
        }
    }
}

impl<B: Backend> Scorer<B> for FnScorer {
    fn score(&mut self, seqs: &PackedSequences, _device: &B::Device) -> Vec<f32> {
        (0..seqs.rows())
            .map(|r| {
                let row = seqs.tokens.row(r);
                let p0 = seqs.prompt_width - seqs.prompt_lens[r];
                let prompt = &row[p0..seqs.prompt_width];
                let end = seqs.prompt_width + seqs.response_lens[r];
                (self.f)(prompt, &row[seqs.prompt_width..end])
            })
            .collect()
    }

    fn fingerprint(&self) -> String {
        format!("fn:{}", self.name)
    }
}
