//! In-process data parallelism: two replicas on two threads (two Flex "devices") summing
//! through burn-collective's local server.

use std::time::{Duration, Instant};

use rlhf_core::backend::{Flex, FlexDevice};
use rlhf_distributed::{DistConfig, DistError, launch};

use rlhf_testkit::assert_close;
use rlhf_train::TrainStatus;

use crate::common::{TOL, dpo_dp, dpo_single, reward_dp, reward_single, train_run};

fn two_devices() -> DistConfig {
    DistConfig::single().with_timeouts(Duration::from_secs(60), Duration::from_secs(60))
}

#[test]
fn two_devices_match_one_worker_on_the_whole_batch() {
    let single_reward = reward_single();
    let single_dpo = dpo_single();
    let outs = launch::<Flex, _, _>(&two_devices(), &[FlexDevice, FlexDevice], |peer| {
        Ok((reward_dp(peer)?, dpo_dp(peer)?))
    })
    .expect("data-parallel run");
    assert_eq!(outs.len(), 2);
    // The replicas step in lockstep: bit-identical parameters.
    assert_eq!(outs[0].0, outs[1].0, "reward replicas diverged");
    assert_eq!(outs[0].1, outs[1].1, "DPO replicas diverged");
    let d_reward = assert_close("reward: 2 workers vs 1", &outs[0].0, &single_reward, TOL);
    let d_dpo = assert_close("DPO: 2 workers vs 1", &outs[0].1, &single_dpo, TOL);
    eprintln!("in-process max |Δθ|: reward {d_reward:e}, DPO {d_dpo:e}");
}

#[test]
fn a_failing_replica_is_named_without_waiting_for_the_timeout() {
    let start = Instant::now();
    let cfg = DistConfig::single().with_timeouts(Duration::from_secs(60), Duration::from_secs(60));
    let res = launch::<Flex, _, _>(&cfg, &[FlexDevice, FlexDevice], |peer| {
        if peer.rank().rank == 1 {
            panic!("replica 1 broke");
        }
        // Rank 0 waits in an all-reduce that rank 1 never joins.
        peer.all_reduce_scalars(&[1.0], "test all-reduce")?;
        Ok(())
    });
    let elapsed = start.elapsed();
    match res {
        Err(DistError::RankFailed { rank, message }) => {
            assert_eq!(rank, 1);
            assert!(message.contains("replica 1 broke"), "{message}");
        }
        other => panic!("expected rank 1's failure, got {other:?}"),
    }
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
}

#[test]
fn the_data_parallel_loop_on_two_devices_matches_one_device() {
    let two = tempfile::tempdir().expect("tempdir");
    let one = tempfile::tempdir().expect("tempdir");
    let (status, step, _, params2) =
        train_run(&two_devices(), &[FlexDevice, FlexDevice], two.path()).expect("two devices");
    assert_eq!((status, step), (TrainStatus::Finished, 24));
    let (_, _, _, params1) =
        train_run(&DistConfig::single(), &[FlexDevice], one.path()).expect("one device");
    let diff = assert_close("24-step loop: 2 devices vs 1", &params2, &params1, 1e-4);
    eprintln!("24-step loop, 2 devices vs 1: max |Δθ| {diff:e}");
    // Rank 0 alone wrote the run directory: one metrics line per step, checkpoints.
    let metrics = std::fs::read_to_string(two.path().join("metrics.jsonl")).expect("metrics");
    assert_eq!(metrics.lines().count(), 24);
    assert!(two.path().join("checkpoints/latest").is_file());
}
