//! Inter-annotator agreement: per-item majority, Fleiss' kappa, Cohen's kappa (pairwise
//! averaged over annotator pairs) and raw pairwise agreement. Pure functions over counts.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

/// The category with strictly more ratings than every other one, if any.
pub fn majority(counts: &[u32]) -> Option<usize> {
    let (best, &max) = counts.iter().enumerate().max_by_key(|(_, c)| **c)?;
    (max > 0 && counts.iter().filter(|&&c| c == max).count() == 1).then_some(best)
}

/// Fleiss' kappa of an items × categories count table (`counts[i][j]`: raters who put item
/// `i` in category `j`).
///
/// Items with fewer than 2 ratings carry no agreement information and are left out. Items
/// may have different numbers of ratings: each item's agreement is
/// `P_i = (Σ_j n_ij² − n_i) / (n_i (n_i − 1))` with its own `n_i`, `P̄` is their mean,
/// `p_j = Σ_i n_ij / Σ_i n_i` and `P̄_e = Σ_j p_j²`; with equal `n_i` this is Fleiss (1971)
/// exactly. `None` when no item has 2 ratings or `P̄_e = 1` (everyone used one category).
pub fn fleiss_kappa(counts: &[Vec<u32>]) -> Option<f64> {
    let items: Vec<&Vec<u32>> = counts
        .iter()
        .filter(|r| r.iter().sum::<u32>() >= 2)
        .collect();
    if items.is_empty() {
        return None;
    }
    let k = items.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut totals = vec![0f64; k];
    let mut all = 0f64;
    let mut p_sum = 0f64;
    for r in &items {
        let n: f64 = r.iter().map(|&c| f64::from(c)).sum();
        let sq: f64 = r.iter().map(|&c| f64::from(c) * f64::from(c)).sum();
        p_sum += (sq - n) / (n * (n - 1.0));
        for (j, &c) in r.iter().enumerate() {
            totals[j] += f64::from(c);
        }
        all += n;
    }
    let p_bar = p_sum / items.len() as f64;
    let p_e: f64 = totals.iter().map(|t| (t / all) * (t / all)).sum();
    if (1.0 - p_e).abs() < 1e-12 {
        return None;
    }
    Some((p_bar - p_e) / (1.0 - p_e))
}

/// Cohen's kappa of two raters over the same items: `ratings[i] = (rater 1, rater 2)`
/// categories in `0..k`. `κ = (p_o − p_e) / (1 − p_e)` with `p_e` from each rater's own
/// marginals. `None` for no items or `p_e = 1`.
pub fn cohen_kappa(ratings: &[(usize, usize)], k: usize) -> Option<f64> {
    if ratings.is_empty() {
        return None;
    }
    let n = ratings.len() as f64;
    let mut m1 = vec![0f64; k];
    let mut m2 = vec![0f64; k];
    let mut agree = 0f64;
    for &(a, b) in ratings {
        m1[a] += 1.0;
        m2[b] += 1.0;
        if a == b {
            agree += 1.0;
        }
    }
    let p_o = agree / n;
    let p_e: f64 = m1.iter().zip(&m2).map(|(x, y)| (x / n) * (y / n)).sum();
    if (1.0 - p_e).abs() < 1e-12 {
        return None;
    }
    Some((p_o - p_e) / (1.0 - p_e))
}

/// Agreement figures over all items.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgreementReport {
    /// Categories, in index order.
    pub categories: Vec<String>,
    /// Items with at least one rating.
    pub items: usize,
    /// Items with at least two ratings (those the statistics below use).
    pub items_multi: usize,
    /// Histogram: number of ratings per item → items.
    pub ratings_per_item: BTreeMap<usize, usize>,
    /// Items whose ratings have a strict majority category.
    pub with_majority: usize,
    /// Items (with ≥ 2 ratings) on which all ratings agree.
    pub unanimous: usize,
    /// Fleiss' kappa over items with ≥ 2 ratings (see [`fleiss_kappa`]).
    pub fleiss_kappa: Option<f64>,
    /// Mean of Cohen's kappa over annotator pairs that share at least
    /// [`min_shared`](Self::min_shared) items (Light's kappa when every pair shares all items).
    pub cohen_kappa_mean: Option<f64>,
    /// The same, weighted by the number of shared items.
    pub cohen_kappa_weighted: Option<f64>,
    /// Annotator pairs with a defined Cohen's kappa.
    pub cohen_rater_pairs: usize,
    /// Shared items an annotator pair needs to enter the Cohen average.
    pub min_shared: usize,
    /// Share of agreeing rating pairs within items (pairs of ratings of the same item).
    pub pairwise_agreement: Option<f64>,
}

