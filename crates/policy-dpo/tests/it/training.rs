//! A tiny policy learns the marker preference (held-out accuracy and margin rise), a stopped
//! and resumed run equals an uninterrupted one, and a resident reference equals the cache.

use std::path::Path;

use burn::module::AutodiffModule;
use rlhf_core::backend::FlexDevice;
use rlhf_policy_dpo::{DpoError, DpoTrainConfig, LogEntry, ReferenceMode, read_metrics, train};
use rlhf_reward::{PairCollator, TextEncoder, TrainOptions, TrainStatus};

use crate::common::{flat_params, marker_pairs, max_abs_diff, tiny_policy};

fn config(steps: usize) -> DpoTrainConfig {
    DpoTrainConfig {
        learning_rate: 2e-3,
        max_steps: Some(steps),
        batch_pairs: 8,
        warmup_steps: 2,
        logging_steps: 5,
        eval_steps: Some(10),
        save_steps: None,
        max_length: 64,
        seed: 3,
        ..Default::default()
    }
}

fn evals(dir: &Path) -> Vec<(usize, f64, f64)> {
    read_metrics(&dir.join("metrics.jsonl"))
        .unwrap()
        .into_iter()
        .filter_map(|e| match e {
            LogEntry::Eval(e) => Some((e.step, e.eval_rewards_accuracies, e.eval_rewards_margins)),
            LogEntry::Train(_) => None,
        })
        .collect()
}

#[test]
fn held_out_accuracy_and_margin_rise() {
    let tmp = tempfile::tempdir().unwrap();
    let train_pairs = marker_pairs(160, 1);
    let eval_pairs = marker_pairs(40, 2);
    let col = PairCollator::new(TextEncoder::Bytes, 64);
    let policy = tiny_policy(0).0;
    let reference = policy.valid();
    let dir = tmp.path().join("run");
    let out = train(
        policy,
        Some(reference),
        &col,
        &train_pairs,
        &eval_pairs,
        &config(40),
        &TrainOptions::new(&dir),
        &FlexDevice,
    )
    .unwrap();
    assert_eq!(out.status, TrainStatus::Finished);
    assert!(dir.join("reference_logps.parquet").is_file());
    assert!(dir.join("reference_logps_eval.parquet").is_file());
    let e = evals(&dir);
    assert_eq!(e.len(), 5, "{e:?}");
    assert_eq!(e[0].0, 0, "an evaluation before the first step");
    assert!(
        e[0].2.abs() < 1e-4,
        "policy = reference: margin 0 at step 0 {e:?}"
    );
    let (first, last) = (e[0], e[e.len() - 1]);
    println!("held-out (step, accuracy, margin): {e:?}");
    assert!(last.1 >= 0.9, "held-out accuracy after training {e:?}");
    assert!(last.2 > first.2 && last.2 > 0.5, "margin must rise: {e:?}");
    for entry in read_metrics(&dir.join("metrics.jsonl")).unwrap() {
        if let LogEntry::Train(t) = entry {
            assert!(t.loss.is_finite() && t.grad_norm.is_finite() && t.logps_chosen < 0.0);
        }
    }
}

#[test]
fn resume_equals_uninterrupted_and_resident_equals_cached() {
    let tmp = tempfile::tempdir().unwrap();
    let pairs = marker_pairs(30, 5);
    let eval = marker_pairs(6, 6);
    let col = PairCollator::new(TextEncoder::Bytes, 64);
    let cfg = DpoTrainConfig {
        max_steps: Some(6),
        batch_pairs: 4,
        gradient_accumulation_steps: 2,
        logging_steps: 2,
        eval_steps: Some(3),
        min_lr_ratio: 0.1,
        ..config(6)
    };
    let run = |dir: &Path, cfg: &DpoTrainConfig, stop_after: Option<usize>, with_ref: bool| {
        let p = tiny_policy(0).0;
        let r = with_ref.then(|| p.valid());
        train(
            p,
            r,
            &col,
            &pairs,
            &eval,
            cfg,
            &TrainOptions {
                stop_after,
                ..TrainOptions::new(dir)
            },
            &FlexDevice,
        )
    };
    let straight = run(&tmp.path().join("a"), &cfg, None, true).unwrap();
    let b = tmp.path().join("b");
    let first = run(&b, &cfg, Some(3), true).unwrap();
    assert_eq!(first.status, TrainStatus::Stopped);
    // The resumed run reads the reference cache: no reference model is needed.
    let resumed = run(&b, &cfg, None, false).unwrap();
    assert_eq!(resumed.resumed_from, Some(3));
    let d = max_abs_diff(
        &flat_params(&straight.policy),
        &flat_params(&resumed.policy),
    );
    assert!(d < 1e-6, "resumed parameters differ by {d}");
    assert_eq!(
        read_metrics(&tmp.path().join("a/metrics.jsonl"))
            .unwrap()
            .len(),
        read_metrics(&b.join("metrics.jsonl")).unwrap().len()
    );

    let resident = DpoTrainConfig {
        reference: ReferenceMode::Resident,
        ..cfg.clone()
    };
    let r = run(&tmp.path().join("c"), &resident, None, true).unwrap();
    let d = max_abs_diff(&flat_params(&straight.policy), &flat_params(&r.policy));
    assert!(d < 1e-5, "resident reference differs from the cache by {d}");

    // Another config on the same run dir is refused with the field named.
    let other = DpoTrainConfig {
        learning_rate: 1e-2,
        ..cfg.clone()
    };
    match run(&b, &other, None, false) {
        Err(DpoError::ResumeMismatch { message, .. }) => assert!(message.contains("learning_rate")),
        other => panic!("expected a mismatch, got {:?}", other.map(|o| o.step)),
    }
}

#[test]
fn simpo_needs_no_reference() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = DpoTrainConfig {
        loss: rlhf_policy_dpo::DpoLossConfig {
            loss_type: rlhf_policy_dpo::DpoLossType::Simpo,
            beta: 2.0,
            ..Default::default()
        },
        ..config(4)
    };
    let out = train(
        tiny_policy(0).0,
        None,
        &PairCollator::new(TextEncoder::Bytes, 64),
        &marker_pairs(16, 1),
        &[],
        &cfg,
        &TrainOptions::new(tmp.path()),
        &FlexDevice,
    )
    .unwrap();
    assert_eq!(out.step, 4);
    assert!(!tmp.path().join("reference_logps.parquet").exists());
}
