//! Seeded random initialisation (HF's scheme: N(0, σ) weights, unit norms, zero biases), done
//! on the host so the same seed gives the same model on every backend.

use burn::module::Param;
use burn::nn::Embedding;
use burn::prelude::*;
use burn::tensor::DType;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::layers::{Attention, DecoderLayer, Mlp, linear_from, rms_from};
use super::{CausalLm, RopeTables, ScalarModel, Trunk};
use crate::config::ModelConfig;

struct Draw {
    rng: StdRng,
    std: f32,
}

impl Draw {
    fn normal(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| {
                // Box-Muller.
                let u1: f32 = self.rng.random::<f32>().max(f32::MIN_POSITIVE);
                let u2: f32 = self.rng.random::<f32>();
                self.std * (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
            })
            .collect()
    }

    fn matrix<B: Backend>(&mut self, rows: usize, cols: usize, device: &B::Device) -> Tensor<B, 2> {
        Tensor::from_data(
            TensorData::new(self.normal(rows * cols), [rows, cols]),
            device,
        )
    }
}

fn zeros<B: Backend>(n: usize, device: &B::Device) -> Tensor<B, 1> {
    Tensor::zeros([n], device)
}

fn ones<B: Backend>(n: usize, device: &B::Device) -> Tensor<B, 1> {
    Tensor::ones([n], device)
}

/// A randomly initialised trunk (weights `N(0, std)`, norms 1, biases 0), seeded.
pub fn init_trunk<B: Backend>(
    cfg: &ModelConfig,
    std: f32,
    seed: u64,
    device: &B::Device,
) -> Trunk<B> {
    let mut d = Draw {
        rng: StdRng::seed_from_u64(seed),
        std,
    };
    let h = cfg.hidden_size;
    let q = cfg.num_heads * cfg.head_dim;
    let kv = cfg.num_kv_heads * cfg.head_dim;
    let embed = Embedding {
        weight: Param::from_tensor(d.matrix(cfg.vocab_size, h, device)),
    };
    let eps = cfg.rms_norm_eps;
    let layers = (0..cfg.num_layers)
        .map(|_| DecoderLayer {
            input_norm: rms_from(ones(h, device), eps),
            attn: Attention {
                qkv: linear_from(
                    d.matrix(h, q + 2 * kv, device),
                    cfg.qkv_bias.then(|| zeros(q + 2 * kv, device)),
                ),
                o: linear_from(d.matrix(q, h, device), cfg.o_bias.then(|| zeros(h, device))),
                num_heads: cfg.num_heads,
                qkv_lora: None,
                o_lora: None,
                num_kv_heads: cfg.num_kv_heads,
                head_dim: cfg.head_dim,
            },
            post_attn_out_norm: cfg
                .post_sublayer_norms
                .then(|| rms_from(ones(h, device), eps)),
            mlp_norm: rms_from(ones(h, device), eps),
            mlp: Mlp {
                gate_up: linear_from(
                    d.matrix(h, 2 * cfg.intermediate_size, device),
                    cfg.mlp_bias
                        .then(|| zeros(2 * cfg.intermediate_size, device)),
                ),
                down: linear_from(
                    d.matrix(cfg.intermediate_size, h, device),
                    cfg.mlp_bias.then(|| zeros(h, device)),
                ),
                intermediate: cfg.intermediate_size,
                gate_up_lora: None,
                down_lora: None,
            },
            post_mlp_out_norm: cfg
                .post_sublayer_norms
                .then(|| rms_from(ones(h, device), eps)),
        })
        .collect();
    Trunk {
        embed,
        layers,
        norm: rms_from(ones(h, device), eps),
        rope: RopeTables::new(&cfg.rope, cfg.max_position_embeddings, DType::F32, device),
    }
}

impl<B: Backend> CausalLm<B> {
    /// A randomly initialised causal LM (seeded; `std` is HF's `initializer_range`, usually 0.02).
    pub fn init(cfg: &ModelConfig, std: f32, seed: u64, device: &B::Device) -> Self {
        let trunk = init_trunk(cfg, std, seed, device);
        let lm_head = (!cfg.tie_word_embeddings).then(|| {
            let mut d = Draw {
                rng: StdRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15),
                std,
            };
            linear_from(d.matrix(cfg.hidden_size, cfg.vocab_size, device), None)
        });
        CausalLm { trunk, lm_head }
    }
}

impl<B: Backend> ScalarModel<B> {
    /// A randomly initialised scalar model (seeded).
    pub fn init(cfg: &ModelConfig, std: f32, seed: u64, device: &B::Device) -> Self {
        let trunk = init_trunk(cfg, std, seed, device);
        let mut d = Draw {
            rng: StdRng::seed_from_u64(seed ^ 0x51ed_270b_27a6_9e4d),
            std,
        };
        ScalarModel {
            trunk,
            score: linear_from(d.matrix(cfg.hidden_size, 1, device), None),
        }
    }

    /// A scalar model on an existing trunk (e.g. a reward model started from the SFT policy),
    /// with a fresh head.
    pub fn from_trunk(trunk: Trunk<B>, std: f32, seed: u64, device: &B::Device) -> Self {
        let h = trunk.norm.gamma.dims()[0];
        let mut d = Draw {
            rng: StdRng::seed_from_u64(seed),
            std,
        };
        ScalarModel {
            trunk,
            score: linear_from(d.matrix(h, 1, device), None),
        }
    }
}
