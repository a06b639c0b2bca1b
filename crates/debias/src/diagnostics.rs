//! Length-bias diagnostics for any scorer (reward model, judge, policy log-prob, …).
//!
//! Two views:
//! * per response: Pearson and Spearman correlation between score and length
//!   ([`score_length_correlation`]);
//! * per labelled pair: accuracy overall and per |Δ| bucket, and how often the scorer prefers the
//!   longer response ([`pair_diagnostics`], [`pair_diagnostics_weighted`]).

use crate::buckets::{BucketRange, bucket_index, validate_edges};
use crate::num::{Real, check_finite, check_same_len};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// 1-based ranks of `xs`, with tied values sharing the average of their ranks (the convention
/// of `scipy.stats.rankdata(method="average")`).
///
/// # Errors
/// [`Error::NonFinite`] if a value is NaN or infinite.
pub fn average_ranks<T: Real>(xs: &[T]) -> Result<Vec<f64>> {
    check_finite("average_ranks", xs)?;
    let mut order: Vec<usize> = (0..xs.len()).collect();
    order.sort_by(|&a, &b| xs[a].to_f64().total_cmp(&xs[b].to_f64()));
    let mut ranks = vec![0.0; xs.len()];
    let mut i = 0;
    while i < order.len() {
        let v = xs[order[i]].to_f64();
        let mut j = i;
        while j + 1 < order.len() && xs[order[j + 1]].to_f64() == v {
            j += 1;
        }
        // Positions i..=j (0-based) share rank mean(i+1..=j+1).
        let r = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = r;
        }
        i = j + 1;
    }
    Ok(ranks)
}

/// Pearson's correlation coefficient of `x` and `y`, accumulated in `f64` (two-pass).
///
/// # Errors
/// [`Error::LengthMismatch`], [`Error::TooFewValues`] (fewer than 2), [`Error::NonFinite`], or
/// [`Error::ZeroVariance`] if either input is constant (the coefficient is undefined).
pub fn pearson<X: Real, Y: Real>(x: &[X], y: &[Y]) -> Result<f64> {
    check_same_len("pearson x/y", x.len(), y.len())?;
    check_finite("pearson x", x)?;
    check_finite("pearson y", y)?;
    let xs: Vec<f64> = x.iter().map(|v| v.to_f64()).collect();
    let ys: Vec<f64> = y.iter().map(|v| v.to_f64()).collect();
    pearson_f64(&xs, &ys)
}

fn pearson_f64(x: &[f64], y: &[f64]) -> Result<f64> {
    let n = x.len();
    if n < 2 {
        return Err(Error::TooFewValues {
            what: "correlation",
            got: n,
            need: 2,
        });
    }
    let mx = x.iter().sum::<f64>() / n as f64;
    let my = y.iter().sum::<f64>() / n as f64;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 {
        return Err(Error::ZeroVariance {
            what: "correlation x",
        });
    }
    if syy == 0.0 {
        return Err(Error::ZeroVariance {
            what: "correlation y",
        });
    }
    Ok((sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0))
}

/// Spearman's rank correlation: Pearson on [`average_ranks`] (so ties are handled exactly).
///
/// # Errors
/// As [`pearson`].
pub fn spearman<X: Real, Y: Real>(x: &[X], y: &[Y]) -> Result<f64> {
    check_same_len("spearman x/y", x.len(), y.len())?;
    pearson_f64(&average_ranks(x)?, &average_ranks(y)?)
}

/// Correlation between a scorer's outputs and response lengths.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LengthCorrelation {
    /// Number of responses.
    pub n: usize,
    /// Pearson correlation of score with length.
    pub pearson: f64,
    /// Spearman rank correlation of score with length (average ranks for ties).
    pub spearman: f64,
}

