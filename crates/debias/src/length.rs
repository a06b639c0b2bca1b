//! Bucket-based length balancing of a preference set (SPEC §A.3.3) and its report.
//!
//! For each pair, Δ = len(chosen) − len(rejected). Pairs with Δ > 0 are "long-wins", Δ < 0
//! "short-wins", Δ = 0 "ties". Pairs go to buckets on |Δ| ([`BalanceConfig::edges`]); inside each
//! bucket (or each (category, bucket) cell when [`BalanceConfig::stratify_by_category`]) the
//! long-wins and short-wins sides are made equally heavy:
//!
//! * [`BalanceMode::Downsample`]: keep all `m = min(|L|, |S|)` pairs of the smaller side and a
//!   seeded uniform subset of `m` pairs of the larger side;
//! * [`BalanceMode::Reweight`]: keep every pair, with weight `m / |side|`.
//!
//! Ties carry no length signal and are always kept with weight 1.
//!
//! # Determinism
//! The result is a pure function of `(pairs, config)`. Down-sampling uses one ChaCha8 stream per
//! cell, seeded from `config.seed`, the bucket index and a fixed FNV-1a hash of the category.
//! Before sampling, the larger side is put into a canonical order by
//! `(chosen_len, rejected_len, category, input index)`. Consequently:
//! * the same input in the same order always gives the same kept indices;
//! * permuting the input keeps the **multiset of kept `(chosen_len, rejected_len, category)`
//!   triples** unchanged (pairs that agree on all three are interchangeable, and which of them
//!   is kept follows input order);
//! * changing one bucket's pairs does not change which pairs are kept in another bucket.

use crate::buckets::{BucketRange, bucket_index};
use crate::config::{BalanceConfig, BalanceMode, LengthUnit};
use crate::{Error, Result};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rlhf_util::{fnv1a, splitmix64};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Lengths of one preference pair's two responses, as measured by the caller.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PairLengths {
    /// Length of the preferred response.
    pub chosen_len: usize,
    /// Length of the dispreferred response.
    pub rejected_len: usize,
    /// Optional task category (e.g. an AlignBench main category), used for stratification and
    /// the per-category report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

impl PairLengths {
    /// A pair without a category.
    pub fn new(chosen_len: usize, rejected_len: usize) -> Self {
        PairLengths {
            chosen_len,
            rejected_len,
            category: None,
        }
    }

    /// Returns the pair with `category` set.
    pub fn with_category(mut self, category: impl Into<String>) -> Self {
        self.category = Some(category.into());
        self
    }

    /// Δ = chosen_len − rejected_len (saturating at the `i64` range).
    pub fn delta(&self) -> i64 {
        let d = i64::try_from(self.abs_delta()).unwrap_or(i64::MAX);
        if self.chosen_len >= self.rejected_len {
            d
        } else {
            -d
        }
    }

    /// |Δ|.
    pub fn abs_delta(&self) -> u64 {
        u64::try_from(self.chosen_len.abs_diff(self.rejected_len)).unwrap_or(u64::MAX)
    }

    /// Which response the label favours, by length.
    pub fn outcome(&self) -> Outcome {
        Outcome::of(self.chosen_len, self.rejected_len)
    }
}

/// The length outcome of a labelled pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The preferred response is the longer one (Δ > 0).
    LongerWins,
    /// The preferred response is the shorter one (Δ < 0).
    ShorterWins,
    /// Equal lengths (Δ = 0).
    Tie,
}

impl Outcome {
    /// Outcome for a preferred response of length `winner` against one of length `loser`.
    pub fn of(winner: usize, loser: usize) -> Outcome {
        match winner.cmp(&loser) {
            std::cmp::Ordering::Greater => Outcome::LongerWins,
            std::cmp::Ordering::Less => Outcome::ShorterWins,
            std::cmp::Ordering::Equal => Outcome::Tie,
        }
    }
}

/// One pair kept by [`balance_lengths`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KeptPair {
    /// Position of the pair in the input slice.
    pub index: usize,
    /// Sample weight: 1 for down-sampling and ties, `m / |side|` for re-weighting (> 0).
    pub weight: f64,
}

/// The output of [`balance_lengths`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Balanced {
    /// Kept pairs in increasing `index` order. Pairs with weight 0 (a re-weighted bucket whose
    /// other side is empty) are left out.
    pub kept: Vec<KeptPair>,
    /// Before/after statistics.
    pub report: BalanceReport,
}

