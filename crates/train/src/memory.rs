//! Memory plans: what a training step holds, estimated from the model config before anything
//! is allocated, printed before every trainer launches and checked against the device's memory.
//!
//! Per model: parameters, AdamW moments (two f32 per parameter) and f32 gradients of trained
//! models, the peak activations of its pass, and a generation KV cache. Activations count the
//! tensors the backward pass keeps per decoder layer and token ([`floats_per_token_layer`]: norm
//! outputs, q/k/v before and after RoPE, the attention output, probabilities and scores, the
//! MLP's gate/up/SiLU products, residuals) plus the head's outputs: `k` floats per vocabulary
//! entry on the positions where logits are computed (logits, log-softmax, their gradient) or one
//! score per token for a scalar head. With gradient checkpointing only each layer's input
//! (`hidden` floats per token and layer) is kept, and one layer's activations are recomputed
//! at a time during the backward pass. An inference pass keeps one layer's worth plus the head.
//! The phases of a step run one after another, so the peak is everything resident plus the
//! largest phase. Real peaks depend on the backend's allocator and fusion; `docs/perf.md`
//! compares the plan with measured peaks.

use std::fmt::Write as _;

use rlhf_core::ModelConfig;
use serde::{Deserialize, Serialize};

/// One model's share of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMemory {
    /// `policy`, `reference`, `reward`, `actor`, `critic`, …
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
    /// The KV cache of generation (0 for models that score whole rows).
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

/// What one model does in a step, for [`ModelMemory::estimate`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pass {
    /// Rows per pass (a micro-batch).
    pub rows: usize,
    /// Tokens per row.
    pub seq: usize,
    /// Positions per row where the LM head computes logits; `None` for a scalar head.
    pub logit_positions: Option<usize>,
    /// Trained (gradients, optimizer state, activations kept for backward) or frozen.
    pub trained: bool,
    /// Per-layer recomputation (`gradient_checkpointing`).
    pub checkpointing: bool,
    /// Bytes per parameter and activation element.
    pub dtype_bytes: usize,
}

/// Floats the backward pass keeps per decoder layer and token at sequence length `seq`.
pub fn floats_per_token_layer(cfg: &ModelConfig, seq: usize) -> usize {
    let h = cfg.hidden_size;
    let q = cfg.num_heads * cfg.head_dim;
    let kv = cfg.num_kv_heads * cfg.head_dim;
    let i = cfg.intermediate_size;
    // 2 norms + 2 residuals + o output (5h), q/k/v and rotated q/k (2q + 4kv), attention output
    // (q), attention probabilities and scores (2 · heads · seq), gate/up, SiLU and product (4i).
    5 * h + 3 * q + 4 * kv + 2 * cfg.num_heads * seq + 4 * i
}

impl ModelMemory {
    /// The memory of `name`, built from `cfg` (a causal LM when `pass.logit_positions` is
    /// set, a scalar model otherwise), doing `pass`.
    pub fn estimate(name: &str, cfg: &ModelConfig, pass: Pass) -> Self {
        let e = pass.dtype_bytes;
        let params = match pass.logit_positions {
            Some(_) => cfg.num_params(),
            None => cfg.scalar_num_params(),
        };
        let per_layer = floats_per_token_layer(cfg, pass.seq);
        let head = |k: usize| match pass.logit_positions {
            Some(n) => n * k * cfg.vocab_size,
            None => pass.seq,
        };
        let per_row = if !pass.trained {
            pass.seq * per_layer + head(2)
        } else if pass.checkpointing {
            pass.seq * (cfg.hidden_size * cfg.num_layers + per_layer) + head(3)
        } else {
            pass.seq * per_layer * cfg.num_layers + head(3)
        };
        let f32b = 4;
        ModelMemory {
            name: name.into(),
            params,
            param_bytes: params * e,
            optimizer_bytes: if pass.trained { 2 * params * f32b } else { 0 },
            grad_bytes: if pass.trained { params * f32b } else { 0 },
            activation_bytes: pass.rows * per_row * e,
            kv_cache_bytes: 0,
        }
    }
}

/// A trainer's plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryPlan {
    /// What runs, e.g. `reward model: 4 rows × 512 tokens per micro-batch`.
    pub what: String,
    /// Bytes per parameter / activation element.
    pub dtype_bytes: usize,
    /// Whether trained models recompute activations per layer.
    pub gradient_checkpointing: bool,
    /// Per model.
    pub models: Vec<ModelMemory>,
}

