//! LoRA (Hu et al. 2021) on the decoder's projections, and mixed-precision casting.
//!
//! An adapter adds `scale · (x·A)·B` to a projection's output, with `A: [in, r]`, `B: [r, out]`
//! (burn's `[in, out]` layout) and `scale = alpha / r`. `A` starts uniform in
//! `±1/sqrt(in)` (PEFT's Kaiming-uniform bound for `a = sqrt(5)`), `B` starts at zero, so a
//! freshly adapted model computes exactly what the base model computes.
//!
//! The projections are fused (q‖k‖v and gate‖up), so an adapter on `qkv` is one shared `A`
//! with one `B` whose columns split into q, k and v: the same function as three PEFT adapters
//! on `q_proj`, `k_proj`, `v_proj` whose `lora_A` are equal. [`Trunk::merge_lora`] folds the
//! adapters into the weights for export.
//!
//! [`cast_params`] casts every float parameter (keeping its id and, on an autodiff backend, its
//! place in the graph): a bf16 compute copy of an f32 master model whose gradients flow back to
//! the f32 parameters, i.e. mixed-precision training.

use burn::module::{Module, Param};
use burn::prelude::*;
use burn::tensor::DType;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::{CausalLm, ScalarModel, Trunk};

/// Which projections of every decoder layer get an adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoraTarget {
    /// The fused q‖k‖v projection (`q_proj`, `k_proj`, `v_proj` in HF).
    Qkv,
    /// The attention output projection (`o_proj`).
    O,
    /// The fused gate‖up projection (`gate_proj`, `up_proj`).
    GateUp,
    /// The MLP output projection (`down_proj`).
    Down,
}

impl LoraTarget {
    /// Every target.
    pub const ALL: [LoraTarget; 4] = [
        LoraTarget::Qkv,
        LoraTarget::O,
        LoraTarget::GateUp,
        LoraTarget::Down,
    ];
}

/// LoRA hyper-parameters (PEFT's `LoraConfig` names where one exists).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoraConfig {
    /// Rank. Default 8.
    pub r: usize,
    /// Scaling numerator: the update is `alpha / r · x·A·B`. Default 16.
    pub alpha: f64,
    /// Adapted projections. Default: all four (`qkv`, `o`, `gate_up`, `down`).
    pub target_modules: Vec<LoraTarget>,
}

impl Default for LoraConfig {
    fn default() -> Self {
        LoraConfig {
            r: 8,
            alpha: 16.0,
            target_modules: LoraTarget::ALL.to_vec(),
        }
    }
}

impl LoraConfig {
    /// Checks the fields; the message names the first bad one.
    ///
    /// # Errors
    /// A message for a zero rank, a non-finite or non-positive alpha or an empty target list.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.r == 0 {
            return Err("lora.r must be >= 1".into());
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(format!("lora.alpha must be > 0, got {}", self.alpha));
        }
        if self.target_modules.is_empty() {
            return Err(
                "lora.target_modules must name at least one of qkv, o, gate_up, down".into(),
            );
        }
        Ok(())
    }

    /// `alpha / r`.
    pub fn scale(&self) -> f64 {
        self.alpha / self.r as f64
    }
}

/// One low-rank adapter.
#[derive(Module, Debug)]
pub struct Lora<B: Backend> {
    /// `[in, r]`.
    pub a: Param<Tensor<B, 2>>,
    /// `[r, out]`.
    pub b: Param<Tensor<B, 2>>,
    /// `alpha / r`.
    pub scale: f64,
}

impl<B: Backend> Lora<B> {
    /// A fresh adapter: `A` uniform in `±1/sqrt(in)` from `rng`, `B` zero, in `dtype`.
    fn init(
        d_in: usize,
        d_out: usize,
        cfg: &LoraConfig,
        rng: &mut StdRng,
        dtype: DType,
        device: &B::Device,
    ) -> Self {
        let bound = 1.0 / (d_in as f32).sqrt();
        let a: Vec<f32> = (0..d_in * cfg.r)
            .map(|_| rng.random_range(-bound..bound))
            .collect();
        let a = Tensor::<B, 2>::from_data(TensorData::new(a, [d_in, cfg.r]), device).cast(dtype);
        let b = Tensor::<B, 2>::zeros([cfg.r, d_out], (device, dtype));
        Lora {
            a: Param::from_tensor(a),
            b: Param::from_tensor(b),
            scale: cfg.scale(),
        }
    }

