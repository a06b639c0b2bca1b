//! The `report` stage: `report.md` and a self-contained `report.html` (SVG plots inline) from
//! the run directory's artefacts, with each of the paper's findings checked against the
//! measured numbers — reproduced or not, never assumed. This module reads the stages'
//! artefacts; the evaluation's section, the findings table, the plots and the HTML are
//! `rlhf_alignbench_eval`'s (`HeldOutSummary`, `Report`) and `rlhf_util::plot`'s.

use std::fmt::Write as _;
use std::path::Path;

use rlhf_alignbench_eval::{HeldOutSummary, Report, fmt3 as f};
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
pub(crate) fn curve(rows: &[Value], x: &str, y: &str) -> Vec<(f64, f64)> {
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
pub(crate) fn line_svg(title: &str, y_label: &str, series: &[Series]) -> String {
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
        } else if let Some(d) = stage("dpo") {
            let _ = writeln!(
                md,
                "The annotator's training pairs (`[data].dpo_data = \"annotator\"`): {} for \
                 training, {} held out.\n",
                d["train_pairs"], d["eval_pairs"]
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
    }

    // The critic-free estimators beside PPO.
    if let Some((t, p)) = super::compare::section(&rd, summary.as_ref()) {
        md.push_str(&t);
        plots.extend(p);
    }

    // The PPO ablations over seeds.
    if let Some(t) = seeds_table(&rd) {
        md.push_str(&t);
    }
    let findings = super::findings::gather(ctx, summary.as_ref());
    super::findings::write(&rd, &findings)?;

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
        "findings_json": rd.join("findings.json"),
        "findings": report.findings.iter().map(|f| json!({"id": f.id, "reproduced": f.reproduced, "p_value": f.p_value})).collect::<Vec<_>>(),
    }))
}

/// The `ppo_seeds` stage's per-seed numbers as a Markdown section (`None` without the stage).
fn seeds_table(rd: &Path) -> Option<String> {
    let text = std::fs::read_to_string(rd.join("ppo_seeds/summary.json")).ok()?;
    let sum: super::seeds::SeedSummary = serde_json::from_str(&text).ok()?;
    let mut md = format!(
        "## PPO ablations over seeds\n\n{} iterations per run; held-out SFT NLL before PPO {} \
         ({} rows the NTP term never saw).\n\n\
         | seed | first reward, with ref. | without | KL last half, with ref. | without | \
         SFT NLL after, with NTP | without NTP |\n|---:|---:|---:|---:|---:|---:|---:|\n",
        sum.steps,
        f(sum.nll_before),
        sum.heldout_rows
    );
    for r in &sum.seeds {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.seed,
            f(r.first_reward_ref),
            f(r.first_reward_noref),
            f(r.kl_last_half_ref),
            f(r.kl_last_half_noref),
            f(r.nll_after_ref),
            f(r.nll_after_nontp)
        );
    }
    md.push('\n');
    Some(md)
}
