//! `logprobs`, `generate` and `score`: load a model, read JSON (or preference pairs), print JSON.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use burn::tensor::DType;
use clap::Args;
use rlhf_core::TokenBatch;
use rlhf_core::backend::DeviceSpec;
use rlhf_core::checkpoint::{LoadOptions, load_causal_lm, load_scalar_model};
use rlhf_core::generate::{GenerationConfig, Sampling, generate as run_generate};
use rlhf_core::logprobs::sequence_logprobs;
use rlhf_core::text::TextCodec;
use rlhf_core::tokenizer::{Message, Tokenizer};
use rlhf_reward::{EvalOptions, RewardError, evaluate, read_pairs, write_scores_jsonl};
use serde::Deserialize;

use crate::device::{parse_device, parse_dtype, with_backend};
use crate::reward::with_reward_model;

/// Flags shared by every model command.
#[derive(Debug, Clone, Args)]
pub(crate) struct ModelArgs {
    /// HF checkpoint directory (config.json + model.safetensors or a sharded index).
    #[arg(long)]
    model: PathBuf,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    device: DeviceSpec,
    /// Parameter dtype on the device: f32, bf16 or f16.
    #[arg(long, default_value = "f32", value_parser = parse_dtype)]
    dtype: DType,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdsInput {
    input_ids: Vec<Vec<i64>>,
    #[serde(default)]
    attention_mask: Option<Vec<Vec<i64>>>,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: invalid input JSON", path.display()))
}

/// Reads an ids file and checks it against the model: ids inside the vocabulary, length within
/// the position table.
fn read_batch(path: &Path, cfg: &rlhf_core::ModelConfig) -> anyhow::Result<TokenBatch> {
    let input: IdsInput = read_json(path)?;
    if input.input_ids.is_empty() {
        bail!("{}: input_ids is empty", path.display());
    }
    let batch = TokenBatch::from_ids_and_mask(&input.input_ids, input.attention_mask.as_deref())
        .with_context(|| path.display().to_string())?;
    batch
        .check_vocab(cfg.vocab_size)
        .with_context(|| path.display().to_string())?;
    if batch.seq > cfg.max_position_embeddings {
        bail!(
            "{}: sequence length {} exceeds max_position_embeddings {}",
            path.display(),
            batch.seq,
            cfg.max_position_embeddings
        );
    }
    Ok(batch)
}

fn to_rows(v: Vec<f32>, cols: usize) -> Vec<Vec<f32>> {
    if cols == 0 {
        return Vec::new();
    }
    v.chunks(cols).map(<[f32]>::to_vec).collect()
}

fn print(v: serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(&v)?);
    Ok(())
}

/// `rlhf logprobs`.
#[derive(Debug, Args)]
pub(crate) struct LogprobsArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// JSON file `{"input_ids": [[...]], "attention_mask": [[...]]}` (mask optional).
    #[arg(long)]
    input: PathBuf,
}

pub(crate) fn logprobs(a: LogprobsArgs) -> anyhow::Result<()> {
    let opts = LoadOptions {
        dtype: a.model.dtype,
    };
    with_backend!(a.model.device, |B, dev| {
        let (model, cfg) = load_causal_lm::<B>(&a.model.model, opts, &dev)?;
        let batch = read_batch(&a.input, &cfg)?;
        if batch.seq < 2 {
            bail!("{}: sequences need at least 2 tokens", a.input.display());
        }
        let logits = model.forward(&batch, &dev);
        let lp = sequence_logprobs(
            logits,
            batch.ids_tensor::<B>(&dev),
            batch.mask_tensor::<B>(&dev),
        );
        let per: Vec<f32> = lp
            .per_token
            .into_data()
            .convert::<f32>()
            .into_vec()
            .expect("f32");
        let sums: Vec<f32> = lp
            .sums
            .into_data()
            .convert::<f32>()
            .into_vec()
            .expect("f32");
        print(serde_json::json!({
            "token_logprobs": to_rows(per, batch.seq - 1),
            "sequence_logprob_sum": sums,
        }))
    })
}

