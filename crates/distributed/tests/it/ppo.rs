//! Data-parallel PPO (`rlhf_policy_ppo::train_with` on a `Peer`): two in-process CPU replicas stay identical (parameters
//! and KL coefficient), follow the single-process `rlhf_policy_ppo::train` within float error,
//! build the same reference-reward cache, and a stopped and resumed run ends where an
//! uninterrupted one ends.
//!
//! Rollout sampling is seeded per prompt (each prompt samples from the random stream of its
//! position in the iteration's whole batch, `rlhf_core::generate::generate_rows`), so two
//! replicas generating half the batch each draw exactly what one process draws for the whole
//! batch, and the comparison is of whole runs: rollouts, reference cache, rewards, KL
//! controller, whitened advantages, NTP term and every optimizer step.

use std::path::Path;
use std::time::Duration;

use burn::module::AutodiffModule;
use rlhf_core::backend::{CpuTrain, Flex, FlexDevice};
use rlhf_core::text::{BYTE_VOCAB, TextCodec};
use rlhf_core::tokenizer::Message;
use rlhf_core::{CausalLm, ModelConfig, ScalarModel};
use rlhf_distributed::{DistConfig, DistError, Peer, Rank, launch, run_on_node};
use rlhf_policy_ppo::{
    AdaptiveKl, FnScorer, KlController, PpoConfig, PpoData, PpoModels, PpoOutcome, Prompt,
    ReferenceCache, SftExample, encode_prompts, encode_sft, train, train_with,
};
use rlhf_train::{TrainOptions, TrainStatus};

use rlhf_testkit::{assert_close, max_abs_diff_f64};

use crate::common::flat_params;

fn dec(ids: &[u32]) -> rlhf_core::Result<String> {
    TextCodec::Bytes.decode(ids)
}

const TOPICS: &[&str] = &["fruit", "rain", "trains", "cats", "tea", "snow", "maps"];

/// 7 prompts of different lengths (uneven reference-cache batches over 2 ranks) and 5 SFT
/// rows of different lengths (an NTP batch of 3 rows splits 1 + 2).
fn data() -> PpoData {
    let prompts: Vec<Prompt> = (0..7)
        .map(|i| Prompt {
            id: format!("p{i}"),
            messages: vec![Message::user(format!(
                "tell me about {}{}",
                TOPICS[i % TOPICS.len()],
                "!".repeat(i % 3)
            ))],
        })
        .collect();
    let sft: Vec<SftExample> = (0..5)
        .map(|i| SftExample {
            prompt: vec![Message::user(format!("who are you {i}"))],
            response: format!("I am ChatGLM{}.", "!".repeat(i)),
        })
        .collect();
    PpoData {
        prompts: encode_prompts(&TextCodec::Bytes, &prompts, 64).unwrap(),
        sft: encode_sft(&TextCodec::Bytes, &sft, 64).unwrap(),
        pad_id: 0,
        eos_ids: vec![2],
    }
}

/// A known reward: the fraction of response bytes that are lower-case letters.
fn letters() -> FnScorer {
    FnScorer::new("letters", |_, r| {
        let n = r
            .iter()
            .filter(|&&t| (b'a' as u32 + 3..=b'z' as u32 + 3).contains(&t))
            .count();
        n as f32 / r.len().max(1) as f32
    })
}

fn models(device: &FlexDevice) -> PpoModels<CpuTrain> {
    let cfg = ModelConfig::tiny_llama(BYTE_VOCAB);
    let actor = CausalLm::<CpuTrain>::init(&cfg, 0.02, 1, device);
    PpoModels {
        reference: actor.valid(),
        actor,
        critic: Some(ScalarModel::init(&cfg, 0.02, 2, device)),
        reward: Box::new(letters()),
    }
}

/// 3 iterations of 4 prompts (2 per replica), minibatches of 2 rows (a replica holds 0, 1 or
/// 2 of them), 2 PPO epochs, the NTP term on 3 SFT rows, adaptive KL, running reward
/// normalisation, the reference baseline, advantage whitening and clipping: every place
/// where the ranks must agree. A checkpoint every iteration.
fn config() -> PpoConfig {
    let mut c = PpoConfig {
        total_steps: 3,
        batch_prompts: 4,
        mini_batch_size: 2,
        ppo_epochs: 2,
        max_new_tokens: 6,
        learning_rate: 1e-3,
        critic_learning_rate: 2e-3,
        warmup_steps: 2,
        min_lr_ratio: 0.5,
        ntp_coef: 0.2,
        ntp_batch_size: 3,
        whiten_advantages: true,
        max_grad_norm: Some(0.5),
        save_steps: Some(1),
        seed: 5,
        ..PpoConfig::default()
    };
    c.reference.batch_prompts = 3;
    c.kl.adaptive = Some(AdaptiveKl {
        target: 0.5,
        horizon: 20.0,
    });
    c.shaping.running_norm = true;
    c
}