impl Balanced {
    /// The kept input indices, increasing.
    pub fn indices(&self) -> Vec<usize> {
        self.kept.iter().map(|k| k.index).collect()
    }

    /// A dense weight per input pair (0 for dropped pairs); `n` is the input length.
    ///
    /// # Panics
    /// If a kept index is `>= n`.
    pub fn dense_weights(&self, n: usize) -> Vec<f64> {
        let mut w = vec![0.0; n];
        for k in &self.kept {
            w[k.index] = k.weight;
        }
        w
    }
}

/// Pair counts by length outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeCounts {
    /// Pairs where the longer response is preferred.
    pub long_wins: usize,
    /// Pairs where the shorter response is preferred.
    pub short_wins: usize,
    /// Pairs of equal length.
    pub ties: usize,
}

impl OutcomeCounts {
    /// All pairs.
    pub fn total(&self) -> usize {
        self.long_wins + self.short_wins + self.ties
    }

    fn add(&mut self, o: Outcome) {
        match o {
            Outcome::LongerWins => self.long_wins += 1,
            Outcome::ShorterWins => self.short_wins += 1,
            Outcome::Tie => self.ties += 1,
        }
    }
}

/// Summed sample weights by length outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct OutcomeWeights {
    /// Weight of long-wins pairs.
    pub long_wins: f64,
    /// Weight of short-wins pairs.
    pub short_wins: f64,
    /// Weight of ties.
    pub ties: f64,
}

impl OutcomeWeights {
    /// Total weight.
    pub fn total(&self) -> f64 {
        self.long_wins + self.short_wins + self.ties
    }

    fn add(&mut self, o: Outcome, w: f64) {
        match o {
            Outcome::LongerWins => self.long_wins += w,
            Outcome::ShorterWins => self.short_wins += w,
            Outcome::Tie => self.ties += w,
        }
    }
}

/// Before/after statistics of one |Δ| bucket (or of all of them, for totals).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketStats {
    /// The |Δ| range.
    pub range: BucketRange,
    /// Counts in the input.
    pub before: OutcomeCounts,
    /// Counts of kept pairs (weight > 0).
    pub after: OutcomeCounts,
    /// Summed weights of kept pairs (equal to `after` when down-sampling).
    pub after_weight: OutcomeWeights,
    /// `long_wins / (long_wins + short_wins)` in the input; `None` without non-tie pairs.
    pub longer_wins_fraction_before: Option<f64>,
    /// The same after balancing, by weight; `None` without kept non-tie pairs.
    pub longer_wins_fraction_after: Option<f64>,
}

impl BucketStats {
    fn empty(range: BucketRange) -> Self {
        BucketStats {
            range,
            before: OutcomeCounts::default(),
            after: OutcomeCounts::default(),
            after_weight: OutcomeWeights::default(),
            longer_wins_fraction_before: None,
            longer_wins_fraction_after: None,
        }
    }

    fn record(&mut self, o: Outcome, weight: f64) {
        self.before.add(o);
        if weight > 0.0 {
            self.after.add(o);
            self.after_weight.add(o, weight);
        }
    }

    fn finish(&mut self) {
        self.longer_wins_fraction_before =
            fraction(self.before.long_wins as f64, self.before.short_wins as f64);
        self.longer_wins_fraction_after =
            fraction(self.after_weight.long_wins, self.after_weight.short_wins);
    }

    /// Whether the kept long-wins and short-wins weights agree to a relative `1e-9`.
    pub fn is_balanced(&self) -> bool {
        let (l, s) = (self.after_weight.long_wins, self.after_weight.short_wins);
        (l - s).abs() <= 1e-9 * l.max(s).max(1.0)
    }
}

fn fraction(long: f64, short: f64) -> Option<f64> {
    let n = long + short;
    (n > 0.0).then(|| long / n)
}

/// Per-category statistics (present when at least one input pair has a category).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryReport {
    /// The category; `None` groups the pairs without one.
    pub category: Option<String>,
    /// One entry per bucket, in edge order.
    pub buckets: Vec<BucketStats>,
    /// All buckets of this category together.
    pub totals: BucketStats,
}

