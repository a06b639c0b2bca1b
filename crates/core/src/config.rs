//! Model configuration: the HF `config.json` as it is on disk ([`HfConfig`]) and the runtime
//! [`ModelConfig`] every module is built from (candle's two-level config).
//!
//! Families and what sets them apart (see `docs/checkpoints.md` for the tensor names):
//!
//! | family | HF class | attention biases | MLP | RoPE | extra norms |
//! |---|---|---|---|---|---|
//! | Llama | `LlamaForCausalLM` | `attention_bias` (q,k,v,o) | gate, up | half-split | – |
//! | Qwen2 | `Qwen2ForCausalLM` | q,k,v always | gate, up | half-split | – |
//! | GLM-4 | `GlmForCausalLM` | q,k,v (`attention_bias`) | fused `gate_up_proj` | partial, interleaved | – |
//! | GLM-4-0414 | `Glm4ForCausalLM` | as GLM-4 | as GLM-4 | as GLM-4 | post-attention and post-MLP RMSNorm |

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Result};

/// The decoder families this crate implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// Llama 2/3 and look-alikes (`model_type = "llama"`, also Mistral without sliding window).
    Llama,
    /// Qwen2 / Qwen2.5 (`model_type = "qwen2"`).
    Qwen2,
    /// GLM-4-9B in transformers' native layout (`model_type = "glm"`).
    Glm,
    /// GLM-4-0414 (`model_type = "glm4"`).
    Glm4,
}

impl Family {
    /// The HF `model_type` string.
    pub fn model_type(self) -> &'static str {
        match self {
            Family::Llama => "llama",
            Family::Qwen2 => "qwen2",
            Family::Glm => "glm",
            Family::Glm4 => "glm4",
        }
    }

    /// The HF causal-LM class name.
    pub fn causal_lm_class(self) -> &'static str {
        match self {
            Family::Llama => "LlamaForCausalLM",
            Family::Qwen2 => "Qwen2ForCausalLM",
            Family::Glm => "GlmForCausalLM",
            Family::Glm4 => "Glm4ForCausalLM",
        }
    }

    /// The HF sequence-classification class name (reward and value models).
    pub fn seq_cls_class(self) -> &'static str {
        match self {
            Family::Llama => "LlamaForSequenceClassification",
            Family::Qwen2 => "Qwen2ForSequenceClassification",
            Family::Glm => "GlmForSequenceClassification",
            Family::Glm4 => "Glm4ForSequenceClassification",
        }
    }
}

/// How pairs of head dimensions are rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RopeStyle {
    /// `rotate_half`: dimension `i` pairs with `i + rot/2` (Llama, Qwen2, GPT-NeoX).
    Half,
    /// Adjacent pairs `(0,1), (2,3), …` (GLM, GPT-J, Meta's original Llama code).
    Interleaved,
}

/// Frequency scaling of RoPE (HF `rope_type`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RopeScaling {
    /// Plain RoPE.
    Default,
    /// Positions divided by `factor`.
    Linear {
        /// Scale factor.
        factor: f64,
    },
    /// Llama 3.1 frequency-dependent scaling.
    Llama3 {
        /// Scale factor.
        factor: f64,
        /// Low-frequency factor.
        low_freq_factor: f64,
        /// High-frequency factor.
        high_freq_factor: f64,
        /// Context length the model was pretrained with.
        original_max_position_embeddings: usize,
    },
}

/// Rotary position embedding settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RopeConfig {
    /// Base θ.
    pub theta: f64,
    /// How many leading dimensions of each head are rotated (even, ≤ head_dim).
    pub rotary_dim: usize,
    /// Pairing convention.
    pub style: RopeStyle,
    /// Frequency scaling.
    pub scaling: RopeScaling,
}

