//! End to end on a tiny byte-level model: PPO raises a known reward (the fraction of
//! lower-case letters in the response) while the KL to the reference stays bounded.

use rlhf_core::text::TextCodec;
use rlhf_policy_ppo::{PpoConfig, train};
use rlhf_train::{TrainOptions, TrainStatus};

use crate::common::{DEV, data, models};

#[test]
fn ppo_raises_the_reward_and_keeps_kl_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = PpoConfig {
        total_steps: 40,
        batch_prompts: 16,
        mini_batch_size: 8,
        ppo_epochs: 2,
        max_new_tokens: 12,
        learning_rate: 3e-3,
        critic_learning_rate: 3e-3,
        vf_coef: 0.5,
        seed: 3,
        save_steps: None,
        ..PpoConfig::default()
    };
    let dec = |ids: &[u32]| TextCodec::Bytes.decode(ids);
    let opts = TrainOptions {
        progress: false,
        ..TrainOptions::new(tmp.path())
    };
    let out = train(models(2), &data(16, 0), &dec, &cfg, &opts, &DEV).unwrap();
    assert_eq!(out.status, TrainStatus::Finished);
    let h = &out.history;
    let mean = |s: &[rlhf_policy_ppo::PpoLog], f: fn(&rlhf_policy_ppo::PpoLog) -> f64| {
        s.iter().map(f).sum::<f64>() / s.len() as f64
    };
    let (start, end) = (
        mean(&h[..4], |l| l.scores),
        mean(&h[h.len() - 4..], |l| l.scores),
    );
    let kl_end = mean(&h[h.len() - 4..], |l| l.kl);
    eprintln!(
        "letters fraction {start:.3} -> {end:.3}; KL (nats per response) {:.3} -> {kl_end:.3}",
        mean(&h[..4], |l| l.kl)
    );
    // Across seeds 1–5 the rise measured 0.10–0.15 with the fused CPU kernels and 0.05–0.22
    // with burn's generic ops (the same maths; rounding sends the sampled trajectories apart),
    // from a start of ~0.1: the bar is a clear rise, not one lucky trajectory.
    assert!(end > start + 0.08, "reward did not rise: {start} -> {end}");
    assert!(kl_end < 8.0, "KL ran away: {kl_end}");
    // With the reference reward the training reward starts near 0.
    assert!(h[0].shaped_scores.abs() < 0.1, "{}", h[0].shaped_scores);
    assert!(h.iter().all(|l| l.kl.is_finite() && l.clipfrac_avg <= 1.0));
}
