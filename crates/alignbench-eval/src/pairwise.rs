//! Pairwise evaluation (ChatGLM-RLHF Table 4): win/tie/lose of model A against model B per
//! category, judged in both orders to cancel position bias, plus CSV sheets for human raters.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use rlhf_util::write_atomic;

/// A verdict about the two answers *as shown* (first/left vs second/right).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preference {
    /// The first (left) answer is better.
    First,
    /// The second (right) answer is better.
    Second,
    /// Neither is better.
    Tie,
}

/// The result for model A against model B on one prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A is better.
    Win,
    /// Neither.
    Tie,
    /// B is better.
    Loss,
}

/// How the verdicts of the two orders are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CombineRule {
    /// A wins only if preferred in both orders, loses only if B is preferred in both;
    /// anything else is a tie (the conservative rule of MT-Bench).
    #[default]
    Consistent,
    /// Sum of the two votes (+1 for A, −1 for B, 0 for a tie): positive wins, negative
    /// loses, zero ties. One preference plus one tie counts as a win.
    Sum,
}

/// A verdict as a vote for model A: +1 for A, −1 for B, 0 for a tie, given whether A was
/// shown first.
pub(crate) fn vote_for_a(p: Preference, a_first: bool) -> i32 {
    match (p, a_first) {
        (Preference::Tie, _) => 0,
        (Preference::First, true) | (Preference::Second, false) => 1,
        _ => -1,
    }
}

/// Combines the verdict with A shown first (`ab`) and with B shown first (`ba`).
pub fn combine_orders(ab: Preference, ba: Preference, rule: CombineRule) -> Outcome {
    let (x, y) = (vote_for_a(ab, true), vote_for_a(ba, false));
    match rule {
        CombineRule::Consistent if x == 1 && y == 1 => Outcome::Win,
        CombineRule::Consistent if x == -1 && y == -1 => Outcome::Loss,
        CombineRule::Consistent => Outcome::Tie,
        CombineRule::Sum => match (x + y).signum() {
            1 => Outcome::Win,
            -1 => Outcome::Loss,
            _ => Outcome::Tie,
        },
    }
}

/// Win/tie/loss counts (reading also accepts the `win`/`tie`/`lose` keys of older pipeline
/// summaries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WinTieLoss {
    /// A better.
    #[serde(alias = "win")]
    pub wins: usize,
    /// Neither.
    #[serde(alias = "tie")]
    pub ties: usize,
    /// B better.
    #[serde(alias = "lose")]
    pub losses: usize,
}

impl WinTieLoss {
    /// Counts one outcome.
    pub fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Win => self.wins += 1,
            Outcome::Tie => self.ties += 1,
            Outcome::Loss => self.losses += 1,
        }
    }

    /// Number of comparisons.
    pub fn n(&self) -> usize {
        self.wins + self.ties + self.losses
    }

    /// `(wins − losses) / n`, the paper's "more wins than losses"; `None` when `n == 0`.
    pub fn net_win_rate(&self) -> Option<f64> {
        let n = self.n();
        (n > 0).then(|| (self.wins as f64 - self.losses as f64) / n as f64)
    }

    /// `wins / n`; `None` when `n == 0`.
    pub fn win_rate(&self) -> Option<f64> {
        let n = self.n();
        (n > 0).then(|| self.wins as f64 / n as f64)
    }
}

/// Win/tie/loss per category and overall.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PairwiseTally {
    /// Model A (the "win" side).
    pub model_a: String,
    /// Model B.
    pub model_b: String,
    /// Per category, in first-seen order.
    pub categories: IndexMap<String, WinTieLoss>,
    /// All items.
    pub overall: WinTieLoss,
}

impl PairwiseTally {
    /// An empty tally.
    pub fn new(model_a: impl Into<String>, model_b: impl Into<String>) -> Self {
        PairwiseTally {
            model_a: model_a.into(),
            model_b: model_b.into(),
            ..PairwiseTally::default()
        }
    }

    /// Counts one outcome in `category` and overall.
    pub fn add(&mut self, category: &str, outcome: Outcome) {
        self.categories
            .entry(category.to_owned())
            .or_default()
            .add(outcome);
        self.overall.add(outcome);
    }

