//! The `report` stage: `report.md` and a self-contained `report.html` (SVG plots inline) from
//! the run directory's artefacts, with each of the paper's findings checked against the
//! measured numbers — reproduced or not, never assumed. This module reads the stages'
//! artefacts; the evaluation's section, the findings table, the plots and the HTML are
//! `rlhf_alignbench_eval`'s (`HeldOutSummary`, `Report`) and `rlhf_util::plot`'s.

use std::fmt::Write as _;
use std::path::Path;

use rlhf_alignbench_eval::{Finding, HeldOutSummary, Report, fmt3 as f, sign_test};
use rlhf_util::plot::{self, Chart, Legend};
use serde_json::{Value, json};

use super::Ctx;

type Series = (String, Vec<(f64, f64)>);

/// Every JSON line of `path` (missing file: none).
fn jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// `(step, value)` of every line holding both `x` and `y`.
fn curve(rows: &[Value], x: &str, y: &str) -> Vec<(f64, f64)> {
    rows.iter()
        .filter_map(|r| Some((r.get(x)?.as_f64()?, r.get(y)?.as_f64()?)))
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .collect()
}

/// `chart` as an SVG string, or a line of HTML saying why it could not be drawn.
fn svg_or_note(chart: &Chart, size: (u32, u32)) -> String {
    chart
        .svg(size)
        .unwrap_or_else(|e| format!("<p><em>{e}</em></p>"))
}

/// A line chart against the step as an SVG string, or a line of HTML saying why there is none.
fn line_svg(title: &str, y_label: &str, series: &[Series]) -> String {
    if series.iter().all(|(_, v)| v.is_empty()) {
        return format!("<p><em>{title}: no data</em></p>");
    }
    let series = series
        .iter()
        .map(|(name, v)| plot::Series::new(name.clone(), v.clone()))
        .collect();
    let chart = Chart::lines(title, "step", y_label, series).legend(Legend::UpperRight);
    svg_or_note(&chart, (560, 320))
}

