//! Length balancing inside `train`: a training set where the longer reply usually wins is
//! balanced per |Δ| bucket before training (down-sampling and re-weighting), and the report is
//! written to the run dir.

use rlhf_core::backend::FlexDevice;
use rlhf_core::text::TextCodec;
use rlhf_debias::{BalanceConfig, BalanceMode, BalanceReport};
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

#[test]
fn training_set_is_balanced_before_training() {
    let pairs = biased_pairs();
    let collator = PairCollator::new(TextCodec::Bytes, 96);
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
        match mode {
            BalanceMode::Downsample => assert!(report.n_kept < 64, "{}", report.n_kept),
            BalanceMode::Reweight => assert!(report.n_kept <= 64),
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
