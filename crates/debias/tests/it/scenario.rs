//! A realistic synthetic preference set where longer responses win ~70 % of the time.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rlhf_debias::{
    BalanceConfig, BalanceMode, BalanceReport, DEFAULT_EDGES, PairLengths, RunningMeanStd,
    ScoredPair, ShapingConfig, balance_lengths, pair_diagnostics, pair_diagnostics_weighted,
    score_length_correlation, shape_rewards,
};

const N: usize = 10_000;
const CATEGORIES: [&str; 4] = ["writing", "math", "roleplay", "open_qa"];

/// P(longer wins) per default bucket: 0.7 in most buckets, weaker for tiny |Δ|, stronger for huge.
const P_LONGER: [f64; 7] = [0.55, 0.7, 0.7, 0.7, 0.7, 0.7, 0.85];

fn synthetic_pairs(seed: u64) -> Vec<PairLengths> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..N)
        .map(|_| {
            let category = CATEGORIES[rng.random_range(0..CATEGORIES.len())];
            let short = rng.random_range(10..400_usize);
            if rng.random_bool(0.05) {
                return PairLengths::new(short, short).with_category(category);
            }
            let b = rng.random_range(0..DEFAULT_EDGES.len());
            let lo = DEFAULT_EDGES[b].max(1) as usize;
            let hi = DEFAULT_EDGES.get(b + 1).map_or(1024, |&e| e as usize);
            let long = short + rng.random_range(lo..hi);
            let pair = if rng.random_bool(P_LONGER[b]) {
                PairLengths::new(long, short)
            } else {
                PairLengths::new(short, long)
            };
            pair.with_category(category)
        })
        .collect()
}

/// A pure length scorer: the worst case of length bias.
fn length_scorer(pairs: &[PairLengths]) -> Vec<ScoredPair> {
    pairs
        .iter()
        .map(|p| {
            ScoredPair::new(
                p.chosen_len as f64,
                p.rejected_len as f64,
                p.chosen_len,
                p.rejected_len,
            )
        })
        .collect()
}

#[test]
fn downsampling_makes_every_bucket_fifty_fifty() {
    let pairs = synthetic_pairs(2024);
    let out = balance_lengths(&pairs, &BalanceConfig::default()).unwrap();
    let report = &out.report;

    assert_eq!(report.n_input, N);
    assert!(report.is_balanced());
    for (b, stats) in report.buckets.iter().enumerate() {
        let before = stats.longer_wins_fraction_before.unwrap();
        assert!(
            (before - P_LONGER[b]).abs() < 0.05,
            "bucket {b}: before {before}"
        );
        assert_eq!(stats.longer_wins_fraction_after, Some(0.5), "bucket {b}");
        assert_eq!(
            stats.after.long_wins,
            stats.before.long_wins.min(stats.before.short_wins)
        );
        assert_eq!(stats.after.ties, stats.before.ties);
    }
    let t = &report.totals;
    assert!(t.longer_wins_fraction_before.unwrap() > 0.65);
    assert_eq!(t.longer_wins_fraction_after, Some(0.5));
    assert_eq!(report.n_kept, out.kept.len());
    assert_eq!(t.after.total(), out.kept.len());
    assert!(out.kept.iter().all(|k| k.weight == 1.0));
    assert!(out.kept.windows(2).all(|w| w[0].index < w[1].index));

    // The report says so: each bucket row and the total row end in 0.500.
    let md = report.to_markdown();
    let rows: Vec<&str> = md
        .lines()
        .filter(|l| l.starts_with("| [") || l.starts_with("| **"))
        .collect();
    assert_eq!(rows.len(), DEFAULT_EDGES.len() + 1, "{md}");
    assert!(rows.iter().all(|r| r.ends_with("| 0.500 |")), "{md}");
    assert!(md.contains("| [512, ∞) |"));
    assert_eq!(report.categories.len(), CATEGORIES.len());
    assert_eq!(
        BalanceReport::from_json(&report.to_json_pretty().unwrap()).unwrap(),
        *report
    );

    // Same seed => same subset; different seed => same sizes, different subset.
    let again = balance_lengths(&pairs, &BalanceConfig::default()).unwrap();
    assert_eq!(again.kept, out.kept);
    let other = balance_lengths(&pairs, &BalanceConfig::default().with_seed(7)).unwrap();
    assert_eq!(other.kept.len(), out.kept.len());
    assert_ne!(other.kept, out.kept);
}

