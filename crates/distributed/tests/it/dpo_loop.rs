//! The data-parallel DPO loop: two in-process replicas follow the single-process
//! `rlhf_policy_dpo::train` trajectory (full fine-tuning and LoRA), the reference log-probs are
//! computed in shards into the single-process cache format, and a run stopped on two devices
//! resumes on one.

use std::path::Path;
use std::time::Duration;

use burn::module::AutodiffModule;
use rlhf_core::CausalLm;
use rlhf_core::backend::Flex;
use rlhf_core::backend::{CpuTrain, FlexDevice};
use rlhf_distributed::{DistConfig, run_on_node};
use rlhf_policy_dpo::{DpoTrainConfig, LogEntry, read_metrics};
use rlhf_train::{TrainOptions, TrainStatus};

use rlhf_testkit::{assert_close, assert_close_f64};

use crate::common::{collator, flat_params, model_cfg, pairs};

fn cfg(lora: bool) -> DpoTrainConfig {
    DpoTrainConfig {
        learning_rate: 2e-3,
        max_steps: Some(8),
        batch_pairs: 6,
        gradient_accumulation_steps: 2,
        warmup_steps: 2,
        logging_steps: 2,
        eval_steps: Some(4),
        save_steps: Some(4),
        max_length: 96,
        seed: 5,
        lora: lora.then(rlhf_core::LoraConfig::default),
        ..Default::default()
    }
}

fn policy() -> CausalLm<CpuTrain> {
    CausalLm::init(&model_cfg(), 0.02, 9, &FlexDevice)
}

fn dist() -> DistConfig {
    DistConfig::single().with_timeouts(Duration::from_secs(60), Duration::from_secs(60))
}

fn run(
    dir: &Path,
    devices: usize,
    cfg: &DpoTrainConfig,
    stop_after: Option<usize>,
) -> (TrainStatus, Option<usize>, Vec<f32>) {
    let col = collator();
    let (train, eval) = (pairs(40, 1), pairs(10, 2));
    let opts = TrainOptions {
        stop_after,
        progress: false,
        ..TrainOptions::new(dir)
    };
    let (_, out) = run_on_node::<Flex, _, _, _>(&dist(), &vec![FlexDevice; devices], |peer| {
        let p = policy();
        let r = p.valid();
        rlhf_policy_dpo::train_with(peer, p, Some(r), &col, &train, &eval, cfg, &opts)
    })
    .expect("data-parallel DPO");
    (out.status, out.resumed_from, flat_params(&out.policy))
}

fn single(dir: &Path, cfg: &DpoTrainConfig) -> Vec<f32> {
    let p = policy();
    let r = p.valid();
    let out = rlhf_policy_dpo::train(
        p,
        Some(r),
        &collator(),
        &pairs(40, 1),
        &pairs(10, 2),
        cfg,
        &TrainOptions {
            progress: false,
            ..TrainOptions::new(dir)
        },
        &FlexDevice,
    )
    .expect("single-process DPO");
    flat_params(&out.policy)
}

fn evals(dir: &Path) -> Vec<(usize, f64, f64)> {
    read_metrics(&dir.join("metrics.jsonl"))
        .unwrap()
        .into_iter()
        .filter_map(|e| match e {
            LogEntry::Eval(e) => Some((e.step, e.eval_rewards_accuracies, e.eval_loss)),
            LogEntry::Train(_) => None,
        })
        .collect()
}