    /// The update `scale · (x·A)·B` (`[batch, seq, in]` → `[batch, seq, out]`), computed in
    /// `x`'s dtype.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, t, d] = x.dims();
        let dt = x.dtype();
        let fit = |w: Tensor<B, 2>| if w.dtype() == dt { w } else { w.cast(dt) };
        let a = fit(self.a.val());
        let bm = fit(self.b.val());
        let out = bm.dims()[1];
        x.reshape([b * t, d])
            .matmul(a)
            .matmul(bm)
            .mul_scalar(self.scale)
            .reshape([b, t, out])
    }

    /// `scale · A·B` in f32, `[in, out]`: what merging adds to the weight.
    pub fn delta(&self) -> Tensor<B, 2> {
        self.a
            .val()
            .cast(DType::F32)
            .matmul(self.b.val().cast(DType::F32))
            .mul_scalar(self.scale)
    }

    /// Parameters of the adapter.
    pub fn num_params(&self) -> usize {
        self.a.val().dims().iter().product::<usize>()
            + self.b.val().dims().iter().product::<usize>()
    }
}

/// A projection's output with its optional adapter added.
pub(crate) fn adapted<B: Backend>(
    lin: &burn::nn::Linear<B>,
    lora: &Option<Lora<B>>,
    x: Tensor<B, 3>,
) -> Tensor<B, 3> {
    match lora {
        None => crate::kernels::linear(x, lin),
        Some(l) => crate::kernels::linear(x.clone(), lin) + l.forward(x),
    }
}

/// The adapters of one decoder layer (for adapter-only checkpoints).
#[derive(Module, Debug)]
pub struct LayerLora<B: Backend> {
    /// On `qkv`.
    pub qkv: Option<Lora<B>>,
    /// On `o`.
    pub o: Option<Lora<B>>,
    /// On `gate_up`.
    pub gate_up: Option<Lora<B>>,
    /// On `down`.
    pub down: Option<Lora<B>>,
}

/// Every adapter of a model, detached from it: what a LoRA checkpoint stores (the base weights
/// are frozen and come from the starting checkpoint).
#[derive(Module, Debug)]
pub struct LoraAdapters<B: Backend> {
    /// One entry per decoder layer.
    pub layers: Vec<LayerLora<B>>,
}

fn frozen<B: Backend, const D: usize>(p: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
    p.set_require_grad(false)
}

fn trainable<B: Backend>(l: Option<Lora<B>>) -> Option<Lora<B>> {
    l.map(|l| Lora {
        a: l.a.set_require_grad(true),
        b: l.b.set_require_grad(true),
        scale: l.scale,
    })
}