fn opts(dir: &Path) -> TrainOptions {
    TrainOptions {
        progress: false,
        ..TrainOptions::new(dir)
    }
}

fn two() -> DistConfig {
    DistConfig::single().with_timeouts(Duration::from_secs(60), Duration::from_secs(60))
}

/// One replica's result: its rank, its outcome and its KL controller.
struct Replica {
    rank: Rank,
    outcome: PpoOutcome<CpuTrain>,
    kl: KlController,
}

fn replica(rank: Rank, outcome: PpoOutcome<CpuTrain>) -> Replica {
    Replica {
        rank,
        kl: outcome.kl,
        outcome,
    }
}

/// PPO's one loop on a replica of the world of `peer`.
fn ppo_on(
    peer: &Peer<Flex>,
    d: &PpoData,
    cfg: &PpoConfig,
    o: &TrainOptions,
) -> rlhf_distributed::Result<Replica> {
    let out = train_with(peer, models(peer.device()), d, &dec, cfg, o).map_err(|e| {
        DistError::Replica {
            rank: peer.rank().rank,
            source: Box::new(e),
        }
    })?;
    Ok(replica(peer.rank(), out))
}

/// Local replica 0 of a run on `devices`.
fn on_node(
    dist: &DistConfig,
    devices: &[FlexDevice],
    d: &PpoData,
    cfg: &PpoConfig,
    o: &TrainOptions,
) -> Replica {
    let (rank, out) = run_on_node::<Flex, _, _, _>(dist, devices, |peer| {
        train_with(peer, models(peer.device()), d, &dec, cfg, o)
    })
    .expect("PPO on a node");
    replica(rank, out)
}

/// Both replicas' outcomes of a 2-replica run.
fn run_two(dir: &Path, o: &TrainOptions) -> Vec<Replica> {
    let d = data();
    let cfg = config();
    let o = TrainOptions {
        run_dir: dir.to_path_buf(),
        ..o.clone()
    };
    launch::<Flex, _, _>(&two(), &[FlexDevice, FlexDevice], |peer| {
        ppo_on(peer, &d, &cfg, &o)
    })
    .expect("two replicas")
}

