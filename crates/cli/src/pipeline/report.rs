//! The `report` stage: `report.md` and a self-contained `report.html` (SVG plots inline) from
//! the run directory's artefacts, with each of the paper's findings checked against the
//! measured numbers — reproduced or not, never assumed.

use std::fmt::Write as _;
use std::path::Path;

use rlhf_util::plot::{self, Bars, Chart, Legend};
use serde_json::{Value, json};

use super::Ctx;
use super::eval::Summary;

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
    chart
        .svg((560, 320))
        .unwrap_or_else(|e| format!("<p><em>{title}: {e}</em></p>"))
}

/// A grouped bar chart (categories × models) as an SVG string, or a line of HTML saying why
/// there is none.
pub(crate) fn bars_svg(title: &str, cats: &[String], series: &[(String, Vec<f64>)]) -> String {
    if cats.is_empty() || series.is_empty() {
        return format!("<p><em>{title}: no data</em></p>");
    }
    let bars = series
        .iter()
        .map(|(name, v)| Bars::new(name.clone(), v.iter().copied()))
        .collect();
    let chart = Chart::bars(title, "", cats.to_vec(), bars).legend(Legend::UpperRight);
    chart
        .svg((760, 340))
        .unwrap_or_else(|e| format!("<p><em>{title}: {e}</em></p>"))
}

/// One-sided exact binomial test: P(X ≥ k) for X ~ Binomial(n, 1/2).
pub(crate) fn binom_tail(k: usize, n: usize) -> f64 {
    if n == 0 {
        return 1.0;
    }
    // log C(n, i) by lgamma-free summation of logs.
    let ln_fact = |m: usize| (1..=m).map(|x| (x as f64).ln()).sum::<f64>();
    let ln_n = ln_fact(n);
    let half = (0.5f64).ln() * n as f64;
    (k..=n)
        .map(|i| (ln_n - ln_fact(i) - ln_fact(n - i) + half).exp())
        .sum::<f64>()
        .min(1.0)
}

fn f(v: Option<f64>) -> String {
    v.map_or("–".into(), |x| format!("{x:.3}"))
}

/// A finding: what the paper says, what we measured, whether it held.
struct Finding {
    claim: &'static str,
    measured: String,
    holds: Option<bool>,
}

