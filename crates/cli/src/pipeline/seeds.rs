//! The `ppo_seeds` stage: short PPO ablations over `[ablations].seeds`, the data behind the
//! findings about curves, which one run per arm cannot decide.
//!
//! Per seed, three runs of `[ablations].seed_steps` iterations that differ from each other in
//! one setting: `ref` (the `[ppo]` table as is: reference reward and NTP term, at
//! `[ablations].ntp_coef` when set), `noref` (no reference reward) and `nontp` (`ntp_coef = 0`). The SFT demonstrations are split once: every
//! 10th row (at most 200) is held out, the rest is the NTP data of these runs, so the held-out
//! NLL before (the SFT model) and after each run measures forgetting on rows PPO never trained
//! on. Runs with the reference reward share the `ppo` stage's reference cache (its seed is
//! independent of the PPO seed).
//!
//! Writes `ppo_seeds/summary.json` ([`SeedSummary`]); each run lives in
//! `ppo_seeds/s<seed>/<arm>/` with a `result.json` once finished (a rerun skips it).

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Ctx, s};

/// The three arms of every seed: (name, reference reward, NTP term).
const ARMS: [(&str, bool, bool); 3] = [
    ("ref", true, true),
    ("noref", false, true),
    ("nontp", true, false),
];

/// Held out: every this-many-th SFT row.
const HOLD_EVERY: usize = 10;
/// At most this many held-out rows.
const HOLD_MAX: usize = 200;

/// One seed's measurements.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct SeedRow {
    /// The PPO seed.
    pub seed: u64,
    /// Mean RLHF reward of the first logged iteration: with / without the reference reward.
    pub first_reward_ref: Option<f64>,
    pub first_reward_noref: Option<f64>,
    /// Mean KL over the last half of the iterations: with / without the reference reward.
    pub kl_last_half_ref: Option<f64>,
    pub kl_last_half_noref: Option<f64>,
    /// Held-out SFT NLL (nats/token) after PPO: with / without the NTP term.
    pub nll_after_ref: Option<f64>,
    pub nll_after_nontp: Option<f64>,
}

/// `ppo_seeds/summary.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct SeedSummary {
    /// PPO iterations per run.
    pub steps: usize,
    /// Held-out SFT rows.
    pub heldout_rows: usize,
    /// Held-out SFT NLL of the SFT model (before PPO).
    pub nll_before: Option<f64>,
    /// One row per seed, in config order.
    pub seeds: Vec<SeedRow>,
}

/// Splits `sft.jsonl` into the NTP data and the held-out rows; returns their paths.
fn split_sft(src: &Path, dir: &Path) -> anyhow::Result<(PathBuf, PathBuf, usize)> {
    let text = std::fs::read_to_string(src).with_context(|| format!("{}", src.display()))?;
    let (mut ntp, mut held, mut n_held) = (String::new(), String::new(), 0);
    for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let out = if i % HOLD_EVERY == 0 && n_held < HOLD_MAX {
            n_held += 1;
            &mut held
        } else {
            &mut ntp
        };
        out.push_str(line);
        out.push('\n');
    }
    let (a, b) = (dir.join("sft_ntp.jsonl"), dir.join("sft_heldout.jsonl"));
    rlhf_core::io::write_atomic(&a, ntp.as_bytes())?;
    rlhf_core::io::write_atomic(&b, held.as_bytes())?;
    Ok((a, b, n_held))
}

/// `(step, value)` of every metrics line of `dir` holding `key`.
fn series(dir: &Path, key: &str) -> Vec<(f64, f64)> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|r| Some((r.get("step")?.as_f64()?, r.get(key)?.as_f64()?)))
        .filter(|(_, v)| v.is_finite())
        .collect()
}

/// The first logged value of `key`.
pub(crate) fn first(dir: &Path, key: &str) -> Option<f64> {
    series(dir, key).first().map(|p| p.1)
}

/// Mean of `key` over the iterations after the first half of `steps`.
pub(crate) fn last_half_mean(dir: &Path, key: &str, steps: usize) -> Option<f64> {
    let half = steps as f64 / 2.0;
    let v: Vec<f64> = series(dir, key)
        .into_iter()
        .filter(|(s, _)| *s > half)
        .map(|p| p.1)
        .collect();
    rlhf_util::stats::mean(&v)
}

fn eval_nll(ctx: &Ctx, model: &Path, data: &Path) -> anyhow::Result<Option<f64>> {
    let v = ctx.rlhf(&[
        "eval-sft".into(),
        "--model".into(),
        s(model),
        "--data".into(),
        s(data),
        "--max-length".into(),
        ctx.cfg.sft.max_length.to_string(),
        "--device".into(),
        ctx.cfg.run.device.clone(),
    ])?;
    Ok(v["nll"].as_f64())
}