impl MemoryPlan {
    /// The reward model's step: one trained scalar model on `2·pairs` rows of `seq` tokens.
    pub fn reward(cfg: &ModelConfig, pairs: usize, seq: usize, checkpointing: bool) -> Self {
        let pass = Pass {
            rows: 2 * pairs,
            seq,
            logit_positions: None,
            trained: true,
            checkpointing,
            dtype_bytes: 4,
        };
        MemoryPlan {
            what: format!(
                "reward model: {pairs} pairs ({} rows) × {seq} tokens per micro-batch",
                2 * pairs
            ),
            dtype_bytes: 4,
            gradient_checkpointing: checkpointing,
            models: vec![ModelMemory::estimate("reward", cfg, pass)],
        }
    }

    /// An SFT step: one trained causal LM on `rows` rows of `seq` tokens, logits on the
    /// `reply` positions of each row (the ones predicting reply tokens; `seq` as a bound).
    pub fn sft(
        cfg: &ModelConfig,
        rows: usize,
        seq: usize,
        reply: usize,
        checkpointing: bool,
    ) -> Self {
        let pass = Pass {
            rows,
            seq,
            logit_positions: Some(reply.min(seq)),
            trained: true,
            checkpointing,
            dtype_bytes: 4,
        };
        MemoryPlan {
            what: format!("SFT: {rows} rows × {seq} tokens per micro-batch"),
            dtype_bytes: 4,
            gradient_checkpointing: checkpointing,
            models: vec![ModelMemory::estimate("policy", cfg, pass)],
        }
    }

    /// A DPO step: the trained policy on `2·pairs` rows of `seq` tokens with logits on the
    /// `reply` positions, and the reference (frozen, same shape) when it stays resident
    /// instead of being precomputed.
    pub fn dpo(
        cfg: &ModelConfig,
        pairs: usize,
        seq: usize,
        reply: usize,
        resident_reference: bool,
        checkpointing: bool,
    ) -> Self {
        let pass = Pass {
            rows: 2 * pairs,
            seq,
            logit_positions: Some(reply.min(seq)),
            trained: true,
            checkpointing,
            dtype_bytes: 4,
        };
        let mut models = vec![ModelMemory::estimate("policy", cfg, pass)];
        if resident_reference {
            let frozen = Pass {
                trained: false,
                ..pass
            };
            models.push(ModelMemory::estimate("reference", cfg, frozen));
        }
        MemoryPlan {
            what: format!(
                "DPO: {pairs} pairs ({} rows) × {seq} tokens per micro-batch, reference {}",
                2 * pairs,
                if resident_reference {
                    "resident"
                } else {
                    "precomputed"
                }
            ),
            dtype_bytes: 4,
            gradient_checkpointing: checkpointing,
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
            "memory plan — {} ({} bytes per element{})\n\
             model      params      weights MiB  optimizer MiB  grads MiB  activations MiB  KV cache MiB\n",
            self.what,
            self.dtype_bytes,
            if self.gradient_checkpointing {
                ", gradient checkpointing"
            } else {
                ""
            }
        );
        for m in &self.models {
            let _ = writeln!(
                s,
                "{:<10} {:>11} {:>12.1} {:>14.1} {:>10.1} {:>16.1} {:>13.1}",
                m.name,
                m.params,
                mib(m.param_bytes),
                mib(m.optimizer_bytes),
                mib(m.grad_bytes),
                mib(m.activation_bytes),
                mib(m.kv_cache_bytes)
            );
        }
        let _ = writeln!(
            s,
            "estimated peak (all resident, largest phase): {:.1} MiB",
            mib(self.peak_bytes())
        );
        s
    }

