//! Loading and saving models in the HuggingFace layout.
//!
//! # Key map (HF name → our module field)
//!
//! | HF tensor (`[out, in]` for Linear) | ours (`[in, out]`) |
//! |---|---|
//! | `model.embed_tokens.weight` | `trunk.embed.weight` (not transposed) |
//! | `model.layers.{i}.self_attn.{q,k,v}_proj.weight` (+`.bias`) | `layers[i].attn.qkv` (concatenated q‖k‖v) |
//! | `model.layers.{i}.self_attn.o_proj.weight` (+`.bias`) | `layers[i].attn.o` |
//! | `model.layers.{i}.mlp.gate_proj.weight`, `up_proj.weight` | `layers[i].mlp.gate_up` (gate‖up) |
//! | `model.layers.{i}.mlp.gate_up_proj.weight` (GLM) | `layers[i].mlp.gate_up` |
//! | `model.layers.{i}.mlp.down_proj.weight` | `layers[i].mlp.down` |
//! | `model.layers.{i}.input_layernorm.weight` | `layers[i].input_norm.gamma` |
//! | `model.layers.{i}.post_attention_layernorm.weight` | `layers[i].mlp_norm.gamma` |
//! | `model.layers.{i}.post_self_attn_layernorm.weight` (GLM-4-0414) | `layers[i].post_attn_out_norm.gamma` |
//! | `model.layers.{i}.post_mlp_layernorm.weight` (GLM-4-0414) | `layers[i].post_mlp_out_norm.gamma` |
//! | `model.norm.weight` | `trunk.norm.gamma` |
//! | `lm_head.weight` (absent when tied) | `lm_head` |
//! | `score.weight` (`[1, hidden]`) | `score` |
//!
//! Saving writes the same names back (split again), so transformers and vLLM load the result.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::path::Path;

use burn::module::Param;
use burn::nn::Embedding;
use burn::prelude::*;
use burn::tensor::DType;

use super::safetensors_io::{SaveDtype, TensorFiles, write_safetensors};
use crate::config::{Family, HfConfig, ModelConfig};
use crate::error::{CoreError, Result};
use crate::model::{
    Attention, CausalLm, DecoderLayer, Mlp, RopeTables, ScalarModel, Trunk, linear_from, rms_from,
};

/// Options for loading weights.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    /// dtype of the parameters on the device (F32 on CPU; BF16 is the usual choice on CUDA).
    pub dtype: DType,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { dtype: DType::F32 }
    }
}

struct Loader<'a, B: Backend> {
    files: &'a TensorFiles,
    device: &'a B::Device,
    dtype: DType,
    /// The names read so far.
    used: RefCell<HashSet<String>>,
}

/// How many unused tensor names an error lists.
const UNUSED_LISTED: usize = 5;

impl<'a, B: Backend> Loader<'a, B> {
    fn new(files: &'a TensorFiles, opts: LoadOptions, device: &'a B::Device) -> Self {
        Loader {
            files,
            device,
            dtype: opts.dtype,
            used: RefCell::new(HashSet::new()),
        }
    }

    fn vec(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let v = self.files.read_f32(name, shape)?;
        self.used.borrow_mut().insert(name.to_string());
        Ok(v)
    }

    /// Refuses tensors of the checkpoint that were not read and are not `ignorable` (heads of
    /// the other model class, a tied head saved anyway) or HF's rotary `inv_freq` buffers: a
    /// checkpoint with more layers than its config.json, or one of another layout, must not load
    /// half-used. Ignored names are logged.
    fn check_all_used(&self, dir: &Path, ignorable: &[&str]) -> Result<()> {
        let used = self.used.borrow();
        let (ignored, unused): (Vec<String>, Vec<String>) = self
            .files
            .names()
            .into_iter()
            .filter(|n| !used.contains(n))
            .partition(|n| ignorable.contains(&n.as_str()) || n.ends_with(".rotary_emb.inv_freq"));
        if !ignored.is_empty() {
            tracing::info!(
                dir = %dir.display(),
                ?ignored,
                "checkpoint tensors not used by this model class"
            );
        }
        if unused.is_empty() {
            return Ok(());
        }
        Err(CoreError::UnusedTensors {
            path: dir.to_path_buf(),
            count: unused.len(),
            names: unused.into_iter().take(UNUSED_LISTED).collect(),
        })
    }