#[test]
fn two_replicas_stay_identical_and_match_one_process() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir2, dir1) = (tmp.path().join("two"), tmp.path().join("one"));
    let outs = run_two(&dir2, &opts(&dir2));
    assert_eq!(outs.len(), 2);
    let (r0, r1) = (&outs[0], &outs[1]);
    assert!(r0.rank.is_main() && !r1.rank.is_main());
    assert_eq!(r0.outcome.status, TrainStatus::Finished);
    assert_eq!(r0.outcome.step, 3);
    // (a) Lockstep: bit-identical parameters, KL controller and metrics on both replicas.
    let actor0 = flat_params(&r0.outcome.actor);
    let critic0 = flat_params(r0.outcome.critic.as_ref().unwrap());
    assert_eq!(actor0, flat_params(&r1.outcome.actor), "actors diverged");
    assert_eq!(
        critic0,
        flat_params(r1.outcome.critic.as_ref().unwrap()),
        "critics diverged"
    );
    assert_eq!(r0.kl, r1.kl, "KL controllers diverged");
    assert_ne!(
        r0.kl.coef,
        config().kl.coef,
        "the adaptive controller moved"
    );
    let untimed = |h: &[rlhf_policy_ppo::PpoLog]| -> Vec<rlhf_policy_ppo::PpoLog> {
        h.iter()
            .map(|l| rlhf_policy_ppo::PpoLog {
                time_rollout: 0.0,
                time_update: 0.0,
                ..l.clone()
            })
            .collect()
    };
    assert_eq!(untimed(&r0.outcome.history), untimed(&r1.outcome.history));
    assert!(r0.outcome.checkpoint.is_some() && r1.outcome.checkpoint.is_none());

    // (b) The single-process loop on the same config and data.
    let one = train(
        models(&FlexDevice),
        &data(),
        &dec,
        &config(),
        &opts(&dir1),
        &FlexDevice,
    )
    .expect("one process");
    let da = assert_close(
        "PPO actor: 2 replicas vs 1 process",
        &actor0,
        &flat_params(&one.actor),
        2e-5,
    );
    let dc = assert_close(
        "PPO critic: 2 replicas vs 1 process",
        &critic0,
        &flat_params(one.critic.as_ref().unwrap()),
        2e-5,
    );
    let (h2, h1) = (&r0.outcome.history, &one.history);
    assert_eq!(h2.len(), h1.len());
    let (mut m2, mut m1) = (Vec::new(), Vec::new());
    for (x, y) in h2.iter().zip(h1) {
        // The same responses were sampled: same scores, EOS counts and lengths.
        assert_eq!(x.scores, y.scores, "step {}", x.step);
        assert_eq!(x.num_eos_tokens, y.num_eos_tokens);
        assert_eq!(x.response_length, y.response_length);
        for (a, b) in [
            (x.kl, y.kl),
            (x.kl_coef, y.kl_coef),
            (x.policy_loss_avg, y.policy_loss_avg),
            (x.value_loss_avg, y.value_loss_avg),
            (x.ntp_loss_avg.unwrap(), y.ntp_loss_avg.unwrap()),
            (x.clipfrac_avg, y.clipfrac_avg),
            (x.entropy_avg, y.entropy_avg),
            (x.grad_norm_policy, y.grad_norm_policy),
            (x.grad_norm_value, y.grad_norm_value),
            (x.shaped_scores, y.shaped_scores),
        ] {
            m2.push(a);
            m1.push(b);
        }
    }
    // Fails on a NaN or an infinity in either run's metrics, which the fold below would drop.
    max_abs_diff_f64(&m2, &m1).unwrap_or_else(|e| panic!("PPO metrics, 2 replicas vs 1: {e}"));
    let dm = m2
        .iter()
        .zip(&m1)
        .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
        .fold(0.0f64, f64::max);
    let kl1 = rlhf_train::read_state::<rlhf_policy_ppo::PpoState>(
        &rlhf_train::latest_checkpoint(&dir1).unwrap().unwrap(),
    )
    .unwrap()
    .kl;
    eprintln!(
        "PPO, 2 replicas vs 1 process after 3 iterations (12 optimizer steps): max |Δθ| actor \
         {da:e}, critic {dc:e}; metrics {dm:e}; β {} vs {}",
        r0.kl.coef, kl1.coef
    );
    assert!(dm < 1e-4, "metrics differ by {dm}");
    assert!((r0.kl.coef - kl1.coef).abs() < 1e-9);

    // A world of one (no collective) is the single-process loop too.
    let dir_solo = tmp.path().join("solo");
    let solo = on_node(
        &DistConfig::single(),
        &[FlexDevice],
        &data(),
        &config(),
        &opts(&dir_solo),
    );
    let ds = assert_close(
        "PPO actor: one replica vs one process",
        &flat_params(&solo.outcome.actor),
        &flat_params(&one.actor),
        2e-5,
    );
    eprintln!("PPO, 1 replica vs 1 process: max |Δθ| actor {ds:e}");
    assert_eq!(solo.kl.coef, kl1.coef);

    // The reference-reward cache built by two replicas is the one-process cache.
    let c2 = ReferenceCache::read(&dir2.join("reference_rewards.parquet")).unwrap();
    let c1 = ReferenceCache::read(&dir1.join("reference_rewards.parquet")).unwrap();
    assert_eq!(c2, c1);
    // Rank 0 alone wrote the run directory.
    assert_eq!(
        std::fs::read_to_string(dir2.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .count(),
        3
    );
    assert!(dir2.join("reward_kl.svg").is_file());
}

#[test]
fn stopped_and_resumed_run_equals_uninterrupted() {
    let tmp = tempfile::tempdir().unwrap();
    let (straight_dir, resumed_dir) = (tmp.path().join("a"), tmp.path().join("b"));
    let straight = run_two(&straight_dir, &opts(&straight_dir));

    let first = run_two(
        &resumed_dir,
        &TrainOptions {
            stop_after: Some(1),
            ..opts(&resumed_dir)
        },
    );
    assert_eq!(first[0].outcome.status, TrainStatus::Stopped);
    assert_eq!(first[0].outcome.step, 1);

    // Resume through the node wrapper (fresh models: everything comes from the checkpoint,
    // the reference cache is read back on both replicas).
    let cfg = config();
    let d = data();
    let node = on_node(
        &two(),
        &[FlexDevice, FlexDevice],
        &d,
        &cfg,
        &opts(&resumed_dir),
    );
    assert!(node.rank.is_main());
    let o = &node.outcome;
    assert_eq!(o.resumed_from, Some(1));
    assert_eq!((o.status, o.step), (TrainStatus::Finished, 3));
    let s = &straight[0];
    let da = assert_close(
        "PPO actor: resumed vs straight",
        &flat_params(&o.actor),
        &flat_params(&s.outcome.actor),
        1e-6,
    );
    let dc = assert_close(
        "PPO critic: resumed vs straight",
        &flat_params(o.critic.as_ref().unwrap()),
        &flat_params(s.outcome.critic.as_ref().unwrap()),
        1e-6,
    );
    eprintln!(
        "PPO 2 replicas, stopped after 1 and resumed vs straight: actor {da:e}, critic {dc:e}"
    );
    assert_eq!(node.kl, s.kl);
    assert_eq!(o.history.len(), s.outcome.history.len());
    for (x, y) in o.history.iter().zip(&s.outcome.history) {
        assert_eq!(x.scores, y.scores, "step {}", x.step);
        assert_eq!(x.kl_coef, y.kl_coef);
        assert!((x.kl - y.kl).abs() < 1e-6);
    }

    // The checkpoint does not depend on the world size: stopped on two replicas, resumed on
    // one, the run ends where the two-replica run ends (within float error).
    let other_dir = tmp.path().join("c");
    run_two(
        &other_dir,
        &TrainOptions {
            stop_after: Some(1),
            ..opts(&other_dir)
        },
    );
    let one = on_node(
        &DistConfig::single(),
        &[FlexDevice],
        &d,
        &cfg,
        &opts(&other_dir),
    );
    assert_eq!(one.outcome.resumed_from, Some(1));
    let d1 = assert_close(
        "PPO actor: stopped on 2 replicas, resumed on 1 vs straight on 2",
        &flat_params(&one.outcome.actor),
        &flat_params(&s.outcome.actor),
        2e-5,
    );
    eprintln!("PPO stopped on 2 replicas, resumed on 1 vs straight on 2: actor {d1:e}");
}