/// What [`balance_lengths`] did, per bucket; serialisable to JSON and printable as Markdown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BalanceReport {
    /// Balancing mode used.
    pub mode: BalanceMode,
    /// Unit the lengths were measured in.
    pub unit: LengthUnit,
    /// Seed used for down-sampling.
    pub seed: u64,
    /// Whether cells were (category, bucket) rather than bucket.
    pub stratify_by_category: bool,
    /// Lower bucket edges (the last bucket is unbounded).
    pub edges: Vec<u64>,
    /// Number of input pairs.
    pub n_input: usize,
    /// Number of kept pairs (weight > 0).
    pub n_kept: usize,
    /// One entry per bucket, in edge order.
    pub buckets: Vec<BucketStats>,
    /// All buckets together.
    pub totals: BucketStats,
    /// Per-category breakdown, sorted by category (`None` first); empty if no pair had one.
    pub categories: Vec<CategoryReport>,
}

impl BalanceReport {
    /// Whether every bucket is balanced (see [`BucketStats::is_balanced`]); with stratification,
    /// also every (category, bucket) cell.
    pub fn is_balanced(&self) -> bool {
        self.buckets.iter().all(BucketStats::is_balanced)
            && (!self.stratify_by_category
                || self
                    .categories
                    .iter()
                    .all(|c| c.buckets.iter().all(BucketStats::is_balanced)))
    }

    /// Pretty-printed JSON.
    ///
    /// # Errors
    /// [`Error::Json`] (not expected for this type).
    pub fn to_json_pretty(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Parses a report written by [`to_json_pretty`](Self::to_json_pretty).
    ///
    /// # Errors
    /// [`Error::Json`] if `s` is not a valid report.
    pub fn from_json(s: &str) -> Result<Self> {
        Ok(serde_json::from_str(s)?)
    }

    /// A Markdown summary: a header line, one table row per bucket plus a total row, and (when
    /// categories exist) a per-category table. After-columns show weights in re-weight mode.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let weighted = self.mode == BalanceMode::Reweight;
        let mode = match self.mode {
            BalanceMode::Downsample => "downsample",
            BalanceMode::Reweight => "reweight",
        };
        let _ = writeln!(
            s,
            "Length balancing: mode {mode}, unit {}, seed {}{}; kept {} of {} pairs.\n",
            self.unit,
            self.seed,
            if self.stratify_by_category {
                ", stratified by category"
            } else {
                ""
            },
            self.n_kept,
            self.n_input
        );
        let after = if weighted { "after (weight)" } else { "after" };
        let _ = writeln!(
            s,
            "| \\|Δ\\| ({unit}) | long-wins before | short-wins before | ties before | \
             longer-wins frac before | long-wins {after} | short-wins {after} | ties {after} | \
             longer-wins frac after |",
            unit = self.unit
        );
        s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for b in &self.buckets {
            row(&mut s, &b.range.to_string(), b, weighted);
        }
        row(&mut s, "**total**", &self.totals, weighted);
        if !self.categories.is_empty() {
            let _ = writeln!(
                s,
                "\n| category | long-wins before | short-wins before | ties before | \
                 longer-wins frac before | long-wins {after} | short-wins {after} | ties {after} | \
                 longer-wins frac after |"
            );
            s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
            for c in &self.categories {
                row(
                    &mut s,
                    c.category.as_deref().unwrap_or("(none)"),
                    &c.totals,
                    weighted,
                );
            }
        }
        s
    }
}

impl std::fmt::Display for BalanceReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_markdown())
    }
}

fn frac(x: Option<f64>) -> String {
    x.map_or_else(|| "–".to_string(), |v| format!("{v:.3}"))
}

fn row(s: &mut String, label: &str, b: &BucketStats, weighted: bool) {
    let (l, sh, t) = if weighted {
        let w = &b.after_weight;
        (
            format!("{:.2}", w.long_wins),
            format!("{:.2}", w.short_wins),
            format!("{:.2}", w.ties),
        )
    } else {
        let a = &b.after;
        (
            a.long_wins.to_string(),
            a.short_wins.to_string(),
            a.ties.to_string(),
        )
    };
    let _ = writeln!(
        s,
        "| {label} | {} | {} | {} | {} | {l} | {sh} | {t} | {} |",
        b.before.long_wins,
        b.before.short_wins,
        b.before.ties,
        frac(b.longer_wins_fraction_before),
        frac(b.longer_wins_fraction_after),
    );
}