impl<B: Backend> Trunk<B> {
    /// Attaches fresh adapters (seeded: the same seed gives the same adapters on every backend)
    /// to the configured projections, replacing any already there. The model computes exactly
    /// what it computed before (`B = 0`).
    pub fn with_lora(mut self, cfg: &LoraConfig, seed: u64, device: &B::Device) -> Self {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x4c6f_5241_5f41_4441);
        let on = |t: LoraTarget| cfg.target_modules.contains(&t);
        for layer in &mut self.layers {
            let mut mk = |lin: &burn::nn::Linear<B>| {
                let [i, o] = lin.weight.dims();
                Lora::init(i, o, cfg, &mut rng, lin.weight.val().dtype(), device)
            };
            let a = &mut layer.attn;
            a.qkv_lora = on(LoraTarget::Qkv).then(|| mk(&a.qkv));
            a.o_lora = on(LoraTarget::O).then(|| mk(&a.o));
            let m = &mut layer.mlp;
            m.gate_up_lora = on(LoraTarget::GateUp).then(|| mk(&m.gate_up));
            m.down_lora = on(LoraTarget::Down).then(|| mk(&m.down));
        }
        self
    }

    /// Whether any adapter is attached.
    pub fn has_lora(&self) -> bool {
        self.layers.iter().any(|l| {
            l.attn.qkv_lora.is_some()
                || l.attn.o_lora.is_some()
                || l.mlp.gate_up_lora.is_some()
                || l.mlp.down_lora.is_some()
        })
    }

    /// Parameters in the adapters.
    pub fn lora_num_params(&self) -> usize {
        self.lora_adapters()
            .layers
            .iter()
            .flat_map(|l| [&l.qkv, &l.o, &l.gate_up, &l.down])
            .flatten()
            .map(Lora::num_params)
            .sum()
    }

    /// Folds every adapter into its projection's weight (`W + scale·A·B`, computed in f32 and
    /// stored in the weight's dtype) and removes it.
    pub fn merge_lora(mut self) -> Self {
        fn merge<B: Backend>(lin: &mut burn::nn::Linear<B>, lora: Option<Lora<B>>) {
            if let Some(l) = lora {
                let dt = lin.weight.val().dtype();
                let delta = l.delta();
                lin.weight = lin
                    .weight
                    .clone()
                    .map(|w| (w.cast(DType::F32) + delta).cast(dt));
            }
        }
        for layer in &mut self.layers {
            merge(&mut layer.attn.qkv, layer.attn.qkv_lora.take());
            merge(&mut layer.attn.o, layer.attn.o_lora.take());
            merge(&mut layer.mlp.gate_up, layer.mlp.gate_up_lora.take());
            merge(&mut layer.mlp.down, layer.mlp.down_lora.take());
        }
        self
    }

    /// A copy of the adapters (same parameter ids).
    pub fn lora_adapters(&self) -> LoraAdapters<B> {
        LoraAdapters {
            layers: self
                .layers
                .iter()
                .map(|l| LayerLora {
                    qkv: l.attn.qkv_lora.clone(),
                    o: l.attn.o_lora.clone(),
                    gate_up: l.mlp.gate_up_lora.clone(),
                    down: l.mlp.down_lora.clone(),
                })
                .collect(),
        }
    }

    /// Puts `adapters` (e.g. loaded from a checkpoint) in place of the current ones.
    ///
    /// # Panics
    /// If the number of layers differs.
    pub fn set_lora_adapters(mut self, adapters: LoraAdapters<B>) -> Self {
        assert_eq!(adapters.layers.len(), self.layers.len(), "adapter layers");
        for (layer, a) in self.layers.iter_mut().zip(adapters.layers) {
            layer.attn.qkv_lora = a.qkv;
            layer.attn.o_lora = a.o;
            layer.mlp.gate_up_lora = a.gate_up;
            layer.mlp.down_lora = a.down;
        }
        self
    }

    /// Freezes every base parameter (no gradient, no optimizer state) and leaves the adapters
    /// trainable.
    pub fn freeze_base(mut self) -> Self {
        self.embed.weight = frozen(self.embed.weight);
        self.norm.gamma = frozen(self.norm.gamma);
        for layer in &mut self.layers {
            for n in [
                Some(&mut layer.input_norm),
                layer.post_attn_out_norm.as_mut(),
                Some(&mut layer.mlp_norm),
                layer.post_mlp_out_norm.as_mut(),
            ]
            .into_iter()
            .flatten()
            {
                n.gamma = frozen(n.gamma.clone());
            }
            for lin in [
                &mut layer.attn.qkv,
                &mut layer.attn.o,
                &mut layer.mlp.gate_up,
                &mut layer.mlp.down,
            ] {
                lin.weight = frozen(lin.weight.clone());
                lin.bias = lin.bias.take().map(frozen);
            }
            layer.attn.qkv_lora = trainable(layer.attn.qkv_lora.take());
            layer.attn.o_lora = trainable(layer.attn.o_lora.take());
            layer.mlp.gate_up_lora = trainable(layer.mlp.gate_up_lora.take());
            layer.mlp.down_lora = trainable(layer.mlp.down_lora.take());
        }
        self
    }
}

impl<B: Backend> CausalLm<B> {
    /// [`Trunk::with_lora`].
    pub fn with_lora(self, cfg: &LoraConfig, seed: u64, device: &B::Device) -> Self {
        CausalLm {
            trunk: self.trunk.with_lora(cfg, seed, device),
            lm_head: self.lm_head,
        }
    }

    /// [`Trunk::merge_lora`].
    pub fn merge_lora(self) -> Self {
        CausalLm {
            trunk: self.trunk.merge_lora(),
            lm_head: self.lm_head,
        }
    }

    /// [`Trunk::freeze_base`], and the LM head frozen too.
    pub fn freeze_base(self) -> Self {
        CausalLm {
            trunk: self.trunk.freeze_base(),
            lm_head: self.lm_head.map(|mut h| {
                h.weight = frozen(h.weight);
                h.bias = h.bias.map(frozen);
                h
            }),
        }
    }
}

impl<B: Backend> ScalarModel<B> {
    /// [`Trunk::with_lora`] (the score head stays fully trainable).
    pub fn with_lora(self, cfg: &LoraConfig, seed: u64, device: &B::Device) -> Self {
        ScalarModel {
            trunk: self.trunk.with_lora(cfg, seed, device),
            score: self.score,
        }
    }

    /// [`Trunk::merge_lora`].
    pub fn merge_lora(self) -> Self {
        ScalarModel {
            trunk: self.trunk.merge_lora(),
            score: self.score,
        }
    }

    /// [`Trunk::freeze_base`]; the score head stays trainable.
    pub fn freeze_base(self) -> Self {
        ScalarModel {
            trunk: self.trunk.freeze_base(),
            score: self.score,
        }
    }
}