/// Computes the [`AgreementReport`] of `items`: for each item, `(rater, category)` ratings
/// with categories in `0..categories.len()`. Annotator pairs enter the Cohen average when
/// they share at least `min_shared` items.
pub fn agreement(
    items: &[Vec<(String, usize)>],
    categories: &[&str],
    min_shared: usize,
) -> AgreementReport {
    let k = categories.len();
    let mut rep = AgreementReport {
        categories: categories.iter().map(|c| (*c).to_owned()).collect(),
        min_shared,
        ..AgreementReport::default()
    };
    let mut table = Vec::new();
    let mut shared: HashMap<(&str, &str), Vec<(usize, usize)>> = HashMap::new();
    let (mut agree_pairs, mut all_pairs) = (0u64, 0u64);
    for ratings in items.iter().filter(|r| !r.is_empty()) {
        rep.items += 1;
        *rep.ratings_per_item.entry(ratings.len()).or_default() += 1;
        let mut counts = vec![0u32; k];
        for (_, c) in ratings {
            counts[*c] += 1;
        }
        if majority(&counts).is_some() {
            rep.with_majority += 1;
        }
        if ratings.len() >= 2 {
            rep.items_multi += 1;
            if counts.iter().any(|&c| c as usize == ratings.len()) {
                rep.unanimous += 1;
            }
        }
        table.push(counts);
        for (x, (ra, ca)) in ratings.iter().enumerate() {
            for (rb, cb) in &ratings[x + 1..] {
                all_pairs += 1;
                agree_pairs += u64::from(ca == cb);
                let (key, val) = if ra <= rb {
                    ((ra.as_str(), rb.as_str()), (*ca, *cb))
                } else {
                    ((rb.as_str(), ra.as_str()), (*cb, *ca))
                };
                shared.entry(key).or_default().push(val);
            }
        }
    }
    rep.fleiss_kappa = fleiss_kappa(&table);
    rep.pairwise_agreement = (all_pairs > 0).then(|| agree_pairs as f64 / all_pairs as f64);
    let (mut sum, mut wsum, mut w, mut n) = (0f64, 0f64, 0f64, 0usize);
    for ratings in shared.values() {
        if ratings.len() < min_shared.max(1) {
            continue;
        }
        if let Some(kappa) = cohen_kappa(ratings, k) {
            sum += kappa;
            wsum += kappa * ratings.len() as f64;
            w += ratings.len() as f64;
            n += 1;
        }
    }
    rep.cohen_rater_pairs = n;
    if n > 0 {
        rep.cohen_kappa_mean = Some(sum / n as f64);
        rep.cohen_kappa_weighted = Some(wsum / w);
    }
    rep
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() < tol, "{a} vs {b}");
    }

    // Wikipedia, "Fleiss' kappa", worked example: 10 subjects, 14 raters, 5 categories.
    // P̄ = 0.378, P̄_e = 0.213, κ = 0.210. Exact value in float64 (Python):
    //   P = [(sum(x*x for x in r) - 14) / (14 * 13) for r in t]; Pb = sum(P) / 10
    //   p = [sum(r[j] for r in t) / 140 for j in range(5)]; Pe = sum(x*x for x in p)
    //   (Pb - Pe) / (1 - Pe) = 0.20993070442195522
    #[test]
    fn fleiss_matches_the_wikipedia_example() {
        let t: Vec<Vec<u32>> = vec![
            vec![0, 0, 0, 0, 14],
            vec![0, 2, 6, 4, 2],
            vec![0, 0, 3, 5, 6],
            vec![0, 3, 9, 2, 0],
            vec![2, 2, 8, 1, 1],
            vec![7, 7, 0, 0, 0],
            vec![3, 2, 6, 3, 0],
            vec![2, 5, 3, 2, 2],
            vec![6, 5, 2, 1, 0],
            vec![0, 2, 2, 3, 7],
        ];
        close(fleiss_kappa(&t).unwrap(), 0.209_930_704_421_955_22, 1e-12);
    }

    // Wikipedia, "Cohen's kappa", first example: 50 proposals; both yes 20, A yes/B no 5,
    // A no/B yes 10, both no 15. p_o = 0.7, p_e = 0.5·0.6 + 0.5·0.4 = 0.5, κ = 0.4.
    #[test]
    fn cohen_matches_the_wikipedia_example() {
        let mut r = Vec::new();
        r.extend(std::iter::repeat_n((0, 0), 20));
        r.extend(std::iter::repeat_n((0, 1), 5));
        r.extend(std::iter::repeat_n((1, 0), 10));
        r.extend(std::iter::repeat_n((1, 1), 15));
        close(cohen_kappa(&r, 2).unwrap(), 0.4, 1e-12);
        assert_eq!(cohen_kappa(&[(0, 0), (0, 0)], 2), None, "p_e = 1");
        assert_eq!(cohen_kappa(&[], 2), None);
    }

    #[test]
    fn perfect_and_chance_agreement() {
        // Two raters agreeing perfectly on a balanced set: κ = 1 for both statistics.
        let t = vec![vec![2, 0, 0], vec![0, 2, 0], vec![0, 0, 2], vec![2, 0, 0]];
        close(fleiss_kappa(&t).unwrap(), 1.0, 1e-12);
        // Systematic disagreement on two categories: Fleiss κ = -1 with n = 2 per item.
        let t = vec![vec![1, 1], vec![1, 1]];
        close(fleiss_kappa(&t).unwrap(), -1.0, 1e-12);
        assert_eq!(fleiss_kappa(&[vec![1, 0, 0]]), None, "single ratings only");
    }

    #[test]
    fn majority_needs_a_strict_winner() {
        assert_eq!(majority(&[2, 1, 0]), Some(0));
        assert_eq!(majority(&[1, 1, 0]), None);
        assert_eq!(majority(&[0, 0, 3]), Some(2));
        assert_eq!(majority(&[0, 0, 0]), None);
    }

    // Hand-computed: three raters x, y, z; items 1-4 rated by all three.
    //   item1: x=0 y=0 z=0; item2: x=1 y=1 z=0; item3: x=2 y=2 z=2; item4: x=0 y=1 z=1
    // Pairs (x,y): (0,0) (1,1) (2,2) (0,1) → p_o = 3/4; marginals x: [2,1,1]/4, y: [1,2,1]/4
    //   p_e = (2·1 + 1·2 + 1·1)/16 = 5/16; κ = (12/16 − 5/16)/(11/16) = 7/11.
    // (x,z): (0,0) (1,0) (2,2) (0,1) → p_o = 2/4; x: [2,1,1], z: [2,1,1] → p_e = 6/16;
    //   κ = (8/16 − 6/16)/(10/16) = 1/5.
    // (y,z): (0,0) (1,0) (2,2) (1,1) → p_o = 3/4; y: [1,2,1], z: [2,1,1] → p_e = 5/16;
    //   κ = 7/11. Mean = (7/11 + 1/5 + 7/11)/3 = (70 + 11)/165 = 81/165 = 0.490909…
    // Fleiss: P_i = [1, 1/3, 1, 1/3] → P̄ = 2/3; totals [5, 4, 3]/12 → P̄_e = 50/144;
    //   κ = (2/3 − 50/144)/(1 − 50/144) = (96 − 50)/(144 − 50) = 46/94.
    #[test]
    fn agreement_report_matches_hand_computation() {
        let r = |x: usize, y: usize, z: usize| {
            vec![
                ("x".to_owned(), x),
                ("y".to_owned(), y),
                ("z".to_owned(), z),
            ]
        };
        let items = vec![r(0, 0, 0), r(1, 1, 0), r(2, 2, 2), r(0, 1, 1)];
        let rep = agreement(&items, &["a", "b", "tie"], 1);
        close(rep.cohen_kappa_mean.unwrap(), 81.0 / 165.0, 1e-12);
        close(rep.fleiss_kappa.unwrap(), 46.0 / 94.0, 1e-12);
        assert_eq!(rep.cohen_rater_pairs, 3);
        assert_eq!(rep.items_multi, 4);
        assert_eq!(rep.unanimous, 2);
        assert_eq!(rep.with_majority, 4);
        close(rep.pairwise_agreement.unwrap(), 8.0 / 12.0, 1e-12);
    }
}
