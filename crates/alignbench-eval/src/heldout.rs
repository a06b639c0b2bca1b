//! The pipeline's evaluation on held-out prompts: each model's answers scored by the reward
//! model and, when the run has one, a gold judge; aggregated per model and category (the
//! AlignBench-style table), win/tie/lose against SFT by the gold judge (Table 4), reply lengths
//! (Table 6), and the reward model's agreement with the gold preference.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use rlhf_util::plot::{Bars, Chart, Legend};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::pairwise::{Outcome, WinTieLoss};
use crate::render::fmt3;

/// The model every other one is compared with.
pub const BASELINE: &str = "SFT";

/// The control model of the pipeline's `sft_chosen` stage (SFT trained further on the chosen
/// replies of the training pairs), the second baseline of PPO and DPO.
pub const CONTROL: &str = "SFT-chosen";

/// One model's answer to one held-out prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldOutAnswer {
    /// The prompt id.
    pub id: String,
    /// The prompt's category, when it has one.
    pub category: Option<String>,
    /// The answer text.
    pub answer: String,
    /// Its length in tokens.
    pub tokens: usize,
    /// The reward model's score.
    pub rm_score: f32,
    /// The gold judge's score (1..=8), when there is a gold judge.
    pub gold_score: Option<f64>,
    /// Whether the gold judge's answer key is satisfied.
    pub correct: Option<bool>,
}

/// Means over one model's answers in one category.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HeldOutCell {
    /// Answers.
    pub n: usize,
    /// Mean gold score (0 without a gold judge).
    pub gold: f64,
    /// Share of answers the gold judge calls correct.
    pub accuracy: f64,
    /// Mean reward-model score.
    pub rm: f64,
    /// Mean length in characters.
    pub chars: f64,
    /// Mean length in tokens.
    pub tokens: f64,
}

/// The evaluation's summary (`eval/summary.json` of a pipeline run).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HeldOutSummary {
    /// model → category (`overall` included) → means.
    pub table: BTreeMap<String, BTreeMap<String, HeldOutCell>>,
    /// model → category → win/tie/lose against [`BASELINE`] by the gold judge.
    pub versus_sft: BTreeMap<String, BTreeMap<String, WinTieLoss>>,
    /// Whether a gold judge scored the answers.
    pub gold: bool,
    /// RM run (`rm`, `rm_unbalanced`) → agreement with the gold preference on its held-out
    /// pairs where the gold judge is not indifferent, and how many such pairs.
    pub rm_gold_agreement: BTreeMap<String, (f64, usize)>,
    /// model → win/tie/lose over all prompts against [`CONTROL`] by the gold judge (empty
    /// without the control).
    #[serde(default)]
    pub versus_control: BTreeMap<String, WinTieLoss>,
}

/// One table row per model: win, tie, lose and the net win rate.
fn wtl_rows<'a>(md: &mut String, rows: impl Iterator<Item = (&'a String, &'a WinTieLoss)>) {
    for (m, o) in rows {
        let _ = writeln!(
            md,
            "| {m} | {} | {} | {} | {:+.3} |",
            o.wins,
            o.ties,
            o.losses,
            o.net_win_rate().unwrap_or(0.0)
        );
    }
}

/// `a` against `b` (answers to the same prompt) by `compare`.
fn outcome(
    compare: &impl Fn(&str, &str, &str) -> Ordering,
    a: &HeldOutAnswer,
    b: &HeldOutAnswer,
) -> Outcome {
    match compare(&a.id, &a.answer, &b.answer) {
        Ordering::Greater => Outcome::Win,
        Ordering::Equal => Outcome::Tie,
        Ordering::Less => Outcome::Loss,
    }
}

/// `overall` and the answer's own category (`-` when it has none).
fn categories(a: &HeldOutAnswer) -> [String; 2] {
    ["overall".into(), a.category.clone().unwrap_or("-".into())]
}

impl HeldOutSummary {
    /// Per model and category means of `answers` (model → its answers); `gold` says whether a
    /// gold judge scored them.
    pub fn new(answers: &BTreeMap<String, Vec<HeldOutAnswer>>, gold: bool) -> Self {
        let mut sum = HeldOutSummary {
            gold,
            ..Default::default()
        };
        for (name, list) in answers {
            let t = sum.table.entry(name.clone()).or_default();
            for a in list {
                for cat in categories(a) {
                    let cell = t.entry(cat).or_default();
                    cell.n += 1;
                    cell.gold += a.gold_score.unwrap_or(0.0);
                    cell.accuracy += f64::from(u8::from(a.correct.unwrap_or(false)));
                    cell.rm += f64::from(a.rm_score);
                    cell.chars += a.answer.chars().count() as f64;
                    cell.tokens += a.tokens as f64;
                }
            }
            for cell in t.values_mut() {
                let n = cell.n.max(1) as f64;
                cell.gold /= n;
                cell.accuracy /= n;
                cell.rm /= n;
                cell.chars /= n;
                cell.tokens /= n;
            }
        }
        sum
    }