pub(crate) fn run(ctx: &mut Ctx) -> anyhow::Result<Value> {
    let rd = ctx.run_dir.clone();
    let stage = |n: &str| ctx.state.stages.get(n).map(|r| r.result.clone());
    let secs = |n: &str| ctx.state.stages.get(n).map(|r| r.seconds);
    let summary: Option<HeldOutSummary> = std::fs::read_to_string(rd.join("eval/summary.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let mut md = String::new();
    let mut plots: Vec<(String, String)> = Vec::new();
    let id = rd
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let intro = format!(
        "Config: `config.toml` in this directory (device `{}`, seed {}, start: `{}`).\n",
        ctx.cfg.run.device, ctx.cfg.run.seed, ctx.cfg.model.base
    );

    // Stage times.
    let _ = writeln!(md, "## Stages\n\n| stage | seconds |\n|---|---:|");
    let mut total = 0.0;
    for (name, _) in super::STAGES {
        if let Some(t) = secs(name) {
            total += t;
            let _ = writeln!(md, "| {name} | {t:.1} |");
        }
    }
    let _ = writeln!(md, "| **total** | **{total:.1}** |\n");

    // Data (Table 2).
    if let Some(d) = stage("data") {
        let _ = writeln!(md, "## Preference data (Table 2)\n");
        let stats = std::fs::read_to_string(rd.join("data/stats.md")).unwrap_or_default();
        if stats.is_empty() {
            let _ = writeln!(
                md,
                "```json\n{}\n```\n",
                serde_json::to_string_pretty(&d["import"])?
            );
        } else {
            let _ = writeln!(md, "{stats}\n");
        }
    }

    // SFT.
    let sft_rows = jsonl(&rd.join("sft/metrics.jsonl"));
    if !sft_rows.is_empty() {
        let _ = writeln!(md, "## SFT start point\n");
        if let Some(r) = stage("sft") {
            let _ = write!(md, "{} parameters, {} steps", r["params"], r["step"]);
            if let Some(l) = r["eval_loss"].as_f64() {
                let _ = write!(md, ", held-out NLL {l:.3} nats/token");
            }
            let _ = writeln!(md, ".\n");
        }
        plots.push((
            "sft".into(),
            line_svg(
                "SFT loss",
                "NLL / token",
                &[
                    ("train".into(), curve(&sft_rows, "step", "loss")),
                    ("held-out".into(), curve(&sft_rows, "step", "eval_loss")),
                ],
            ),
        ));
    }

    // Reward model (Table 5).
    let mut findings = Vec::new();
    let rm = stage("rm");
    let rm_u = stage("rm_unbalanced");
    if let Some(rm) = &rm {
        let _ = writeln!(md, "## Reward model (Table 5)\n");
        let _ = writeln!(
            md,
            "| RM | held-out accuracy | score std | prefers longer | labels prefer longer |\n|---|---:|---:|---:|---:|"
        );
        for (name, r) in [
            ("balanced (λ prior)", Some(rm)),
            ("unbalanced", rm_u.as_ref()),
        ] {
            if let Some(r) = r {
                let e = &r["eval"];
                let _ = writeln!(
                    md,
                    "| {name} | {} | {} | {} | {} |",
                    f(e["accuracy"].as_f64()),
                    f(e["score_std"].as_f64()),
                    f(e["prefers_longer_fraction"].as_f64()),
                    f(e["label_longer_fraction"].as_f64())
                );
            }
        }
        let table = std::fs::read_to_string(rd.join("rm/eval/eval.md")).unwrap_or_default();
        let _ = writeln!(md, "\n{table}\n");
        let acc = rm["eval"]["accuracy"].as_f64();
        let n = rm["eval"]["n"].as_u64().unwrap_or(0) as usize;
        let p = acc.map(|a| sign_test((a * n as f64).round() as usize, n));
        findings.push(Finding {
            claim: "The reward model agrees with held-out human (annotator) labels above chance"
                .into(),
            measured: format!(
                "held-out accuracy {} on {n} pairs (one-sided binomial p = {})",
                f(acc),
                f(p)
            ),
            holds: p.map(|p| p < 0.05),
        });
        if let Some((gold, n)) = summary
            .as_ref()
            .and_then(|s| s.rm_gold_agreement.get("rm").copied())
        {
            let p = sign_test((gold * n as f64).round() as usize, n);
            findings.push(Finding {
                claim: "The reward model agrees with the gold judge (held-out pairs the gold judge decides)".into(),
                measured: format!("agreement {gold:.3} on {n} pairs (one-sided binomial p = {p:.3})"),
                holds: Some(p < 0.05),
            });
        }
        let rows = jsonl(&rd.join("rm/metrics.jsonl"));
        let mut series = vec![(
            "balanced".to_string(),
            curve(&rows, "step", "eval_accuracy"),
        )];
        if rm_u.is_some() {
            let rows_u = jsonl(&rd.join("rm_unbalanced/metrics.jsonl"));
            series.push(("unbalanced".into(), curve(&rows_u, "step", "eval_accuracy")));
        }
        plots.push((
            "rm".into(),
            line_svg("RM held-out accuracy", "accuracy", &series),
        ));
        if let Ok(svg) = std::fs::read_to_string(rd.join("rm/eval/scores.svg")) {
            plots.push(("rm_scores".into(), svg));
        }
    }
    if let (Some(b), Some(u)) = (&rm, &rm_u) {
        let pb = b["eval"]["prefers_longer_fraction"].as_f64();
        let pu = u["eval"]["prefers_longer_fraction"].as_f64();
        findings.push(Finding {
            claim: "Length balancing lowers the RM's preference for longer replies".into(),
            measured: format!("prefers longer: balanced {} vs unbalanced {}", f(pb), f(pu)),
            holds: pb.zip(pu).map(|(b, u)| b < u),
        });
    }

    // PPO (Figure 4).
    let ppo = jsonl(&rd.join("ppo/metrics.jsonl"));
    let noref = jsonl(&rd.join("ppo_noref/metrics.jsonl"));
    if !ppo.is_empty() {
        let _ = writeln!(md, "## PPO (Figure 4 in miniature)\n");
        let reward_key = "objective/rlhf_reward";
        let mut rs = vec![(
            "with reference reward".to_string(),
            curve(&ppo, "step", reward_key),
        )];
        let mut ks = vec![(
            "with reference reward".to_string(),
            curve(&ppo, "step", "objective/kl"),
        )];
        let mut ss = vec![(
            "with reference reward".to_string(),
            curve(&ppo, "step", "objective/scores"),
        )];
        if !noref.is_empty() {
            rs.push(("without".into(), curve(&noref, "step", reward_key)));
            ks.push(("without".into(), curve(&noref, "step", "objective/kl")));
            ss.push(("without".into(), curve(&noref, "step", "objective/scores")));
        }
        plots.push((
            "ppo_reward".into(),
            line_svg("PPO reward (RLHF objective)", "reward", &rs),
        ));
        plots.push(("ppo_kl".into(), line_svg("KL to the SFT model", "KL", &ks)));
        plots.push((
            "ppo_scores".into(),
            line_svg("RM score of the policy's replies", "score", &ss),
        ));
        let first = |v: &[(f64, f64)]| v.first().map(|p| p.1);
        let last = |v: &[(f64, f64)]| v.last().map(|p| p.1);
        let _ = writeln!(
            md,
            "| run | first reward | last reward | last KL |\n|---|---:|---:|---:|\n| with reference reward | {} | {} | {} |",
            f(first(&rs[0].1)),
            f(last(&rs[0].1)),
            f(last(&ks[0].1))
        );
        if rs.len() > 1 {
            let _ = writeln!(
                md,
                "| without | {} | {} | {} |",
                f(first(&rs[1].1)),
                f(last(&rs[1].1)),
                f(last(&ks[1].1))
            );
            let (a, b) = (first(&rs[0].1), first(&rs[1].1));
            findings.push(Finding {
                claim: "With the reference reward, PPO's reward starts near 0".into(),
                measured: format!("first logged reward: with {} vs without {}", f(a), f(b)),
                holds: a.zip(b).map(|(a, b)| a.abs() < b.abs()),
            });
            let (ka, kb) = (last(&ks[0].1), last(&ks[1].1));
            findings.push(Finding {
                claim: "With the reference reward, KL grows more slowly".into(),
                measured: format!("final KL: with {} vs without {}", f(ka), f(kb)),
                holds: ka.zip(kb).map(|(a, b)| a < b),
            });
        }
        let _ = writeln!(md);
    }

    // DPO.
    let dpo = jsonl(&rd.join("dpo/metrics.jsonl"));
    if !dpo.is_empty() {
        let _ = writeln!(md, "## DPO\n");
        if let Some(p) = stage("dpo_pairs") {
            let _ = writeln!(
                md,
                "RM-labelled pairs: `{}`\n",
                serde_json::to_string(&p["report"]).unwrap_or_default()
            );
        }
        plots.push((
            "dpo".into(),
            line_svg(
                "DPO implicit reward margin",
                "margin",
                &[
                    ("train".into(), curve(&dpo, "step", "rewards/margins")),
                    (
                        "held-out".into(),
                        curve(&dpo, "step", "eval_rewards/margins"),
                    ),
                ],
            ),
        ));
    }

    // Evaluation (AlignBench-style, Table 4, Table 6).
    if let Some(sum) = &summary {
        let _ = writeln!(md, "{}", sum.markdown());
        let chart = sum.category_chart();
        plots.push(("categories".into(), svg_or_note(&chart, (760, 340))));
        findings.extend(sum.findings());
    }

    let report = Report {
        title: format!("RLHF pipeline report — run `{id}`"),
        intro,
        findings,
        body: md,
        plots,
    };
    report.write(&rd)?;
    Ok(json!({
        "report_md": rd.join("report.md"),
        "report_html": rd.join("report.html"),
        "findings": report.findings.iter().map(|f| json!({"claim": f.claim, "measured": f.measured, "holds": f.holds})).collect::<Vec<_>>(),
    }))
}
