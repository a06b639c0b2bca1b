//! Length balancing inside `train`: a training set where the longer reply usually wins is
//! balanced per |Δ| bucket before training (down-sampling and re-weighting), and the report is
//! written to the run dir.

use rlhf_core::backend::FlexDevice;
use rlhf_core::text::TextCodec;
use rlhf_debias::{BalanceConfig, BalanceMode, BalanceReport, DEFAULT_EDGES};
use rlhf_reward::{PairCollator, RewardTrainConfig, train};
use rlhf_train::TrainOptions;

use crate::common::{marker_pairs, tiny_model};

/// The marker task with a length bias injected: in 3 of 4 pairs the chosen reply gets a long
/// tail of filler, so "longer wins" about 75 % of the time.
fn biased_pairs() -> Vec<rlhf_reward::PreferencePair> {
    let mut pairs = marker_pairs(64, 13);
    for (i, p) in pairs.iter_mut().enumerate() {
        if i % 4 != 0 {
            p.chosen.push_str(" and so on and so on");
        } else {
            p.rejected.push_str(" and so on and so on");
        }
    }
    pairs
}

/// The pairs each mode keeps, counted by hand from the bucket arithmetic (not through
/// `rlhf_debias`): per |Δ| bucket of the default edges, with `L` longer-wins and `S`
/// shorter-wins pairs, down-sampling keeps `2·min(L, S)` and re-weighting keeps `L + S` when
/// both sides are present (else 0); ties are always kept. Lengths are reply tokens, as
/// `train` measures them.
fn expected_kept(
    collator: &PairCollator<'_>,
    pairs: &[rlhf_reward::PreferencePair],
) -> (usize, usize) {
    let enc = collator.encode_all(pairs).unwrap();
    assert_eq!(enc.len(), pairs.len());
    // (longer wins, shorter wins) per bucket, and ties.
    let mut cells = [(0usize, 0usize); DEFAULT_EDGES.len()];
    let mut ties = 0;
    for e in &enc {
        let d = e.chosen_len.abs_diff(e.rejected_len) as u64;
        let b = DEFAULT_EDGES.iter().rposition(|&lo| lo <= d).unwrap();
        match e.chosen_len.cmp(&e.rejected_len) {
            std::cmp::Ordering::Greater => cells[b].0 += 1,
            std::cmp::Ordering::Less => cells[b].1 += 1,
            std::cmp::Ordering::Equal => ties += 1,
        }
    }
    let down = ties + cells.iter().map(|&(l, s)| 2 * l.min(s)).sum::<usize>();
    let re = ties
        + cells
            .iter()
            .filter(|&&(l, s)| l > 0 && s > 0)
            .map(|&(l, s)| l + s)
            .sum::<usize>();
    (down, re)
}

#[test]
fn training_set_is_balanced_before_training() {
    let pairs = biased_pairs();
    let collator = PairCollator::new(TextCodec::Bytes, 96);
    let (want_down, want_re) = expected_kept(&collator, &pairs);
    eprintln!("expected kept: downsample {want_down}, reweight {want_re} of 64");
    // The injected bias leaves a majority to drop: down-sampling must keep fewer pairs.
    assert!(want_down < 64, "{want_down}");
    let tmp = tempfile::tempdir().unwrap();
    for mode in [BalanceMode::Downsample, BalanceMode::Reweight] {
        let cfg = RewardTrainConfig {
            max_steps: Some(2),
            learning_rate: 1e-3,
            balance: Some(BalanceConfig::default().with_mode(mode)),
            ..Default::default()
        };
        let dir = tmp.path().join(format!("{mode:?}"));
        let out = train(
            tiny_model(0).0,
            &collator,
            &pairs,
            &[],
            &cfg,
            &TrainOptions::new(&dir),
            &FlexDevice,
        )
        .unwrap();
        let report = out.balance.unwrap();
        assert!(report.is_balanced(), "{}", report.to_markdown());
        let before = report.totals.longer_wins_fraction_before.unwrap();
        assert!(before > 0.6, "injected bias {before}");
        let after = report.totals.longer_wins_fraction_after.unwrap();
        assert!((after - 0.5).abs() < 1e-9, "{after}");
        assert_eq!(report.n_input, 64);
        match mode {
            BalanceMode::Downsample => {
                assert!(report.n_kept < 64, "{}", report.n_kept);
                assert_eq!(
                    report.n_kept, want_down,
                    "down-sampling keeps 2·min(L, S) per bucket"
                );
            }
            BalanceMode::Reweight => assert_eq!(
                report.n_kept, want_re,
                "re-weighting keeps every pair of a bucket with both sides"
            ),
        }
        let json = std::fs::read_to_string(dir.join("balance_report.json")).unwrap();
        assert_eq!(BalanceReport::from_json(&json).unwrap(), report);
        assert!(dir.join("balance_report.md").is_file());
    }
}