/// The critic-free estimators on two replicas follow one process: each prompt's k = 2
/// responses stay on one replica (GRPO's and ReMax's per-prompt baselines are local),
/// REINFORCE++'s whitening is global, and the seq-mean/seq-sum aggregations weight each
/// replica by its share of the minibatch's rows. No critic is created, trained or saved.
#[test]
fn critic_free_estimators_on_two_replicas_follow_one_process() {
    use rlhf_policy_ppo::{AdvEstimator, LossAggMode};
    let cases = [
        (AdvEstimator::Grpo, LossAggMode::SeqMean, Some(0.28)),
        (AdvEstimator::ReinforcePp, LossAggMode::TokenMean, None),
        (AdvEstimator::Remax, LossAggMode::SeqSum, None),
    ];
    for (est, agg, high) in cases {
        let mut cfg = PpoConfig {
            adv_estimator: est,
            num_generations: 2,
            loss_agg_mode: agg,
            cliprange_high: high,
            total_steps: 2,
            // 4 prompts × 2 = 8 rows (4 per replica), 4 rows per optimizer step in the seeded
            // row order: a replica holds 0–4 of a step's rows.
            mini_batch_size: 4,
            whiten_advantages: false,
            save_steps: None,
            ..config()
        };
        cfg.shaping.reference_baseline = false;
        cfg.validate().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let (dir2, dir1) = (tmp.path().join("two"), tmp.path().join("one"));
        let no_critic = |dev: &FlexDevice| PpoModels {
            critic: None,
            ..models(dev)
        };
        let d = data();
        let o2 = opts(&dir2);
        let outs = launch::<Flex, _, _>(&two(), &[FlexDevice, FlexDevice], |peer| {
            train_with(peer, no_critic(peer.device()), &d, &dec, &cfg, &o2).map_err(|e| {
                DistError::Replica {
                    rank: peer.rank().rank,
                    source: Box::new(e),
                }
            })
        })
        .expect("two replicas");
        let one = train(
            no_critic(&FlexDevice),
            &d,
            &dec,
            &cfg,
            &opts(&dir1),
            &FlexDevice,
        )
        .expect("one process");
        let name = est.name();
        assert!(outs[0].critic.is_none() && one.critic.is_none());
        assert_eq!(
            flat_params(&outs[0].actor),
            flat_params(&outs[1].actor),
            "{name}: replicas diverged"
        );
        let da = assert_close(
            &format!("{name}: actor, 2 replicas vs 1 process"),
            &flat_params(&outs[0].actor),
            &flat_params(&one.actor),
            2e-5,
        );
        for (x, y) in outs[0].history.iter().zip(&one.history) {
            assert_eq!(x.scores, y.scores, "{name} step {}", x.step);
            assert_eq!(x.frac_reward_zero_std, y.frac_reward_zero_std);
            assert!(x.frac_reward_zero_std.is_some());
            let rel =
                (x.policy_loss_avg - y.policy_loss_avg).abs() / y.policy_loss_avg.abs().max(1.0);
            assert!(
                rel < 1e-4,
                "{name}: policy loss {} vs {}",
                x.policy_loss_avg,
                y.policy_loss_avg
            );
        }
        let ckpt = rlhf_train::latest_checkpoint(&dir1).unwrap().unwrap();
        assert!(ckpt.join("actor.mpk").is_file() && !ckpt.join("critic.mpk").exists());
        eprintln!("{name} ({agg:?}): 2 replicas vs 1 process, max |Δθ| {da:e}");
    }
}
