//! The `compare` stage: the critic-free estimators (`[compare].methods`: GRPO, RLOO,
//! REINFORCE++, ReMax) trained beside the `ppo` and `ppo_noref` stages, from the same SFT
//! model, reward model, prompts, NTP data, learning rate and iterations, and the report's
//! comparison table and plots.
//!
//! Every method samples the same number of responses per iteration: the group estimators
//! (GRPO, RLOO) take `[ppo].batch_prompts / [compare].num_generations` prompts with
//! `num_generations` responses each, the others `batch_prompts` prompts with one. None uses the
//! reference reward (the group and greedy baselines replace it; REINFORCE++ runs as OpenRLHF
//! ships it). The held-out evaluation (the `eval` stage) answers with every method's policy,
//! so the table's gold-judge column is the same test as PPO's.
//!
//! Writes `compare/summary.json` ([`CompareRow`] per method, PPO's two included) and each run
//! in `compare/<method>/` with a `result.json` once finished (a rerun skips it).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use rlhf_alignbench_eval::{HeldOutSummary, fmt3 as f};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Ctx, s};

/// The methods `[compare].methods` may name: (config name, label in the report and the
/// evaluation).
pub(crate) const METHODS: [(&str, &str); 4] = [
    ("grpo", "GRPO"),
    ("rloo", "RLOO"),
    ("reinforce_pp", "REINFORCE++"),
    ("remax", "ReMax"),
];

/// Iterations averaged for the "first" and "last" values of a curve.
const WINDOW: usize = 5;

/// The label of a compare method (`None` for an unknown name).
pub(crate) fn label(method: &str) -> Option<&'static str> {
    METHODS.iter().find(|(m, _)| *m == method).map(|(_, l)| *l)
}

/// One method's row of the comparison (everything but the gold-judge test, which the report
/// takes from the evaluation).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct CompareRow {
    /// Label (`PPO`, `PPO-noref`, `GRPO`, …): the evaluation's model name.
    pub label: String,
    /// Run directory (relative to the run).
    pub run_dir: String,
    /// Responses per prompt.
    pub num_generations: usize,
    /// Mean RM score of the policy's replies over the first and the last `WINDOW` iterations.
    pub score_first: Option<f64>,
    pub score_last: Option<f64>,
    /// Mean KL to the SFT model (nats per response) over the last `WINDOW` iterations.
    pub kl_last: Option<f64>,
    /// Mean share of prompts whose responses all scored the same (k ≥ 2).
    pub frac_reward_zero_std: Option<f64>,
    /// Wall time of the training run, seconds (PPO's include its reference-reward cache).
    pub seconds: Option<f64>,
    /// Peak resident memory of the training process (VmHWM), MiB.
    pub peak_rss_mib: Option<f64>,
    /// The memory plan's peak, MiB.
    pub plan_mib: Option<f64>,
}

/// `compare/summary.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct CompareSummary {
    /// PPO iterations of every run.
    pub steps: usize,
    /// Responses sampled per iteration by every method.
    pub responses_per_iteration: usize,
    /// PPO (with and without the reference reward) first, then `[compare].methods`.
    pub rows: Vec<CompareRow>,
}

