//! Held-out evaluation of a reward model (the paper's Table 5): accuracy overall, per category
//! and per |Δlength| bucket, score mean/std, how often the RM prefers the longer reply, and the
//! score distribution per category; written as JSON, Markdown and SVG.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use burn::prelude::*;
use rlhf_core::ScalarModel;
use rlhf_debias::{
    DEFAULT_EDGES, LengthCorrelation, PairDiagnostics, ScoredPair, pair_diagnostics,
    score_length_correlation,
};
use serde::{Deserialize, Serialize};

use crate::data::{EncodedPair, PairCollator, PreferencePair};
use crate::error::{Result, RewardError};
use crate::loss::LossConfig;
use crate::metrics::{EvalLog, mean_std};
use crate::plot::{ScoreGroup, score_distribution_svg};
use crate::score::score_encoded;

/// How to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalOptions {
    /// Pairs per forward batch.
    pub batch_pairs: usize,
    /// |Δ| bucket lower edges in tokens (default `rlhf_debias::DEFAULT_EDGES`).
    pub edges: Vec<u64>,
    /// The loss reported as `loss` (λ and margin as in training).
    pub loss: LossConfig,
    /// Histogram bins of the score plot.
    pub plot_bins: usize,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            batch_pairs: 16,
            edges: DEFAULT_EDGES.to_vec(),
            loss: LossConfig::default(),
            plot_bins: 30,
        }
    }
}

/// One pair's scores and reply lengths (tokens, before truncation).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairScore {
    /// Score of the chosen reply.
    pub chosen: f32,
    /// Score of the rejected reply.
    pub rejected: f32,
    /// Chosen reply length.
    pub chosen_len: usize,
    /// Rejected reply length.
    pub rejected_len: usize,
}

impl PairScore {
    /// Whether the RM scores the longer reply strictly higher; `None` when both replies have
    /// the same length (the pair says nothing about a length preference).
    pub fn prefers_longer(&self) -> Option<bool> {
        let (c, r) = (f64::from(self.chosen), f64::from(self.rejected));
        match self.chosen_len.cmp(&self.rejected_len) {
            std::cmp::Ordering::Equal => None,
            std::cmp::Ordering::Greater => Some(c > r),
            std::cmp::Ordering::Less => Some(r > c),
        }
    }
}

/// Summary statistics of a set of pairs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupStats {
    /// Pairs.
    pub n: usize,
    /// Fraction with `r_c > r_r` (ties count as wrong, as in TRL).
    pub accuracy: f64,
    /// Mean objective per pair (ranking + λ penalty).
    pub loss: f64,
    /// Mean chosen score.
    pub rewards_chosen: f64,
    /// Mean rejected score.
    pub rewards_rejected: f64,
    /// Mean `r_c − r_r`.
    pub rewards_margins: f64,
    /// Mean of all 2n scores.
    pub score_mean: f64,
    /// Standard deviation (population) of all 2n scores.
    pub score_std: f64,
    /// Among pairs whose replies differ in length: fraction where the RM scores the longer one
    /// strictly higher.
    pub prefers_longer_fraction: Option<f64>,
    /// Among the same pairs: fraction where the label prefers the longer one (the data's bias).
    pub label_longer_fraction: Option<f64>,
}

/// One category's row of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryEval {
    /// The category (`(none)` for pairs without one).
    pub category: String,
    /// Its statistics.
    pub stats: GroupStats,
}

/// The evaluation report (paper Table 5 plus length-bias diagnostics).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// All pairs.
    pub overall: GroupStats,
    /// One row per category, sorted by name.
    pub categories: Vec<CategoryEval>,
    /// Accuracy and length preference per |Δ| bucket (tokens), from `rlhf_debias`.
    pub length_buckets: PairDiagnostics,
    /// Correlation of every reply's score with its length in tokens (`None` when undefined,
    /// e.g. constant lengths).
    pub length_correlation: Option<LengthCorrelation>,
}