/// Members of one balancing cell.
#[derive(Default)]
struct Cell {
    long: Vec<usize>,
    short: Vec<usize>,
    ties: Vec<usize>,
}

/// The RNG seed of one balancing cell: the category's FNV-1a (stable across Rust releases,
/// unlike `DefaultHasher`) and the bucket, decorrelated with the SplitMix64 finaliser.
fn cell_seed(seed: u64, category: Option<&str>, bucket: usize) -> u64 {
    let cat = category.map_or(0, |c| splitmix64(fnv1a(0, c.as_bytes())));
    splitmix64(seed ^ splitmix64(cat ^ splitmix64(bucket as u64)))
}

/// Balances long-wins against short-wins within each |Δ| bucket (SPEC §A.3.3).
///
/// Per bucket (or (category, bucket) cell), with `L` the long-wins and `S` the short-wins pairs
/// and `m = min(|L|, |S|)`: down-sampling keeps the smaller side whole and a seeded uniform
/// `m`-subset of the larger one; re-weighting keeps all with weight `m / |side|`. Ties
/// (Δ = 0) are kept with weight 1.
///
/// Deterministic: the same input in the same order gives the same kept indices. Permuting the
/// input leaves the multiset of kept `(chosen_len, rejected_len, category)` unchanged (the
/// larger side is canonically sorted before sampling, with one ChaCha8 stream per cell).
///
/// # Errors
/// The errors of [`BalanceConfig::validate`].
#[tracing::instrument(skip_all, fields(n = pairs.len(), mode = ?config.mode))]
pub fn balance_lengths(pairs: &[PairLengths], config: &BalanceConfig) -> Result<Balanced> {
    config.validate()?;
    let edges = &config.edges;

    // 1. Assign pairs to cells.
    let mut cells: BTreeMap<(Option<&str>, usize), Cell> = BTreeMap::new();
    for (i, p) in pairs.iter().enumerate() {
        let b = bucket_index(edges, p.abs_delta());
        let cat = if config.stratify_by_category {
            p.category.as_deref()
        } else {
            None
        };
        let cell = cells.entry((cat, b)).or_default();
        match p.outcome() {
            Outcome::LongerWins => cell.long.push(i),
            Outcome::ShorterWins => cell.short.push(i),
            Outcome::Tie => cell.ties.push(i),
        }
    }

    // 2. Weight every pair.
    let mut weights = vec![0.0_f64; pairs.len()];
    for ((cat, b), mut cell) in cells {
        for &i in &cell.ties {
            weights[i] = 1.0;
        }
        let m = cell.long.len().min(cell.short.len());
        tracing::trace!(
            category = cat,
            bucket = b,
            long = cell.long.len(),
            short = cell.short.len(),
            ties = cell.ties.len(),
            m,
            "balancing cell"
        );
        match config.mode {
            BalanceMode::Reweight => {
                for side in [&cell.long, &cell.short] {
                    if !side.is_empty() {
                        let w = m as f64 / side.len() as f64;
                        for &i in side {
                            weights[i] = w;
                        }
                    }
                }
            }
            BalanceMode::Downsample => {
                let (major, minor) = if cell.long.len() >= cell.short.len() {
                    (&mut cell.long, &cell.short)
                } else {
                    (&mut cell.short, &cell.long)
                };
                for &i in minor {
                    weights[i] = 1.0;
                }
                if m == major.len() {
                    for &i in major.iter() {
                        weights[i] = 1.0;
                    }
                } else if m > 0 {
                    major.sort_by(|&x, &y| {
                        let (px, py) = (&pairs[x], &pairs[y]);
                        (px.chosen_len, px.rejected_len, px.category.as_deref(), x).cmp(&(
                            py.chosen_len,
                            py.rejected_len,
                            py.category.as_deref(),
                            y,
                        ))
                    });
                    let mut rng = ChaCha8Rng::seed_from_u64(cell_seed(config.seed, cat, b));
                    for pos in rand::seq::index::sample(&mut rng, major.len(), m) {
                        weights[major[pos]] = 1.0;
                    }
                }
            }
        }
    }

    // 3. Report.
    let report = build_report(pairs, &weights, config);
    let kept: Vec<KeptPair> = weights
        .iter()
        .enumerate()
        .filter(|(_, w)| **w > 0.0)
        .map(|(index, &weight)| KeptPair { index, weight })
        .collect();
    tracing::debug!(
        kept = kept.len(),
        dropped = pairs.len() - kept.len(),
        "length balancing done"
    );
    Ok(Balanced { kept, report })
}