    /// A Markdown table: category | win | tie | lose | net win rate.
    pub fn to_markdown(&self) -> String {
        let mut out = format!(
            "{} vs {}\n\n| category | win | tie | lose | net win rate |\n|---|---:|---:|---:|---:|\n",
            self.model_a, self.model_b
        );
        let rows = self
            .categories
            .iter()
            .map(|(c, t)| (c.as_str(), t))
            .chain([("overall", &self.overall)]);
        for (category, t) in rows {
            let net = t
                .net_win_rate()
                .map_or_else(|| "n/a".to_owned(), |r| format!("{:+.1}%", 100.0 * r));
            out.push_str(&format!(
                "| {category} | {} | {} | {} | {net} |\n",
                t.wins, t.ties, t.losses
            ));
        }
        out
    }
}

/// One prompt with both models' answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairItem {
    /// A unique id (also decides the left/right order in rating sheets).
    pub id: String,
    /// The prompt's category.
    pub category: String,
    /// The prompt.
    pub prompt: String,
    /// Model A's answer.
    pub answer_a: String,
    /// Model B's answer.
    pub answer_b: String,
    /// A reference answer, shown to an LLM judge when present (AlignBench has one for every
    /// question); other verdict functions may ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// What a verdict function is shown: a prompt and two answers in display order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairwiseQuery {
    /// The item id.
    pub id: String,
    /// The prompt.
    pub prompt: String,
    /// The item's reference answer, if any.
    pub reference: Option<String>,
    /// The answer shown first.
    pub first: String,
    /// The answer shown second.
    pub second: String,
}

/// Both verdicts of one item and their combination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemResult {
    /// The item id.
    pub id: String,
    /// Its category.
    pub category: String,
    /// Verdict with A shown first.
    pub ab: Preference,
    /// Verdict with B shown first.
    pub ba: Preference,
    /// The combined outcome for A.
    pub outcome: Outcome,
}

/// The result of [`evaluate_pairwise`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairwiseReport {
    /// The counts.
    pub tally: PairwiseTally,
    /// Per item, in input order.
    pub items: Vec<ItemResult>,
    /// The rule used.
    pub rule: CombineRule,
}

/// The two queries of an item: A shown first, then B shown first.
pub(crate) fn queries(item: &PairItem) -> (PairwiseQuery, PairwiseQuery) {
    let q = |first: &str, second: &str| PairwiseQuery {
        id: item.id.clone(),
        prompt: item.prompt.clone(),
        reference: item.reference.clone(),
        first: first.to_owned(),
        second: second.to_owned(),
    };
    (
        q(&item.answer_a, &item.answer_b),
        q(&item.answer_b, &item.answer_a),
    )
}

impl PairwiseReport {
    /// An empty report.
    pub(crate) fn empty(model_a: &str, model_b: &str, rule: CombineRule, capacity: usize) -> Self {
        PairwiseReport {
            tally: PairwiseTally::new(model_a, model_b),
            items: Vec::with_capacity(capacity),
            rule,
        }
    }
}

/// Combines the two verdicts of `item` with the report's rule and counts the outcome: the one
/// place every pairwise judge (score functions, LLM judges) goes through.
pub(crate) fn record(report: &mut PairwiseReport, item: &PairItem, ab: Preference, ba: Preference) {
    let outcome = combine_orders(ab, ba, report.rule);
    report.tally.add(&item.category, outcome);
    report.items.push(ItemResult {
        id: item.id.clone(),
        category: item.category.clone(),
        ab,
        ba,
        outcome,
    });
}

/// Judges every item in both orders with `verdict` and tallies the outcomes.
///
/// # Errors
/// The first error of `verdict`.
pub fn evaluate_pairwise(
    model_a: &str,
    model_b: &str,
    items: &[PairItem],
    rule: CombineRule,
    mut verdict: impl FnMut(&PairwiseQuery) -> Result<Preference>,
) -> Result<PairwiseReport> {
    let mut report = PairwiseReport::empty(model_a, model_b, rule, items.len());
    for item in items {
        let (ab_query, ba_query) = queries(item);
        let ab = verdict(&ab_query)?;
        let ba = verdict(&ba_query)?;
        record(&mut report, item, ab, ba);
    }
    Ok(report)
}

