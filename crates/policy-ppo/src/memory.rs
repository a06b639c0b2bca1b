//! The memory plan printed before a PPO run: for each of the four models, its parameters,
//! optimizer state, gradients, training/inference activations and KV cache, in bytes.
//!
//! These are estimates from the config, not measurements. Activations count the tensors the
//! backward pass keeps per decoder layer and token (norm outputs, q/k/v before and after RoPE,
//! the attention output and probabilities, the MLP's gate/up/SiLU products, residuals) plus the
//! LM head's logits, log-softmax and entropy terms on the response positions (the only ones the
//! head runs on); inference keeps one layer's worth plus the logits. Real peaks depend on the
//! backend's allocator and fusion.

use rlhf_core::ModelConfig;
use serde::{Deserialize, Serialize};

/// One model's share of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMemory {
    /// `actor`, `critic`, `reference` or `reward`.
    pub name: String,
    /// Parameters.
    pub params: usize,
    /// Parameter bytes.
    pub param_bytes: usize,
    /// AdamW moments (two per parameter, f32); 0 for frozen models.
    pub optimizer_bytes: usize,
    /// Gradients (f32); 0 for frozen models.
    pub grad_bytes: usize,
    /// Peak activations of its forward (and backward, when trained) pass.
    pub activation_bytes: usize,
    /// The KV cache of generation (the actor only; the others score whole rows).
    pub kv_cache_bytes: usize,
}

impl ModelMemory {
    /// Sum of every part.
    pub fn total(&self) -> usize {
        self.param_bytes
            + self.optimizer_bytes
            + self.grad_bytes
            + self.activation_bytes
            + self.kv_cache_bytes
    }
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryPlan {
    /// Rows per rollout.
    pub rollout_rows: usize,
    /// Rows per optimizer step.
    pub train_rows: usize,
    /// Prompt + response tokens per row.
    pub seq: usize,
    /// Bytes per parameter / activation element.
    pub dtype_bytes: usize,
    /// Per model.
    pub models: Vec<ModelMemory>,
}

fn scalar_params(cfg: &ModelConfig) -> usize {
    rlhf_reward::scalar_params(cfg)
}

/// Floats the backward pass keeps per decoder layer and token.
fn train_floats_per_token_layer(cfg: &ModelConfig, seq: usize) -> usize {
    let h = cfg.hidden_size;
    let q = cfg.num_heads * cfg.head_dim;
    let kv = cfg.num_kv_heads * cfg.head_dim;
    let i = cfg.intermediate_size;
    // 2 norms + 2 residuals + o output (5h), q/k/v and rotated q/k (2q + 4kv), attention output
    // (q), attention probabilities and scores (2 · heads · seq), gate/up, SiLU and product (4i).
    5 * h + 3 * q + 4 * kv + 2 * cfg.num_heads * seq + 4 * i
}

impl MemoryPlan {
    /// The plan for a run: `actor`/`reference` from `policy_cfg`, `critic`/`reward` from
    /// `value_cfg`, `rollout_rows` rows of `prompt_len + new_tokens` tokens generated and scored,
    /// `train_rows` rows per optimizer step.
    pub fn estimate(
        policy_cfg: &ModelConfig,
        value_cfg: &ModelConfig,
        rollout_rows: usize,
        train_rows: usize,
        prompt_len: usize,
        new_tokens: usize,
        dtype_bytes: usize,
    ) -> Self {
        let seq = prompt_len + new_tokens;
        let e = dtype_bytes;
        let f32b = 4;
        // The LM head runs on the response positions only (`policy_response_logits`).
        let head = |cfg: &ModelConfig, logits: bool, k: usize| {
            if logits {
                new_tokens * k * cfg.vocab_size
            } else {
                seq
            }
        };
        let train_act = |cfg: &ModelConfig, logits: bool| {
            let per_row = seq * train_floats_per_token_layer(cfg, seq) * cfg.num_layers
                + head(cfg, logits, 3);
            train_rows * per_row * e
        };
        let infer_act = |cfg: &ModelConfig, logits: bool| {
            let per_row = seq * train_floats_per_token_layer(cfg, seq) + head(cfg, logits, 2);
            rollout_rows * per_row * e
        };
        let kv = 2
            * policy_cfg.num_layers
            * rollout_rows
            * seq
            * policy_cfg.num_kv_heads
            * policy_cfg.head_dim
            * e;
        let pa = policy_cfg.num_params();
        let pc = scalar_params(value_cfg);
        let models = vec![
            ModelMemory {
                name: "actor".into(),
                params: pa,
                param_bytes: pa * e,
                optimizer_bytes: 2 * pa * f32b,
                grad_bytes: pa * f32b,
                activation_bytes: train_act(policy_cfg, true).max(infer_act(policy_cfg, true)),
                kv_cache_bytes: kv,
            },
            ModelMemory {
                name: "critic".into(),
                params: pc,
                param_bytes: pc * e,
                optimizer_bytes: 2 * pc * f32b,
                grad_bytes: pc * f32b,
                activation_bytes: train_act(value_cfg, false),
                kv_cache_bytes: 0,
            },
            ModelMemory {
                name: "reference".into(),
                params: pa,
                param_bytes: pa * e,
                optimizer_bytes: 0,
                grad_bytes: 0,
                activation_bytes: infer_act(policy_cfg, true),
                kv_cache_bytes: 0,
            },
            ModelMemory {
                name: "reward".into(),
                params: pc,
                param_bytes: pc * e,
                optimizer_bytes: 0,
                grad_bytes: 0,
                activation_bytes: infer_act(value_cfg, false),
                kv_cache_bytes: 0,
            },
        ];
        MemoryPlan {
            rollout_rows,
            train_rows,
            seq,
            dtype_bytes,
            models,
        }
    }