/// The result of [`evaluate`]: the report and the per-pair scores (input order).
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Aggregates.
    pub report: EvalReport,
    /// Per-pair scores.
    pub scores: Vec<PairScore>,
}

const NO_CATEGORY: &str = "(none)";

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

fn group_stats(scores: &[PairScore], loss: &LossConfig) -> GroupStats {
    let n = scores.len();
    let m = loss.margin.unwrap_or(0.0);
    let mut correct = 0usize;
    let (mut l, mut sc, mut sr) = (0.0, 0.0, 0.0);
    let (mut n_diff, mut longer, mut label_longer) = (0usize, 0usize, 0usize);
    for s in scores {
        let (c, r) = (s.chosen as f64, s.rejected as f64);
        correct += usize::from(c > r);
        l += softplus(-(c - r - m)) + loss.lambda_reg * (c * c + r * r);
        sc += c;
        sr += r;
        if let Some(prefers) = s.prefers_longer() {
            n_diff += 1;
            longer += usize::from(prefers);
            label_longer += usize::from(s.chosen_len > s.rejected_len);
        }
    }
    let d = n.max(1) as f64;
    let (score_mean, score_std) = mean_std(
        scores
            .iter()
            .flat_map(|s| [s.chosen as f64, s.rejected as f64]),
    );
    let frac = |k: usize| (n_diff > 0).then(|| k as f64 / n_diff as f64);
    GroupStats {
        n,
        accuracy: correct as f64 / d,
        loss: l / d,
        rewards_chosen: sc / d,
        rewards_rejected: sr / d,
        rewards_margins: (sc - sr) / d,
        score_mean,
        score_std,
        prefers_longer_fraction: frac(longer),
        label_longer_fraction: frac(label_longer),
    }
}

impl GroupStats {
    /// The training-log form of these statistics.
    pub fn to_log(&self, step: usize, epoch: f64) -> EvalLog {
        EvalLog {
            step,
            epoch,
            eval_loss: self.loss,
            eval_accuracy: self.accuracy,
            eval_rewards_chosen: self.rewards_chosen,
            eval_rewards_rejected: self.rewards_rejected,
            eval_rewards_margins: self.rewards_margins,
            eval_score_mean: self.score_mean,
            eval_score_std: self.score_std,
        }
    }
}

/// Overall statistics of scored pairs (what the training loop logs at each evaluation).
pub fn summarize(scores: &[PairScore], loss: &LossConfig) -> GroupStats {
    group_stats(scores, loss)
}

impl EvalReport {
    /// Builds the report from per-pair scores. `categories[i]` is pair `i`'s category.
    ///
    /// # Errors
    /// [`RewardError::Data`] for no pairs or mismatched lengths; bucket-edge and non-finite
    /// score errors from `rlhf_debias`.
    pub fn from_scores(
        scores: &[PairScore],
        categories: &[Option<String>],
        opts: &EvalOptions,
    ) -> Result<Self> {
        if scores.is_empty() {
            return Err(RewardError::Data("no pairs to evaluate".into()));
        }
        if scores.len() != categories.len() {
            return Err(RewardError::Data(format!(
                "{} scores but {} categories",
                scores.len(),
                categories.len()
            )));
        }
        let mut by_cat: BTreeMap<&str, Vec<PairScore>> = BTreeMap::new();
        for (s, c) in scores.iter().zip(categories) {
            by_cat
                .entry(c.as_deref().unwrap_or(NO_CATEGORY))
                .or_default()
                .push(*s);
        }
        let scored: Vec<ScoredPair> = scores
            .iter()
            .map(|s| {
                ScoredPair::new(
                    s.chosen as f64,
                    s.rejected as f64,
                    s.chosen_len,
                    s.rejected_len,
                )
            })
            .collect();
        let all_scores: Vec<f64> = scores
            .iter()
            .flat_map(|s| [s.chosen as f64, s.rejected as f64])
            .collect();
        let all_lens: Vec<usize> = scores
            .iter()
            .flat_map(|s| [s.chosen_len, s.rejected_len])
            .collect();
        Ok(EvalReport {
            overall: group_stats(scores, &opts.loss),
            categories: by_cat
                .into_iter()
                .map(|(c, s)| CategoryEval {
                    category: c.to_string(),
                    stats: group_stats(&s, &opts.loss),
                })
                .collect(),
            length_buckets: pair_diagnostics(&scored, &opts.edges)?,
            length_correlation: score_length_correlation(&all_scores, &all_lens).ok(),
        })
    }