    fn t1(&self, name: &str, n: usize) -> Result<Tensor<B, 1>> {
        let v = self.vec(name, &[n])?;
        Ok(Tensor::<B, 1>::from_data(TensorData::new(v, [n]), self.device).cast(self.dtype))
    }

    /// Concatenates HF Linear weights (each `[out_i, in]`) along `out` and transposes to burn's
    /// `[in, sum out_i]`.
    fn linear_cat(&self, names: &[(&str, usize)], d_in: usize) -> Result<Tensor<B, 2>> {
        let mut parts = Vec::with_capacity(names.len());
        for (name, out) in names {
            let v = self.vec(name, &[*out, d_in])?;
            parts.push(Tensor::<B, 2>::from_data(
                TensorData::new(v, [*out, d_in]),
                self.device,
            ));
        }
        let w = if parts.len() == 1 {
            parts.pop().expect("one part")
        } else {
            Tensor::cat(parts, 0)
        };
        Ok(w.transpose().cast(self.dtype))
    }

    fn bias_cat(&self, names: &[(&str, usize)]) -> Result<Tensor<B, 1>> {
        let mut v = Vec::new();
        for (name, n) in names {
            v.extend(self.vec(name, &[*n])?);
        }
        let n = v.len();
        Ok(Tensor::<B, 1>::from_data(TensorData::new(v, [n]), self.device).cast(self.dtype))
    }
}

fn load_trunk<B: Backend>(cfg: &ModelConfig, l: &Loader<'_, B>) -> Result<Trunk<B>> {
    let (opts, device) = (LoadOptions { dtype: l.dtype }, l.device);
    let h = cfg.hidden_size;
    let (q, kv) = (
        cfg.num_heads * cfg.head_dim,
        cfg.num_kv_heads * cfg.head_dim,
    );
    let inter = cfg.intermediate_size;
    let eps = cfg.rms_norm_eps;
    let embed_v = l.vec("model.embed_tokens.weight", &[cfg.vocab_size, h])?;
    let embed = Embedding {
        weight: Param::from_tensor(
            Tensor::<B, 2>::from_data(TensorData::new(embed_v, [cfg.vocab_size, h]), device)
                .cast(opts.dtype),
        ),
    };
    let mut layers = Vec::with_capacity(cfg.num_layers);
    for i in 0..cfg.num_layers {
        let p = format!("model.layers.{i}");
        let qn = format!("{p}.self_attn.q_proj.weight");
        let kn = format!("{p}.self_attn.k_proj.weight");
        let vn = format!("{p}.self_attn.v_proj.weight");
        let qkv_w = l.linear_cat(&[(&qn, q), (&kn, kv), (&vn, kv)], h)?;
        let qkv_b = if cfg.qkv_bias {
            Some(l.bias_cat(&[
                (&format!("{p}.self_attn.q_proj.bias"), q),
                (&format!("{p}.self_attn.k_proj.bias"), kv),
                (&format!("{p}.self_attn.v_proj.bias"), kv),
            ])?)
        } else {
            None
        };
        let o_w = l.linear_cat(&[(&format!("{p}.self_attn.o_proj.weight"), h)], q)?;
        let o_b = if cfg.o_bias {
            Some(l.t1(&format!("{p}.self_attn.o_proj.bias"), h)?)
        } else {
            None
        };
        let gate_up_w = if matches!(cfg.family, Family::Glm | Family::Glm4) {
            l.linear_cat(&[(&format!("{p}.mlp.gate_up_proj.weight"), 2 * inter)], h)?
        } else {
            l.linear_cat(
                &[
                    (&format!("{p}.mlp.gate_proj.weight"), inter),
                    (&format!("{p}.mlp.up_proj.weight"), inter),
                ],
                h,
            )?
        };
        let (gate_up_b, down_b) = if cfg.mlp_bias {
            (
                Some(l.bias_cat(&[
                    (&format!("{p}.mlp.gate_proj.bias"), inter),
                    (&format!("{p}.mlp.up_proj.bias"), inter),
                ])?),
                Some(l.t1(&format!("{p}.mlp.down_proj.bias"), h)?),
            )
        } else {
            (None, None)
        };
        let down_w = l.linear_cat(&[(&format!("{p}.mlp.down_proj.weight"), h)], inter)?;
        let norm = |name: &str| -> Result<_> {
            Ok(rms_from(l.t1(&format!("{p}.{name}.weight"), h)?, eps))
        };
        let (post_attn, post_mlp) = if cfg.post_sublayer_norms {
            (
                Some(norm("post_self_attn_layernorm")?),
                Some(norm("post_mlp_layernorm")?),
            )
        } else {
            (None, None)
        };
        layers.push(DecoderLayer {
            input_norm: norm("input_layernorm")?,
            attn: Attention {
                qkv: linear_from(qkv_w, qkv_b),
                o: linear_from(o_w, o_b),
                num_heads: cfg.num_heads,
                qkv_lora: None,
                o_lora: None,
                num_kv_heads: cfg.num_kv_heads,
                head_dim: cfg.head_dim,
            },
            post_attn_out_norm: post_attn,
            mlp_norm: norm("post_attention_layernorm")?,
            mlp: Mlp {
                gate_up: linear_from(gate_up_w, gate_up_b),
                down: linear_from(down_w, down_b),
                intermediate: inter,
                gate_up_lora: None,
                down_lora: None,
            },
            post_mlp_out_norm: post_mlp,
        });
    }
    Ok(Trunk {
        embed,
        layers,
        norm: rms_from(l.t1("model.norm.weight", h)?, eps),
        rope: RopeTables::new(&cfg.rope, cfg.max_position_embeddings, opts.dtype, device),
    })
}

