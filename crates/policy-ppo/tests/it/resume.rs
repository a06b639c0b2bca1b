//! Resume ≡ uninterrupted: checkpoint after a stop, rerun, and land on the same parameters,
//! metrics and state (KL controller, running reward statistics, prompt and SFT cursors).

use rlhf_core::text::TextCodec;
use rlhf_policy_ppo::{AdaptiveKl, PpoConfig, PpoState, read_logs, train};
use rlhf_train::{TrainOptions, TrainStatus, latest_checkpoint, read_state};

use rlhf_testkit::assert_close;

use crate::common::{DEV, data, flat_params, models};

fn dec(ids: &[u32]) -> rlhf_core::Result<String> {
    TextCodec::Bytes.decode(ids)
}

fn config() -> PpoConfig {
    let mut c = PpoConfig {
        total_steps: 4,
        batch_prompts: 4,
        mini_batch_size: 2,
        ppo_epochs: 2,
        max_new_tokens: 6,
        learning_rate: 1e-3,
        critic_learning_rate: 2e-3,
        warmup_steps: 2,
        min_lr_ratio: 0.5,
        ntp_coef: 0.2,
        ntp_batch_size: 2,
        save_steps: Some(3),
        seed: 5,
        ..PpoConfig::default()
    };
    c.kl.adaptive = Some(AdaptiveKl {
        target: 0.5,
        horizon: 20.0,
    });
    c.shaping.running_norm = true;
    c
}

#[test]
fn resumed_run_matches_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config();
    let d = data(6, 5);
    let quiet = |dir| TrainOptions {
        progress: false,
        ..TrainOptions::new(dir)
    };
    let straight = train(
        models(1),
        &d,
        &dec,
        &cfg,
        &quiet(tmp.path().join("a")),
        &DEV,
    )
    .unwrap();
    assert_eq!(straight.status, TrainStatus::Finished);
    assert_eq!(straight.history.len(), 4);

    let run_b = tmp.path().join("b");
    let first = train(
        models(1),
        &d,
        &dec,
        &cfg,
        &TrainOptions {
            stop_after: Some(2),
            ..quiet(run_b.clone())
        },
        &DEV,
    )
    .unwrap();
    assert_eq!((first.status, first.step), (TrainStatus::Stopped, 2));
    let ckpt = latest_checkpoint(&run_b).unwrap().unwrap();
    let st: PpoState = read_state(&ckpt).unwrap();
    assert_eq!(st.step, 2);
    assert_eq!(st.optimizer_steps, 2 * 2 * 2);
    assert!(
        st.prompts.cursor == 2 && st.prompts.epoch == 1,
        "{:?}",
        st.prompts
    );
    assert_ne!(st.kl.coef, cfg.kl.coef, "the adaptive controller moved");
    assert_eq!(st.running.count, 8);

    // Fresh models: everything must come from the checkpoint.
    let resumed = train(models(1), &d, &dec, &cfg, &quiet(run_b.clone()), &DEV).unwrap();
    assert_eq!(resumed.resumed_from, Some(2));
    assert_eq!(resumed.status, TrainStatus::Finished);
    assert_close(
        "resumed actor vs uninterrupted",
        &flat_params(&resumed.actor),
        &flat_params(&straight.actor),
        1e-6,
    );
    assert_close(
        "resumed critic vs uninterrupted",
        &flat_params(resumed.critic.as_ref().unwrap()),
        &flat_params(straight.critic.as_ref().unwrap()),
        1e-6,
    );
    let logs_a = read_logs(&tmp.path().join("a/metrics.jsonl")).unwrap();
    let logs_b = read_logs(&run_b.join("metrics.jsonl")).unwrap();
    assert_eq!(logs_a.len(), logs_b.len());
    for (x, y) in logs_a.iter().zip(&logs_b) {
        assert_eq!(x.step, y.step);
        assert_eq!(x.scores, y.scores, "step {}", x.step);
        assert!((x.kl - y.kl).abs() < 1e-6 && (x.policy_loss_avg - y.policy_loss_avg).abs() < 1e-6);
        assert_eq!(x.kl_coef, y.kl_coef);
    }
    assert!(run_b.join("reward_kl.svg").is_file());

    // A different trajectory config is refused.
    let other = PpoConfig {
        vf_coef: 0.3,
        ..cfg.clone()
    };
    let err = train(models(1), &d, &dec, &other, &quiet(run_b.clone()), &DEV).unwrap_err();
    assert!(err.to_string().contains("vf_coef"), "{err}");
}