pub(crate) fn run(ctx: &mut Ctx) -> anyhow::Result<Value> {
    let rd = ctx.run_dir.clone();
    let stage = |n: &str| ctx.state.stages.get(n).map(|r| r.result.clone());
    let secs = |n: &str| ctx.state.stages.get(n).map(|r| r.seconds);
    let summary: Option<Summary> = std::fs::read_to_string(rd.join("eval/summary.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let mut md = String::new();
    let mut plots: Vec<(String, String)> = Vec::new();
    let id = rd
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let _ = writeln!(md, "# RLHF pipeline report — run `{id}`\n");
    let _ = writeln!(
        md,
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
        let p = acc.map(|a| binom_tail((a * n as f64).round() as usize, n));
        findings.push(Finding {
            claim: "The reward model agrees with held-out human (annotator) labels above chance",
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
            let p = binom_tail((gold * n as f64).round() as usize, n);
            findings.push(Finding {
                claim: "The reward model agrees with the gold judge (held-out pairs the gold judge decides)",
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
            claim: "Length balancing lowers the RM's preference for longer replies",
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
                claim: "With the reference reward, PPO's reward starts near 0",
                measured: format!("first logged reward: with {} vs without {}", f(a), f(b)),
                holds: a.zip(b).map(|(a, b)| a.abs() < b.abs()),
            });
            let (ka, kb) = (last(&ks[0].1), last(&ks[1].1));
            findings.push(Finding {
                claim: "With the reference reward, KL grows more slowly",
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
        let _ = writeln!(md, "## Evaluation on held-out prompts\n");
        if !sum.gold {
            let _ = writeln!(md, "_No gold judge configured: RM scores only._\n");
        }
        let mut cats: Vec<String> = sum
            .table
            .values()
            .flat_map(|t| t.keys().cloned())
            .filter(|c| c != "overall")
            .collect();
        cats.sort();
        cats.dedup();
        let models: Vec<&String> = sum.table.keys().collect();
        let _ = write!(
            md,
            "Gold-judge score (1–8: 1 + 4·correct + 2·harmless + fluent) per category:\n\n| category |"
        );
        for m in &models {
            let _ = write!(md, " {m} |");
        }
        let _ = writeln!(md, "\n|---|{}", "---:|".repeat(models.len()));
        for c in cats.iter().chain(std::iter::once(&"overall".to_string())) {
            let _ = write!(md, "| {c} |");
            for m in &models {
                let v = sum.table[*m].get(c).map(|x| x.gold);
                let _ = write!(md, " {} |", f(v));
            }
            let _ = writeln!(md);
        }
        let _ = writeln!(
            md,
            "\n| model | gold accuracy | RM score | mean chars | mean tokens |\n|---|---:|---:|---:|---:|"
        );
        for m in &models {
            if let Some(o) = sum.table[*m].get("overall") {
                let _ = writeln!(
                    md,
                    "| {m} | {:.3} | {:.3} | {:.1} | {:.1} |",
                    o.accuracy, o.rm, o.chars, o.tokens
                );
            }
        }
        let series: Vec<(String, Vec<f64>)> = models
            .iter()
            .map(|m| {
                let v = cats
                    .iter()
                    .map(|c| sum.table[*m].get(c).map_or(0.0, |x| x.gold))
                    .collect();
                ((*m).clone(), v)
            })
            .collect();
        plots.push((
            "categories".into(),
            bars_svg("Gold score per category", &cats, &series),
        ));
        if !sum.versus_sft.is_empty() {
            let _ = writeln!(
                md,
                "\nAgainst SFT, by the gold judge (Table 4):\n\n| model | win | tie | lose | net win rate |\n|---|---:|---:|---:|---:|"
            );
            for (m, v) in &sum.versus_sft {
                if let Some(o) = v.get("overall") {
                    let _ = writeln!(
                        md,
                        "| {m} | {} | {} | {} | {:+.3} |",
                        o.win,
                        o.tie,
                        o.lose,
                        o.net()
                    );
                }
            }
            if let Some(o) = sum.versus_sft.get("PPO").and_then(|v| v.get("overall")) {
                // Sign test over the decided prompts: ties carry no information.
                let p = binom_tail(o.win, o.win + o.lose);
                findings.push(Finding {
                    claim: "PPO beats SFT by the gold judge",
                    measured: format!(
                        "win {} / tie {} / lose {} (net {:+.3}; sign test p = {p:.3})",
                        o.win,
                        o.tie,
                        o.lose,
                        o.net()
                    ),
                    holds: Some(o.win > o.lose && p < 0.05),
                });
            }
        }
        let len = |m: &str| {
            sum.table
                .get(m)
                .and_then(|t| t.get("overall"))
                .map(|c| c.chars)
        };
        if let (Some(s), Some(p), Some(d)) = (len("SFT"), len("PPO"), len("DPO")) {
            findings.push(Finding {
                claim: "DPO lengthens replies more than PPO (Table 6)",
                measured: format!(
                    "mean chars: SFT {s:.1}, PPO {p:.1} ({:+.1}), DPO {d:.1} ({:+.1})",
                    p - s,
                    d - s
                ),
                holds: Some(d - s > p - s),
            });
        }
        let _ = writeln!(md);
    }

    // Findings.
    let mut fmd = String::from(
        "## The paper's findings, checked\n\n| finding | measured | reproduced |\n|---|---|---|\n",
    );
    for fi in &findings {
        let verdict = match fi.holds {
            Some(true) => "yes",
            Some(false) => "**no** (not significant or reversed)",
            None => "not measured",
        };
        let _ = writeln!(fmd, "| {} | {} | {verdict} |", fi.claim, fi.measured);
    }
    let md = md.replacen("## Stages", &format!("{fmd}\n## Stages"), 1);

    // Plots: SVG files beside the report, inline in the HTML.
    let plot_dir = rd.join("plots");
    std::fs::create_dir_all(&plot_dir)?;
    let mut md = md;
    let _ = writeln!(md, "## Plots\n");
    for (name, svg) in &plots {
        if svg.starts_with("<svg") {
            rlhf_core::io::write_atomic(&plot_dir.join(format!("{name}.svg")), svg.as_bytes())?;
            let _ = writeln!(md, "![{name}](plots/{name}.svg)\n");
        }
    }
    rlhf_core::io::write_atomic(&rd.join("report.md"), md.as_bytes())?;
    let html = to_html(&md, &plots, &id);
    rlhf_core::io::write_atomic(&rd.join("report.html"), html.as_bytes())?;
    Ok(json!({
        "report_md": rd.join("report.md"),
        "report_html": rd.join("report.html"),
        "findings": findings.iter().map(|f| json!({"claim": f.claim, "measured": f.measured, "holds": f.holds})).collect::<Vec<_>>(),
    }))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A small Markdown subset (headings, tables, paragraphs, code fences, images of our plots)
/// to self-contained HTML.
fn to_html(md: &str, plots: &[(String, String)], id: &str) -> String {
    let mut h = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>RLHF report {}</title>\
         <style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em}}\
         table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px}}\
         td{{text-align:right}}td:first-child{{text-align:left}}pre{{background:#f6f6f6;padding:1em;overflow:auto}}</style>\
         </head><body>\n",
        esc(id)
    );
    let mut in_table = false;
    let mut in_code = false;
    for line in md.lines() {
        if line.starts_with("```") {
            h.push_str(if in_code { "</pre>\n" } else { "<pre>" });
            in_code = !in_code;
            continue;
        }
        if in_code {
            h.push_str(&esc(line));
            h.push('\n');
            continue;
        }
        let is_row = line.starts_with('|');
        if in_table && !is_row {
            h.push_str("</table>\n");
            in_table = false;
        }
        if is_row {
            if line.contains("---") {
                continue;
            }
            if !in_table {
                h.push_str("<table>");
                in_table = true;
            }
            h.push_str("<tr>");
            // `\|` is a literal bar inside a cell.
            let line = line.replace("\\|", "\u{1}");
            for cell in line.trim_matches('|').split('|') {
                let _ = write!(h, "<td>{}</td>", inline(&cell.trim().replace('\u{1}', "|")));
            }
            h.push_str("</tr>\n");
        } else if let Some(t) = line.strip_prefix("## ") {
            let _ = writeln!(h, "<h2>{}</h2>", esc(t));
        } else if let Some(t) = line.strip_prefix("# ") {
            let _ = writeln!(h, "<h1>{}</h1>", inline(t));
        } else if let Some(rest) = line.strip_prefix("![") {
            let name = rest.split(']').next().unwrap_or("");
            if let Some((_, svg)) = plots.iter().find(|(n, _)| n == name) {
                let _ = writeln!(h, "<div>{svg}</div>");
            }
        } else if !line.trim().is_empty() {
            let _ = writeln!(h, "<p>{}</p>", inline(line));
        }
    }
    if in_table {
        h.push_str("</table>\n");
    }
    h.push_str("</body></html>\n");
    h
}

fn inline(s: &str) -> String {
    let e = esc(s);
    // **bold** and `code`
    let mut out = String::new();
    for (i, part) in e.split("**").enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<b>{part}</b>");
        } else {
            out.push_str(part);
        }
    }
    let mut out2 = String::new();
    for (i, part) in out.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out2, "<code>{part}</code>");
        } else {
            out2.push_str(part);
        }
    }
    out2
}

#[cfg(test)]
mod tests {
    use super::binom_tail;

    #[test]
    fn binomial_tail_matches_hand_values() {
        // P(X >= 5 | n = 5) = 1/32; P(X >= 0) = 1; P(X >= 3 | n = 4) = 5/16.
        assert!((binom_tail(5, 5) - 1.0 / 32.0).abs() < 1e-12);
        assert!((binom_tail(0, 7) - 1.0).abs() < 1e-12);
        assert!((binom_tail(3, 4) - 5.0 / 16.0).abs() < 1e-12);
        assert!(binom_tail(121, 221) > 0.05 && binom_tail(130, 221) < 0.01);
    }
}