/// Reads `dir/config.json` and returns both views of it.
///
/// # Errors
/// See [`HfConfig::from_file`].
pub fn read_config(dir: &Path) -> Result<(HfConfig, ModelConfig)> {
    let path = dir.join("config.json");
    let hf = HfConfig::from_file(&path)?;
    let cfg = hf.to_model_config(&path)?;
    Ok((hf, cfg))
}

/// Loads a causal LM (`*ForCausalLM`) from an HF checkpoint directory.
///
/// A tied checkpoint (`tie_word_embeddings`, or no `lm_head.weight` in the files) reuses the
/// embedding as the head. A `score.weight` (a reward model's head, when its trunk starts a
/// policy or critic), or an `lm_head.weight` of a tied model, is ignored.
///
/// # Errors
/// Config errors, missing or mis-shaped tensors named with both shapes, and
/// [`CoreError::UnusedTensors`] when the files hold tensors the model does not use (more
/// layers than config.json says, biases it does not expect, another layout).
pub fn load_causal_lm<B: Backend>(
    dir: &Path,
    opts: LoadOptions,
    device: &B::Device,
) -> Result<(CausalLm<B>, ModelConfig)> {
    let (_, mut cfg) = read_config(dir)?;
    let files = TensorFiles::open(dir)?;
    if !cfg.tie_word_embeddings && !files.contains("lm_head.weight") {
        tracing::warn!(dir = %dir.display(), "no lm_head.weight: tying the head to the embedding");
        cfg.tie_word_embeddings = true;
    }
    let l = Loader::<B>::new(&files, opts, device);
    let trunk = load_trunk(&cfg, &l)?;
    let lm_head = if cfg.tie_word_embeddings {
        None
    } else {
        Some(linear_from(
            l.linear_cat(&[("lm_head.weight", cfg.vocab_size)], cfg.hidden_size)?,
            None,
        ))
    };
    l.check_all_used(dir, &["lm_head.weight", "score.weight", "score.bias"])?;
    Ok((CausalLm { trunk, lm_head }, cfg))
}

