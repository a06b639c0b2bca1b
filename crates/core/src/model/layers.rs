//! The building blocks of the decoder: attention with GQA and a KV cache, the SwiGLU MLP, and
//! the decoder layer (with GLM-4-0414's optional post-sublayer norms).
//!
//! q/k/v are one fused projection and gate/up are one fused projection (HF checkpoints are
//! split and joined at load and save time): one matmul instead of three or two.

use burn::module::Param;
use burn::nn::{Linear, RmsNorm};
use burn::prelude::*;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;

use super::lora::{Lora, adapted};
use super::rope::RopeTables;
use crate::kernels;

/// Keys and values of one layer for the positions seen so far.
#[derive(Debug, Clone)]
pub struct LayerCache<B: Backend> {
    /// `[batch, kv_heads, seen, head_dim]`.
    pub k: Tensor<B, 4>,
    /// `[batch, kv_heads, seen, head_dim]`.
    pub v: Tensor<B, 4>,
}

/// Self-attention with grouped-query heads.
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    /// Fused q, k, v projection, `[hidden, (heads + 2·kv_heads)·head_dim]`.
    pub qkv: Linear<B>,
    /// Output projection, `[heads·head_dim, hidden]`.
    pub o: Linear<B>,
    /// LoRA adapter on `qkv`, if any.
    pub qkv_lora: Option<Lora<B>>,
    /// LoRA adapter on `o`, if any.
    pub o_lora: Option<Lora<B>>,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads.
    pub num_kv_heads: usize,
    /// Head width.
    pub head_dim: usize,
}

impl<B: Backend> Attention<B> {
    /// # Shapes
    /// - `x`: `[batch, seq, hidden]`
    /// - `cos`, `sin`: `[batch, 1, seq, rot/2]` (from [`RopeTables::gather`])
    /// - `mask`: `[batch, 1, seq, past + seq]`, `true` = masked
    /// - output: `[batch, seq, hidden]`
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        rope: &RopeTables<B>,
        cos: &Tensor<B, 4>,
        sin: &Tensor<B, 4>,
        mask: Tensor<B, 4, Bool>,
        cache: Option<&mut Option<LayerCache<B>>>,
    ) -> Tensor<B, 3> {
        let [b, t, _] = x.dims();
        let (h, kvh, hd) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let qkv = adapted(&self.qkv, &self.qkv_lora, x);
        // [b, h + 2·kvh, t, hd], RoPE applied to the q and k heads.
        let heads = kernels::split_heads(qkv, h, kvh, hd, rope, cos, sin);
        let Some(slot) = cache else {
            // Training and scoring: one fused op on CPU.
            let out = kernels::self_attention(heads, h, kvh, mask);
            return adapted(&self.o, &self.o_lora, out);
        };
        let q = heads.clone().slice([0..b, 0..h, 0..t, 0..hd]);
        let k = heads.clone().slice([0..b, h..h + kvh, 0..t, 0..hd]);
        let v = heads.slice([0..b, h + kvh..h + 2 * kvh, 0..t, 0..hd]);
        let (k, v) = match slot.take() {
            Some(past) => (
                Tensor::cat(vec![past.k, k], 2),
                Tensor::cat(vec![past.v, v], 2),
            ),
            None => (k, v),
        };
        *slot = Some(LayerCache {
            k: k.clone(),
            v: v.clone(),
        });
        let k = repeat_kv(k, h / kvh);
        let v = repeat_kv(v, h / kvh);
        let [_, _, kt, _] = k.dims();
        let mask = mask.expand([b, h, t, kt]);
        let out = attention(
            q,
            k,
            v,
            Some(mask),
            None,
            AttentionModuleOptions {
                scale: None,
                softcap: None,
                is_causal: false,
            },
        );
        adapted(&self.o, &self.o_lora, kernels::merge_heads(out))
    }
}