    /// Markdown: an overall table, a per-category table and the per-bucket table.
    pub fn to_markdown(&self) -> String {
        let f = |x: Option<f64>| x.map_or_else(|| "–".to_string(), |v| format!("{v:.3}"));
        let mut s = String::from("# Reward model evaluation\n\n");
        s.push_str(
            "| category | pairs | accuracy | loss | chosen | rejected | margin | score mean | score std | RM prefers longer | label prefers longer |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        let row = |s: &mut String, name: &str, g: &GroupStats| {
            let _ = writeln!(
                s,
                "| {name} | {} | {:.3} | {:.4} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {} | {} |",
                g.n,
                g.accuracy,
                g.loss,
                g.rewards_chosen,
                g.rewards_rejected,
                g.rewards_margins,
                g.score_mean,
                g.score_std,
                f(g.prefers_longer_fraction),
                f(g.label_longer_fraction)
            );
        };
        for c in &self.categories {
            row(&mut s, &c.category, &c.stats);
        }
        row(&mut s, "**all**", &self.overall);
        s.push_str("\n## By |Δ length| (tokens)\n\n");
        s.push_str(&self.length_buckets.to_markdown());
        if let Some(c) = &self.length_correlation {
            let _ = writeln!(
                s,
                "\nScore–length correlation over {} replies: Pearson {:.3}, Spearman {:.3}.",
                c.n, c.pearson, c.spearman
            );
        }
        s
    }

    /// Writes `eval.json`, `eval.md` and (with `groups`) `scores.svg` into `dir`, atomically.
    ///
    /// # Errors
    /// IO and plot errors.
    pub fn write(&self, dir: &Path, groups: Option<&[ScoreGroup]>, bins: usize) -> Result<()> {
        let json = serde_json::to_string_pretty(self).expect("serialisable");
        rlhf_core::io::write_atomic(&dir.join("eval.json"), json.as_bytes())?;
        rlhf_core::io::write_atomic(&dir.join("eval.md"), self.to_markdown().as_bytes())?;
        if let Some(g) = groups {
            let svg = score_distribution_svg(g, bins)?;
            rlhf_core::io::write_atomic(&dir.join("scores.svg"), svg.as_bytes())?;
        }
        Ok(())
    }
}

/// Panels of the score plot: "all" first, then one per category (sorted), when there is more
/// than one category.
pub fn score_groups(scores: &[PairScore], categories: &[Option<String>]) -> Vec<ScoreGroup> {
    let mut by_cat: BTreeMap<&str, ScoreGroup> = BTreeMap::new();
    let mut all = ScoreGroup {
        name: "all".into(),
        chosen: Vec::new(),
        rejected: Vec::new(),
    };
    for (s, c) in scores.iter().zip(categories) {
        let name = c.as_deref().unwrap_or(NO_CATEGORY);
        let g = by_cat.entry(name).or_insert_with(|| ScoreGroup {
            name: name.to_string(),
            chosen: Vec::new(),
            rejected: Vec::new(),
        });
        g.chosen.push(s.chosen as f64);
        g.rejected.push(s.rejected as f64);
        all.chosen.push(s.chosen as f64);
        all.rejected.push(s.rejected as f64);
    }
    let mut out = vec![all];
    if by_cat.len() > 1 {
        out.extend(by_cat.into_values());
    }
    out
}