/// Loads a scalar model (`*ForSequenceClassification` with one label) from an HF checkpoint.
///
/// An `lm_head.weight` in the files is ignored.
///
/// # Errors
/// Config errors; [`CoreError::UnsupportedModel`] when `num_labels != 1`; missing tensors;
/// [`CoreError::UnusedTensors`] as for [`load_causal_lm`].
pub fn load_scalar_model<B: Backend>(
    dir: &Path,
    opts: LoadOptions,
    device: &B::Device,
) -> Result<(ScalarModel<B>, ModelConfig)> {
    let (hf, cfg) = read_config(dir)?;
    let files = TensorFiles::open(dir)?;
    if files.contains("score.weight") {
        let labels = files.shape("score.weight").map_or(0, |s| s[0]);
        if labels != 1 || (hf.num_labels.is_some() && hf.num_labels() != 1) {
            return Err(CoreError::UnsupportedModel {
                path: dir.join("config.json"),
                message: format!(
                    "a scalar (reward/value) model needs one label, the checkpoint has {labels}"
                ),
            });
        }
    }
    let l = Loader::<B>::new(&files, opts, device);
    let trunk = load_trunk(&cfg, &l)?;
    let score = linear_from(l.linear_cat(&[("score.weight", 1)], cfg.hidden_size)?, None);
    l.check_all_used(dir, &["lm_head.weight"])?;
    Ok((ScalarModel { trunk, score }, cfg))
}

fn to_vec<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.cast(DType::F32)
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("f32 data")
}

/// Splits burn's `[in, out]` weight back into HF `[out_i, in]` blocks.
fn split_linear<B: Backend>(w: Tensor<B, 2>, outs: &[usize]) -> Vec<(Vec<usize>, Vec<f32>)> {
    let [d_in, _] = w.dims();
    let wt = w.transpose();
    let mut start = 0;
    outs.iter()
        .map(|&o| {
            let part = wt.clone().slice([start..start + o, 0..d_in]);
            start += o;
            (vec![o, d_in], to_vec(part))
        })
        .collect()
}

fn split_bias<B: Backend>(b: Tensor<B, 1>, outs: &[usize]) -> Vec<(Vec<usize>, Vec<f32>)> {
    let mut start = 0;
    outs.iter()
        .map(|&o| {
            let part = b.clone().narrow(0, start, o);
            start += o;
            (vec![o], to_vec(part))
        })
        .collect()
}

