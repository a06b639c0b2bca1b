//! Shared fixtures: tiny byte-level models, prompts, SFT rows and a reward that is a known
//! function of the response.

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::prelude::*;
use rlhf_core::backend::{CpuTrain, FlexDevice};
use rlhf_core::text::{BYTE_VOCAB, TextCodec};
use rlhf_core::tokenizer::Message;
use rlhf_core::{CausalLm, ModelConfig, ScalarModel};
use rlhf_policy_ppo::{
    EncodedPrompt, FnScorer, PpoData, PpoModels, Prompt, SftExample, encode_prompts, encode_sft,
};

pub(crate) type B = CpuTrain;
pub(crate) const DEV: FlexDevice = FlexDevice;

pub(crate) fn tiny_cfg() -> ModelConfig {
    ModelConfig::tiny_llama(BYTE_VOCAB)
}

const TOPICS: &[&str] = &[
    "fruit", "rain", "trains", "cats", "tea", "snow", "maps", "bread",
];

/// `n` short byte-level prompts of different lengths.
pub(crate) fn prompts(n: usize) -> Vec<Prompt> {
    (0..n)
        .map(|i| Prompt {
            id: format!("p{i}"),
            messages: vec![Message::user(format!(
                "tell me about {}{}",
                TOPICS[i % TOPICS.len()],
                "!".repeat(i % 3)
            ))],
        })
        .collect()
}

pub(crate) fn encoded_prompts(n: usize) -> Vec<EncodedPrompt> {
    encode_prompts(&TextCodec::Bytes, &prompts(n), 64).unwrap()
}

pub(crate) fn sft_rows(n: usize) -> Vec<rlhf_core::text::EncodedRow> {
    let ex: Vec<SftExample> = (0..n)
        .map(|i| SftExample {
            prompt: vec![Message::user(format!("who are you {i}"))],
            response: "I am ChatGLM.".into(),
        })
        .collect();
    encode_sft(&TextCodec::Bytes, &ex, 64).unwrap()
}

pub(crate) fn data(n_prompts: usize, n_sft: usize) -> PpoData {
    PpoData {
        prompts: encoded_prompts(n_prompts),
        sft: sft_rows(n_sft),
        pad_id: 0,
        eos_ids: vec![2],
    }
}

/// Byte id of ASCII `c`.
pub(crate) fn byte(c: u8) -> u32 {
    c as u32 + 3
}

/// The known reward: the fraction of response tokens that are lower-case letters (about
/// 26/259 ≈ 0.1 for a uniform policy, 1 at best).
pub(crate) fn letters_scorer() -> FnScorer {
    FnScorer::new("letters", |_, r| {
        let n = r
            .iter()
            .filter(|&&t| (byte(b'a')..=byte(b'z')).contains(&t))
            .count();
        n as f32 / r.len().max(1) as f32
    })
}

/// Actor (seed `seed`), critic (seed `seed + 1`), reference = the actor's initial weights, and
/// the letters reward.
pub(crate) fn models(seed: u64) -> PpoModels<B> {
    let cfg = tiny_cfg();
    let actor = CausalLm::<B>::init(&cfg, 0.02, seed, &DEV);
    PpoModels {
        reference: actor.valid(),
        actor,
        critic: Some(ScalarModel::init(&cfg, 0.02, seed + 1, &DEV)),
        reward: Box::new(letters_scorer()),
    }
}

struct Flat(Vec<f32>);

impl<Bk: Backend> ModuleVisitor<Bk> for Flat {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Bk, D>>) {
        self.0.extend(
            param
                .val()
                .into_data()
                .convert::<f32>()
                .into_vec::<f32>()
                .unwrap(),
        );
    }
}

/// Every float parameter of `m`, flattened in visiting order.
pub(crate) fn flat_params<Bk: Backend, M: Module<Bk>>(m: &M) -> Vec<f32> {
    let mut f = Flat(Vec::new());
    m.visit(&mut f);
    f.0
}