const FILLER: &str = " and so on and so on";

/// Half marker pairs (`#ok` beats `=ok`, filler on a random side: no length signal), half
/// length-only pairs (both `=ok`, the chosen reply carries the filler): longer wins ~75 %, and
/// length is the easier cue to learn.
fn spurious_length_train_set() -> Vec<rlhf_reward::PreferencePair> {
    let mut rng = crate::common::Lcg(17);
    let mut pairs = marker_pairs(320, 23);
    for (i, p) in pairs.iter_mut().enumerate() {
        if i % 2 == 0 {
            if rng.next(2) == 0 {
                p.chosen.push_str(FILLER);
            } else {
                p.rejected.push_str(FILLER);
            }
        } else {
            p.chosen = p.chosen.replace("#ok", "=ok") + FILLER;
        }
    }
    pairs
}

/// Held out: marker pairs with the filler on a random side (length says nothing about the
/// label).
fn held_out() -> Vec<rlhf_reward::PreferencePair> {
    let mut rng = crate::common::Lcg(5);
    let mut pairs = marker_pairs(96, 91);
    for p in &mut pairs {
        if rng.next(2) == 0 {
            p.chosen.push_str(FILLER);
        } else {
            p.rejected.push_str(FILLER);
        }
    }
    pairs
}

#[test]
fn balancing_removes_a_learned_length_preference() {
    use burn::module::AutodiffModule;
    use rlhf_reward::{EvalOptions, evaluate};

    let train_set = spurious_length_train_set();
    let eval_set = held_out();
    let collator = PairCollator::new(TextCodec::Bytes, 96);
    let tmp = tempfile::tempdir().unwrap();
    let run = |balance: Option<BalanceConfig>, name: &str| {
        let cfg = RewardTrainConfig {
            balance,
            ..crate::common::quick_config(50)
        };
        let out = train(
            tiny_model(0).0,
            &collator,
            &train_set,
            &[],
            &cfg,
            &TrainOptions::new(tmp.path().join(name)),
            &FlexDevice,
        )
        .unwrap();
        let ev = evaluate(
            &out.model.valid(),
            &collator,
            &eval_set,
            &EvalOptions::default(),
            &FlexDevice,
        )
        .unwrap();
        let all = &ev.report.overall;
        eprintln!(
            "{name}: train pairs {}, held-out accuracy {:.3}, RM prefers longer {:.3} (label {:.3})",
            out.balance.as_ref().map_or(train_set.len(), |b| b.n_kept),
            all.accuracy,
            all.prefers_longer_fraction.unwrap(),
            all.label_longer_fraction.unwrap(),
        );
        (all.accuracy, all.prefers_longer_fraction.unwrap())
    };
    let biased = run(None, "biased");
    let balanced = run(Some(BalanceConfig::default()), "balanced");
    assert!(
        biased.1 > 0.8,
        "the unbalanced RM learns 'longer wins': {biased:?}"
    );
    assert!(
        balanced.1 < biased.1 - 0.2,
        "balancing reduces it: {balanced:?} vs {biased:?}"
    );
    // Measured (Flex): unbalanced 320 pairs, held-out accuracy 0.531, prefers longer 1.000;
    // balanced 172 pairs, accuracy 1.000, prefers longer 0.531 (the label's own 0.531).
    assert!(
        balanced.0 > 0.9 && balanced.0 > biased.0,
        "balanced {balanced:?}, unbalanced {biased:?}"
    );
}