fn trunk_tensors<B: Backend>(
    cfg: &ModelConfig,
    trunk: &Trunk<B>,
) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    // LoRA adapters are folded into the weights: an HF checkpoint has no place for them.
    let merged;
    let trunk = if trunk.has_lora() {
        merged = trunk.clone().merge_lora();
        &merged
    } else {
        trunk
    };
    let mut out = Vec::new();
    let h = cfg.hidden_size;
    let (q, kv) = (
        cfg.num_heads * cfg.head_dim,
        cfg.num_kv_heads * cfg.head_dim,
    );
    let inter = cfg.intermediate_size;
    out.push((
        "model.embed_tokens.weight".to_string(),
        vec![cfg.vocab_size, h],
        to_vec(trunk.embed.weight.val()),
    ));
    for (i, layer) in trunk.layers.iter().enumerate() {
        let p = format!("model.layers.{i}");
        let names = ["q_proj", "k_proj", "v_proj"];
        for (n, (shape, v)) in names
            .iter()
            .zip(split_linear(layer.attn.qkv.weight.val(), &[q, kv, kv]))
        {
            out.push((format!("{p}.self_attn.{n}.weight"), shape, v));
        }
        if let Some(b) = &layer.attn.qkv.bias {
            for (n, (shape, v)) in names.iter().zip(split_bias(b.val(), &[q, kv, kv])) {
                out.push((format!("{p}.self_attn.{n}.bias"), shape, v));
            }
        }
        let (shape, v) = split_linear(layer.attn.o.weight.val(), &[h]).remove(0);
        out.push((format!("{p}.self_attn.o_proj.weight"), shape, v));
        if let Some(b) = &layer.attn.o.bias {
            out.push((
                format!("{p}.self_attn.o_proj.bias"),
                vec![h],
                to_vec(b.val()),
            ));
        }
        if matches!(cfg.family, Family::Glm | Family::Glm4) {
            let (shape, v) = split_linear(layer.mlp.gate_up.weight.val(), &[2 * inter]).remove(0);
            out.push((format!("{p}.mlp.gate_up_proj.weight"), shape, v));
        } else {
            let parts = split_linear(layer.mlp.gate_up.weight.val(), &[inter, inter]);
            for (n, (shape, v)) in ["gate_proj", "up_proj"].iter().zip(parts) {
                out.push((format!("{p}.mlp.{n}.weight"), shape, v));
            }
            if let Some(b) = &layer.mlp.gate_up.bias {
                for (n, (shape, v)) in ["gate_proj", "up_proj"]
                    .iter()
                    .zip(split_bias(b.val(), &[inter, inter]))
                {
                    out.push((format!("{p}.mlp.{n}.bias"), shape, v));
                }
            }
        }
        let (shape, v) = split_linear(layer.mlp.down.weight.val(), &[h]).remove(0);
        out.push((format!("{p}.mlp.down_proj.weight"), shape, v));
        if let Some(b) = &layer.mlp.down.bias {
            out.push((format!("{p}.mlp.down_proj.bias"), vec![h], to_vec(b.val())));
        }
        let mut norm = |name: &str, n: &burn::nn::RmsNorm<B>| {
            out.push((format!("{p}.{name}.weight"), vec![h], to_vec(n.gamma.val())));
        };
        norm("input_layernorm", &layer.input_norm);
        norm("post_attention_layernorm", &layer.mlp_norm);
        if let Some(n) = &layer.post_attn_out_norm {
            norm("post_self_attn_layernorm", n);
        }
        if let Some(n) = &layer.post_mlp_out_norm {
            norm("post_mlp_layernorm", n);
        }
    }
    out.push((
        "model.norm.weight".to_string(),
        vec![h],
        to_vec(trunk.norm.gamma.val()),
    ));
    out
}

fn write_config(dir: &Path, cfg: &ModelConfig, num_labels: Option<usize>) -> Result<()> {
    let json = serde_json::to_string_pretty(&cfg.to_hf_json(num_labels)).expect("serialisable");
    crate::io::write_atomic(&dir.join("config.json"), json.as_bytes())
}