/// `rlhf generate`.
#[derive(Debug, Args)]
pub(crate) struct GenerateArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// A text prompt (needs tokenizer.json in the model directory); repeat for a batch.
    #[arg(long, conflicts_with = "prompt_ids")]
    prompt: Vec<String>,
    /// JSON file `{"input_ids": [[...], ...]}` of unpadded prompts of any lengths.
    #[arg(long)]
    prompt_ids: Option<PathBuf>,
    /// Feed `--prompt` text as is instead of as a user turn (through the chat template, or for a
    /// tokenizer without one the plain `User: … Assistant: ` transcript the trainers use).
    #[arg(long)]
    raw: bool,
    /// Upper bound on new tokens per prompt.
    #[arg(long, default_value_t = 64)]
    max_new_tokens: usize,
    /// Greedy decoding (the default unless --temperature is given).
    #[arg(long, conflicts_with_all = ["temperature", "top_p", "top_k"])]
    greedy: bool,
    /// Sampling temperature.
    #[arg(long)]
    temperature: Option<f32>,
    /// Nucleus sampling threshold.
    #[arg(long)]
    top_p: Option<f32>,
    /// Top-k sampling.
    #[arg(long)]
    top_k: Option<usize>,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Do not stop at EOS.
    #[arg(long)]
    no_eos: bool,
}

pub(crate) fn generate(a: GenerateArgs) -> anyhow::Result<()> {
    let opts = LoadOptions {
        dtype: a.model.dtype,
    };
    let tok_path = a.model.model.join("tokenizer.json");
    let tokenizer = if tok_path.exists() {
        Some(Tokenizer::from_dir(&a.model.model)?)
    } else {
        None
    };
    let prompts: Vec<Vec<u32>> = match (&a.prompt_ids, a.prompt.is_empty()) {
        (Some(path), _) => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct P {
                input_ids: Vec<Vec<i64>>,
            }
            let p: P = read_json(path)?;
            if p.input_ids.is_empty() {
                bail!("{}: input_ids is empty", path.display());
            }
            p.input_ids
                .iter()
                .enumerate()
                .map(|(r, row)| {
                    row.iter()
                        .enumerate()
                        .map(|(c, &i)| {
                            u32::try_from(i).map_err(|_| {
                                anyhow::anyhow!(
                                    "{}: input_ids[{r}][{c}] = {i} is not a token id",
                                    path.display()
                                )
                            })
                        })
                        .collect()
                })
                .collect::<anyhow::Result<_>>()?
        }
        (None, false) => {
            let tok = tokenizer.as_ref().with_context(|| {
                format!(
                    "--prompt needs a tokenizer: {} not found",
                    tok_path.display()
                )
            })?;
            a.prompt
                .iter()
                .map(|p| {
                    if a.raw {
                        tok.encode(p, true)
                    } else {
                        // The same prompt ids the trainers and the evaluation build.
                        TextCodec::Tokenizer(tok).encode_prompt(&[Message::user(p.clone())])
                    }
                })
                .collect::<rlhf_core::Result<_>>()?
        }
        (None, true) => bail!("give --prompt TEXT or --prompt-ids FILE.json"),
    };
    let sampling = match a.temperature {
        Some(t) if !a.greedy => Sampling::Sample {
            temperature: t,
            top_k: a.top_k,
            top_p: a.top_p,
        },
        _ if a.top_p.is_some() || a.top_k.is_some() => Sampling::Sample {
            temperature: 1.0,
            top_k: a.top_k,
            top_p: a.top_p,
        },
        _ => Sampling::Greedy,
    };
    with_backend!(a.model.device, |B, dev| {
        let (model, cfg) = load_causal_lm::<B>(&a.model.model, opts, &dev)?;
        let mut eos = if a.no_eos {
            Vec::new()
        } else {
            cfg.eos_token_ids.clone()
        };
        if !a.no_eos
            && let Some(e) = tokenizer.as_ref().and_then(Tokenizer::eos_id)
            && !eos.contains(&e)
        {
            eos.push(e);
        }
        let gen_cfg = GenerationConfig {
            max_new_tokens: a.max_new_tokens,
            sampling,
            seed: a.seed,
            eos_ids: eos,
            pad_id: cfg
                .pad_token_id
                .or(tokenizer.as_ref().and_then(Tokenizer::pad_id))
                .unwrap_or(0),
        };
        let out = run_generate(&model, &prompts, &gen_cfg, &dev)?;
        let mut v = serde_json::json!({
            "new_ids": out.new_ids,
            "logprobs": out.logprobs,
            "finished": out.finished,
        });
        if let Some(tok) = &tokenizer {
            let text: Vec<String> = out
                .new_ids
                .iter()
                .map(|ids| tok.decode(ids, true))
                .collect::<rlhf_core::Result<_>>()?;
            v["text"] = serde_json::json!(text);
        }
        print(v)
    })
}