/// Scores already-encoded pairs.
pub fn score_pairs<B: Backend>(
    model: &ScalarModel<B>,
    pairs: &[EncodedPair],
    pad_id: u32,
    batch_pairs: usize,
    device: &B::Device,
) -> Vec<PairScore> {
    score_encoded(model, pairs, pad_id, batch_pairs, device)
        .into_iter()
        .zip(pairs)
        .map(|((c, r), p)| PairScore {
            chosen: c,
            rejected: r,
            chosen_len: p.chosen_len,
            rejected_len: p.rejected_len,
        })
        .collect()
}

/// Encodes, scores and summarises `pairs` (use `model.valid()` for a training model).
///
/// # Errors
/// Encoding errors and those of [`EvalReport::from_scores`].
pub fn evaluate<B: Backend>(
    model: &ScalarModel<B>,
    collator: &PairCollator<'_>,
    pairs: &[PreferencePair],
    opts: &EvalOptions,
    device: &B::Device,
) -> Result<Evaluation> {
    let enc = collator.encode_all(pairs)?;
    let scores = score_pairs(
        model,
        &enc,
        collator.encoder.pad_id(),
        opts.batch_pairs,
        device,
    );
    let cats: Vec<Option<String>> = pairs.iter().map(|p| p.category.clone()).collect();
    let report = EvalReport::from_scores(&scores, &cats, opts)?;
    Ok(Evaluation { report, scores })
}

/// [`evaluate`], then writes `eval.json`, `eval.md`, `scores.svg` and `scores.jsonl` (see
/// [`write_scores_jsonl`]) into `dir`.
///
/// # Errors
/// As [`evaluate`], plus IO and plot errors.
pub fn evaluate_to_dir<B: Backend>(
    model: &ScalarModel<B>,
    collator: &PairCollator<'_>,
    pairs: &[PreferencePair],
    opts: &EvalOptions,
    dir: &Path,
    device: &B::Device,
) -> Result<Evaluation> {
    let ev = evaluate(model, collator, pairs, opts, device)?;
    let cats: Vec<Option<String>> = pairs.iter().map(|p| p.category.clone()).collect();
    let groups = score_groups(&ev.scores, &cats);
    ev.report.write(dir, Some(&groups), opts.plot_bins)?;
    write_scores_jsonl(&dir.join("scores.jsonl"), pairs, &ev.scores)?;
    Ok(ev)
}