/// Pearson and Spearman correlation of per-response `scores` with `lengths`.
///
/// # Errors
/// As [`pearson`].
pub fn score_length_correlation<S: Real>(
    scores: &[S],
    lengths: &[usize],
) -> Result<LengthCorrelation> {
    let lens: Vec<f64> = lengths.iter().map(|&l| l as f64).collect();
    Ok(LengthCorrelation {
        n: scores.len(),
        pearson: pearson(scores, &lens)?,
        spearman: spearman(scores, &lens)?,
    })
}

/// A labelled pair with a scorer's outputs on both responses.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoredPair {
    /// Score of the preferred response.
    pub score_chosen: f64,
    /// Score of the dispreferred response.
    pub score_rejected: f64,
    /// Length of the preferred response.
    pub len_chosen: usize,
    /// Length of the dispreferred response.
    pub len_rejected: usize,
}

impl ScoredPair {
    /// Builds a pair.
    pub fn new(
        score_chosen: f64,
        score_rejected: f64,
        len_chosen: usize,
        len_rejected: usize,
    ) -> Self {
        ScoredPair {
            score_chosen,
            score_rejected,
            len_chosen,
            len_rejected,
        }
    }

    fn abs_delta(&self) -> u64 {
        u64::try_from(self.len_chosen.abs_diff(self.len_rejected)).unwrap_or(u64::MAX)
    }
}

/// Accuracy and length preference over a set of pairs (one bucket, or all of them).
///
/// Fractions are weighted by the pair weights (1 each for [`pair_diagnostics`]) and are `None`
/// when their denominator is 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairAccuracy {
    /// The |Δ| range covered.
    pub range: BucketRange,
    /// Pairs with positive weight.
    pub n: usize,
    /// Their total weight.
    pub weight: f64,
    /// Pairs (weight > 0) whose two scores are exactly equal; they count as wrong.
    pub score_ties: usize,
    /// Fraction with `score_chosen > score_rejected`.
    pub accuracy: Option<f64>,
    /// Pairs (weight > 0) with Δ ≠ 0.
    pub n_length_differs: usize,
    /// Among Δ ≠ 0 pairs: fraction where the longer response scores strictly higher.
    pub prefers_longer_fraction: Option<f64>,
    /// Among Δ ≠ 0 pairs: fraction where the *label* prefers the longer response (the data's
    /// own length bias, for comparison).
    pub label_longer_wins_fraction: Option<f64>,
}

#[derive(Default)]
struct Acc {
    n: usize,
    w: f64,
    ties: usize,
    correct: f64,
    n_diff: usize,
    w_diff: f64,
    prefers_longer: f64,
    label_longer: f64,
}

impl Acc {
    fn add(&mut self, p: &ScoredPair, w: f64) {
        if w <= 0.0 {
            return;
        }
        self.n += 1;
        self.w += w;
        if p.score_chosen == p.score_rejected {
            self.ties += 1;
        }
        if p.score_chosen > p.score_rejected {
            self.correct += w;
        }
        if p.len_chosen != p.len_rejected {
            let chosen_longer = p.len_chosen > p.len_rejected;
            let (s_long, s_short) = if chosen_longer {
                (p.score_chosen, p.score_rejected)
            } else {
                (p.score_rejected, p.score_chosen)
            };
            self.n_diff += 1;
            self.w_diff += w;
            if s_long > s_short {
                self.prefers_longer += w;
            }
            if chosen_longer {
                self.label_longer += w;
            }
        }
    }

    fn finish(&self, range: BucketRange) -> PairAccuracy {
        let div = |a: f64, b: f64| (b > 0.0).then(|| a / b);
        PairAccuracy {
            range,
            n: self.n,
            weight: self.w,
            score_ties: self.ties,
            accuracy: div(self.correct, self.w),
            n_length_differs: self.n_diff,
            prefers_longer_fraction: div(self.prefers_longer, self.w_diff),
            label_longer_wins_fraction: div(self.label_longer, self.w_diff),
        }
    }
}

