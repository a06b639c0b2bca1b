//! Shared fixtures: a synthetic, learnable preference task and small model/config helpers.

use rlhf_core::backend::{CpuTrain, FlexDevice};
use rlhf_core::text::BYTE_VOCAB;
use rlhf_core::tokenizer::Message;
use rlhf_core::{ModelConfig, ScalarModel};
use rlhf_reward::{PreferencePair, RewardTrainConfig};

const WORDS: &[&str] = &[
    "apple", "river", "stone", "cloud", "green", "quiet", "table", "light", "north", "paper",
    "music", "bread", "storm", "glass", "field", "tiger",
];
const TOPICS: &[&str] = &["fruit", "weather", "travel", "math", "books", "music"];

/// A tiny deterministic generator (the tests must not depend on rand's stream).
pub(crate) struct Lcg(pub(crate) u64);

impl Lcg {
    pub(crate) fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

fn words(rng: &mut Lcg, k: usize) -> Vec<String> {
    (0..k)
        .map(|_| WORDS[rng.next(WORDS.len())].to_string())
        .collect()
}

/// Pairs whose chosen reply contains the marker `#ok` and whose rejected reply contains `=ok`
/// at a random position (same length distribution, so length carries no signal); the category
/// is the topic.
pub(crate) fn marker_pairs(n: usize, seed: u64) -> Vec<PreferencePair> {
    let mut rng = Lcg(seed);
    (0..n)
        .map(|i| {
            let topic = TOPICS[rng.next(TOPICS.len())];
            let prompt = vec![Message::user(format!("say something about {topic} {i}"))];
            let reply = |rng: &mut Lcg, marker: &str| {
                let k = 2 + rng.next(4);
                let mut w = words(rng, k);
                let at = rng.next(w.len() + 1);
                w.insert(at, marker.to_string());
                w.join(" ")
            };
            let chosen = reply(&mut rng, "#ok");
            let rejected = reply(&mut rng, "=ok");
            PreferencePair::new(format!("p{i}"), prompt, chosen, rejected).with_category(topic)
        })
        .collect()
}

/// The tiny byte-level model.
pub(crate) fn tiny_model(seed: u64) -> (ScalarModel<CpuTrain>, ModelConfig) {
    let cfg = ModelConfig::tiny_llama(BYTE_VOCAB);
    (ScalarModel::init(&cfg, 0.02, seed, &FlexDevice), cfg)
}

/// A config for short CPU runs.
pub(crate) fn quick_config(steps: usize) -> RewardTrainConfig {
    RewardTrainConfig {
        learning_rate: 2e-3,
        max_steps: Some(steps),
        batch_pairs: 8,
        warmup_steps: 2,
        logging_steps: 5,
        save_steps: None,
        max_length: 96,
        seed: 7,
        ..Default::default()
    }
}

/// All float parameters of a model, flattened in visiting order.
pub(crate) fn flat_params<B: burn::prelude::Backend>(model: &ScalarModel<B>) -> Vec<f32> {
    use burn::module::{Module, ModuleVisitor, Param};
    use burn::prelude::*;
    struct V(Vec<f32>);
    impl<B: Backend> ModuleVisitor<B> for V {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
            self.0.extend(p.val().into_data().iter::<f32>());
        }
    }
    let mut v = V(Vec::new());
    model.visit(&mut v);
    v.0
}