/// `rlhf score`.
#[derive(Debug, Args)]
pub(crate) struct ScoreArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Either token rows, a JSON file `{"input_ids": [[...]], "attention_mask": [[...]]}`
    /// (mask optional), scored row by row; or preference pairs, an `rlhf data` Parquet file or
    /// JSON lines `{"id", "category", "prompt", "chosen", "rejected"}`, summarised as accuracy
    /// and score statistics.
    #[arg(long)]
    input: PathBuf,
    /// Pairs only: write one JSON line per pair here
    /// (`id, category, chosen, rejected, margin, chosen_len, rejected_len`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Pairs only: tokenizer directory (default: the model's, else byte-level ids).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Pairs only: longest row in tokens (the oldest prompt tokens are dropped first; default:
    /// the model's `max_position_embeddings`).
    #[arg(long)]
    max_length: Option<usize>,
    /// Pairs only: pairs per forward batch.
    #[arg(long, default_value_t = 16)]
    batch_pairs: usize,
}

/// What a `score --input` file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScoreInput {
    /// One JSON object with `input_ids`.
    Rows,
    /// Preference pairs (Parquet or JSON lines).
    Pairs,
}

/// A `.parquet` file holds pairs; otherwise a file that parses as one JSON object with an
/// `input_ids` key holds rows, and anything else is read as pair lines (whose reader then
/// names the file and line of a bad record).
fn score_input_kind(path: &Path) -> anyhow::Result<ScoreInput> {
    if path.extension().is_some_and(|e| e == "parquet") {
        return Ok(ScoreInput::Pairs);
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(v) if v.get("input_ids").is_some() => ScoreInput::Rows,
        _ => ScoreInput::Pairs,
    })
}

pub(crate) fn score(a: ScoreArgs) -> anyhow::Result<()> {
    match score_input_kind(&a.input)? {
        ScoreInput::Pairs => score_pairs(&a),
        ScoreInput::Rows => {
            if let Some(out) = &a.out {
                bail!(
                    "--out {} is for preference-pair input; {} holds token rows",
                    out.display(),
                    a.input.display()
                );
            }
            score_rows(&a)
        }
    }
}

fn score_rows(a: &ScoreArgs) -> anyhow::Result<()> {
    let opts = LoadOptions {
        dtype: a.model.dtype,
    };
    with_backend!(a.model.device, |B, dev| {
        let (model, cfg) = load_scalar_model::<B>(&a.model.model, opts, &dev)?;
        let batch = read_batch(&a.input, &cfg)?;
        let r: Vec<f32> = model
            .rewards(&batch, cfg.pad_token_id, &dev)
            .into_data()
            .convert::<f32>()
            .into_vec()
            .expect("f32");
        print(serde_json::json!({ "rewards": r }))
    })
}

/// Scores preference pairs with the reward crate's evaluation (the same encoding, truncation
/// and pooling as `eval-reward` and training) and prints the overall statistics.
fn score_pairs(a: &ScoreArgs) -> anyhow::Result<()> {
    let pairs = read_pairs(&a.input, None).map_err(|e| match e {
        // The pair reader names the pair but not the file.
        e @ RewardError::BadPair { .. } => anyhow::anyhow!("{}: {e}", a.input.display()),
        e => e.into(),
    })?;
    if pairs.is_empty() {
        bail!("{}: no preference pairs", a.input.display());
    }
    let opts = EvalOptions {
        batch_pairs: a.batch_pairs.max(1),
        ..Default::default()
    };
    let load = LoadOptions {
        dtype: a.model.dtype,
    };
    let ev = with_backend!(a.model.device, |B, dev| {
        with_reward_model::<B, _>(
            &a.model.model,
            a.tokenizer.as_deref(),
            a.max_length,
            load,
            &dev,
            |model, collator| Ok(evaluate(model, collator, &pairs, &opts, &dev)?),
        )
    })?;
    if let Some(out) = &a.out {
        write_scores_jsonl(out, &pairs, &ev.scores)?;
    }
    let o = &ev.report.overall;
    print(serde_json::json!({
        "input": a.input,
        "out": a.out,
        "n": o.n,
        "accuracy": o.accuracy,
        "rewards_chosen": o.rewards_chosen,
        "rewards_rejected": o.rewards_rejected,
        "rewards_margins": o.rewards_margins,
        "score_mean": o.score_mean,
        "score_std": o.score_std,
        "prefers_longer_fraction": o.prefers_longer_fraction,
        "label_longer_fraction": o.label_longer_fraction,
    }))
}
