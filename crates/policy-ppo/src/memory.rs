//! The memory plan printed before a PPO run: the four models of `rlhf_train::MemoryPlan`
//! (parameters, optimizer state, gradients, activations) plus the actor's generation KV cache.
//! The counting rules are `rlhf_train::memory`'s; PPO's are that the actor's LM head runs on the
//! response positions only (`policy_response_logits`), that rollouts (generation and the frozen
//! models' scoring) use `rollout_rows` rows and a training pass `train_rows`, and that a
//! critic-free run has no critic.

use rlhf_core::ModelConfig;
use rlhf_train::{MemoryPlan, ModelMemory, Pass};

/// Which of PPO's scalar models this process holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScalarModels {
    /// The critic (none for a critic-free estimator).
    pub critic: bool,
    /// A local reward model (none when a rule or a remote server scores).
    pub reward: bool,
}

impl ScalarModels {
    /// Critic and local reward model: PPO as the paper runs it.
    pub const BOTH: ScalarModels = ScalarModels {
        critic: true,
        reward: true,
    };
}

/// The plan of a PPO step: `actor`/`reference` from `policy_cfg`, `critic` and `reward` (those
/// `scalar` says this process holds) from `value_cfg`, `rollout_rows` rows of `prompt_len + new_tokens` tokens generated and scored,
/// `train_rows` rows per optimizer step, `dtype_bytes` per element, activations recomputed per
/// layer with `checkpointing`.
#[allow(clippy::too_many_arguments)]
pub fn ppo_memory_plan(
    policy_cfg: &ModelConfig,
    value_cfg: &ModelConfig,
    scalar: ScalarModels,
    rollout_rows: usize,
    train_rows: usize,
    prompt_len: usize,
    new_tokens: usize,
    dtype_bytes: usize,
    checkpointing: bool,
) -> MemoryPlan {
    let seq = prompt_len + new_tokens;
    let train = |logits: Option<usize>| Pass {
        rows: train_rows,
        seq,
        logit_positions: logits,
        trained: true,
        checkpointing,
        dtype_bytes,
    };
    let infer = |logits: Option<usize>| Pass {
        rows: rollout_rows,
        trained: false,
        ..train(logits)
    };
    let mut actor = ModelMemory::estimate("actor", policy_cfg, train(Some(new_tokens)));
    actor.activation_bytes = actor
        .activation_bytes
        .max(ModelMemory::estimate("actor", policy_cfg, infer(Some(new_tokens))).activation_bytes);
    actor.kv_cache_bytes = 2
        * policy_cfg.num_layers
        * rollout_rows
        * seq
        * policy_cfg.num_kv_heads
        * policy_cfg.head_dim
        * dtype_bytes;
    let mut models = vec![actor];
    if scalar.critic {
        models.push(ModelMemory::estimate("critic", value_cfg, train(None)));
    }
    models.push(ModelMemory::estimate(
        "reference",
        policy_cfg,
        infer(Some(new_tokens)),
    ));
    if scalar.reward {
        models.push(ModelMemory::estimate("reward", value_cfg, infer(None)));
    }
    MemoryPlan {
        what: format!(
            "PPO: {rollout_rows} rollout rows, {train_rows} rows per step, {seq} tokens per row"
        ),
        dtype_bytes,
        gradient_checkpointing: checkpointing,
        models,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_counts_optimizer_state_only_for_trained_models() {
        let cfg = ModelConfig::tiny_bench();
        let p = ppo_memory_plan(&cfg, &cfg, ScalarModels::BOTH, 8, 8, 64, 32, 4, false);
        assert_eq!(p.models.len(), 4);
        let actor = &p.models[0];
        assert_eq!(actor.param_bytes, cfg.num_params() * 4);
        assert_eq!(actor.optimizer_bytes, 2 * actor.param_bytes);
        // KV cache: 2 (k, v) × 4 layers × 8 rows × 96 tokens × 4 heads × 64 dims × 4 bytes.
        assert_eq!(actor.kv_cache_bytes, 2 * 4 * 8 * 96 * 4 * 64 * 4);
        assert_eq!(p.models[2].optimizer_bytes + p.models[3].grad_bytes, 0);
        assert!(p.peak_bytes() > p.models.iter().map(|m| m.param_bytes).sum::<usize>());
        assert!(p.to_table().contains("reference"));
        // Critic-free: the critic's parameters, gradients, Adam state and activations go.
        let free = ScalarModels {
            critic: false,
            reward: true,
        };
        let q = ppo_memory_plan(&cfg, &cfg, free, 8, 8, 64, 32, 4, false);
        assert_eq!(q.models.len(), 3);
        assert!(!q.to_table().contains("critic"));
        let critic = &p.models[1];
        assert_eq!(critic.name, "critic");
        assert!(q.peak_bytes() < p.peak_bytes());
        assert!(p.peak_bytes() - q.peak_bytes() >= critic.param_bytes + critic.optimizer_bytes);
        // A rule or remote reward: no local reward model either.
        let none = ScalarModels {
            critic: false,
            reward: false,
        };
        let r = ppo_memory_plan(&cfg, &cfg, none, 8, 8, 64, 32, 4, false);
        let names: Vec<&str> = r.models.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["actor", "reference"]);
    }
}