#[test]
fn length_alone_stops_predicting_the_label() {
    let pairs = synthetic_pairs(2025);
    let edges = DEFAULT_EDGES.to_vec();
    let scored = length_scorer(&pairs);

    let before = pair_diagnostics(&scored, &edges).unwrap();
    assert_eq!(before.overall.prefers_longer_fraction, Some(1.0));
    assert!(before.overall.accuracy.unwrap() > 0.6);

    let out = balance_lengths(&pairs, &BalanceConfig::default()).unwrap();
    let kept: Vec<ScoredPair> = out.indices().into_iter().map(|i| scored[i]).collect();
    let after = pair_diagnostics(&kept, &edges).unwrap();
    for (b, acc) in after.buckets.iter().enumerate() {
        assert_eq!(acc.label_longer_wins_fraction, Some(0.5), "bucket {b}");
        if b > 0 {
            // No ties outside bucket 0: the length scorer is at chance.
            assert_eq!(acc.accuracy, Some(0.5), "bucket {b}");
        }
    }
    assert!(after.to_markdown().contains("| **all** |"));
}

#[test]
fn reweighting_keeps_everything_and_balances_by_weight() {
    let pairs = synthetic_pairs(2026);
    let cfg = BalanceConfig::default().with_mode(BalanceMode::Reweight);
    let out = balance_lengths(&pairs, &cfg).unwrap();
    assert_eq!(
        out.kept.len(),
        N,
        "every bucket has both sides, so nothing is dropped"
    );
    assert!(out.report.is_balanced());
    for stats in &out.report.buckets {
        let m = stats.before.long_wins.min(stats.before.short_wins) as f64;
        assert!((stats.after_weight.long_wins - m).abs() < 1e-9 * m);
        assert!((stats.after_weight.short_wins - m).abs() < 1e-9 * m);
        assert!((stats.longer_wins_fraction_after.unwrap() - 0.5).abs() < 1e-12);
    }
    assert!(out.report.to_markdown().contains("(weight)"));

    let w = out.dense_weights(N);
    let d = pair_diagnostics_weighted(&length_scorer(&pairs), &w, &DEFAULT_EDGES).unwrap();
    for acc in &d.buckets {
        assert!((acc.label_longer_wins_fraction.unwrap() - 0.5).abs() < 1e-12);
    }
}

#[test]
fn stratified_balancing_balances_every_category_cell() {
    let pairs = synthetic_pairs(2027);
    let plain = balance_lengths(&pairs, &BalanceConfig::default()).unwrap();
    let cfg = BalanceConfig::default().with_stratify_by_category(true);
    let out = balance_lengths(&pairs, &cfg).unwrap();
    assert!(out.report.is_balanced());
    assert!(out.kept.len() <= plain.kept.len());
    for cat in &out.report.categories {
        for stats in &cat.buckets {
            assert_eq!(
                stats.after.long_wins, stats.after.short_wins,
                "{:?}",
                cat.category
            );
        }
        assert_eq!(cat.totals.longer_wins_fraction_after, Some(0.5));
    }
}

#[test]
fn biased_reward_model_diagnostics_and_shaping() {
    // A reward model that likes length: r = 0.004·len + quality + noise.
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let lengths: Vec<usize> = (0..2000).map(|_| rng.random_range(20..1500)).collect();
    let scores: Vec<f32> = lengths
        .iter()
        .map(|&l| (0.004 * l as f64 + rng.random_range(-1.5..1.5)) as f32)
        .collect();
    let corr = score_length_correlation(&scores, &lengths).unwrap();
    assert!(corr.pearson > 0.7 && corr.spearman > 0.7, "{corr:?}");

    // Reference reward: with policy == reference every shaped reward is exactly 0; the running
    // statistics are untouched by default (the paper uses no normalisation).
    let mut running = RunningMeanStd::new();
    let shaped = shape_rewards(
        &scores,
        Some(&scores),
        &ShapingConfig::default(),
        &mut running,
    )
    .unwrap();
    assert!(shaped.iter().all(|&r| r == 0.0));
    assert_eq!(running.count, 0);

    // Running normalisation across batches, with a checkpoint in the middle.
    let cfg = ShapingConfig {
        reference_baseline: false,
        running_norm: true,
        ..Default::default()
    };
    let mut a = RunningMeanStd::new();
    let mut b = RunningMeanStd::new();
    for (i, chunk) in scores.chunks(256).enumerate() {
        let ra = shape_rewards(chunk, None, &cfg, &mut a).unwrap();
        if i == 3 {
            b = RunningMeanStd::from_json(&b.to_json().unwrap()).unwrap();
        }
        let rb = shape_rewards(chunk, None, &cfg, &mut b).unwrap();
        assert_eq!(ra, rb);
    }
    assert_eq!(a, b);
    assert_eq!(a.count, 2000);
}