/// The runtime description of a decoder: everything needed to build, load and save it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Architecture family.
    pub family: Family,
    /// Vocabulary size (rows of the embedding).
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// MLP inner width.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_layers: usize,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads (GQA when smaller than `num_heads`).
    pub num_kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// Rotary embedding.
    pub rope: RopeConfig,
    /// Biases on q, k and v projections.
    pub qkv_bias: bool,
    /// Bias on the output projection.
    pub o_bias: bool,
    /// Biases on the MLP projections.
    pub mlp_bias: bool,
    /// Extra RMSNorms on sublayer outputs (GLM-4-0414).
    pub post_sublayer_norms: bool,
    /// Whether the LM head shares the embedding matrix.
    pub tie_word_embeddings: bool,
    /// Longest sequence the position tables cover.
    pub max_position_embeddings: usize,
    /// Padding id (`None` if the checkpoint has none).
    pub pad_token_id: Option<u32>,
    /// Beginning-of-sequence id.
    pub bos_token_id: Option<u32>,
    /// End-of-sequence ids (generation stops on any).
    pub eos_token_ids: Vec<u32>,
}

/// RoPE parameters as they appear in HF configs (`rope_parameters` or `rope_scaling`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HfRopeParameters {
    /// Base θ.
    pub rope_theta: Option<f64>,
    /// `default`, `linear`, `llama3`, ….
    pub rope_type: Option<String>,
    /// Older spelling of `rope_type`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Fraction of head dims rotated.
    pub partial_rotary_factor: Option<f64>,
    /// Scale factor.
    pub factor: Option<f64>,
    /// Llama 3 low-frequency factor.
    pub low_freq_factor: Option<f64>,
    /// Llama 3 high-frequency factor.
    pub high_freq_factor: Option<f64>,
    /// Llama 3 original context length.
    pub original_max_position_embeddings: Option<usize>,
}

/// A token id field that may be one integer, a list, or null.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One id.
    One(i64),
    /// Several ids.
    Many(Vec<i64>),
}

impl OneOrMany {
    fn ids(&self) -> Vec<u32> {
        match self {
            OneOrMany::One(i) => vec![*i as u32],
            OneOrMany::Many(v) => v.iter().map(|&i| i as u32).collect(),
        }
    }
}

/// The subset of an HF `config.json` this crate reads. Unknown keys are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct HfConfig {
    /// `llama`, `qwen2`, `glm`, `glm4`.
    pub model_type: String,
    /// Class names, e.g. `["LlamaForSequenceClassification"]`.
    #[serde(default)]
    pub architectures: Vec<String>,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Layers.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// KV heads (defaults to query heads).
    pub num_key_value_heads: Option<usize>,
    /// Head width (defaults to hidden / heads).
    pub head_dim: Option<usize>,
    /// RMSNorm epsilon.
    pub rms_norm_eps: Option<f64>,
    /// Top-level θ (transformers 4 layout).
    pub rope_theta: Option<f64>,
    /// transformers 5 layout.
    pub rope_parameters: Option<HfRopeParameters>,
    /// transformers 4 scaling block.
    pub rope_scaling: Option<HfRopeParameters>,
    /// Top-level partial rotary factor (older GLM configs).
    pub partial_rotary_factor: Option<f64>,
    /// Tied embeddings.
    pub tie_word_embeddings: Option<bool>,
    /// Attention biases (Llama: q,k,v,o; GLM: q,k,v).
    pub attention_bias: Option<bool>,
    /// MLP biases (Llama).
    pub mlp_bias: Option<bool>,
    /// Maximum positions.
    pub max_position_embeddings: Option<usize>,
    /// Activation (only `silu` is supported).
    pub hidden_act: Option<String>,
    /// Padding id.
    pub pad_token_id: Option<OneOrMany>,
    /// BOS id.
    pub bos_token_id: Option<OneOrMany>,
    /// EOS id(s).
    pub eos_token_id: Option<OneOrMany>,
    /// Number of outputs of a sequence-classification head.
    pub num_labels: Option<usize>,
    /// `id2label`, whose size gives `num_labels` when that key is absent.
    pub id2label: Option<serde_json::Map<String, serde_json::Value>>,
    /// Sliding-window attention switch (Qwen2); must be off.
    pub use_sliding_window: Option<bool>,
}

