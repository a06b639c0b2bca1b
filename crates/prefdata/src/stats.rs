//! Data statistics in the shape of the paper's Table 2, as Markdown and JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::schema::Comparison;
use crate::tokens::TokenCounter;

/// Category name used for comparisons without one.
pub const NO_CATEGORY: &str = "(none)";

/// One row of the statistics table.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsRow {
    /// Row label (`all`, `single-turn`, `multi-turn`, or a category).
    pub name: String,
    /// Number of comparisons.
    pub comparisons: u64,
    /// Mean user turns per conversation, the current prompt included.
    pub avg_turns: f64,
    /// Mean tokens of the history (sum over its messages).
    pub avg_history_tokens: f64,
    /// Mean tokens of the prompt.
    pub avg_prompt_tokens: f64,
    /// Mean tokens of the chosen reply.
    pub avg_chosen_tokens: f64,
    /// Mean tokens of the rejected reply.
    pub avg_rejected_tokens: f64,
}

#[derive(Clone, Debug, Default)]
struct Acc {
    n: u64,
    turns: u64,
    history: u64,
    prompt: u64,
    chosen: u64,
    rejected: u64,
}

impl Acc {
    fn add(&mut self, turns: usize, t: [usize; 4]) {
        self.n += 1;
        self.turns += turns as u64;
        self.history += t[0] as u64;
        self.prompt += t[1] as u64;
        self.chosen += t[2] as u64;
        self.rejected += t[3] as u64;
    }

    fn row(&self, name: &str) -> StatsRow {
        let mean = |x: u64| {
            if self.n == 0 {
                0.0
            } else {
                x as f64 / self.n as f64
            }
        };
        StatsRow {
            name: name.to_owned(),
            comparisons: self.n,
            avg_turns: mean(self.turns),
            avg_history_tokens: mean(self.history),
            avg_prompt_tokens: mean(self.prompt),
            avg_chosen_tokens: mean(self.chosen),
            avg_rejected_tokens: mean(self.rejected),
        }
    }
}

/// Statistics of a preference data set: overall, by single/multi-turn, and by category.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DatasetStats {
    /// Name of the token counter used (free text, for the table caption).
    pub tokenizer: String,
    /// All comparisons.
    pub overall: StatsRow,
    /// Comparisons without history.
    pub single_turn: StatsRow,
    /// Comparisons with history.
    pub multi_turn: StatsRow,
    /// One row per category, sorted by name; [`NO_CATEGORY`] collects the rest.
    pub by_category: Vec<StatsRow>,
}

impl DatasetStats {
    /// Pretty JSON.
    ///
    /// # Errors
    /// Never in practice.
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// A Markdown table: overall, single-turn, multi-turn, then one row per category.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "Token counts via `{}`.\n", self.tokenizer);
        let _ = writeln!(
            s,
            "| subset | comparisons | avg turns | avg history tokens | avg prompt tokens | avg chosen tokens | avg rejected tokens |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|");
        let rows = [&self.overall, &self.single_turn, &self.multi_turn]
            .into_iter()
            .chain(self.by_category.iter());
        for r in rows {
            let _ = writeln!(
                s,
                "| {} | {} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} |",
                r.name,
                r.comparisons,
                r.avg_turns,
                r.avg_history_tokens,
                r.avg_prompt_tokens,
                r.avg_chosen_tokens,
                r.avg_rejected_tokens
            );
        }
        s
    }
}

/// Accumulates statistics one comparison at a time (for streaming over a Parquet file).
///
/// Also records every chosen − rejected token difference for
/// [`length_diff_histogram_svg`](crate::length_diff_histogram_svg).
#[derive(Debug)]
pub struct StatsAccumulator<C> {
    counter: C,
    tokenizer: String,
    overall: Acc,
    single: Acc,
    multi: Acc,
    categories: BTreeMap<String, Acc>,
    diffs: Vec<i64>,
}

impl<C: TokenCounter> StatsAccumulator<C> {
    /// Starts with `counter`; `tokenizer` names it in the report.
    pub fn new(counter: C, tokenizer: impl Into<String>) -> Self {
        Self {
            counter,
            tokenizer: tokenizer.into(),
            overall: Acc::default(),
            single: Acc::default(),
            multi: Acc::default(),
            categories: BTreeMap::new(),
            diffs: Vec::new(),
        }
    }