/// [`evaluate_pairwise`] from pointwise scores: `scores[i]` holds the scores of item `i`'s
/// answers A and B (a reward model's, or an offline judge's); in each order the higher score
/// wins and scores within `tie_margin` tie.
///
/// # Errors
/// [`Error::InvalidArgument`] when `scores` and `items` differ in length.
pub fn evaluate_pairwise_scored(
    model_a: &str,
    model_b: &str,
    items: &[PairItem],
    rule: CombineRule,
    scores: &[(f64, f64)],
    tie_margin: f64,
) -> Result<PairwiseReport> {
    if scores.len() != items.len() {
        return Err(Error::InvalidArgument(format!(
            "{} score pairs for {} pairwise items",
            scores.len(),
            items.len()
        )));
    }
    let by_answer: HashMap<(&str, &str), f64> = items
        .iter()
        .zip(scores)
        .flat_map(|(it, &(a, b))| {
            [
                ((it.id.as_str(), it.answer_a.as_str()), a),
                ((it.id.as_str(), it.answer_b.as_str()), b),
            ]
        })
        .collect();
    evaluate_pairwise(model_a, model_b, items, rule, |q| {
        let get = |t: &str| by_answer[&(q.id.as_str(), t)];
        let (x, y) = (get(&q.first), get(&q.second));
        Ok(if (x - y).abs() <= tie_margin {
            Preference::Tie
        } else if x > y {
            Preference::First
        } else {
            Preference::Second
        })
    })
}

/// [`evaluate_pairwise`] with an async verdict function (e.g. an LLM judge), one call at a
/// time.
///
/// # Errors
/// The first error of `verdict`.
pub async fn evaluate_pairwise_async<F, Fut>(
    model_a: &str,
    model_b: &str,
    items: &[PairItem],
    rule: CombineRule,
    mut verdict: F,
) -> Result<PairwiseReport>
where
    F: FnMut(PairwiseQuery) -> Fut,
    Fut: Future<Output = Result<Preference>>,
{
    let mut report = PairwiseReport::empty(model_a, model_b, rule, items.len());
    for item in items {
        let (ab_query, ba_query) = queries(item);
        let ab = verdict(ab_query).await?;
        let ba = verdict(ba_query).await?;
        record(&mut report, item, ab, ba);
    }
    Ok(report)
}

/// Whether model A's answer is shown on the left for `item_id` in a sheet made with `seed`:
/// the low bit of sha256(seed as 8 little-endian bytes ‖ item id). Stable across versions
/// and platforms, so a sheet can be tabulated again from the seed alone.
pub fn a_is_left(seed: u64, item_id: &str) -> bool {
    let mut hasher = Sha256::new();
    hasher.update(seed.to_le_bytes());
    hasher.update(item_id.as_bytes());
    hasher.finalize()[0] & 1 == 0
}

/// The header of a rating sheet.
pub const SHEET_HEADER: [&str; 6] = ["item_id", "category", "prompt", "left", "right", "verdict"];

/// A blind rating sheet as CSV (UTF-8 with a byte-order mark, so spreadsheet programs read
/// Chinese text correctly): one row per item with the answers as left/right in an order
/// decided by [`a_is_left`], and an empty `verdict` column for the rater to fill with
/// `left`, `right` or `tie`. Keep the seed: [`tabulate_rating_sheet`] needs it.
///
/// # Errors
/// [`Error::InvalidArgument`] if two items share an id, [`Error::Csv`] on a CSV error.
pub fn rating_sheet_csv(items: &[PairItem], seed: u64) -> Result<String> {
    let mut ids = std::collections::HashSet::new();
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(SHEET_HEADER).map_err(Error::Csv)?;
    for item in items {
        if !ids.insert(item.id.as_str()) {
            return Err(Error::InvalidArgument(format!(
                "duplicate item id {:?}",
                item.id
            )));
        }
        let (left, right) = if a_is_left(seed, &item.id) {
            (&item.answer_a, &item.answer_b)
        } else {
            (&item.answer_b, &item.answer_a)
        };
        writer
            .write_record([&item.id, &item.category, &item.prompt, left, right, ""])
            .map_err(Error::Csv)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| Error::InvalidArgument(e.to_string()))?;
    let body = String::from_utf8(bytes).map_err(|e| Error::InvalidArgument(e.to_string()))?;
    Ok(format!("\u{feff}{body}"))
}

/// Writes [`rating_sheet_csv`] to `path` atomically.
///
/// # Errors
/// As [`rating_sheet_csv`], or [`Error::Util`] when the write fails.
pub fn write_rating_sheet(path: &Path, items: &[PairItem], seed: u64) -> Result<()> {
    Ok(write_atomic(
        path,
        rating_sheet_csv(items, seed)?.as_bytes(),
    )?)
}

/// Reads a rater's verdict: `left`/`l`/`左`, `right`/`r`/`右`, `tie`/`t`/`平`/`平局`/`=`
/// (case and surrounding space ignored); `None` for an empty cell.
fn parse_verdict(text: &str) -> std::result::Result<Option<Preference>, String> {
    let v = text.trim().to_lowercase();
    Ok(Some(match v.as_str() {
        "" => return Ok(None),
        "left" | "l" | "左" => Preference::First,
        "right" | "r" | "右" => Preference::Second,
        "tie" | "t" | "平" | "平局" | "=" => Preference::Tie,
        _ => return Err(format!("verdict {text:?} is not left, right or tie")),
    }))
}

