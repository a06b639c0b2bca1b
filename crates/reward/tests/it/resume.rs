//! Resume ≡ uninterrupted (parameters within 1e-6, same metrics), the stop flag, gradient
//! accumulation ≡ one large batch, and the guards against resuming a different run.

use std::sync::atomic::Ordering;

use rlhf_core::backend::FlexDevice;
use rlhf_core::text::TextCodec;
use rlhf_reward::{
    LogEntry, PairCollator, RewardError, RewardTrainConfig, read_metrics, read_train_state, train,
};
use rlhf_testkit::{assert_close, max_abs_diff};
use rlhf_train::{TrainOptions, TrainStatus, latest_checkpoint};

use crate::common::{flat_params, marker_pairs, tiny_model};

fn config() -> RewardTrainConfig {
    RewardTrainConfig {
        learning_rate: 3e-3,
        max_steps: Some(6),
        batch_pairs: 4,
        gradient_accumulation_steps: 2,
        warmup_steps: 2,
        min_lr_ratio: 0.1,
        max_grad_norm: Some(0.5),
        logging_steps: 2,
        eval_steps: Some(2),
        save_steps: Some(4),
        max_length: 64,
        seed: 11,
        ..Default::default()
    }
}

fn train_logs(h: &[LogEntry]) -> Vec<(usize, f64, f64, f64)> {
    h.iter()
        .filter_map(|e| match e {
            LogEntry::Train(t) => Some((t.step, t.loss, t.score_std, t.lr)),
            LogEntry::Eval(_) => None,
        })
        .collect()
}

#[test]
fn resumed_run_matches_uninterrupted_run() {
    // 44 pairs, 8 per step: the 6 steps cross an epoch boundary (after step 6 - 0.5).
    let pairs = marker_pairs(44, 5);
    let eval = marker_pairs(8, 99);
    let collator = PairCollator::new(TextCodec::Bytes, 64);
    let cfg = config();
    let tmp = tempfile::tempdir().unwrap();

    let straight = train(
        tiny_model(0).0,
        &collator,
        &pairs,
        &eval,
        &cfg,
        &TrainOptions::new(tmp.path().join("a")),
        &FlexDevice,
    )
    .unwrap();
    assert_eq!(straight.status, TrainStatus::Finished);

    let run_b = tmp.path().join("b");
    let first = train(
        tiny_model(0).0,
        &collator,
        &pairs,
        &eval,
        &cfg,
        &TrainOptions {
            stop_after: Some(3),
            ..TrainOptions::new(&run_b)
        },
        &FlexDevice,
    )
    .unwrap();
    assert_eq!(first.status, TrainStatus::Stopped);
    assert_eq!(first.step, 3);
    let ckpt = latest_checkpoint(&run_b).unwrap().unwrap();
    assert!(ckpt.ends_with("step-00000003"), "{}", ckpt.display());
    let state = read_train_state(&ckpt).unwrap();
    assert_eq!(
        (state.step, state.data.epoch, state.data.cursor),
        (3, 0, 24)
    );

    // The skeleton is initialised differently: everything must come from the checkpoint.
    let resumed = train(
        tiny_model(123).0,
        &collator,
        &pairs,
        &eval,
        &cfg,
        &TrainOptions::new(&run_b),
        &FlexDevice,
    )
    .unwrap();
    assert_eq!(resumed.status, TrainStatus::Finished);
    assert_eq!(resumed.resumed_from, Some(3));
    assert_eq!(resumed.step, 6);

    // A NaN, an infinity or a length mismatch on either side fails here.
    let diff = max_abs_diff(&flat_params(&resumed.model), &flat_params(&straight.model))
        .unwrap_or_else(|e| panic!("resumed vs uninterrupted parameters: {e}"));
    eprintln!("resume: max |Δ param| = {diff:e}");
    assert!(diff <= 1e-6, "max |Δ param| = {diff}");

    // Same metrics (the partial logging window was checkpointed too), and metrics.jsonl holds
    // each entry once.
    let (a, b) = (train_logs(&straight.history), train_logs(&resumed.history));
    assert_eq!(a.len(), 3);
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.0, y.0);
        assert!((x.1 - y.1).abs() < 1e-6 && (x.2 - y.2).abs() < 1e-5 && x.3 == y.3);
    }
    let logged = read_metrics(&run_b.join("metrics.jsonl")).unwrap();
    assert_eq!(logged, resumed.history);
    assert_eq!(logged.len(), straight.history.len());

    // Resuming with a different learning rate is refused; so is starting over in a used dir.
    let other = RewardTrainConfig {
        learning_rate: 1e-3,
        ..cfg.clone()
    };
    let err = train(
        tiny_model(0).0,
        &collator,
        &pairs,
        &eval,
        &other,
        &TrainOptions::new(&run_b),
        &FlexDevice,
    )
    .unwrap_err();
    assert!(matches!(err, RewardError::ResumeMismatch { .. }), "{err}");
    assert!(err.to_string().contains("learning_rate"), "{err}");
    let err = train(
        tiny_model(0).0,
        &collator,
        &pairs[..40],
        &eval,
        &cfg,
        &TrainOptions::new(&run_b),
        &FlexDevice,
    )
    .unwrap_err();
    assert!(matches!(err, RewardError::ResumeMismatch { .. }), "{err}");
    // Resuming into another architecture (another `--init` preset) is one clear line, not a
    // panic inside burn's record loader.
    let bench_cfg = rlhf_core::ModelConfig {
        vocab_size: rlhf_core::text::BYTE_VOCAB,
        ..rlhf_core::ModelConfig::tiny_bench()
    };
    let other_model = rlhf_core::ScalarModel::<rlhf_core::backend::CpuTrain>::init(
        &bench_cfg,
        0.02,
        0,
        &FlexDevice,
    );
    let err = train(
        other_model,
        &collator,
        &pairs,
        &eval,
        &cfg,
        &TrainOptions::new(&run_b),
        &FlexDevice,
    )
    .unwrap_err();
    assert!(matches!(err, RewardError::ResumeMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains("model differs: checkpoint"),
        "{err}"
    );
    let fresh = TrainOptions {
        resume: false,
        ..TrainOptions::new(&run_b)
    };
    assert!(
        train(
            tiny_model(0).0,
            &collator,
            &pairs,
            &eval,
            &cfg,
            &fresh,
            &FlexDevice
        )
        .is_err()
    );
}