/// Builds a [`BalanceReport`] for arbitrary per-pair weights (0 = dropped).
///
/// [`balance_lengths`] calls this; it is public so that a weighting produced elsewhere (or a
/// subset chosen by hand, with weights 0/1) can be reported the same way.
///
/// # Errors
/// [`Error::LengthMismatch`] if `weights.len() != pairs.len()`, [`Error::InvalidWeight`] for a
/// negative or non-finite weight, and the errors of [`BalanceConfig::validate`].
pub fn balance_report(
    pairs: &[PairLengths],
    weights: &[f64],
    config: &BalanceConfig,
) -> Result<BalanceReport> {
    config.validate()?;
    crate::num::check_same_len("balance_report pairs/weights", pairs.len(), weights.len())?;
    if let Some((index, &value)) = weights
        .iter()
        .enumerate()
        .find(|(_, w)| !(w.is_finite() && **w >= 0.0))
    {
        return Err(Error::InvalidWeight { index, value });
    }
    Ok(build_report(pairs, weights, config))
}

fn build_report(pairs: &[PairLengths], weights: &[f64], config: &BalanceConfig) -> BalanceReport {
    let edges = &config.edges;
    let ranges = BucketRange::all(edges);
    let fresh = || {
        ranges
            .iter()
            .map(|&r| BucketStats::empty(r))
            .collect::<Vec<_>>()
    };
    let mut buckets = fresh();
    let mut totals = BucketStats::empty(BucketRange::ALL);
    let mut by_cat: BTreeMap<Option<&str>, (Vec<BucketStats>, BucketStats)> = BTreeMap::new();
    let has_categories = pairs.iter().any(|p| p.category.is_some());

    for (p, &w) in pairs.iter().zip(weights) {
        let b = bucket_index(edges, p.abs_delta());
        let o = p.outcome();
        buckets[b].record(o, w);
        totals.record(o, w);
        if has_categories {
            let (cb, ct) = by_cat
                .entry(p.category.as_deref())
                .or_insert_with(|| (fresh(), BucketStats::empty(BucketRange::ALL)));
            cb[b].record(o, w);
            ct.record(o, w);
        }
    }
    buckets.iter_mut().for_each(BucketStats::finish);
    totals.finish();
    let categories = by_cat
        .into_iter()
        .map(|(cat, (mut cb, mut ct))| {
            cb.iter_mut().for_each(BucketStats::finish);
            ct.finish();
            CategoryReport {
                category: cat.map(str::to_owned),
                buckets: cb,
                totals: ct,
            }
        })
        .collect();
    BalanceReport {
        mode: config.mode,
        unit: config.unit,
        seed: config.seed,
        stratify_by_category: config.stratify_by_category,
        edges: edges.clone(),
        n_input: pairs.len(),
        n_kept: weights.iter().filter(|w| **w > 0.0).count(),
        buckets,
        totals,
        categories,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// Cell seeds decide which pairs a balancing run keeps, so they must never change. Values
    /// from a Python model of the formula (FNV-1a of the category, SplitMix64 finaliser):
    /// `sm(seed ^ sm((0 if cat is None else sm(fnv(cat.encode()))) ^ sm(bucket)))`.
    #[test]
    fn cell_seeds_are_pinned() {
        assert_eq!(cell_seed(0, None, 0), 0x2382_75bc_38fc_be91);
        assert_eq!(cell_seed(42, Some("math"), 3), 0x903d_eda5_1e38_5b46);
        assert_eq!(cell_seed(7, Some("写作"), 6), 0xe78a_40ed_d822_0330);
    }

    fn p(c: usize, r: usize) -> PairLengths {
        PairLengths::new(c, r)
    }

    /// Random pairs: lengths in 0..max_len, a share of exact ties, optional categories.
    fn random_pairs(
        rng: &mut ChaCha8Rng,
        n: usize,
        max_len: usize,
        cats: &[&str],
    ) -> Vec<PairLengths> {
        (0..n)
            .map(|_| {
                let c = rng.random_range(0..max_len);
                let r = if rng.random_bool(0.1) {
                    c
                } else {
                    rng.random_range(0..max_len)
                };
                let mut pair = p(c, r);
                if !cats.is_empty() && rng.random_bool(0.9) {
                    pair.category = Some(cats[rng.random_range(0..cats.len())].to_string());
                }
                pair
            })
            .collect()
    }

    fn random_edges(rng: &mut ChaCha8Rng) -> Vec<u64> {
        let mut e = vec![0_u64];
        for _ in 0..rng.random_range(0..6) {
            let last = *e.last().unwrap();
            e.push(last + rng.random_range(1..60));
        }
        e
    }

    #[test]
    fn delta_and_outcome() {
        assert_eq!(p(10, 3).delta(), 7);
        assert_eq!(p(3, 10).delta(), -7);
        assert_eq!(p(3, 10).abs_delta(), 7);
        assert_eq!(p(3, 10).outcome(), Outcome::ShorterWins);
        assert_eq!(p(10, 3).outcome(), Outcome::LongerWins);
        assert_eq!(p(5, 5).outcome(), Outcome::Tie);
    }

    #[test]
    fn small_downsample_example() {
        // Bucket [0,16): L = {0,1,2}, S = {3}, tie {4}. Bucket [16,∞): L = {5}, S = {6,7}.
        let pairs = [
            p(5, 1),
            p(9, 2),
            p(3, 1),
            p(1, 4),
            p(7, 7),
            p(40, 1),
            p(1, 40),
            p(2, 30),
        ];
        let cfg = BalanceConfig::default().with_edges(vec![0, 16]);
        let out = balance_lengths(&pairs, &cfg).unwrap();
        let idx = out.indices();
        assert!(idx.contains(&3) && idx.contains(&4) && idx.contains(&5));
        assert_eq!(idx.iter().filter(|i| [0, 1, 2].contains(*i)).count(), 1);
        assert_eq!(idx.iter().filter(|i| [6, 7].contains(*i)).count(), 1);
        assert_eq!(out.kept.len(), 5);
        assert!(out.kept.iter().all(|k| k.weight == 1.0));
        let b0 = &out.report.buckets[0];
        assert_eq!(
            b0.before,
            OutcomeCounts {
                long_wins: 3,
                short_wins: 1,
                ties: 1
            }
        );
        assert_eq!(
            b0.after,
            OutcomeCounts {
                long_wins: 1,
                short_wins: 1,
                ties: 1
            }
        );
        assert_eq!(b0.longer_wins_fraction_before, Some(0.75));
        assert_eq!(b0.longer_wins_fraction_after, Some(0.5));
        assert_eq!(out.report.totals.before.total(), 8);
        assert_eq!(out.report.n_kept, 5);
        assert!(out.report.is_balanced());
    }

    #[test]
    fn small_reweight_example() {
        let pairs = [p(5, 1), p(9, 2), p(3, 1), p(1, 4), p(7, 7)];
        let cfg = BalanceConfig::default().with_mode(BalanceMode::Reweight);
        let out = balance_lengths(&pairs, &cfg).unwrap();
        let w = out.dense_weights(pairs.len());
        let third = 1.0 / 3.0;
        assert_eq!(w, vec![third, third, third, 1.0, 1.0]);
        let b0 = &out.report.buckets[0];
        assert_eq!(b0.after, b0.before);
        assert!((b0.after_weight.long_wins - 1.0).abs() < 1e-12);
        assert!((b0.longer_wins_fraction_after.unwrap() - 0.5).abs() < 1e-12);
    }

    #[test]
    fn one_sided_bucket_is_emptied_but_ties_stay() {
        let pairs = [p(5, 1), p(9, 2), p(4, 4)];
        for mode in [BalanceMode::Downsample, BalanceMode::Reweight] {
            let out = balance_lengths(&pairs, &BalanceConfig::default().with_mode(mode)).unwrap();
            assert_eq!(out.indices(), vec![2], "{mode:?}");
            assert_eq!(out.report.buckets[0].longer_wins_fraction_after, None);
            assert!(out.report.is_balanced());
        }
    }

    #[test]
    fn empty_input() {
        let out = balance_lengths(&[], &BalanceConfig::default()).unwrap();
        assert!(out.kept.is_empty());
        assert_eq!(out.report.totals.longer_wins_fraction_before, None);
        assert!(out.report.categories.is_empty());
    }

    #[test]
    fn invalid_config_is_rejected() {
        let cfg = BalanceConfig::default().with_edges(vec![0, 10, 10]);
        assert!(matches!(
            balance_lengths(&[p(1, 2)], &cfg),
            Err(Error::EdgesNotIncreasing { .. })
        ));
    }

    // Property: after down-sampling every bucket (and every cell when stratified) has equal
    // long/short counts, the minority side is kept whole, ties are untouched, and the majority
    // side keeps exactly m pairs.
    #[test]
    fn prop_downsample_balances_every_bucket() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for case in 0..200 {
            let n = rng.random_range(0..400);
            let max_len = rng.random_range(1..300);
            let pairs = random_pairs(&mut rng, n, max_len, &["a", "b", "c"]);
            let edges = random_edges(&mut rng);
            let stratify = case % 2 == 0;
            let cfg = BalanceConfig::default()
                .with_edges(edges.clone())
                .with_seed(case)
                .with_stratify_by_category(stratify);
            let out = balance_lengths(&pairs, &cfg).unwrap();
            let w = out.dense_weights(n);
            assert!(w.iter().all(|&x| x == 0.0 || x == 1.0));
            assert!(out.report.is_balanced(), "case {case}");
            for b in &out.report.buckets {
                assert_eq!(b.after.long_wins, b.after.short_wins, "case {case}");
                assert_eq!(b.after.ties, b.before.ties, "case {case}");
                if !stratify {
                    let m = b.before.long_wins.min(b.before.short_wins);
                    assert_eq!(b.after.long_wins, m);
                }
            }
            // Per cell: the minority side is kept whole; ties always kept.
            let key = |q: &PairLengths| {
                (
                    stratify.then(|| q.category.clone()).flatten(),
                    bucket_index(&edges, q.abs_delta()),
                )
            };
            let mut cells: BTreeMap<_, (Vec<usize>, Vec<usize>)> = BTreeMap::new();
            for (i, q) in pairs.iter().enumerate() {
                match q.outcome() {
                    Outcome::Tie => assert_eq!(w[i], 1.0),
                    Outcome::LongerWins => cells.entry(key(q)).or_default().0.push(i),
                    Outcome::ShorterWins => cells.entry(key(q)).or_default().1.push(i),
                }
            }
            for (l, s) in cells.values() {
                let minority = if l.len() <= s.len() { l } else { s };
                let majority = if l.len() <= s.len() { s } else { l };
                assert!(minority.iter().all(|&i| w[i] == 1.0), "case {case}");
                let kept = majority.iter().filter(|&&i| w[i] == 1.0).count();
                assert_eq!(kept, minority.len(), "case {case}");
            }
        }
    }

    // Property: re-weighting keeps every pair with a non-empty opposite side, the two sides of
    // every bucket sum to m, the minority side keeps weight 1, and ties keep weight 1.
    #[test]
    fn prop_reweight_sums_are_equal() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for case in 0..200 {
            let n = rng.random_range(0..400);
            let max_len = rng.random_range(1..300);
            let pairs = random_pairs(&mut rng, n, max_len, &[]);
            let cfg = BalanceConfig::default()
                .with_edges(random_edges(&mut rng))
                .with_mode(BalanceMode::Reweight);
            let out = balance_lengths(&pairs, &cfg).unwrap();
            assert!(out.report.is_balanced(), "case {case}");
            for b in &out.report.buckets {
                let m = b.before.long_wins.min(b.before.short_wins) as f64;
                assert!((b.after_weight.long_wins - m).abs() < 1e-9 * m.max(1.0));
                assert!((b.after_weight.short_wins - m).abs() < 1e-9 * m.max(1.0));
                assert_eq!(b.after_weight.ties, b.before.ties as f64);
                if m > 0.0 {
                    assert_eq!(b.after, b.before, "nothing dropped when both sides exist");
                }
            }
            let w = out.dense_weights(n);
            assert!(w.iter().all(|&x| (0.0..=1.0).contains(&x)));
        }
    }

    // Property: same input, same seed => same output; permuted input => same multiset of kept
    // (chosen_len, rejected_len, category).
    #[test]
    fn prop_deterministic_and_order_invariant_multiset() {
        use rand::seq::SliceRandom;
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for case in 0..50 {
            let pairs = random_pairs(&mut rng, 300, 200, &["x", "y"]);
            let cfg = BalanceConfig::default()
                .with_edges(vec![0, 8, 32, 96])
                .with_seed(case)
                .with_stratify_by_category(case % 2 == 1);
            let a = balance_lengths(&pairs, &cfg).unwrap();
            let b = balance_lengths(&pairs, &cfg).unwrap();
            assert_eq!(a, b);

            let mut shuffled = pairs.clone();
            shuffled.shuffle(&mut rng);
            let c = balance_lengths(&shuffled, &cfg).unwrap();
            let multiset = |ps: &[PairLengths], out: &Balanced| {
                let mut v: Vec<_> = out.indices().into_iter().map(|i| ps[i].clone()).collect();
                v.sort_by(|x, y| {
                    (x.chosen_len, x.rejected_len, &x.category).cmp(&(
                        y.chosen_len,
                        y.rejected_len,
                        &y.category,
                    ))
                });
                v
            };
            assert_eq!(multiset(&pairs, &a), multiset(&shuffled, &c), "case {case}");
        }
    }

    #[test]
    fn seed_changes_the_sample() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let pairs: Vec<_> = (0..200)
            .map(|i| {
                if rng.random_bool(0.8) {
                    p(20 + i % 7, 10)
                } else {
                    p(10, 20 + i % 7)
                }
            })
            .collect();
        let a = balance_lengths(&pairs, &BalanceConfig::default().with_seed(1)).unwrap();
        let b = balance_lengths(&pairs, &BalanceConfig::default().with_seed(2)).unwrap();
        assert_eq!(a.kept.len(), b.kept.len());
        assert_ne!(a.indices(), b.indices());
    }

    #[test]
    fn balance_report_validates_weights() {
        let pairs = [p(3, 1), p(1, 3)];
        let cfg = BalanceConfig::default();
        assert!(matches!(
            balance_report(&pairs, &[1.0], &cfg),
            Err(Error::LengthMismatch { .. })
        ));
        assert!(matches!(
            balance_report(&pairs, &[1.0, -1.0], &cfg),
            Err(Error::InvalidWeight { index: 1, .. })
        ));
        let r = balance_report(&pairs, &[1.0, 0.0], &cfg).unwrap();
        assert_eq!(r.n_kept, 1);
        assert_eq!(r.buckets[0].longer_wins_fraction_after, Some(1.0));
        assert!(!r.is_balanced());
    }

    #[test]
    fn markdown_and_json() {
        let pairs = [
            p(5, 1).with_category("math"),
            p(9, 2).with_category("math"),
            p(1, 4).with_category("writing"),
            p(7, 7),
        ];
        let out = balance_lengths(&pairs, &BalanceConfig::default()).unwrap();
        let md = out.report.to_markdown();
        assert!(
            md.starts_with("Length balancing: mode downsample, unit tokens, seed 42; kept 3 of 4")
        );
        assert!(
            md.contains("| [0, 16) | 2 | 1 | 1 | 0.667 | 1 | 1 | 1 | 0.500 |"),
            "{md}"
        );
        assert!(
            md.contains("| [512, ∞) | 0 | 0 | 0 | – | 0 | 0 | 0 | – |"),
            "{md}"
        );
        assert!(md.contains("| **total** |"));
        assert!(md.contains("| (none) | 0 | 0 | 1 |"), "{md}");
        assert!(
            md.contains("| writing | 0 | 1 | 0 | 0.000 | 0 | 1 | 0 | 0.000 |"),
            "{md}"
        );
        assert_eq!(out.report.categories.len(), 3);
        let json = out.report.to_json_pretty().unwrap();
        assert_eq!(BalanceReport::from_json(&json).unwrap(), out.report);
        assert!(json.contains("\"longer_wins_fraction_after\": 0.5"));

        let rw = balance_lengths(
            &pairs,
            &BalanceConfig::default().with_mode(BalanceMode::Reweight),
        )
        .unwrap();
        let md = rw.report.to_markdown();
        assert!(md.contains("long-wins after (weight)"));
        assert!(
            md.contains("| [0, 16) | 2 | 1 | 1 | 0.667 | 1.00 | 1.00 | 1.00 | 0.500 |"),
            "{md}"
        );
    }
}