/// A tabulated rating sheet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SheetTally {
    /// Win/tie/loss of model A, per category and overall.
    pub tally: PairwiseTally,
    /// Rows left without a verdict.
    pub unrated: usize,
}

/// Tabulates a filled-in rating sheet (as made by [`rating_sheet_csv`] with the same `seed`)
/// into win/tie/loss for model A, mapping left/right back to the models. Columns are found by
/// header name, so extra columns and reordered rows are fine.
///
/// # Errors
/// [`Error::Csv`] for unreadable CSV, [`Error::Sheet`] for a missing column, a repeated item
/// id or an invalid verdict (naming the row).
pub fn tabulate_rating_sheet(
    csv_text: &str,
    model_a: &str,
    model_b: &str,
    seed: u64,
) -> Result<SheetTally> {
    let text = csv_text.strip_prefix('\u{feff}').unwrap_or(csv_text);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = reader.headers().map_err(Error::Csv)?.clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| Error::Sheet {
                row: 0,
                message: format!("no {name:?} column"),
            })
    };
    let (id_col, cat_col, verdict_col) =
        (column("item_id")?, column("category")?, column("verdict")?);
    let mut tally = PairwiseTally::new(model_a, model_b);
    let mut unrated = 0;
    let mut seen = std::collections::HashSet::new();
    for (index, record) in reader.records().enumerate() {
        let row = index + 1;
        let record = record.map_err(Error::Csv)?;
        let get = |i: usize| record.get(i).unwrap_or("");
        let id = get(id_col).trim().to_owned();
        if id.is_empty() && record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if !seen.insert(id.clone()) {
            return Err(Error::Sheet {
                row,
                message: format!("item {id:?} appears twice"),
            });
        }
        let verdict =
            parse_verdict(get(verdict_col)).map_err(|message| Error::Sheet { row, message })?;
        let Some(verdict) = verdict else {
            unrated += 1;
            continue;
        };
        let a_left = a_is_left(seed, &id);
        let outcome = match (verdict, a_left) {
            (Preference::Tie, _) => Outcome::Tie,
            (Preference::First, true) | (Preference::Second, false) => Outcome::Win,
            _ => Outcome::Loss,
        };
        tally.add(get(cat_col).trim(), outcome);
    }
    Ok(SheetTally { tally, unrated })
}

/// Reads a rating sheet file and tabulates it.
///
/// # Errors
/// [`Error::Io`] or as [`tabulate_rating_sheet`].
pub fn read_rating_sheet(
    path: &Path,
    model_a: &str,
    model_b: &str,
    seed: u64,
) -> Result<SheetTally> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    tabulate_rating_sheet(&text, model_a, model_b, seed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Preference::{First, Second, Tie};

    #[test]
    fn combine_rules() {
        use CombineRule::{Consistent, Sum};
        // A first and preferred, then B first and A (second) preferred: a clean win.
        assert_eq!(combine_orders(First, Second, Consistent), Outcome::Win);
        assert_eq!(combine_orders(Second, First, Consistent), Outcome::Loss);
        // Always the first position: pure position bias, cancels out.
        assert_eq!(combine_orders(First, First, Consistent), Outcome::Tie);
        assert_eq!(combine_orders(First, First, Sum), Outcome::Tie);
        assert_eq!(combine_orders(First, Tie, Consistent), Outcome::Tie);
        assert_eq!(combine_orders(First, Tie, Sum), Outcome::Win);
        assert_eq!(combine_orders(Tie, First, Sum), Outcome::Loss);
        assert_eq!(combine_orders(Tie, Tie, Sum), Outcome::Tie);
    }

    #[test]
    fn net_win_rate() {
        let t = WinTieLoss {
            wins: 5,
            ties: 3,
            losses: 2,
        };
        assert_eq!(t.net_win_rate(), Some(0.3));
        assert_eq!(WinTieLoss::default().net_win_rate(), None);
    }

    #[test]
    fn verdict_spellings() {
        assert_eq!(parse_verdict(" Left "), Ok(Some(First)));
        assert_eq!(parse_verdict("右"), Ok(Some(Second)));
        assert_eq!(parse_verdict("平局"), Ok(Some(Tie)));
        assert_eq!(parse_verdict(""), Ok(None));
        assert!(parse_verdict("both").is_err());
    }
}