    /// Bytes resident at once when nothing is offloaded: every model's parameters, the
    /// trained models' optimizer state and gradients, and the largest single phase's
    /// activations and KV cache (phases run one after another).
    pub fn peak_bytes(&self) -> usize {
        let fixed: usize = self
            .models
            .iter()
            .map(|m| m.param_bytes + m.optimizer_bytes + m.grad_bytes)
            .sum();
        let phase = self
            .models
            .iter()
            .map(|m| m.activation_bytes + m.kv_cache_bytes)
            .max()
            .unwrap_or(0);
        fixed + phase
    }

    /// A plain-text table (MiB).
    pub fn to_table(&self) -> String {
        let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
        let mut s = format!(
            "memory plan ({} rollout rows, {} rows per step, {} tokens per row, {} bytes per element)\n\
             model      params      weights MiB  optimizer MiB  grads MiB  activations MiB  KV cache MiB\n",
            self.rollout_rows, self.train_rows, self.seq, self.dtype_bytes
        );
        for m in &self.models {
            s.push_str(&format!(
                "{:<10} {:>11} {:>12.1} {:>14.1} {:>10.1} {:>16.1} {:>13.1}\n",
                m.name,
                m.params,
                mib(m.param_bytes),
                mib(m.optimizer_bytes),
                mib(m.grad_bytes),
                mib(m.activation_bytes),
                mib(m.kv_cache_bytes)
            ));
        }
        s.push_str(&format!(
            "estimated peak (all resident, largest phase): {:.1} MiB\n",
            mib(self.peak_bytes())
        ));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_counts_optimizer_state_only_for_trained_models() {
        let cfg = ModelConfig::tiny_bench();
        let p = MemoryPlan::estimate(&cfg, &cfg, 8, 8, 64, 32, 4);
        assert_eq!(p.models.len(), 4);
        let actor = &p.models[0];
        assert_eq!(actor.param_bytes, cfg.num_params() * 4);
        assert_eq!(actor.optimizer_bytes, 2 * actor.param_bytes);
        // KV cache: 2 (k, v) × 4 layers × 8 rows × 96 tokens × 4 heads × 64 dims × 4 bytes.
        assert_eq!(actor.kv_cache_bytes, 2 * 4 * 8 * 96 * 4 * 64 * 4);
        assert_eq!(p.models[2].optimizer_bytes + p.models[3].grad_bytes, 0);
        assert!(p.peak_bytes() > p.models.iter().map(|m| m.param_bytes).sum::<usize>());
        assert!(p.to_table().contains("reference"));
    }
}