/// Writes per-pair scores as JSON lines, atomically: one
/// `{id, category, chosen, rejected, margin, chosen_len, rejected_len, prefers_longer}` per pair,
/// where `chosen`/`rejected` are the scores, `margin = chosen − rejected`, the lengths are reply
/// lengths in tokens before truncation, and `prefers_longer` is [`PairScore::prefers_longer`]
/// (`null` for equal lengths; paired across two RMs it gives McNemar's test of a length
/// preference). `scores[i]` belongs to `pairs[i]`.
///
/// # Errors
/// [`RewardError::Data`] when the two slices differ in length; IO errors naming the file.
pub fn write_scores_jsonl(
    path: &Path,
    pairs: &[PreferencePair],
    scores: &[PairScore],
) -> Result<()> {
    if pairs.len() != scores.len() {
        return Err(RewardError::Data(format!(
            "{}: {} pairs but {} scores",
            path.display(),
            pairs.len(),
            scores.len()
        )));
    }
    let rows: Vec<serde_json::Value> = pairs
        .iter()
        .zip(scores)
        .map(|(p, s)| {
            serde_json::json!({
                "id": p.id, "category": p.category,
                "chosen": s.chosen, "rejected": s.rejected, "margin": s.chosen - s.rejected,
                "chosen_len": s.chosen_len, "rejected_len": s.rejected_len,
                "prefers_longer": s.prefers_longer(),
            })
        })
        .collect();
    Ok(rlhf_train::write_jsonl(path, &rows)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ps(c: f32, r: f32, lc: usize, lr: usize) -> PairScore {
        PairScore {
            chosen: c,
            rejected: r,
            chosen_len: lc,
            rejected_len: lr,
        }
    }

    #[test]
    fn report_counts_categories_buckets_and_length_preference() {
        let scores = vec![
            ps(1.0, 0.0, 10, 5),  // right, prefers longer
            ps(0.0, 1.0, 10, 40), // wrong, prefers longer (rejected is longer)
            ps(2.0, 1.0, 3, 3),   // right, no length difference
            ps(-1.0, 0.5, 50, 5), // wrong, prefers shorter
        ];
        let cats = vec![
            Some("math".to_string()),
            Some("math".to_string()),
            None,
            Some("writing".to_string()),
        ];
        let opts = EvalOptions {
            loss: LossConfig {
                lambda_reg: 0.0,
                margin: None,
            },
            ..Default::default()
        };
        let r = EvalReport::from_scores(&scores, &cats, &opts).unwrap();
        assert_eq!(r.overall.n, 4);
        assert!((r.overall.accuracy - 0.5).abs() < 1e-12);
        assert_eq!(r.overall.prefers_longer_fraction, Some(2.0 / 3.0));
        assert_eq!(r.overall.label_longer_fraction, Some(2.0 / 3.0));
        let names: Vec<&str> = r.categories.iter().map(|c| c.category.as_str()).collect();
        assert_eq!(names, vec!["(none)", "math", "writing"]);
        assert_eq!(r.categories[1].stats.n, 2);
        assert!((r.categories[1].stats.accuracy - 0.5).abs() < 1e-12);
        // |Δ| = 5, 30, 0, 45 -> buckets [0,16) x2, [16,32), [32,64)
        assert_eq!(r.length_buckets.buckets[0].n, 2);
        assert_eq!(r.length_buckets.buckets[1].n, 1);
        assert_eq!(r.length_buckets.buckets[2].n, 1);
        // Loss with λ = 0 is mean softplus(-(c - r)).
        let want = [1.0f64, -1.0, 1.0, -1.5]
            .iter()
            .map(|&d| softplus(-d))
            .sum::<f64>()
            / 4.0;
        assert!((r.overall.loss - want).abs() < 1e-9);
        let md = r.to_markdown();
        assert!(md.contains("| math | 2 | 0.500 |"), "{md}");
        assert!(md.contains("By |Δ length|"));
        let groups = score_groups(&scores, &cats);
        assert_eq!(groups.len(), 4);
        assert_eq!(groups[0].name, "all");
        let dir = tempfile::tempdir().unwrap();
        r.write(dir.path(), Some(&groups), 10).unwrap();
        for f in ["eval.json", "eval.md", "scores.svg"] {
            assert!(dir.path().join(f).exists(), "{f}");
        }
        let back: EvalReport =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("eval.json")).unwrap())
                .unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn scores_jsonl_has_one_line_per_pair_with_the_margin() {
        let pairs = vec![
            PreferencePair::new("a", vec![], "x", "y").with_category("math"),
            PreferencePair::new("b", vec![], "x", "y"),
        ];
        let scores = vec![ps(1.5, 0.25, 3, 7), ps(-1.0, 0.5, 2, 2)];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        write_scores_jsonl(&path, &pairs, &scores).unwrap();
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0],
            serde_json::json!({"id": "a", "category": "math", "chosen": 1.5, "rejected": 0.25,
                               "margin": 1.25, "chosen_len": 3, "rejected_len": 7,
                               "prefers_longer": false})
        );
        assert_eq!(lines[1]["category"], serde_json::Value::Null);
        // Equal lengths say nothing about a length preference.
        assert_eq!(lines[1]["prefers_longer"], serde_json::Value::Null);
        assert_eq!(ps(0.0, 1.0, 2, 5).prefers_longer(), Some(true));
        assert_eq!(ps(1.0, 1.0, 2, 5).prefers_longer(), Some(false));
        assert_eq!(lines[1]["margin"], -1.5);
        let err = write_scores_jsonl(&path, &pairs, &scores[..1]).unwrap_err();
        assert!(err.to_string().contains("2 pairs but 1 scores"), "{err}");
    }

    #[test]
    fn empty_input_is_an_error() {
        assert!(EvalReport::from_scores(&[], &[], &EvalOptions::default()).is_err());
    }
}