#[test]
fn stop_flag_checkpoints_and_returns() {
    let pairs = marker_pairs(16, 5);
    let collator = PairCollator::new(TextCodec::Bytes, 64);
    let tmp = tempfile::tempdir().unwrap();
    let opts = TrainOptions::new(tmp.path());
    opts.stop.store(true, Ordering::SeqCst);
    let out = train(
        tiny_model(0).0,
        &collator,
        &pairs,
        &[],
        &config(),
        &opts,
        &FlexDevice,
    )
    .unwrap();
    assert_eq!(out.status, TrainStatus::Stopped);
    assert_eq!(out.step, 0);
    assert!(out.checkpoint.as_ref().unwrap().join("model.mpk").is_file());
    assert!(out.checkpoint.as_ref().unwrap().join("optim.mpk").is_file());
    assert!(tmp.path().join("config.json").is_file());
    // Clearing the flag and calling again finishes the run from the checkpoint.
    opts.stop.store(false, Ordering::SeqCst);
    let out = train(
        tiny_model(0).0,
        &collator,
        &pairs,
        &[],
        &config(),
        &opts,
        &FlexDevice,
    )
    .unwrap();
    assert_eq!(
        (out.status, out.resumed_from, out.step),
        (TrainStatus::Finished, Some(0), 6)
    );
}

#[test]
fn gradient_accumulation_matches_one_large_batch() {
    let pairs = marker_pairs(32, 8);
    let collator = PairCollator::new(TextCodec::Bytes, 64);
    let tmp = tempfile::tempdir().unwrap();
    let base = RewardTrainConfig {
        max_steps: Some(2),
        save_steps: None,
        max_grad_norm: Some(1.0),
        ..config()
    };
    let run = |bp: usize, ga: usize, name: &str| {
        let cfg = RewardTrainConfig {
            batch_pairs: bp,
            gradient_accumulation_steps: ga,
            ..base.clone()
        };
        let out = train(
            tiny_model(0).0,
            &collator,
            &pairs,
            &[],
            &cfg,
            &TrainOptions::new(tmp.path().join(name)),
            &FlexDevice,
        )
        .unwrap();
        flat_params(&out.model)
    };
    let big = run(8, 1, "big");
    let acc = run(2, 4, "acc");
    // The same terms summed in another order (four products of 2 pairs against one of 8);
    // AdamW turns rounding-level gradient differences into ~1e-5 in the parameters.
    let diff = assert_close("8x1 vs 2x4 parameters", &acc, &big, 5e-5);
    eprintln!("8x1 vs 2x4: max |Δ param| = {diff:e}");
}