fn metrics(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn window_mean(rows: &[Value], key: &str, last: bool) -> Option<f64> {
    let v: Vec<f64> = rows
        .iter()
        .filter_map(|r| r.get(key)?.as_f64())
        .filter(|x| x.is_finite())
        .collect();
    let w = v.len().min(WINDOW);
    let part = if last { &v[v.len() - w..] } else { &v[..w] };
    rlhf_util::stats::mean(part)
}

/// A row from a finished PPO run directory and its `train-ppo` result.
fn row(
    label: &str,
    run_dir: &Path,
    rel: &str,
    k: usize,
    result: &Value,
    secs: Option<f64>,
) -> CompareRow {
    let m = metrics(run_dir);
    let zero: Vec<f64> = m
        .iter()
        .filter_map(|r| r.get("frac_reward_zero_std")?.as_f64())
        .collect();
    CompareRow {
        label: label.into(),
        run_dir: rel.into(),
        num_generations: k,
        score_first: window_mean(&m, "objective/scores", false),
        score_last: window_mean(&m, "objective/scores", true),
        kl_last: window_mean(&m, "objective/kl", true),
        frac_reward_zero_std: rlhf_util::stats::mean(&zero),
        seconds: secs,
        peak_rss_mib: result["peak_rss_mib"].as_f64(),
        plan_mib: result["memory_plan_peak_mib"].as_f64(),
    }
}

/// The `[ppo]` table of one method: estimator, group size, prompts per iteration, no
/// reference reward, its own run directory.
fn method_object(
    ctx: &Ctx,
    method: &str,
    k: usize,
    batch_prompts: usize,
) -> anyhow::Result<serde_json::Map<String, Value>> {
    let mut obj = super::ppo_object(ctx, "ppo")?;
    obj.insert("run_dir".into(), json!(s(ctx.dir("compare").join(method))));
    obj.insert("adv_estimator".into(), json!(method));
    obj.insert("num_generations".into(), json!(k));
    obj.insert("batch_prompts".into(), json!(batch_prompts / k));
    obj.insert("whiten_advantages".into(), json!(false));
    if let Value::Object(m) = obj.entry("shaping").or_insert(json!({})) {
        m.insert("reference_baseline".into(), json!(false));
    }
    Ok(obj)
}

/// The group size of `method` under `[compare]`.
fn group(ctx: &Ctx, method: &str) -> usize {
    if matches!(method, "grpo" | "rloo") {
        ctx.cfg.compare.num_generations
    } else {
        1
    }
}

pub(crate) fn run(ctx: &mut Ctx) -> anyhow::Result<Value> {
    let dir = ctx.dir("compare");
    std::fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
    let ppo = super::ppo_object(ctx, "ppo")?;
    let ppo_cfg = crate::ppo::parse_ppo_value(Value::Object(ppo))?.ppo;
    let bp = ppo_cfg.batch_prompts;
    let mut sum = CompareSummary {
        steps: ppo_cfg.total_steps,
        responses_per_iteration: bp,
        rows: Vec::new(),
    };
    for (stage, label) in [("ppo", "PPO"), ("ppo_noref", "PPO-noref")] {
        if let Some(rec) = ctx.state.stages.get(stage) {
            let r = row(
                label,
                &ctx.dir(stage),
                stage,
                1,
                &rec.result,
                Some(rec.seconds),
            );
            sum.rows.push(r);
        }
    }
    for method in ctx.cfg.compare.methods.clone() {
        let lab = label(&method).with_context(|| format!("unknown compare method {method}"))?;
        let k = group(ctx, &method);
        let run_dir = dir.join(&method);
        let done = run_dir.join("result.json");
        let (result, secs) = match std::fs::read_to_string(&done) {
            Ok(t) => {
                let v: Value = serde_json::from_str(&t).with_context(|| s(&done))?;
                (v["result"].clone(), v["seconds"].as_f64())
            }
            Err(_) => {
                let obj = method_object(ctx, &method, k, bp)?;
                let path = dir.join(format!("{method}.json"));
                eprintln!(
                    "  {lab}: {} iterations, {} prompts × {k} responses",
                    sum.steps,
                    bp / k
                );
                let t = Instant::now();
                let result = super::train_ppo(ctx, &path, &obj)?;
                let secs = t.elapsed().as_secs_f64();
                let rec = json!({"result": result, "seconds": secs});
                rlhf_core::io::write_atomic(&done, serde_json::to_string(&rec)?.as_bytes())?;
                (result, Some(secs))
            }
        };
        let rel = format!("compare/{method}");
        sum.rows.push(row(lab, &run_dir, &rel, k, &result, secs));
    }
    let path = dir.join("summary.json");
    rlhf_core::io::write_atomic(&path, serde_json::to_string_pretty(&sum)?.as_bytes())?;
    Ok(json!({"summary": s(&path), "methods": sum.rows.len(), "steps": sum.steps}))
}

/// The comparison's Markdown section and plots (`None` without the stage): one row per
/// method with the gold judge's win/tie/loss against SFT on the held-out prompts and its
/// exact sign test (one-sided, wins > losses), the final KL, the RM-score curve's first and
/// last values, wall time and memory.
pub(crate) fn section(
    rd: &Path,
    eval: Option<&HeldOutSummary>,
) -> Option<(String, Vec<(String, String)>)> {
    let text = std::fs::read_to_string(rd.join("compare/summary.json")).ok()?;
    let sum: CompareSummary = serde_json::from_str(&text).ok()?;
    let mut md = format!(
        "## Beyond the paper: critic-free baselines\n\n\
         {} iterations per method, {} responses per iteration, the same SFT start, reward \
         model, learning rate and NTP term. Gold judge against SFT on the held-out prompts, \
         exact one-sided sign test (ties dropped); score and KL: means over the first / last \
         {WINDOW} iterations. Wall time of PPO includes its reference-reward cache.\n\n\
         | method | k | gold W/T/L vs SFT | wins − losses | sign test p | final KL | RM score first → last | zero-std groups | wall s | peak RSS MiB (plan) |\n\
         |---|---:|---|---:|---:|---:|---|---:|---:|---:|\n",
        sum.steps, sum.responses_per_iteration
    );
    let (mut scores, mut kls) = (Vec::new(), Vec::new());
    for r in &sum.rows {
        let wtl = eval
            .and_then(|e| e.versus_sft.get(&r.label))
            .and_then(|c| c.get("overall"));
        let (cell, diff, p) = match wtl {
            Some(w) => {
                let n = (w.wins + w.ties + w.losses).max(1) as f64;
                let p = rlhf_util::stats::sign_test(w.wins, w.losses).map(|t| t.p_greater);
                (
                    format!("{}/{}/{}", w.wins, w.ties, w.losses),
                    format!(
                        "{:+} ({:+.1} %)",
                        w.wins as i64 - w.losses as i64,
                        100.0 * (w.wins as f64 - w.losses as f64) / n
                    ),
                    p.map_or("–".into(), |p| format!("{p:.3}")),
                )
            }
            None => ("–".into(), "–".into(), "–".into()),
        };
        let mem = match (r.peak_rss_mib, r.plan_mib) {
            (Some(a), Some(b)) => format!("{a:.0} ({b:.0})"),
            (Some(a), None) => format!("{a:.0}"),
            _ => "–".into(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {cell} | {diff} | {p} | {} | {} → {} | {} | {} | {mem} |",
            r.label,
            r.num_generations,
            f(r.kl_last),
            f(r.score_first),
            f(r.score_last),
            f(r.frac_reward_zero_std),
            r.seconds.map_or("–".into(), |s| format!("{s:.0}")),
        );
        let m = metrics(&rd.join(&r.run_dir));
        scores.push((
            r.label.clone(),
            super::report::curve(&m, "step", "objective/scores"),
        ));
        kls.push((
            r.label.clone(),
            super::report::curve(&m, "step", "objective/kl"),
        ));
    }
    md.push('\n');
    let plots = vec![
        (
            "compare_scores".into(),
            super::report::line_svg("RM score of the replies, by method", "score", &scores),
        ),
        (
            "compare_kl".into(),
            super::report::line_svg("KL to the SFT model, by method", "KL", &kls),
        ),
    ];
    Some((md, plots))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_average_the_first_and_last_iterations() {
        let tmp = tempfile::tempdir().unwrap();
        let lines: String = (1..=8)
            .map(|s| {
                format!(
                    "{{\"step\":{s},\"objective/scores\":{},\"objective/kl\":{},\"frac_reward_zero_std\":0.25}}\n",
                    s as f64,
                    s as f64 / 10.0
                )
            })
            .collect();
        std::fs::write(tmp.path().join("metrics.jsonl"), lines).unwrap();
        let r = row(
            "GRPO",
            tmp.path(),
            "compare/grpo",
            4,
            &json!({"peak_rss_mib": 12.5, "memory_plan_peak_mib": 10.0}),
            Some(3.0),
        );
        // First 5 of 1..8: mean 3; last 5 (4..8): mean 6; KL last 5: 0.6.
        assert_eq!(r.score_first, Some(3.0));
        assert_eq!(r.score_last, Some(6.0));
        assert!((r.kl_last.unwrap() - 0.6).abs() < 1e-12);
        assert_eq!(r.frac_reward_zero_std, Some(0.25));
        assert_eq!((r.peak_rss_mib, r.plan_mib), (Some(12.5), Some(10.0)));
        assert_eq!(label("reinforce_pp"), Some("REINFORCE++"));
        assert_eq!(label("ppo"), None);
    }
}