    /// Adds one comparison. Lengths are always counted with this accumulator's counter (the
    /// stored `*_tokens` columns may come from another tokenizer).
    pub fn add(&mut self, c: &Comparison) {
        let count = |s: &str| self.counter.count(s);
        let t = [
            c.history.iter().map(|m| count(&m.content)).sum(),
            count(&c.prompt),
            count(&c.chosen),
            count(&c.rejected),
        ];
        let turns = c.turns();
        self.overall.add(turns, t);
        if c.is_multi_turn() {
            self.multi.add(turns, t);
        } else {
            self.single.add(turns, t);
        }
        let cat = c.category.as_deref().unwrap_or(NO_CATEGORY);
        if let Some(acc) = self.categories.get_mut(cat) {
            acc.add(turns, t);
        } else {
            let mut acc = Acc::default();
            acc.add(turns, t);
            self.categories.insert(cat.to_owned(), acc);
        }
        self.diffs.push(t[2] as i64 - t[3] as i64);
    }

    /// Chosen − rejected token differences seen so far, in input order.
    pub fn length_diffs(&self) -> &[i64] {
        &self.diffs
    }

    /// The statistics table and the length differences.
    pub fn finish(self) -> (DatasetStats, Vec<i64>) {
        let stats = DatasetStats {
            tokenizer: self.tokenizer,
            overall: self.overall.row("all"),
            single_turn: self.single.row("single-turn"),
            multi_turn: self.multi.row("multi-turn"),
            by_category: self
                .categories
                .iter()
                .map(|(name, acc)| acc.row(name))
                .collect(),
        };
        (stats, self.diffs)
    }
}

/// Computes [`DatasetStats`] (and the length differences) over `rows`.
pub fn compute_stats<'a, C: TokenCounter>(
    rows: impl IntoIterator<Item = &'a Comparison>,
    counter: C,
    tokenizer: &str,
) -> (DatasetStats, Vec<i64>) {
    let mut acc = StatsAccumulator::new(counter, tokenizer);
    for c in rows {
        acc.add(c);
    }
    acc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Message, Role};
    use crate::tokens::CharCounter;

    #[test]
    fn averages_split_by_turns_and_category() {
        let mut a = Comparison::new("a", "t", "12", "1234", "12");
        a.category = Some("math".into());
        let mut b = Comparison::new("b", "t", "1234", "1", "123");
        b.history = vec![
            Message::new(Role::User, "123456"),
            Message::new(Role::Assistant, "12"),
        ];
        let (stats, diffs) = compute_stats([&a, &b], CharCounter, "chars");
        assert_eq!(diffs, [2, -2]);
        let o = &stats.overall;
        assert_eq!(o.comparisons, 2);
        assert!((o.avg_turns - 1.5).abs() < 1e-9);
        assert!((o.avg_history_tokens - 4.0).abs() < 1e-9);
        assert!((o.avg_prompt_tokens - 3.0).abs() < 1e-9);
        assert!((o.avg_chosen_tokens - 2.5).abs() < 1e-9);
        assert!((o.avg_rejected_tokens - 2.5).abs() < 1e-9);
        assert_eq!(stats.single_turn.comparisons, 1);
        assert_eq!(stats.multi_turn.comparisons, 1);
        assert!((stats.multi_turn.avg_turns - 2.0).abs() < 1e-9);
        let names: Vec<_> = stats.by_category.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, [NO_CATEGORY, "math"]);

        let md = stats.to_markdown();
        assert!(
            md.contains("| all | 2 | 1.50 | 4.0 | 3.0 | 2.5 | 2.5 |"),
            "{md}"
        );
        assert!(md.contains("| math | 1 |"), "{md}");
        let back: DatasetStats = serde_json::from_str(&stats.to_json().unwrap()).unwrap();
        assert_eq!(back, stats);
    }

    #[test]
    fn empty_input_gives_zero_rows() {
        let (stats, diffs) = compute_stats([], CharCounter, "chars");
        assert_eq!(stats.overall.comparisons, 0);
        assert_eq!(stats.overall.avg_turns, 0.0);
        assert!(diffs.is_empty());
        assert!(stats.by_category.is_empty());
    }
}