#[test]
fn two_devices_follow_the_single_process_trajectory() {
    for lora in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let c = cfg(lora);
        let want = single(&tmp.path().join("single"), &c);
        let two = tmp.path().join("two");
        let (status, _, got) = run(&two, 2, &c, None);
        assert_eq!(status, TrainStatus::Finished);
        let d = assert_close(
            &format!("LoRA {lora}: 2 devices vs 1, parameters"),
            &got,
            &want,
            1e-5,
        );
        eprintln!("DPO loop (LoRA {lora}), 2 devices vs single process: max |Δθ| {d:e}");
        // The sharded reference cache is the single-process one, byte for byte in content.
        let (a, b) = (evals(&tmp.path().join("single")), evals(&two));
        assert_eq!(a.len(), 3, "{a:?}");
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.0, y.0);
            assert!(
                (x.1 - y.1).abs() < 1e-9 && (x.2 - y.2).abs() < 1e-5,
                "{a:?} vs {b:?}"
            );
        }
        let read = |d: &Path| {
            let ex = rlhf_policy_dpo::encode_examples(&collator(), &pairs(40, 1)).unwrap();
            let print = rlhf_policy_dpo::cached_fingerprint(&d.join("reference_logps.parquet"))
                .unwrap()
                .unwrap();
            rlhf_policy_dpo::read_reference_cache(&d.join("reference_logps.parquet"), &print, &ex)
                .unwrap()
        };
        let (ra, rb) = (read(&tmp.path().join("single")), read(&two));
        let all = |c: &rlhf_policy_dpo::ReferenceLogps| -> Vec<f64> {
            c.chosen.iter().chain(&c.rejected).copied().collect()
        };
        assert_eq!(
            rb.chosen.len(),
            ra.chosen.len(),
            "chosen reference log-probs"
        );
        assert_close_f64(
            "sharded vs single-process reference log-probs",
            &all(&rb),
            &all(&ra),
            1e-4,
        );
    }
}

#[test]
fn a_run_stopped_on_two_devices_resumes_on_one() {
    let tmp = tempfile::tempdir().unwrap();
    let c = cfg(false);
    let straight = single(&tmp.path().join("single"), &c);
    let dir = tmp.path().join("run");
    let (status, _, _) = run(&dir, 2, &c, Some(4));
    assert_eq!(status, TrainStatus::Stopped);
    let (status, from, params) = run(&dir, 1, &c, None);
    assert_eq!((status, from), (TrainStatus::Finished, Some(4)));
    let d = assert_close(
        "resumed vs uninterrupted parameters",
        &params,
        &straight,
        1e-5,
    );
    eprintln!("stopped on 2 devices at 4, resumed on 1: max |Δθ| vs uninterrupted {d:e}");
}

#[test]
fn the_reward_loop_balances_lengths_like_the_single_process_loop() {
    use rlhf_core::ScalarModel;
    let tmp = tempfile::tempdir().unwrap();
    let cfg = rlhf_reward::RewardTrainConfig {
        learning_rate: 1e-3,
        batch_pairs: 5,
        max_steps: Some(6),
        max_length: 96,
        save_steps: None,
        balance: Some(rlhf_debias_config()),
        ..Default::default()
    };
    let data = pairs(40, 7);
    let model = || ScalarModel::<CpuTrain>::init(&model_cfg(), 0.02, 3, &FlexDevice);
    let opts = |d: &Path| TrainOptions {
        progress: false,
        ..TrainOptions::new(d)
    };
    let one = rlhf_reward::train(
        model(),
        &collator(),
        &data,
        &[],
        &cfg,
        &opts(&tmp.path().join("one")),
        &FlexDevice,
    )
    .unwrap();
    let (_, two) = run_on_node::<Flex, _, _, _>(&dist(), &[FlexDevice, FlexDevice], |peer| {
        let o = opts(&tmp.path().join("two"));
        rlhf_reward::train_with(peer, model(), &collator(), &data, &[], &cfg, &o)
    })
    .unwrap();
    let (b1, b2) = (one.balance.unwrap(), two.balance.unwrap());
    assert_eq!(b1, b2, "every rank balances the same way");
    assert!(b1.n_kept < b1.n_input, "balancing dropped pairs: {b1:?}");
    assert!(tmp.path().join("two/balance_report.md").is_file());
    // Same gradient terms added in another order (per-replica products, then the all-reduce);
    // AdamW's first steps turn rounding-level differences into ~1e-5 in the parameters.
    let d = assert_close(
        "balanced reward: 2 devices vs 1, parameters",
        &flat_params(&two.model),
        &flat_params(&one.model),
        5e-5,
    );
    eprintln!("balanced reward loop, 2 devices vs single process: max |Δθ| {d:e}");
}

/// Balancing by characters with a coarse bucket, so the marker pairs (whose longer reply wins
/// about half the time) lose some pairs.
fn rlhf_debias_config() -> rlhf_reward::BalanceConfig {
    rlhf_reward::BalanceConfig {
        edges: vec![0, 4],
        unit: rlhf_reward::LengthUnit::Characters,
        ..Default::default()
    }
}
