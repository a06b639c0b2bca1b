//! Shared fixtures: a learnable synthetic preference task and tiny byte-level models.

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use rlhf_core::backend::{CpuTrain, FlexDevice};
use rlhf_core::text::BYTE_VOCAB;
use rlhf_core::tokenizer::Message;
use rlhf_core::{CausalLm, ModelConfig};
use rlhf_reward::PreferencePair;

const WORDS: &[&str] = &[
    "apple", "river", "stone", "cloud", "green", "quiet", "table", "light", "north", "paper",
];

/// A tiny deterministic generator.
pub(crate) struct Lcg(pub(crate) u64);

impl Lcg {
    pub(crate) fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }

    pub(crate) fn uniform(&mut self) -> f64 {
        self.next(1 << 30) as f64 / (1u64 << 30) as f64
    }
}

/// Pairs whose chosen reply holds the marker `#ok` and whose rejected reply holds `=ok` at a
/// random position among random words.
pub(crate) fn marker_pairs(n: usize, seed: u64) -> Vec<PreferencePair> {
    let mut rng = Lcg(seed);
    (0..n)
        .map(|i| {
            let prompt = vec![Message::user(format!(
                "say {}",
                WORDS[rng.next(WORDS.len())]
            ))];
            let reply = |rng: &mut Lcg, marker: &str| {
                let k = 1 + rng.next(3);
                let mut w: Vec<String> = (0..k)
                    .map(|_| WORDS[rng.next(WORDS.len())].to_string())
                    .collect();
                let at = rng.next(w.len() + 1);
                w.insert(at, marker.to_string());
                w.join(" ")
            };
            let chosen = reply(&mut rng, "#ok");
            let rejected = reply(&mut rng, "=ok");
            PreferencePair::new(format!("p{i}"), prompt, chosen, rejected)
        })
        .collect()
}

/// The tiny byte-level causal LM.
pub(crate) fn tiny_policy(seed: u64) -> (CausalLm<CpuTrain>, ModelConfig) {
    let cfg = ModelConfig::tiny_llama(BYTE_VOCAB);
    (CausalLm::init(&cfg, 0.02, seed, &FlexDevice), cfg)
}

struct Flat(Vec<f32>);

impl<B: Backend> ModuleVisitor<B> for Flat {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.0
            .extend(param.val().into_data().convert::<f32>().iter::<f32>());
    }
}

/// All float parameters in visiting order.
pub(crate) fn flat_params<B: Backend, M: Module<B>>(m: &M) -> Vec<f32> {
    let mut f = Flat(Vec::new());
    m.visit(&mut f);
    f.0
}