/// Saves the LoRA adapters of `model` in PEFT's layout: `adapter_model.safetensors` +
/// `adapter_config.json`, loadable with `PeftModel.from_pretrained(base, dir)` on the base
/// checkpoint the adapters were trained on.
///
/// A fused adapter is written as one PEFT adapter per HF projection with the same `lora_A`
/// and its share of `lora_B`'s columns: the same function. GLM's fused `gate_up_proj` keeps
/// one adapter. Weights are written in f32 (`lora_A`: `[r, in]`, `lora_B`: `[out, r]`).
///
/// # Errors
/// [`CoreError::BadInput`] when the model has no adapter; IO errors naming the file.
pub fn save_lora_adapter<B: Backend>(
    trunk: &Trunk<B>,
    cfg: &ModelConfig,
    lora: &crate::LoraConfig,
    dir: &Path,
) -> Result<()> {
    if !trunk.has_lora() {
        return Err(CoreError::BadInput(
            "the model has no LoRA adapter to save".into(),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| CoreError::io(dir, e))?;
    let (q, kv) = (
        cfg.num_heads * cfg.head_dim,
        cfg.num_kv_heads * cfg.head_dim,
    );
    let (h, inter) = (cfg.hidden_size, cfg.intermediate_size);
    let glm = matches!(cfg.family, Family::Glm | Family::Glm4);
    let mut out = Vec::new();
    let mut modules = std::collections::BTreeSet::new();
    for (i, l) in trunk.lora_adapters().layers.iter().enumerate() {
        let p = format!("base_model.model.model.layers.{i}");
        let mut push = |lora: &Option<crate::Lora<B>>, names: &[&str], outs: &[usize]| {
            let Some(lora) = lora else { return };
            let a = lora.a.val().cast(DType::F32);
            let [d_in, r] = a.dims();
            let a_t = to_vec(a.transpose());
            let b = lora.b.val().cast(DType::F32);
            let mut start = 0;
            for (name, &o) in names.iter().zip(outs) {
                let part = b.clone().slice([0..r, start..start + o]).transpose();
                start += o;
                let leaf = name.rsplit('.').next().unwrap_or(name).to_string();
                modules.insert(leaf);
                out.push((
                    format!("{p}.{name}.lora_A.weight"),
                    vec![r, d_in],
                    a_t.clone(),
                ));
                out.push((
                    format!("{p}.{name}.lora_B.weight"),
                    vec![o, r],
                    to_vec(part),
                ));
            }
        };
        push(
            &l.qkv,
            &["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"],
            &[q, kv, kv],
        );
        push(&l.o, &["self_attn.o_proj"], &[h]);
        if glm {
            push(&l.gate_up, &["mlp.gate_up_proj"], &[2 * inter]);
        } else {
            push(
                &l.gate_up,
                &["mlp.gate_proj", "mlp.up_proj"],
                &[inter, inter],
            );
        }
        push(&l.down, &["mlp.down_proj"], &[h]);
    }
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    write_safetensors(
        &dir.join("adapter_model.safetensors"),
        &out,
        SaveDtype::F32,
        Some(meta),
    )?;
    let config = serde_json::json!({
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "r": lora.r,
        "lora_alpha": lora.alpha,
        "lora_dropout": 0.0,
        "bias": "none",
        "fan_in_fan_out": false,
        "inference_mode": true,
        "use_rslora": false,
        "target_modules": modules.into_iter().collect::<Vec<_>>(),
        "base_model_name_or_path": null,
    });
    let json = serde_json::to_string_pretty(&config).expect("serialisable");
    crate::io::write_atomic(&dir.join("adapter_config.json"), json.as_bytes())
}

/// Saves a causal LM in HF layout: `config.json` + `model.safetensors`. LoRA adapters, if any,
/// are merged into the weights.
///
/// # Errors
/// IO errors naming the file.
pub fn save_causal_lm<B: Backend>(
    model: &CausalLm<B>,
    cfg: &ModelConfig,
    dir: &Path,
    dtype: SaveDtype,
) -> Result<()> {
    let mut tensors = trunk_tensors(cfg, &model.trunk);
    if let Some(head) = &model.lm_head {
        let (shape, v) = split_linear(head.weight.val(), &[cfg.vocab_size]).remove(0);
        tensors.push(("lm_head.weight".into(), shape, v));
    }
    let mut cfg = cfg.clone();
    cfg.tie_word_embeddings = model.lm_head.is_none();
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    write_safetensors(&dir.join("model.safetensors"), &tensors, dtype, Some(meta))?;
    write_config(dir, &cfg, None)
}

/// Saves a scalar model in HF `*ForSequenceClassification` layout (LoRA adapters merged).
///
/// # Errors
/// IO errors naming the file.
pub fn save_scalar_model<B: Backend>(
    model: &ScalarModel<B>,
    cfg: &ModelConfig,
    dir: &Path,
    dtype: SaveDtype,
) -> Result<()> {
    let mut tensors = trunk_tensors(cfg, &model.trunk);
    let (shape, v) = split_linear(model.score.weight.val(), &[1]).remove(0);
    tensors.push(("score.weight".into(), shape, v));
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    write_safetensors(&dir.join("model.safetensors"), &tensors, dtype, Some(meta))?;
    write_config(dir, cfg, Some(1))
}
