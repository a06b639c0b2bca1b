//! The four short runs of the golden test, each with the trainer's public API.

use std::path::Path;

use burn::module::AutodiffModule;
use rlhf_core::backend::FlexDevice;
use rlhf_core::text::TextCodec;
use rlhf_policy_dpo::DpoTrainConfig;
use rlhf_policy_ppo::{FnScorer, PpoConfig, PpoData, PpoModels, Prompt, encode_prompts};
use rlhf_reward::{PairCollator, PreferencePair, RewardTrainConfig};
use rlhf_sft::{SftConfig, SftRecord, encode_sft};
use rlhf_train::TrainOptions;

use crate::golden::{causal, digest, scalar, user, words};

type Digest = (String, f64, f64);

fn quiet(dir: &Path) -> TrainOptions {
    TrainOptions {
        progress: false,
        ..TrainOptions::new(dir)
    }
}

fn pairs(n: usize) -> Vec<PreferencePair> {
    (0..n)
        .map(|i| {
            PreferencePair::new(
                format!("p{i}"),
                user(format!("say {}", words(i, 1))),
                format!("{} #ok", words(i, 2 + i % 3)),
                format!("=ok {}", words(i + 1, 1 + i % 4)),
            )
        })
        .collect()
}

pub(crate) fn reward(dir: &Path) -> Digest {
    let cfg = RewardTrainConfig {
        learning_rate: 3e-3,
        max_steps: Some(5),
        batch_pairs: 4,
        gradient_accumulation_steps: 2,
        warmup_steps: 2,
        max_grad_norm: Some(0.5),
        logging_steps: 2,
        eval_steps: Some(2),
        save_steps: Some(3),
        max_length: 64,
        seed: 11,
        ..Default::default()
    };
    let col = PairCollator::new(TextCodec::Bytes, 64);
    let out = rlhf_reward::train(
        scalar(0),
        &col,
        &pairs(30),
        &pairs(6),
        &cfg,
        &quiet(dir),
        &FlexDevice,
    )
    .unwrap();
    digest(&out.model)
}

pub(crate) fn sft(dir: &Path) -> Digest {
    let records: Vec<SftRecord> = (0..20)
        .map(|i| SftRecord {
            id: format!("r{i}"),
            category: None,
            prompt: user(format!("{}+{}=", i % 10, (i * 3) % 10)),
            response: format!("{}", i % 10 + (i * 3) % 10),
        })
        .collect();
    let ex = encode_sft(&TextCodec::Bytes, &records, 48).unwrap();
    let cfg = SftConfig {
        learning_rate: 3e-3,
        max_steps: Some(5),
        batch_size: 4,
        gradient_accumulation_steps: 2,
        warmup_steps: 2,
        logging_steps: 2,
        eval_steps: Some(2),
        save_steps: Some(3),
        max_length: 48,
        seed: 1,
        ..Default::default()
    };
    let out = rlhf_sft::train(causal(0), &ex, &ex[..4], 0, &cfg, &quiet(dir), &FlexDevice).unwrap();
    digest(&out.model)
}

pub(crate) fn dpo(dir: &Path) -> Digest {
    let cfg = DpoTrainConfig {
        learning_rate: 2e-3,
        max_steps: Some(5),
        batch_pairs: 4,
        gradient_accumulation_steps: 2,
        warmup_steps: 2,
        logging_steps: 2,
        eval_steps: Some(2),
        save_steps: Some(3),
        max_length: 64,
        seed: 3,
        ..Default::default()
    };
    let col = PairCollator::new(TextCodec::Bytes, 64);
    let policy = causal(0);
    let reference = policy.valid();
    let out = rlhf_policy_dpo::train(
        policy,
        Some(reference),
        &col,
        &pairs(30),
        &pairs(6),
        &cfg,
        &quiet(dir),
        &FlexDevice,
    )
    .unwrap();
    digest(&out.policy)
}

pub(crate) fn ppo(dir: &Path) -> Digest {
    let prompts: Vec<Prompt> = (0..6)
        .map(|i| Prompt {
            id: format!("p{i}"),
            messages: user(format!("tell me about {}", words(i, 1))),
        })
        .collect();
    let data = PpoData {
        prompts: encode_prompts(&TextCodec::Bytes, &prompts, 64).unwrap(),
        sft: Vec::new(),
        pad_id: 0,
        eos_ids: vec![2],
    };
    let actor = causal(1);
    let models = PpoModels {
        reference: actor.valid(),
        actor,
        critic: Some(scalar(2)),
        reward: Box::new(FnScorer::new("letters", |_, r| {
            r.iter().filter(|&&t| (100..126).contains(&t)).count() as f32 / r.len().max(1) as f32
        })),
    };
    let cfg = PpoConfig {
        total_steps: 3,
        batch_prompts: 4,
        mini_batch_size: 2,
        ppo_epochs: 2,
        max_new_tokens: 6,
        learning_rate: 1e-3,
        critic_learning_rate: 2e-3,
        warmup_steps: 1,
        ntp_coef: 0.0,
        save_steps: Some(2),
        seed: 5,
        ..PpoConfig::default()
    };
    let dec = |ids: &[u32]| TextCodec::Bytes.decode(ids);
    let out = rlhf_policy_ppo::train(models, &data, &dec, &cfg, &quiet(dir), &FlexDevice).unwrap();
    let (h, s, q) = digest(&out.actor);
    let (hc, sc, qc) = digest(out.critic.as_ref().expect("gae has a critic"));
    (format!("{h}{hc}"), s + sc, q + qc)
}
