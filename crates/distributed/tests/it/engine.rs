//! The engine's promises across world sizes, on the reward trainer (`rlhf_reward::train_with`
//! on `rlhf_train::fit`): a data-parallel run evaluates on the held-out split as one process
//! does, and a checkpoint written by two replicas resumes in a single process, and the reverse,
//! each ending where an uninterrupted single-process run ends.

use std::path::Path;
use std::time::Duration;

use rlhf_core::ScalarModel;
use rlhf_core::backend::{CpuTrain, Flex, FlexDevice};
use rlhf_distributed::{DistConfig, run_on_node};
use rlhf_reward::{EvalLog, LogEntry, RewardTrainConfig, TrainOutcome, train, train_with};
use rlhf_train::{TrainOptions, TrainStatus};

use rlhf_testkit::assert_close;

use crate::common::{collator, flat_params, model_cfg, pairs};

fn cfg() -> RewardTrainConfig {
    RewardTrainConfig {
        learning_rate: 1e-3,
        batch_pairs: 5,
        gradient_accumulation_steps: 2,
        max_steps: Some(8),
        max_length: 96,
        logging_steps: 2,
        eval_steps: Some(4),
        save_steps: Some(2),
        seed: 17,
        ..RewardTrainConfig::default()
    }
}

fn model() -> ScalarModel<CpuTrain> {
    ScalarModel::init(&model_cfg(), 0.02, 3, &FlexDevice)
}

fn opts(dir: &Path, stop_after: Option<usize>) -> TrainOptions {
    TrainOptions {
        stop_after,
        progress: false,
        ..TrainOptions::new(dir)
    }
}

fn one(dir: &Path, stop_after: Option<usize>) -> TrainOutcome<CpuTrain> {
    let (train_set, eval_set) = (pairs(37, 41), pairs(11, 42));
    let c = collator();
    train(
        model(),
        &c,
        &train_set,
        &eval_set,
        &cfg(),
        &opts(dir, stop_after),
        &FlexDevice,
    )
    .expect("one process")
}

fn two(dir: &Path, stop_after: Option<usize>) -> TrainOutcome<CpuTrain> {
    let (train_set, eval_set) = (pairs(37, 41), pairs(11, 42));
    let c = collator();
    let dist = DistConfig::single().with_timeouts(Duration::from_secs(60), Duration::from_secs(60));
    let o = opts(dir, stop_after);
    run_on_node::<Flex, _, _, _>(&dist, &[FlexDevice, FlexDevice], |peer| {
        train_with(peer, model(), &c, &train_set, &eval_set, &cfg(), &o)
    })
    .expect("two replicas")
    .1
}

fn evals(h: &[LogEntry]) -> Vec<EvalLog> {
    h.iter()
        .filter_map(|e| match e {
            LogEntry::Eval(e) => Some(e.clone()),
            LogEntry::Train(_) => None,
        })
        .collect()
}

#[test]
fn two_replicas_evaluate_the_held_out_split_like_one_process() {
    let tmp = tempfile::tempdir().unwrap();
    let a = one(&tmp.path().join("one"), None);
    let b = two(&tmp.path().join("two"), None);
    let (ea, eb) = (evals(&a.history), evals(&b.history));
    assert_eq!(
        ea.iter().map(|e| e.step).collect::<Vec<_>>(),
        vec![4, 8],
        "{ea:?}"
    );
    assert_eq!(
        eb.iter().map(|e| e.step).collect::<Vec<_>>(),
        vec![4, 8],
        "the data-parallel run evaluates at the same steps: {eb:?}"
    );
    for (x, y) in ea.iter().zip(&eb) {
        let d = (x.eval_loss - y.eval_loss).abs();
        assert!(
            d.is_finite() && d < 1e-4,
            "held-out loss {} vs {}",
            x.eval_loss,
            y.eval_loss
        );
        assert!(
            (x.eval_accuracy - y.eval_accuracy).abs() < 1e-9,
            "{x:?} vs {y:?}"
        );
    }
    let last = b
        .last_eval
        .expect("the data-parallel outcome carries the last evaluation");
    assert_eq!(last.n, 11, "every held-out pair is scored once");
    assert_eq!(a.last_eval.expect("one process").n, 11);
}

#[test]
fn a_data_parallel_checkpoint_resumes_in_one_process_and_the_reverse() {
    let tmp = tempfile::tempdir().unwrap();
    let straight = flat_params(&one(&tmp.path().join("straight"), None).model);

    // Two replicas stop after step 3 (checkpoint), one process finishes the run.
    let d = tmp.path().join("two-then-one");
    let first = two(&d, Some(3));
    assert_eq!((first.status, first.step), (TrainStatus::Stopped, 3));
    let rest = one(&d, None);
    assert_eq!(
        (rest.status, rest.resumed_from),
        (TrainStatus::Finished, Some(3))
    );
    let diff = assert_close(
        "stopped on 2 replicas, resumed in 1 process vs straight",
        &flat_params(&rest.model),
        &straight,
        5e-5,
    );
    eprintln!("stopped on 2 replicas, resumed in 1 process vs straight: max |Δθ| {diff:e}");

    // One process stops after step 5, two replicas finish it.
    let d = tmp.path().join("one-then-two");
    let first = one(&d, Some(5));
    assert_eq!((first.status, first.step), (TrainStatus::Stopped, 5));
    let rest = two(&d, None);
    assert_eq!(
        (rest.status, rest.resumed_from),
        (TrainStatus::Finished, Some(5))
    );
    let diff = assert_close(
        "stopped in 1 process, resumed on 2 replicas vs straight",
        &flat_params(&rest.model),
        &straight,
        5e-5,
    );
    eprintln!("stopped in 1 process, resumed on 2 replicas vs straight: max |Δθ| {diff:e}");
}