/// Runs (or finds finished) one arm of one seed; returns its run directory.
fn arm(
    ctx: &Ctx,
    seed: u64,
    name: &str,
    reference: bool,
    ntp: bool,
    ntp_data: &Path,
) -> anyhow::Result<PathBuf> {
    let run_dir = ctx.dir("ppo_seeds").join(format!("s{seed}")).join(name);
    if run_dir.join("result.json").is_file() {
        return Ok(run_dir);
    }
    let mut obj = super::ppo_object(ctx, "ppo")?;
    let steps = ctx.cfg.ablations.seed_steps;
    obj.insert("run_dir".into(), json!(s(&run_dir)));
    obj.insert("seed".into(), json!(seed));
    obj.insert("total_steps".into(), json!(steps));
    obj.insert("sft_data".into(), json!(s(ntp_data)));
    let shared = s(ctx.dir("ppo").join("reference_rewards.parquet"));
    if let Value::Object(r) = obj.entry("reference").or_insert(json!({})) {
        r.entry("cache").or_insert(json!(shared));
    }
    if !reference && let Value::Object(m) = obj.entry("shaping").or_insert(json!({})) {
        m.insert("reference_baseline".into(), json!(false));
    }
    if !ntp {
        obj.insert("ntp_coef".into(), json!(0.0));
    } else if let Some(c) = ctx.cfg.ablations.ntp_coef {
        obj.insert("ntp_coef".into(), json!(c));
    }
    let path = ctx.dir("ppo_seeds").join(format!("s{seed}_{name}.json"));
    eprintln!("  seed {seed}, {name}: {steps} PPO iterations");
    let result = super::train_ppo(ctx, &path, &obj)?;
    rlhf_core::io::write_atomic(
        &run_dir.join("result.json"),
        serde_json::to_string(&result)?.as_bytes(),
    )?;
    Ok(run_dir)
}

pub(crate) fn run(ctx: &mut Ctx) -> anyhow::Result<Value> {
    let dir = ctx.dir("ppo_seeds");
    std::fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
    let (ntp_data, heldout, heldout_rows) = split_sft(&ctx.dir("data").join("sft.jsonl"), &dir)?;
    let steps = ctx.cfg.ablations.seed_steps;
    let mut sum = SeedSummary {
        steps,
        heldout_rows,
        nll_before: eval_nll(ctx, &ctx.sft_model(), &heldout)?,
        seeds: Vec::new(),
    };
    for &seed in &ctx.cfg.ablations.seeds.clone() {
        let mut row = SeedRow {
            seed,
            ..SeedRow::default()
        };
        for (name, reference, ntp) in ARMS {
            let rd = arm(ctx, seed, name, reference, ntp, &ntp_data)?;
            let reward = first(&rd, "objective/rlhf_reward");
            let kl = last_half_mean(&rd, "objective/kl", steps);
            match name {
                "ref" => {
                    row.first_reward_ref = reward;
                    row.kl_last_half_ref = kl;
                    row.nll_after_ref = eval_nll(ctx, &rd.join("final"), &heldout)?;
                }
                "noref" => {
                    row.first_reward_noref = reward;
                    row.kl_last_half_noref = kl;
                }
                _ => row.nll_after_nontp = eval_nll(ctx, &rd.join("final"), &heldout)?,
            }
        }
        sum.seeds.push(row);
    }
    let path = dir.join("summary.json");
    rlhf_core::io::write_atomic(&path, serde_json::to_string_pretty(&sum)?.as_bytes())?;
    Ok(json!({"summary": s(&path), "seeds": sum.seeds.len(), "steps": steps}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_out_rows_and_curve_summaries() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("sft.jsonl");
        let rows: String = (0..25).map(|i| format!("{{\"i\":{i}}}\n")).collect();
        std::fs::write(&src, rows).unwrap();
        let (ntp, held, n) = split_sft(&src, tmp.path()).unwrap();
        assert_eq!(n, 3);
        let held = std::fs::read_to_string(held).unwrap();
        assert_eq!(held, "{\"i\":0}\n{\"i\":10}\n{\"i\":20}\n");
        assert_eq!(std::fs::read_to_string(ntp).unwrap().lines().count(), 22);
        let metrics: String = (1..=6)
            .map(|s| format!("{{\"step\":{s},\"objective/kl\":{}}}\n", s as f64 / 10.0))
            .collect();
        std::fs::write(tmp.path().join("metrics.jsonl"), metrics).unwrap();
        assert_eq!(first(tmp.path(), "objective/kl"), Some(0.1));
        // Steps 4, 5, 6 of 6.
        let m = last_half_mean(tmp.path(), "objective/kl", 6).unwrap();
        assert!((m - 0.5).abs() < 1e-12, "{m}");
        assert_eq!(first(tmp.path(), "missing"), None);
        assert_eq!(
            last_half_mean(&tmp.path().join("none"), "objective/kl", 6),
            None
        );
    }
}
