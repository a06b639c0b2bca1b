//! `rlhf check-parity`: the HF parity tests' inputs run through the binary on any device and
//! dtype, against the outputs transformers wrote into `../shared/fixtures` (`reference.json`
//! of each fixture): token log-probs of the causal LMs, greedy continuations with the KV
//! cache, and the reward model's scores. This is what `scripts/gpu-check.sh` runs on a GPU
//! (f32 and bf16); the CPU test suite runs it too, so the command itself is tested everywhere.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use burn::prelude::*;
use burn::tensor::DType;
use clap::Args;
use rlhf_core::TokenBatch;
use rlhf_core::backend::DeviceSpec;
use rlhf_core::checkpoint::{LoadOptions, load_causal_lm, load_scalar_model};
use rlhf_core::generate::{GenerationConfig, generate};
use rlhf_core::logprobs::sequence_logprobs;
use serde_json::{Value, json};

use crate::device::{parse_device, parse_dtype, with_backend};

/// `rlhf check-parity`.
#[derive(Debug, Args)]
pub(crate) struct CheckParityArgs {
    /// The fixtures directory (`../shared/fixtures`): every sub-directory with a
    /// `reference.json` is checked.
    #[arg(long)]
    fixtures: PathBuf,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    device: DeviceSpec,
    /// f32, bf16 or f16.
    #[arg(long, default_value = "f32", value_parser = parse_dtype)]
    dtype: DType,
    /// Largest accepted |Δ| of a log-prob or score (default: 1e-3 in f32, 0.25 in bf16/f16,
    /// whose 8- or 11-bit mantissas round every product).
    #[arg(long)]
    tol: Option<f64>,
}

/// `[[i64]]` of a reference field.
fn rows(v: &Value, what: &str) -> anyhow::Result<Vec<Vec<i64>>> {
    serde_json::from_value(v.clone()).with_context(|| format!("reference.json: `{what}`"))
}

/// `[[f64]]` (or `[f64]`) of a reference field, flattened.
fn floats(v: &Value, what: &str) -> anyhow::Result<Vec<f64>> {
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<f64>) -> bool {
        match v {
            Value::Array(a) => a.iter().all(|x| walk(x, out)),
            x => x.as_f64().map(|f| out.push(f)).is_some(),
        }
    }
    if walk(v, &mut out) && !out.is_empty() {
        Ok(out)
    } else {
        bail!("reference.json: `{what}` is not an array of numbers")
    }
}

/// The largest |a − b| over the positions where `keep`, or an error naming a length mismatch
/// or a non-finite value (NaN never passes).
pub(crate) fn max_abs_diff(got: &[f64], want: &[f64], keep: &[bool]) -> anyhow::Result<f64> {
    if got.len() != want.len() || keep.len() != want.len() {
        bail!("{} values against {} expected", got.len(), want.len());
    }
    let mut worst = 0.0f64;
    for ((g, w), k) in got.iter().zip(want).zip(keep) {
        if !k {
            continue;
        }
        if !g.is_finite() || !w.is_finite() {
            bail!("non-finite value ({g} against {w})");
        }
        worst = worst.max((g - w).abs());
    }
    Ok(worst)
}

fn check_causal<B: Backend>(
    dir: &Path,
    r: &Value,
    opts: LoadOptions,
    dev: &B::Device,
) -> anyhow::Result<Value> {
    let (model, _) = load_causal_lm::<B>(dir, opts, dev)?;
    let ids = rows(&r["input_ids"], "input_ids")?;
    let mask = rows(&r["attention_mask"], "attention_mask")?;
    let batch = TokenBatch::from_ids_and_mask(&ids, Some(mask.as_slice()))?;
    let lp = sequence_logprobs(
        model.forward(&batch, dev),
        batch.ids_tensor::<B>(dev),
        batch.mask_tensor::<B>(dev),
    );
    let got: Vec<f64> = lp
        .per_token
        .into_data()
        .convert::<f64>()
        .into_vec()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let want = floats(&r["token_logprobs"], "token_logprobs")?;
    let keep: Vec<bool> = floats(&r["token_logprobs_mask"], "token_logprobs_mask")?
        .iter()
        .map(|&m| m > 0.5)
        .collect();
    let logprob_diff = max_abs_diff(&got, &want, &keep)?;
    let g = &r["generation"];
    let prompts: Vec<Vec<u32>> = serde_json::from_value(g["prompt_ids"].clone())
        .context("reference.json: `generation.prompt_ids`")?;
    let expected: Vec<Vec<u32>> = serde_json::from_value(g["new_ids"].clone())
        .context("reference.json: `generation.new_ids`")?;
    let n = expected.first().map_or(0, Vec::len);
    let out = generate(&model, &prompts, &GenerationConfig::greedy(n, 0), dev)?;
    let same = expected
        .iter()
        .zip(&out.new_ids)
        .map(|(w, g)| w.iter().zip(g).take_while(|(a, b)| a == b).count())
        .collect::<Vec<_>>();
    Ok(json!({
        "kind": "causal_lm",
        "logprob_max_abs_diff": logprob_diff,
        "greedy_tokens_equal": out.new_ids == expected,
        "greedy_matching_prefix": same,
        "greedy_new_tokens": n,
    }))
}