/// HF `repeat_kv`: each KV head serves `rep` consecutive query heads.
pub(crate) fn repeat_kv<B: Backend>(x: Tensor<B, 4>, rep: usize) -> Tensor<B, 4> {
    if rep == 1 {
        return x;
    }
    let [b, kvh, t, hd] = x.dims();
    x.unsqueeze_dim::<5>(2)
        .expand([b, kvh, rep, t, hd])
        .reshape([b, kvh * rep, t, hd])
}

/// SwiGLU feed-forward: `down(silu(gate(x)) * up(x))` with gate and up fused.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    /// `[hidden, 2·intermediate]`: the first half is the gate, the second the up projection.
    pub gate_up: Linear<B>,
    /// `[intermediate, hidden]`.
    pub down: Linear<B>,
    /// LoRA adapter on `gate_up`, if any.
    pub gate_up_lora: Option<Lora<B>>,
    /// LoRA adapter on `down`, if any.
    pub down_lora: Option<Lora<B>>,
    /// Inner width.
    pub intermediate: usize,
}

impl<B: Backend> Mlp<B> {
    /// # Shapes
    /// - `x`: `[batch, seq, hidden]` → `[batch, seq, hidden]`
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let gu = adapted(&self.gate_up, &self.gate_up_lora, x);
        adapted(&self.down, &self.down_lora, kernels::swiglu(gu))
    }
}

/// One pre-norm decoder layer.
#[derive(Module, Debug)]
pub struct DecoderLayer<B: Backend> {
    /// Norm before attention (`input_layernorm`).
    pub input_norm: RmsNorm<B>,
    /// Self-attention.
    pub attn: Attention<B>,
    /// Norm after attention, before the residual add (GLM-4-0414 `post_self_attn_layernorm`).
    pub post_attn_out_norm: Option<RmsNorm<B>>,
    /// Norm before the MLP (`post_attention_layernorm`).
    pub mlp_norm: RmsNorm<B>,
    /// Feed-forward.
    pub mlp: Mlp<B>,
    /// Norm after the MLP, before the residual add (GLM-4-0414 `post_mlp_layernorm`).
    pub post_mlp_out_norm: Option<RmsNorm<B>>,
}

impl<B: Backend> DecoderLayer<B> {
    /// # Shapes
    /// See [`Attention::forward`].
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        rope: &RopeTables<B>,
        cos: &Tensor<B, 4>,
        sin: &Tensor<B, 4>,
        mask: Tensor<B, 4, Bool>,
        cache: Option<&mut Option<LayerCache<B>>>,
    ) -> Tensor<B, 3> {
        let a = self.attn.forward(
            rms_norm(&self.input_norm, x.clone()),
            rope,
            cos,
            sin,
            mask,
            cache,
        );
        let a = match &self.post_attn_out_norm {
            Some(n) => rms_norm(n, a),
            None => a,
        };
        let x = x + a;
        let m = self.mlp.forward(rms_norm(&self.mlp_norm, x.clone()));
        let m = match &self.post_mlp_out_norm {
            Some(n) => rms_norm(n, m),
            None => m,
        };
        x + m
    }
}

/// `norm.forward(x)` through the fused kernel where it applies.
pub(crate) fn rms_norm<B: Backend, const D: usize>(
    norm: &RmsNorm<B>,
    x: Tensor<B, D>,
) -> Tensor<B, D> {
    kernels::rms_norm(x, norm.gamma.val(), norm.epsilon)
}

/// Builds a [`Linear`] from a weight in burn layout (`[in, out]`) and an optional bias.
pub(crate) fn linear_from<B: Backend>(
    weight: Tensor<B, 2>,
    bias: Option<Tensor<B, 1>>,
) -> Linear<B> {
    Linear {
        weight: Param::from_tensor(weight),
        bias: bias.map(Param::from_tensor),
    }
}

/// Builds an [`RmsNorm`] from its scale.
pub(crate) fn rms_from<B: Backend>(gamma: Tensor<B, 1>, eps: f64) -> RmsNorm<B> {
    RmsNorm {
        gamma: Param::from_tensor(gamma),
        epsilon: eps,
    }
}