    /// Win/tie/lose of every model against [`BASELINE`] (per category) and, when the answers
    /// include it, against [`CONTROL`] (overall), prompt by prompt (the lists are in the same
    /// prompt order): `compare(id, answer, baseline_answer)` is `Greater` when the answer is
    /// better. Nothing when there is no baseline.
    pub fn compare_with_baseline(
        &mut self,
        answers: &BTreeMap<String, Vec<HeldOutAnswer>>,
        compare: impl Fn(&str, &str, &str) -> Ordering,
    ) {
        if let Some(base) = answers.get(BASELINE) {
            for (name, list) in answers.iter().filter(|(n, _)| *n != BASELINE) {
                let v = self.versus_sft.entry(name.clone()).or_default();
                for (a, b) in list.iter().zip(base) {
                    for cat in categories(a) {
                        v.entry(cat).or_default().add(outcome(&compare, a, b));
                    }
                }
            }
        }
        if let Some(base) = answers.get(CONTROL) {
            for (name, list) in answers.iter().filter(|(n, _)| *n != CONTROL) {
                let v = self.versus_control.entry(name.clone()).or_default();
                for (a, b) in list.iter().zip(base) {
                    v.add(outcome(&compare, a, b));
                }
            }
        }
    }

    /// The categories of the table (sorted, `overall` left out).
    fn categories(&self) -> Vec<String> {
        let mut cats: Vec<String> = self
            .table
            .values()
            .flat_map(|t| t.keys().cloned())
            .filter(|c| c != "overall")
            .collect();
        cats.sort();
        cats.dedup();
        cats
    }

    fn overall(&self, model: &str) -> Option<&HeldOutCell> {
        self.table.get(model).and_then(|t| t.get("overall"))
    }

    /// The evaluation's section of a report: gold score per category and model, the overall
    /// table (gold accuracy, RM score, lengths) and, with a baseline, win/tie/lose against it.
    pub fn markdown(&self) -> String {
        let mut md = String::from("## Evaluation on held-out prompts\n\n");
        if !self.gold {
            md.push_str("_No gold judge configured: RM scores only._\n\n");
        }
        let cats = self.categories();
        let models: Vec<&String> = self.table.keys().collect();
        md.push_str(
            "Gold-judge score (1–8: 1 + 4·correct + 2·harmless + fluent) per category:\n\n| category |",
        );
        for m in &models {
            let _ = write!(md, " {m} |");
        }
        let _ = writeln!(md, "\n|---|{}", "---:|".repeat(models.len()));
        for c in cats.iter().map(String::as_str).chain(["overall"]) {
            let _ = write!(md, "| {c} |");
            for m in &models {
                let _ = write!(md, " {} |", fmt3(self.table[*m].get(c).map(|x| x.gold)));
            }
            md.push('\n');
        }
        md.push_str(
            "\n| model | gold accuracy | RM score | mean chars | mean tokens |\n|---|---:|---:|---:|---:|\n",
        );
        for m in &models {
            if let Some(o) = self.overall(m) {
                let _ = writeln!(
                    md,
                    "| {m} | {:.3} | {:.3} | {:.1} | {:.1} |",
                    o.accuracy, o.rm, o.chars, o.tokens
                );
            }
        }
        if !self.versus_sft.is_empty() {
            let _ = writeln!(
                md,
                "\nAgainst {BASELINE}, by the gold judge (Table 4):\n\n| model | win | tie | lose | net win rate |\n|---|---:|---:|---:|---:|"
            );
            let overall = self
                .versus_sft
                .iter()
                .filter_map(|(m, v)| Some((m, v.get("overall")?)));
            wtl_rows(&mut md, overall);
        }
        if !self.versus_control.is_empty() {
            let _ = writeln!(
                md,
                "\nAgainst the control {CONTROL} (SFT trained further on the training pairs' \
                 chosen replies, the data of PPO's NTP term and RPO's NLL term), by the gold \
                 judge:\n\n| model | win | tie | lose | net win rate |\n|---|---:|---:|---:|---:|"
            );
            wtl_rows(&mut md, self.versus_control.iter());
        }
        md
    }

