//! A tiny policy learns the marker preference (held-out accuracy and margin rise), a stopped
//! and resumed run equals an uninterrupted one, and a resident reference equals the cache.

use std::path::Path;

use burn::module::AutodiffModule;
use rlhf_core::backend::FlexDevice;
use rlhf_core::text::TextCodec;
use rlhf_policy_dpo::{DpoError, DpoTrainConfig, LogEntry, ReferenceMode, read_metrics, train};
use rlhf_reward::PairCollator;
use rlhf_testkit::assert_close;
use rlhf_train::{TrainOptions, TrainStatus};

use crate::common::{flat_params, marker_pairs, tiny_policy};

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
    let col = PairCollator::new(TextCodec::Bytes, 64);
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
    let col = PairCollator::new(TextCodec::Bytes, 64);
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
    assert_close(
        "resumed parameters vs uninterrupted",
        &flat_params(&resumed.policy),
        &flat_params(&straight.policy),
        1e-6,
    );
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
    assert_close(
        "resident reference vs the cache",
        &flat_params(&r.policy),
        &flat_params(&straight.policy),
        1e-5,
    );

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
        &PairCollator::new(TextCodec::Bytes, 64),
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

#[test]
fn lora_learns_the_preference_resumes_exactly_and_leaves_the_base_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let train_pairs = marker_pairs(160, 1);
    let eval_pairs = marker_pairs(40, 2);
    let col = PairCollator::new(TextCodec::Bytes, 64);
    let cfg = DpoTrainConfig {
        learning_rate: 1e-2,
        lora: Some(rlhf_core::LoraConfig {
            r: 8,
            alpha: 16.0,
            ..Default::default()
        }),
        save_steps: Some(10),
        ..config(30)
    };
    let run = |dir: &Path, stop_after: Option<usize>, seed: u64| {
        let p = tiny_policy(seed).0;
        // The reference stays the seed-0 model, so only the base differs below.
        let r = tiny_policy(0).0.valid();
        train(
            p,
            Some(r),
            &col,
            &train_pairs,
            &eval_pairs,
            &cfg,
            &TrainOptions {
                stop_after,
                ..TrainOptions::new(dir)
            },
            &FlexDevice,
        )
    };
    let a = tmp.path().join("a");
    let out = run(&a, None, 0).unwrap();
    let e = evals(&a);
    println!("LoRA held-out (step, accuracy, margin): {e:?}");
    assert!(e[0].2.abs() < 1e-4, "B = 0: policy = reference at step 0");
    let last = e[e.len() - 1];
    assert!(last.1 >= 0.8 && last.2 > 0.3, "LoRA DPO learns: {e:?}");
    let trained = out.policy.valid();
    assert!(trained.trunk.has_lora());
    // The checkpoint holds the adapters only.
    let ck = out.checkpoint.clone().unwrap();
    assert!(ck.join("adapters.mpk").is_file() && !ck.join("model.mpk").exists());
    // The base weights did not move: merged minus adapters = the starting policy.
    let base = tiny_policy(0).0.valid();
    let unadapted = rlhf_core::CausalLm {
        trunk: trained
            .trunk
            .clone()
            .set_lora_adapters(rlhf_core::LoraAdapters {
                layers: (0..base.trunk.layers.len())
                    .map(|_| rlhf_core::LayerLora {
                        qkv: None,
                        o: None,
                        gate_up: None,
                        down: None,
                    })
                    .collect(),
            }),
        lm_head: trained.lm_head.clone(),
    };
    assert_eq!(flat_params(&unadapted), flat_params(&base));

    // Stop at 10, resume (adapters + optimizer from the checkpoint) = uninterrupted.
    let b = tmp.path().join("b");
    assert_eq!(run(&b, Some(10), 0).unwrap().status, TrainStatus::Stopped);
    let resumed = run(&b, None, 0).unwrap();
    assert_eq!(resumed.resumed_from, Some(10));
    assert_close(
        "LoRA resume vs uninterrupted",
        &flat_params(&resumed.policy),
        &flat_params(&out.policy),
        1e-6,
    );
    // Resuming on another base model is refused.
    let c = tmp.path().join("c");
    run(&c, Some(10), 0).unwrap();
    match run(&c, None, 1) {
        Err(DpoError::ResumeMismatch { message, .. }) => {
            assert!(message.contains("LoRA base"), "{message}")
        }
        other => panic!("expected a mismatch, got {:?}", other.map(|o| o.step)),
    }
}

#[test]
fn bf16_mixed_precision_trains_close_to_f32() {
    let tmp = tempfile::tempdir().unwrap();
    let train_pairs = marker_pairs(160, 1);
    let eval_pairs = marker_pairs(40, 2);
    let col = PairCollator::new(TextCodec::Bytes, 64);
    let run = |dir: &Path, precision: rlhf_core::Precision| {
        let p = tiny_policy(0).0;
        let r = p.valid();
        let cfg = DpoTrainConfig {
            precision,
            ..config(30)
        };
        train(
            p,
            Some(r),
            &col,
            &train_pairs,
            &eval_pairs,
            &cfg,
            &TrainOptions::new(dir),
            &FlexDevice,
        )
        .unwrap()
    };
    let f32_run = run(&tmp.path().join("f32"), rlhf_core::Precision::F32);
    let bf16_run = run(&tmp.path().join("bf16"), rlhf_core::Precision::Bf16);
    let (e32, e16) = (
        evals(&tmp.path().join("f32")),
        evals(&tmp.path().join("bf16")),
    );
    println!("f32 evals {e32:?}\nbf16 evals {e16:?}");
    let (l32, l16) = (e32[e32.len() - 1], e16[e16.len() - 1]);
    assert!(l16.1 >= 0.8 && l16.2 > 0.3, "bf16 learns: {e16:?}");
    assert!(
        (l16.1 - l32.1).abs() <= 0.1,
        "accuracy bf16 {l16:?} vs f32 {l32:?}"
    );
    // The master weights stay f32 and end close to the f32 run's.
    let (p32, p16) = (flat_params(&f32_run.policy), flat_params(&bf16_run.policy));
    // Fails on NaN, infinities or a length mismatch on either side, so `scale` below is finite.
    let d = rlhf_testkit::max_abs_diff(&p16, &p32)
        .unwrap_or_else(|e| panic!("bf16 vs f32 parameters: {e}"));
    let scale = p32.iter().fold(0f32, |m, x| m.max(x.abs()));
    let rel = d / scale;
    println!("bf16 vs f32 parameters: max relative difference {rel}");
    assert!(rel < 0.1, "bf16 parameters drift from f32 by {rel}");
}