/// Pair-level length-bias diagnostics of a scorer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairDiagnostics {
    /// All pairs.
    pub overall: PairAccuracy,
    /// One entry per |Δ| bucket, in edge order.
    pub buckets: Vec<PairAccuracy>,
}

impl PairDiagnostics {
    /// A Markdown table: one row per bucket plus an "all" row.
    pub fn to_markdown(&self) -> String {
        let f = |x: Option<f64>| x.map_or_else(|| "–".to_string(), |v| format!("{v:.3}"));
        let mut s = String::from(
            "| \\|Δ\\| | pairs | accuracy | scorer prefers longer | label prefers longer | score ties |\n\
             |---|---:|---:|---:|---:|---:|\n",
        );
        for (label, a) in self
            .buckets
            .iter()
            .map(|a| (a.range.to_string(), a))
            .chain(std::iter::once(("**all**".to_string(), &self.overall)))
        {
            let _ = writeln!(
                s,
                "| {label} | {} | {} | {} | {} | {} |",
                a.n,
                f(a.accuracy),
                f(a.prefers_longer_fraction),
                f(a.label_longer_wins_fraction),
                a.score_ties
            );
        }
        s
    }
}

/// Accuracy overall and per |Δ| bucket, and the scorer's preference for longer responses.
///
/// `edges` are lower bucket edges as in [`BalanceConfig::edges`](crate::BalanceConfig::edges).
///
/// # Errors
/// The edge errors of [`validate_edges`], and [`Error::NonFinite`] for a NaN/infinite score.
pub fn pair_diagnostics(pairs: &[ScoredPair], edges: &[u64]) -> Result<PairDiagnostics> {
    pair_diagnostics_weighted(pairs, &vec![1.0; pairs.len()], edges)
}