impl HfConfig {
    /// Reads and parses `path` (a `config.json`).
    ///
    /// # Errors
    /// IO and JSON errors name the file; see [`HfConfig::to_model_config`] for the model checks.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| CoreError::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| CoreError::Json {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Whether the checkpoint is a sequence-classification (scalar head) model.
    pub fn is_sequence_classification(&self) -> bool {
        self.architectures
            .iter()
            .any(|a| a.ends_with("ForSequenceClassification"))
    }

    /// Number of classifier outputs (1 for reward models).
    pub fn num_labels(&self) -> usize {
        self.num_labels
            .or_else(|| self.id2label.as_ref().map(|m| m.len()))
            .unwrap_or(2)
    }

    /// Converts to the runtime config, applying each family's HF defaults.
    ///
    /// # Errors
    /// [`CoreError::UnsupportedModel`] (naming `path`) for unknown families, activations or RoPE
    /// types, and [`CoreError::InvalidConfig`] for inconsistent sizes.
    pub fn to_model_config(&self, path: &Path) -> Result<ModelConfig> {
        let unsupported = |message: String| CoreError::UnsupportedModel {
            path: path.to_path_buf(),
            message,
        };
        let family = match self.model_type.as_str() {
            "llama" | "mistral" => Family::Llama,
            "qwen2" => Family::Qwen2,
            "glm" => Family::Glm,
            "glm4" => Family::Glm4,
            "chatglm" => {
                return Err(unsupported(
                    "model_type `chatglm` is the remote-code ChatGLM layout; use the transformers-native \
                     conversion (e.g. THUDM/glm-4-9b-chat-hf, model_type `glm`)"
                        .into(),
                ));
            }
            other => {
                return Err(unsupported(format!(
                    "unknown model_type `{other}`; supported: llama, qwen2, glm, glm4"
                )));
            }
        };
        if let Some(act) = &self.hidden_act
            && act != "silu"
            && act != "swish"
        {
            return Err(unsupported(format!(
                "hidden_act `{act}` is not supported (only silu)"
            )));
        }
        if self.use_sliding_window == Some(true) {
            return Err(unsupported(
                "use_sliding_window = true is not supported".into(),
            ));
        }
        let num_heads = self.num_attention_heads;
        let num_kv_heads = self.num_key_value_heads.unwrap_or(num_heads);
        let head_dim = self.head_dim.unwrap_or(self.hidden_size / num_heads.max(1));
        let rope_params = self
            .rope_parameters
            .clone()
            .or_else(|| self.rope_scaling.clone())
            .unwrap_or_default();
        let theta = rope_params
            .rope_theta
            .or(self.rope_theta)
            .unwrap_or(10_000.0);
        let default_partial = match family {
            Family::Glm | Family::Glm4 => 0.5,
            _ => 1.0,
        };
        let partial = rope_params
            .partial_rotary_factor
            .or(self.partial_rotary_factor)
            .unwrap_or(default_partial);
        let rotary_dim = (head_dim as f64 * partial) as usize;
        let rope_type = rope_params
            .rope_type
            .clone()
            .or(rope_params.kind.clone())
            .unwrap_or_else(|| "default".into());
        let scaling = match rope_type.as_str() {
            "default" => RopeScaling::Default,
            "linear" => RopeScaling::Linear {
                factor: rope_params.factor.unwrap_or(1.0),
            },
            "llama3" => RopeScaling::Llama3 {
                factor: rope_params.factor.unwrap_or(8.0),
                low_freq_factor: rope_params.low_freq_factor.unwrap_or(1.0),
                high_freq_factor: rope_params.high_freq_factor.unwrap_or(4.0),
                original_max_position_embeddings: rope_params
                    .original_max_position_embeddings
                    .unwrap_or(8192),
            },
            other => {
                return Err(unsupported(format!(
                    "rope_type `{other}` is not supported (default, linear, llama3)"
                )));
            }
        };
        let style = match family {
            Family::Glm | Family::Glm4 => RopeStyle::Interleaved,
            _ => RopeStyle::Half,
        };
        let attention_bias = self.attention_bias;
        let (qkv_bias, o_bias) = match family {
            Family::Llama => {
                let b = attention_bias.unwrap_or(false);
                (b, b)
            }
            Family::Qwen2 => (true, false),
            Family::Glm | Family::Glm4 => (attention_bias.unwrap_or(true), false),
        };
        let mlp_bias = matches!(family, Family::Llama) && self.mlp_bias.unwrap_or(false);
        let cfg = ModelConfig {
            family,
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_layers: self.num_hidden_layers,
            num_heads,
            num_kv_heads,
            head_dim,
            rms_norm_eps: self.rms_norm_eps.unwrap_or(1e-6),
            rope: RopeConfig {
                theta,
                rotary_dim,
                style,
                scaling,
            },
            qkv_bias,
            o_bias,
            mlp_bias,
            post_sublayer_norms: family == Family::Glm4,
            tie_word_embeddings: self.tie_word_embeddings.unwrap_or(false),
            max_position_embeddings: self.max_position_embeddings.unwrap_or(4096),
            pad_token_id: self
                .pad_token_id
                .as_ref()
                .and_then(|p| p.ids().first().copied()),
            bos_token_id: self
                .bos_token_id
                .as_ref()
                .and_then(|p| p.ids().first().copied()),
            eos_token_ids: self
                .eos_token_id
                .as_ref()
                .map(|e| e.ids())
                .unwrap_or_default(),
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

impl ModelConfig {
    /// Reads an HF `config.json` and converts it.
    ///
    /// # Errors
    /// See [`HfConfig::from_file`] and [`HfConfig::to_model_config`].
    pub fn from_hf_file(path: &Path) -> Result<Self> {
        HfConfig::from_file(path)?.to_model_config(path)
    }

    /// Checks that the sizes fit together.
    ///
    /// # Errors
    /// [`CoreError::InvalidConfig`] naming the first inconsistency.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(CoreError::InvalidConfig(m));
        if self.vocab_size == 0 || self.hidden_size == 0 || self.num_layers == 0 {
            return bad("vocab_size, hidden_size and num_hidden_layers must be > 0".into());
        }
        if self.num_heads == 0 || self.num_kv_heads == 0 {
            return bad("attention heads must be > 0".into());
        }
        if !self.num_heads.is_multiple_of(self.num_kv_heads) {
            return bad(format!(
                "num_attention_heads ({}) must be a multiple of num_key_value_heads ({})",
                self.num_heads, self.num_kv_heads
            ));
        }
        if self.head_dim == 0 || !self.head_dim.is_multiple_of(2) {
            return bad(format!("head_dim ({}) must be even and > 0", self.head_dim));
        }
        if !self.rope.rotary_dim.is_multiple_of(2) || self.rope.rotary_dim > self.head_dim {
            return bad(format!(
                "rotary dim ({}) must be even and at most head_dim ({})",
                self.rope.rotary_dim, self.head_dim
            ));
        }
        if self.rms_norm_eps <= 0.0 {
            return bad(format!(
                "rms_norm_eps must be > 0, got {}",
                self.rms_norm_eps
            ));
        }
        Ok(())
    }

    /// The HF `config.json` for this model, for saving checkpoints that transformers loads.
    ///
    /// `num_labels = Some(n)` writes a `*ForSequenceClassification` config.
    pub fn to_hf_json(&self, num_labels: Option<usize>) -> serde_json::Value {
        use serde_json::json;
        let arch = match num_labels {
            Some(_) => self.family.seq_cls_class(),
            None => self.family.causal_lm_class(),
        };
        let mut rope = serde_json::Map::new();
        rope.insert("rope_theta".into(), json!(self.rope.theta));
        match self.rope.scaling {
            RopeScaling::Default => {
                rope.insert("rope_type".into(), json!("default"));
            }
            RopeScaling::Linear { factor } => {
                rope.insert("rope_type".into(), json!("linear"));
                rope.insert("factor".into(), json!(factor));
            }
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            } => {
                rope.insert("rope_type".into(), json!("llama3"));
                rope.insert("factor".into(), json!(factor));
                rope.insert("low_freq_factor".into(), json!(low_freq_factor));
                rope.insert("high_freq_factor".into(), json!(high_freq_factor));
                rope.insert(
                    "original_max_position_embeddings".into(),
                    json!(original_max_position_embeddings),
                );
            }
        }
        if self.rope.rotary_dim != self.head_dim {
            rope.insert(
                "partial_rotary_factor".into(),
                json!(self.rope.rotary_dim as f64 / self.head_dim as f64),
            );
        }
        let mut v = json!({
            "architectures": [arch],
            "model_type": self.family.model_type(),
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "num_key_value_heads": self.num_kv_heads,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "rms_norm_eps": self.rms_norm_eps,
            "rope_parameters": serde_json::Value::Object(rope.clone()),
            "rope_theta": self.rope.theta,
            "tie_word_embeddings": self.tie_word_embeddings,
            "max_position_embeddings": self.max_position_embeddings,
            "pad_token_id": self.pad_token_id,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": if self.eos_token_ids.len() == 1 { json!(self.eos_token_ids[0]) } else { json!(self.eos_token_ids) },
            "dtype": "float32",
        });
        let obj = v.as_object_mut().expect("object literal");
        if self.rope.scaling != RopeScaling::Default {
            obj.insert("rope_scaling".into(), serde_json::Value::Object(rope));
        }
        match self.family {
            Family::Llama => {
                obj.insert("attention_bias".into(), json!(self.qkv_bias));
                obj.insert("mlp_bias".into(), json!(self.mlp_bias));
            }
            Family::Glm | Family::Glm4 => {
                obj.insert("attention_bias".into(), json!(self.qkv_bias));
                obj.insert(
                    "partial_rotary_factor".into(),
                    json!(self.rope.rotary_dim as f64 / self.head_dim as f64),
                );
            }
            Family::Qwen2 => {
                obj.insert("use_sliding_window".into(), json!(false));
            }
        }
        if let Some(n) = num_labels {
            obj.insert("num_labels".into(), json!(n));
            let id2label: serde_json::Map<String, serde_json::Value> = (0..n)
                .map(|i| (i.to_string(), json!(format!("LABEL_{i}"))))
                .collect();
            let label2id: serde_json::Map<String, serde_json::Value> =
                (0..n).map(|i| (format!("LABEL_{i}"), json!(i))).collect();
            obj.insert("id2label".into(), serde_json::Value::Object(id2label));
            obj.insert("label2id".into(), serde_json::Value::Object(label2id));
        }
        v
    }

    /// A small Llama-family config for tests and benchmarks.
    pub fn tiny_llama(vocab_size: usize) -> Self {
        ModelConfig {
            family: Family::Llama,
            vocab_size,
            hidden_size: 64,
            intermediate_size: 128,
            num_layers: 2,
            num_heads: 4,
            num_kv_heads: 2,
            head_dim: 16,
            rms_norm_eps: 1e-6,
            rope: RopeConfig {
                theta: 10_000.0,
                rotary_dim: 16,
                style: RopeStyle::Half,
                scaling: RopeScaling::Default,
            },
            qkv_bias: false,
            o_bias: false,
            mlp_bias: false,
            post_sublayer_norms: false,
            tie_word_embeddings: false,
            max_position_embeddings: 512,
            pad_token_id: Some(0),
            bos_token_id: Some(1),
            eos_token_ids: vec![2],
        }
    }

    /// The "tiny-bench" Llama config of the benchmarks: vocab 8192, hidden 256, 4 layers,
    /// 4 heads, 4 KV heads, intermediate 688.
    pub fn tiny_bench() -> Self {
        ModelConfig {
            hidden_size: 256,
            intermediate_size: 688,
            num_layers: 4,
            num_heads: 4,
            num_kv_heads: 4,
            head_dim: 64,
            rope: RopeConfig {
                theta: 10_000.0,
                rotary_dim: 64,
                style: RopeStyle::Half,
                scaling: RopeScaling::Default,
            },
            max_position_embeddings: 1024,
            ..ModelConfig::tiny_llama(8192)
        }
    }

    /// Parameters that take part in a matrix product per token: the layers' projections and
    /// MLP (not norms or biases) and, with `lm_head`, the `[vocab, hidden]` output projection
    /// (tied or not: the product happens either way). The embedding lookup is not a product.
    pub fn matmul_params(&self, lm_head: bool) -> usize {
        let d = self.hidden_size;
        let q = self.num_heads * self.head_dim;
        let kv = self.num_kv_heads * self.head_dim;
        let layer = d * (q + 2 * kv) + q * d + 3 * d * self.intermediate_size;
        layer * self.num_layers + if lm_head { self.vocab_size * d } else { 0 }
    }

    /// Forward FLOPs per token of a sequence of `seq` tokens, the usual counting rule
    /// (Kaplan et al. 2020; PaLM's MFU): `2·N` for the matrix products (`N` =
    /// [`ModelConfig::matmul_params`]) plus `4·L·seq·(heads·head_dim)` for attention (`QKᵀ` and
    /// `AV` over the full square, causal masking not discounted). A training step costs three
    /// times this per token (`6·N + 12·L·seq·heads·head_dim`).
    pub fn forward_flops_per_token(&self, seq: usize, lm_head: bool) -> f64 {
        let attn = 4.0 * (self.num_layers * seq * self.num_heads * self.head_dim) as f64;
        2.0 * self.matmul_params(lm_head) as f64 + attn
    }

    /// Parameters of a scalar (reward/value) model built from this config: the causal LM's
    /// without a separate LM head, plus the `[hidden, 1]` score head.
    pub fn scalar_num_params(&self) -> usize {
        let lm_head = if self.tie_word_embeddings {
            0
        } else {
            self.vocab_size * self.hidden_size
        };
        self.num_params() - lm_head + self.hidden_size
    }

    /// Number of parameters of a causal LM built from this config.
    pub fn num_params(&self) -> usize {
        let d = self.hidden_size;
        let q = self.num_heads * self.head_dim;
        let kv = self.num_kv_heads * self.head_dim;
        let attn = d * (q + 2 * kv) + q * d + if self.qkv_bias { q + 2 * kv } else { 0 };
        let mlp = 3 * d * self.intermediate_size;
        let norms = d * if self.post_sublayer_norms { 4 } else { 2 };
        let layer = attn + mlp + norms;
        let emb = self.vocab_size * d;
        emb + layer * self.num_layers + d + if self.tie_word_embeddings { 0 } else { emb }
    }
}

#[cfg(test)]
mod flop_tests {
    use super::*;

    #[test]
    fn flops_per_token_of_tiny_bench_worked_by_hand() {
        // tiny-bench: vocab 8192, hidden 256, 4 layers, 4 heads × 64, 4 KV heads, MLP 688.
        // Per layer: q,k,v 256·(256+256+256) = 196,608; o 256·256 = 65,536;
        // gate, up, down 3·256·688 = 528,384; together 790,528; × 4 layers = 3,162,112.
        // LM head 8192·256 = 2,097,152 → N = 5,259,264.
        let c = ModelConfig::tiny_bench();
        assert_eq!(c.matmul_params(false), 3_162_112);
        assert_eq!(c.matmul_params(true), 5_259_264);
        // Forward at seq 128: 2·5,259,264 + 4·4·128·256 = 10,518,528 + 524,288.
        assert_eq!(c.forward_flops_per_token(128, true), 11_042_816.0);
        assert_eq!(
            c.forward_flops_per_token(128, false),
            6_324_224.0 + 524_288.0
        );
    }
}