    /// `Err` naming both figures when the plan's peak exceeds `available` bytes (the device's
    /// memory), so a run that cannot fit stops before it allocates.
    ///
    /// # Errors
    /// The message above.
    pub fn check_fits(&self, available: Option<u64>, device: &str) -> Result<(), String> {
        match available {
            Some(a) if self.peak_bytes() as u64 > a => Err(format!(
                "the memory plan needs about {:.1} GiB at its peak but {device} has {:.1} GiB: \
                 lower the micro-batch or the sequence length, or set gradient_checkpointing = true",
                self.peak_bytes() as f64 / GIB,
                a as f64 / GIB
            )),
            _ => Ok(()),
        }
    }
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// The memory of the CPU device: `MemTotal` of `/proc/meminfo` (`None` where there is none),
/// or `RLHF_DEVICE_MEMORY_GIB` when set (any device; how a CUDA run states its card's memory).
pub fn device_memory_bytes(is_cpu: bool) -> Option<u64> {
    if let Some(g) = std::env::var("RLHF_DEVICE_MEMORY_GIB")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
    {
        return Some((g * GIB) as u64);
    }
    if !is_cpu {
        return None;
    }
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    meminfo_total(&text)
}

/// `MemTotal` of a `/proc/meminfo` text, in bytes.
fn meminfo_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The peak resident set of this process so far (`VmHWM` of `/proc/self/status`), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reward_plan_worked_by_hand() {
        // tiny-bench: vocab 8192, hidden 256, 4 layers, 4 heads × 64, 4 KV heads, MLP 688.
        let cfg = ModelConfig::tiny_bench();
        // Per layer and token at seq 128: 5·256 + 3·256 + 4·256 + 2·4·128 + 4·688
        // = 1280 + 768 + 1024 + 1024 + 2752 = 6848 floats.
        assert_eq!(floats_per_token_layer(&cfg, 128), 6848);
        let p = MemoryPlan::reward(&cfg, 2, 128, false);
        let m = &p.models[0];
        assert_eq!(m.params, cfg.scalar_num_params());
        assert_eq!(m.optimizer_bytes, 2 * m.param_bytes);
        // 4 rows × (128 tokens × 6848 × 4 layers + 128 scores) × 4 bytes.
        assert_eq!(m.activation_bytes, 4 * (128 * 6848 * 4 + 128) * 4);
        // Checkpointing keeps each layer's input (256 floats) and one layer's activations.
        let c = MemoryPlan::reward(&cfg, 2, 128, true);
        assert_eq!(
            c.models[0].activation_bytes,
            4 * (128 * (256 * 4 + 6848) + 128) * 4
        );
        assert!(c.peak_bytes() < p.peak_bytes());
    }

    #[test]
    fn dpo_counts_the_reference_only_when_resident() {
        let cfg = ModelConfig::tiny_bench();
        let pre = MemoryPlan::dpo(&cfg, 2, 64, 64, false, false);
        let res = MemoryPlan::dpo(&cfg, 2, 64, 64, true, false);
        assert_eq!(pre.models.len(), 1);
        assert_eq!(res.models.len(), 2);
        let r = &res.models[1];
        assert_eq!(r.optimizer_bytes + r.grad_bytes, 0);
        assert_eq!(
            res.peak_bytes() - pre.peak_bytes(),
            r.param_bytes,
            "a frozen reference adds its weights; its activations are smaller than the policy's"
        );
        // SFT logits: 4 rows × 64 positions × 3 × 8192.
        let s = MemoryPlan::sft(&cfg, 4, 64, 64, false);
        let body = 4 * 64 * floats_per_token_layer(&cfg, 64) * 4;
        assert_eq!(s.models[0].activation_bytes, (body + 4 * 64 * 3 * 8192) * 4);
    }

    #[test]
    fn a_plan_past_the_device_memory_is_refused_with_both_figures() {
        let cfg = ModelConfig::tiny_bench();
        let p = MemoryPlan::sft(&cfg, 4, 64, 32, false);
        assert!(p.check_fits(None, "cuda:0").is_ok());
        assert!(p.check_fits(Some(u64::MAX), "cpu").is_ok());
        let e = p.check_fits(Some(1 << 20), "cpu").unwrap_err();
        assert!(
            e.contains("cpu has 0.0 GiB") && e.contains("gradient_checkpointing"),
            "{e}"
        );
        assert!(p.to_table().contains("policy") && p.to_table().contains("SFT"));
    }

    #[test]
    fn meminfo_is_read_in_kib() {
        let t = "MemTotal:       24576000 kB\nMemFree:  1 kB\n";
        assert_eq!(meminfo_total(t), Some(24_576_000 * 1024));
        assert_eq!(meminfo_total("nothing"), None);
    }
}