fn check_reward<B: Backend>(
    dir: &Path,
    r: &Value,
    opts: LoadOptions,
    dev: &B::Device,
) -> anyhow::Result<Value> {
    let (model, cfg) = load_scalar_model::<B>(dir, opts, dev)?;
    let ids = rows(&r["input_ids"], "input_ids")?;
    let mask = rows(&r["attention_mask"], "attention_mask")?;
    let batch = TokenBatch::from_ids_and_mask(&ids, Some(mask.as_slice()))?;
    let got: Vec<f64> = model
        .rewards(&batch, cfg.pad_token_id, dev)
        .into_data()
        .convert::<f64>()
        .into_vec()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let want = floats(&r["rewards"], "rewards")?;
    let keep = vec![true; want.len()];
    Ok(json!({
        "kind": "reward_model",
        "reward_max_abs_diff": max_abs_diff(&got, &want, &keep)?,
    }))
}

/// Runs every fixture; prints one JSON object and fails when any check fails.
pub(crate) fn check_parity(a: CheckParityArgs) -> anyhow::Result<()> {
    let is_f32 = a.dtype == DType::F32;
    let tol = a.tol.unwrap_or(if is_f32 { 1e-3 } else { 0.25 });
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&a.fixtures)
        .with_context(|| format!("reading {}", a.fixtures.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("reference.json").is_file())
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        bail!(
            "{}: no fixture directory with a reference.json",
            a.fixtures.display()
        );
    }
    let opts = LoadOptions { dtype: a.dtype };
    let mut results = serde_json::Map::new();
    let mut failed = Vec::new();
    for dir in &dirs {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let text = std::fs::read_to_string(dir.join("reference.json"))
            .with_context(|| format!("reading {}/reference.json", dir.display()))?;
        let r: Value = serde_json::from_str(&text)
            .with_context(|| format!("{}/reference.json", dir.display()))?;
        let res = with_backend!(a.device, |B, dev| {
            if r.get("rewards").is_some() {
                check_reward::<B>(dir, &r, opts, &dev)
            } else {
                check_causal::<B>(dir, &r, opts, &dev)
            }
        });
        let mut v = res.unwrap_or_else(|e| json!({"error": format!("{e:#}")}));
        let diff = v["logprob_max_abs_diff"]
            .as_f64()
            .or(v["reward_max_abs_diff"].as_f64());
        // Greedy ids must match exactly in f32; in bf16 rounding may flip a near tie.
        let greedy_ok = !is_f32 || v["greedy_tokens_equal"].as_bool() != Some(false);
        let pass = diff.is_some_and(|d| d <= tol) && greedy_ok;
        v["pass"] = json!(pass);
        if !pass {
            failed.push(name.clone());
        }
        results.insert(name, v);
    }
    let out = json!({
        "device": a.device.to_string(),
        "dtype": format!("{:?}", a.dtype).to_lowercase(),
        "tolerance": tol,
        "fixtures": results,
        "pass": failed.is_empty(),
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    if !failed.is_empty() {
        bail!("parity failed for {}", failed.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_skip_masked_positions_and_refuse_nan_and_length_mismatches() {
        let d = max_abs_diff(&[1.0, 5.0, 2.5], &[1.5, 0.0, 2.0], &[true, false, true]).unwrap();
        assert_eq!(d, 0.5);
        assert!(max_abs_diff(&[f64::NAN], &[0.0], &[true]).is_err());
        assert!(max_abs_diff(&[0.0], &[0.0, 1.0], &[true, true]).is_err());
    }
}