    /// The gold score per category and model, as a grouped bar chart.
    pub fn category_chart(&self) -> Chart {
        let cats = self.categories();
        let bars = self
            .table
            .iter()
            .map(|(m, t)| {
                let v = cats.iter().map(|c| t.get(c).map_or(0.0, |x| x.gold));
                Bars::new(m.clone(), v)
            })
            .collect();
        Chart::bars("Gold score per category", "", cats, bars).legend(Legend::UpperRight)
    }

    /// `model`'s win/tie/lose against [`BASELINE`] summed over `categories` (those it has);
    /// `None` when the model has no comparison.
    pub fn versus_sft_pooled(&self, model: &str, categories: &[&str]) -> Option<WinTieLoss> {
        let v = self.versus_sft.get(model)?;
        let mut out = WinTieLoss::default();
        for o in categories.iter().filter_map(|c| v.get(*c)) {
            out.wins += o.wins;
            out.ties += o.ties;
            out.losses += o.losses;
        }
        Some(out)
    }
}

/// Agreement of a reward model's held-out scores (`scores`: JSON lines `{"id", "chosen",
/// "rejected"}`) with the gold preference of each pair (`meta`: JSON lines `{"id", "gold": 1 |
/// 0 | -1}`), over the pairs the gold judge decides: `(agreement, pairs)`, or `None` when a file
/// is missing or no pair is decided. Unreadable lines are skipped.
pub fn gold_agreement(scores: &Path, meta: &Path) -> Option<(f64, usize)> {
    let lines = |p: &Path| -> Option<Vec<Value>> {
        let text = std::fs::read_to_string(p).ok()?;
        Some(
            text.lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect(),
        )
    };
    let gold: BTreeMap<String, i64> = lines(meta)?
        .iter()
        .filter_map(|v| Some((v["id"].as_str()?.to_string(), v["gold"].as_i64()?)))
        .collect();
    let (mut agree, mut n) = (0usize, 0usize);
    for v in lines(scores)? {
        let (Some(id), Some(c), Some(r)) = (
            v["id"].as_str(),
            v["chosen"].as_f64(),
            v["rejected"].as_f64(),
        ) else {
            continue;
        };
        if let Some(&g) = gold.get(id).filter(|g| **g != 0) {
            n += 1;
            if (c - r) * g as f64 > 0.0 {
                agree += 1;
            }
        }
    }
    (n > 0).then(|| (agree as f64 / n as f64, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(id: &str, cat: &str, text: &str, gold: f64) -> HeldOutAnswer {
        HeldOutAnswer {
            id: id.into(),
            category: Some(cat.into()),
            answer: text.into(),
            tokens: text.len(),
            rm_score: gold as f32 / 2.0,
            gold_score: Some(gold),
            correct: Some(gold > 4.0),
        }
    }

    fn answers() -> BTreeMap<String, Vec<HeldOutAnswer>> {
        let model = |g: [f64; 3], len: usize| {
            vec![
                answer("1", "math", &"a".repeat(len), g[0]),
                answer("2", "math", &"b".repeat(len), g[1]),
                answer("3", "write", &"c".repeat(len), g[2]),
            ]
        };
        BTreeMap::from([
            ("SFT".to_string(), model([1.0, 5.0, 3.0], 10)),
            ("PPO".to_string(), model([5.0, 5.0, 7.0], 12)),
            ("DPO".to_string(), model([1.0, 1.0, 3.0], 30)),
        ])
    }

    #[test]
    fn means_per_category_and_wins_against_the_baseline() {
        let all = answers();
        let mut s = HeldOutSummary::new(&all, true);
        let math = &s.table["PPO"]["math"];
        assert_eq!(
            (math.n, math.gold, math.accuracy, math.chars),
            (2, 5.0, 1.0, 12.0)
        );
        let overall = &s.table["SFT"]["overall"];
        assert_eq!((overall.n, overall.gold, overall.rm), (3, 3.0, 1.5));
        let gold = |m: &str, id: &str| all[m].iter().find(|a| a.id == id).unwrap().gold_score;
        let by_text = |id: &str, a: &str, b: &str| {
            let g = |text: &str| {
                all.iter()
                    .find_map(|(m, l)| {
                        l.iter()
                            .any(|x| x.id == id && x.answer == text)
                            .then_some(m)
                    })
                    .and_then(|m| gold(m, id))
            };
            g(a).partial_cmp(&g(b)).unwrap()
        };
        s.compare_with_baseline(&all, by_text);
        let ppo = s.versus_sft["PPO"]["overall"];
        assert_eq!((ppo.wins, ppo.ties, ppo.losses), (2, 1, 0));
        assert!(!s.versus_sft.contains_key("SFT"));
        let md = s.markdown();
        assert!(md.contains("| math | 1.000 | 5.000 | 3.000 |"), "{md}");
        assert!(md.contains("| PPO | 2 | 1 | 0 | +0.667 |"), "{md}");
        let pooled = s
            .versus_sft_pooled("PPO", &["math", "write", "none"])
            .unwrap();
        assert_eq!((pooled.wins, pooled.ties, pooled.losses), (2, 1, 0));
        assert_eq!(s.versus_sft_pooled("SFT", &["math"]), None);
        let svg = s.category_chart().svg((500, 300)).unwrap();
        for label in ["math", "write", "SFT", "PPO", "DPO"] {
            assert!(
                svg.contains(&format!("\n{label}\n</text>")),
                "missing {label}"
            );
        }
        // The summary file round-trips.
        let back: HeldOutSummary =
            serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn every_model_against_the_control_when_it_was_evaluated() {
        let mut all = answers();
        let mut s = HeldOutSummary::new(&all, true);
        // Without the control: no such table, and an old summary without the field reads.
        s.compare_with_baseline(&all, |_, _, _| Ordering::Equal);
        assert!(s.versus_control.is_empty());
        assert!(!s.markdown().contains("Against the control"));
        let mut old = serde_json::to_value(&s).unwrap();
        old.as_object_mut().unwrap().remove("versus_control");
        let back: HeldOutSummary = serde_json::from_value(old).unwrap();
        assert!(back.versus_control.is_empty());
        // The control scores 3, 5, 1: PPO (5, 5, 7) wins, ties, wins; DPO (1, 1, 3) loses,
        // loses, wins; SFT (1, 5, 3) loses, ties, wins.
        let ctl = vec![
            answer("1", "math", "x", 3.0),
            answer("2", "math", "y", 5.0),
            answer("3", "write", "z", 1.0),
        ];
        all.insert(CONTROL.to_string(), ctl);
        let gold: BTreeMap<(String, String), f64> = all
            .values()
            .flatten()
            .map(|a| ((a.id.clone(), a.answer.clone()), a.gold_score.unwrap()))
            .collect();
        let by_text = |id: &str, a: &str, b: &str| {
            let g = |t: &str| gold[&(id.to_string(), t.to_string())];
            g(a).partial_cmp(&g(b)).unwrap()
        };
        let mut s = HeldOutSummary::new(&all, true);
        s.compare_with_baseline(&all, by_text);
        let wtl = |m: &str| {
            let o = s.versus_control[m];
            (o.wins, o.ties, o.losses)
        };
        assert_eq!(wtl("PPO"), (2, 1, 0));
        assert_eq!(wtl("DPO"), (1, 0, 2));
        assert_eq!(wtl("SFT"), (1, 1, 1));
        assert!(!s.versus_control.contains_key(CONTROL));
        // The control is also compared with SFT like every model: 3 > 1, 5 = 5, 1 < 3.
        let c = s.versus_sft[CONTROL]["overall"];
        assert_eq!((c.wins, c.ties, c.losses), (1, 1, 1));
        let md = s.markdown();
        assert!(md.contains("Against the control SFT-chosen"), "{md}");
        assert!(md.contains("| DPO | 1 | 0 | 2 | -0.333 |"), "{md}");
    }

    #[test]
    fn agreement_counts_only_decided_pairs() {
        let dir = tempfile::tempdir().unwrap();
        let (scores, meta) = (dir.path().join("s.jsonl"), dir.path().join("m.jsonl"));
        std::fs::write(
            &scores,
            "{\"id\":\"a\",\"chosen\":1.0,\"rejected\":0.0}\n{\"id\":\"b\",\"chosen\":0.0,\"rejected\":1.0}\n\
             {\"id\":\"c\",\"chosen\":2.0,\"rejected\":0.0}\nnot json\n{\"id\":\"d\",\"chosen\":2.0,\"rejected\":0.0}\n",
        )
        .unwrap();
        std::fs::write(
            &meta,
            "{\"id\":\"a\",\"gold\":1}\n{\"id\":\"b\",\"gold\":1}\n{\"id\":\"c\",\"gold\":0}\n{\"id\":\"d\",\"gold\":-1}\n",
        )
        .unwrap();
        assert_eq!(gold_agreement(&scores, &meta), Some((1.0 / 3.0, 3)));
        assert_eq!(gold_agreement(&scores, &dir.path().join("none")), None);
    }
}