/// As [`pair_diagnostics`], with a non-negative weight per pair (for example the weights from
/// [`balance_lengths`](crate::balance_lengths) in re-weight mode); weight 0 excludes a pair.
///
/// # Errors
/// As [`pair_diagnostics`], plus [`Error::LengthMismatch`] and [`Error::InvalidWeight`].
pub fn pair_diagnostics_weighted(
    pairs: &[ScoredPair],
    weights: &[f64],
    edges: &[u64],
) -> Result<PairDiagnostics> {
    validate_edges(edges)?;
    check_same_len("pair_diagnostics pairs/weights", pairs.len(), weights.len())?;
    for (index, (p, &w)) in pairs.iter().zip(weights).enumerate() {
        if !(p.score_chosen.is_finite() && p.score_rejected.is_finite()) {
            return Err(Error::NonFinite {
                what: "pair_diagnostics score",
                index,
            });
        }
        if !(w.is_finite() && w >= 0.0) {
            return Err(Error::InvalidWeight { index, value: w });
        }
    }
    let mut overall = Acc::default();
    let mut buckets: Vec<Acc> = edges.iter().map(|_| Acc::default()).collect();
    for (p, &w) in pairs.iter().zip(weights) {
        overall.add(p, w);
        buckets[bucket_index(edges, p.abs_delta())].add(p, w);
    }
    Ok(PairDiagnostics {
        overall: overall.finish(BucketRange::ALL),
        buckets: buckets
            .iter()
            .enumerate()
            .map(|(i, a)| a.finish(BucketRange::of(edges, i)))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }

    // Reference values, pure Python 3.11:
    //   def mean(v): return sum(v)/len(v)
    //   def pearson(x, y):
    //       mx, my = mean(x), mean(y)
    //       sxy = sum((a-mx)*(b-my) for a, b in zip(x, y))
    //       sxx = sum((a-mx)**2 for a in x); syy = sum((b-my)**2 for b in y)
    //       return sxy/math.sqrt(sxx*syy)
    //   def ranks(v):
    //       order = sorted(range(len(v)), key=lambda i: v[i]); r = [0.0]*len(v); i = 0
    //       while i < len(v):
    //           j = i
    //           while j+1 < len(v) and v[order[j+1]] == v[order[i]]: j += 1
    //           for k in range(i, j+1): r[order[k]] = (i+j)/2 + 1
    //           i = j+1
    //       return r
    //   scores = [0.5, 1.25, -0.3, 2.0, 1.25, 0.9, -1.1, 3.4]
    //   lengths = [120, 340, 80, 560, 200, 340, 40, 900]
    //   pearson(scores, lengths)               -> 0.93585876643913002
    //   pearson(ranks(scores), ranks(lengths)) -> 0.94578313253012047
    const SCORES: [f64; 8] = [0.5, 1.25, -0.3, 2.0, 1.25, 0.9, -1.1, 3.4];
    const LENGTHS: [usize; 8] = [120, 340, 80, 560, 200, 340, 40, 900];

    #[test]
    fn golden_average_ranks() {
        assert_eq!(
            average_ranks(&SCORES).unwrap(),
            vec![3.0, 5.5, 2.0, 7.0, 5.5, 4.0, 1.0, 8.0]
        );
        let lens: Vec<f64> = LENGTHS.iter().map(|&l| l as f64).collect();
        assert_eq!(
            average_ranks(&lens).unwrap(),
            vec![3.0, 5.5, 2.0, 7.0, 4.0, 5.5, 1.0, 8.0]
        );
        assert_eq!(
            average_ranks(&[2.0_f32, 2.0, 2.0]).unwrap(),
            vec![2.0, 2.0, 2.0]
        );
        assert!(average_ranks::<f64>(&[]).unwrap().is_empty());
    }

    #[test]
    fn golden_correlations() {
        let c = score_length_correlation(&SCORES, &LENGTHS).unwrap();
        assert_eq!(c.n, 8);
        close(c.pearson, 0.935_858_766_439_13);
        close(c.spearman, 0.945_783_132_530_120_5);
        // f32 scores give the same answer to f32 precision.
        let s32: Vec<f32> = SCORES.iter().map(|&s| s as f32).collect();
        let c32 = score_length_correlation(&s32, &LENGTHS).unwrap();
        assert!((c32.pearson - c.pearson).abs() < 1e-6);
    }

    #[test]
    fn correlation_properties() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        close(pearson(&x, &[2.0, 4.0, 6.0, 8.0, 10.0]).unwrap(), 1.0);
        close(pearson(&x, &[5.0, 4.0, 3.0, 2.0, 1.0]).unwrap(), -1.0);
        // Monotone but non-linear: Spearman is exactly 1, Pearson is not.
        let y = [1.0, 8.0, 27.0, 64.0, 125.0];
        close(spearman(&x, &y).unwrap(), 1.0);
        assert!(pearson(&x, &y).unwrap() < 1.0);
    }

    #[test]
    fn correlation_errors() {
        assert!(matches!(
            pearson(&[1.0], &[2.0]),
            Err(Error::TooFewValues { got: 1, .. })
        ));
        assert!(matches!(
            pearson(&[1.0, 2.0], &[2.0]),
            Err(Error::LengthMismatch { .. })
        ));
        assert!(matches!(
            pearson(&[1.0, 1.0], &[2.0, 3.0]),
            Err(Error::ZeroVariance { .. })
        ));
        assert!(matches!(
            spearman(&[1.0, f64::NAN], &[2.0, 3.0]),
            Err(Error::NonFinite { index: 1, .. })
        ));
    }

    /// Six hand-checked pairs, edges [0, 16, 64]:
    /// 1. Δ=+10  b0 correct, scorer prefers longer, label longer
    /// 2. Δ=-30  b1 wrong,   scorer prefers longer, label shorter
    /// 3. Δ=-70  b2 correct, scorer prefers shorter, label shorter
    /// 4. Δ=+20  b1 score tie (wrong), no preference, label longer
    /// 5. Δ=0    b0 correct, excluded from length fractions
    /// 6. Δ=+290 b2 wrong,   scorer prefers shorter, label longer
    fn hand_pairs() -> Vec<ScoredPair> {
        vec![
            ScoredPair::new(1.0, 0.0, 100, 90),
            ScoredPair::new(0.2, 0.5, 50, 80),
            ScoredPair::new(2.0, 1.0, 30, 100),
            ScoredPair::new(0.7, 0.7, 60, 40),
            ScoredPair::new(0.1, -0.4, 70, 70),
            ScoredPair::new(-1.0, 0.5, 300, 10),
        ]
    }

    #[test]
    fn golden_pair_diagnostics() {
        let d = pair_diagnostics(&hand_pairs(), &[0, 16, 64]).unwrap();
        let o = &d.overall;
        assert_eq!((o.n, o.score_ties, o.n_length_differs), (6, 1, 5));
        assert_eq!(o.accuracy, Some(0.5));
        assert_eq!(o.prefers_longer_fraction, Some(0.4));
        assert_eq!(o.label_longer_wins_fraction, Some(0.6));
        let acc: Vec<_> = d.buckets.iter().map(|b| b.accuracy).collect();
        assert_eq!(acc, vec![Some(1.0), Some(0.0), Some(0.5)]);
        let pl: Vec<_> = d
            .buckets
            .iter()
            .map(|b| b.prefers_longer_fraction)
            .collect();
        assert_eq!(pl, vec![Some(1.0), Some(0.5), Some(0.0)]);
        let ll: Vec<_> = d
            .buckets
            .iter()
            .map(|b| b.label_longer_wins_fraction)
            .collect();
        assert_eq!(ll, vec![Some(1.0), Some(0.5), Some(0.5)]);
        assert_eq!(d.buckets[1].score_ties, 1);
        let md = d.to_markdown();
        assert!(
            md.contains("| [16, 64) | 2 | 0.000 | 0.500 | 0.500 | 1 |"),
            "{md}"
        );
        assert!(
            md.contains("| **all** | 6 | 0.500 | 0.400 | 0.600 | 1 |"),
            "{md}"
        );
    }

    #[test]
    fn golden_weighted_pair_diagnostics() {
        // Weights [1, 2, 1, 1, 0.5, 3]; correct pairs 1, 3, 5 -> (1 + 1 + 0.5) / 8.5.
        // Δ≠0 weight = 1+2+1+1+3 = 8; prefers longer (1, 2) = 3 -> 3/8; label longer (1,4,6) = 5/8.
        let w = [1.0, 2.0, 1.0, 1.0, 0.5, 3.0];
        let d = pair_diagnostics_weighted(&hand_pairs(), &w, &[0, 16, 64]).unwrap();
        close(d.overall.accuracy.unwrap(), 2.5 / 8.5);
        close(d.overall.prefers_longer_fraction.unwrap(), 3.0 / 8.0);
        close(d.overall.label_longer_wins_fraction.unwrap(), 5.0 / 8.0);
        // Zero weight excludes a pair entirely.
        let d0 = pair_diagnostics_weighted(&hand_pairs(), &[1.0, 1.0, 1.0, 1.0, 0.0, 1.0], &[0])
            .unwrap();
        assert_eq!(d0.overall.n, 5);
        assert_eq!(d0.overall.accuracy, Some(0.4));
    }

    #[test]
    fn pair_diagnostics_errors() {
        let p = hand_pairs();
        assert!(matches!(
            pair_diagnostics(&p, &[3]),
            Err(Error::FirstEdgeNotZero { got: 3 })
        ));
        assert!(matches!(
            pair_diagnostics_weighted(&p, &[1.0], &[0]),
            Err(Error::LengthMismatch { .. })
        ));
        let mut bad = p.clone();
        bad[2].score_rejected = f64::INFINITY;
        assert!(matches!(
            pair_diagnostics(&bad, &[0]),
            Err(Error::NonFinite { index: 2, .. })
        ));
        let d = pair_diagnostics(&[], &[0, 10]).unwrap();
        assert_eq!(d.overall.accuracy, None);
    }
}
