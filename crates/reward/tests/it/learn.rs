//! A tiny byte-level reward model learns a synthetic preference task (chosen replies carry a
//! marker token) well above chance on held-out prompts; metrics, evaluation files and the HF
//! export are checked along the way.

use burn::module::AutodiffModule;
use rlhf_core::backend::{Cpu, FlexDevice};
use rlhf_core::checkpoint::{LoadOptions, SaveDtype, load_scalar_model};
use rlhf_core::text::TextCodec;
use rlhf_reward::{
    EvalOptions, LogEntry, PairCollator, evaluate_to_dir, export_hf, read_metrics, score_pairs,
    split_by_prompt, train,
};
use rlhf_testkit::assert_close;
use rlhf_train::{TrainOptions, TrainStatus};

use crate::common::{marker_pairs, quick_config, tiny_model};

#[test]
fn learns_the_marker_task_and_exports_hf_layout() {
    let dir = tempfile::tempdir().unwrap();
    let (train_set, eval_set) = split_by_prompt(marker_pairs(400, 1), 0.2, 3);
    let collator = PairCollator::new(TextCodec::Bytes, 96);
    let (model, model_cfg) = tiny_model(0);
    let cfg = rlhf_reward::RewardTrainConfig {
        eval_steps: Some(20),
        ..quick_config(60)
    };
    let t = std::time::Instant::now();
    let out = train(
        model,
        &collator,
        &train_set,
        &eval_set,
        &cfg,
        &TrainOptions::new(dir.path().join("run")),
        &FlexDevice,
    )
    .unwrap();
    eprintln!("train: {:.1?} for {} steps", t.elapsed(), out.step);
    assert_eq!(out.status, TrainStatus::Finished);
    assert_eq!(out.step, 60);
    for e in &out.history {
        eprintln!("{}", serde_json::to_string(e).unwrap());
    }
    let acc = out.last_eval.as_ref().unwrap().accuracy;
    assert!(acc > 0.85, "held-out accuracy {acc}");

    // metrics.jsonl holds the same history, TRL names included.
    let logged = read_metrics(&dir.path().join("run/metrics.jsonl")).unwrap();
    assert_eq!(logged, out.history);
    assert_eq!(
        logged
            .iter()
            .filter(|e| matches!(e, LogEntry::Train(_)))
            .count(),
        12
    );
    assert_eq!(
        logged
            .iter()
            .filter(|e| matches!(e, LogEntry::Eval(_)))
            .count(),
        3
    );
    let first = std::fs::read_to_string(dir.path().join("run/metrics.jsonl")).unwrap();
    for key in [
        "\"rewards/margins\"",
        "\"score/std\"",
        "\"eval_accuracy\"",
        "\"lr\"",
    ] {
        assert!(first.contains(key), "{key} missing");
    }

    // Table-5 evaluation on the held-out set.
    let model = out.model.valid();
    let eval_dir = dir.path().join("eval");
    std::fs::create_dir_all(&eval_dir).unwrap();
    let ev = evaluate_to_dir(
        &model,
        &collator,
        &eval_set,
        &EvalOptions {
            loss: cfg.loss(),
            ..Default::default()
        },
        &eval_dir,
        &FlexDevice,
    )
    .unwrap();
    assert!((ev.report.overall.accuracy - acc).abs() < 1e-9);
    assert!(ev.report.categories.len() >= 4);
    for f in ["eval.json", "eval.md", "scores.svg", "scores.jsonl"] {
        assert!(eval_dir.join(f).is_file(), "{f}");
    }
    eprintln!("{}", ev.report.to_markdown());

    // HF export loads back with the same scores.
    let export = dir.path().join("hf");
    export_hf(&model, &model_cfg, &export, SaveDtype::F32, None).unwrap();
    let (back, back_cfg) =
        load_scalar_model::<Cpu>(&export, LoadOptions::default(), &FlexDevice).unwrap();
    assert_eq!(back_cfg, model_cfg);
    let enc = collator.encode_all(&eval_set).unwrap();
    let a = score_pairs(&model, &enc, 0, 16, &FlexDevice);
    let b = score_pairs(&back, &enc, 0, 16, &FlexDevice);
    let side = |s: &[rlhf_reward::PairScore], chosen: bool| -> Vec<f32> {
        s.iter()
            .map(|p| if chosen { p.chosen } else { p.rejected })
            .collect()
    };
    assert_close(
        "HF export: chosen scores",
        &side(&b, true),
        &side(&a, true),
        1e-5,
    );
    assert_close(
        "HF export: rejected scores",
        &side(&b, false),
        &side(&a, false),
        1e-5,
    );
}

#[test]
fn bf16_mixed_precision_learns_the_marker_task_like_f32() {
    let dir = tempfile::tempdir().unwrap();
    let (train_set, eval_set) = split_by_prompt(marker_pairs(400, 1), 0.2, 3);
    let collator = PairCollator::new(TextCodec::Bytes, 96);
    let run = |name: &str, precision: rlhf_core::Precision| {
        let cfg = rlhf_reward::RewardTrainConfig {
            precision,
            ..quick_config(60)
        };
        train(
            tiny_model(0).0,
            &collator,
            &train_set,
            &eval_set,
            &cfg,
            &TrainOptions::new(dir.path().join(name)),
            &FlexDevice,
        )
        .unwrap()
    };
    let f32_run = run("f32", rlhf_core::Precision::F32);
    let bf16_run = run("bf16", rlhf_core::Precision::Bf16);
    let (a32, a16) = (
        f32_run.last_eval.as_ref().unwrap().accuracy,
        bf16_run.last_eval.as_ref().unwrap().accuracy,
    );
    eprintln!("held-out accuracy f32 {a32}, bf16 {a16}");
    assert!(a16 > 0.85, "bf16 held-out accuracy {a16}");
    assert!((a16 - a32).abs() <= 0.05, "bf16 {a16} vs f32 {a32}");
    // The master weights stay f32.
    let w = bf16_run.model.valid().score.weight.val();
    assert_eq!(w.dtype(), burn::tensor::DType::F32);
}
