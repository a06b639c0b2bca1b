//! # rlhf-reward
//!
//! The reward model of the ChatGLM-RLHF reproduction (arXiv 2404.00934, SPEC §A.3): a core
//! [`ScalarModel`](rlhf_core::ScalarModel) (any supported family, random or started from an HF
//! checkpoint) trained on preference pairs with
//!
//! - the Bradley–Terry loss plus the paper's zero-mean Gaussian prior on scores,
//!   `−log σ(r_c − r_r [− m]) + λ (r_c² + r_r²)` ([`reward_loss`]);
//! - bucket-based length balancing of the training set (`rlhf_debias::balance_lengths`);
//! - training ([`train`], or [`train_with`] in a data-parallel world): the reward objective on
//!   `rlhf_train::fit`, the engine every trainer shares (AdamW, warm-up + cosine, gradient
//!   accumulation, global-norm clipping, seeded shuffling, step checkpoints with exact resume,
//!   a stop flag, TRL-named metrics in `metrics.jsonl`, held-out evaluation);
//! - the paper's Table 5 evaluation ([`evaluate`]): accuracy overall, per category and per
//!   |Δlength| bucket, score mean/std, preference for longer replies, a per-category score plot;
//! - export in HF `*ForSequenceClassification` layout ([`export_hf`]).
//!
//! | module (private) | what |
//! | --- | --- |
//! | `loss` | [`reward_loss`], [`ranking_loss`], [`score_penalty`], [`per_pair_loss`] |
//! | `data` | [`PreferencePair`], [`PairCollator`], [`PairBatch`] (encoded with `rlhf_core::text`) |
//! | `config` | [`RewardTrainConfig`] |
//! | `train` | [`train`], [`train_with`], [`train_step`], [`TrainOutcome`], [`TrainState`] |
//! | `metrics` | [`TrainLog`], [`EvalLog`], [`LogEntry`], `metrics.jsonl` |
//! | `score`, `eval`, `plot` | [`batch_scores`], [`evaluate`], [`EvalReport`], [`write_scores_jsonl`], [`score_distribution_svg`] |
//! | `export`, `bench` | [`export_hf`], [`bench_train_step`] |
//!
//! # Example
//! ```no_run
//! use rlhf_core::backend::{CpuTrain, FlexDevice};
//! use rlhf_core::tokenizer::Message;
//! use rlhf_core::{ModelConfig, ScalarModel};
//! use rlhf_core::text::{BYTE_VOCAB, TextCodec};
//! use rlhf_reward::*;
//!
//! let pairs = vec![PreferencePair::new("1", vec![Message::user("hi")], "hello!", "go away")];
//! let model_cfg = ModelConfig::tiny_llama(BYTE_VOCAB);
//! let model = ScalarModel::<CpuTrain>::init(&model_cfg, 0.02, 0, &FlexDevice);
//! let collator = PairCollator::new(TextCodec::Bytes, 256);
//! let cfg = RewardTrainConfig { learning_rate: 1e-3, ..Default::default() };
//! let opts = rlhf_train::TrainOptions::new("runs/rm");
//! let out = train(model, &collator, &pairs, &[], &cfg, &opts, &FlexDevice)?;
//! use burn::module::AutodiffModule;
//! export_hf(&out.model.valid(), &model_cfg, "runs/rm/final".as_ref(),
//!           rlhf_core::checkpoint::SaveDtype::F32, None)?;
//! # Ok::<(), RewardError>(())
//! ```
#![warn(missing_docs)]

mod bench;
mod config;
mod data;
mod error;
mod eval;
mod export;
mod loss;
mod metrics;
mod plot;
mod score;
mod train;

pub use bench::{StepBench, bench_train_step, synthetic_pair_batch};
pub use config::RewardTrainConfig;
pub use data::{
    EncodedPair, PairBatch, PairCollator, PreferencePair, collate, prompt_messages, read_pairs,
    read_pairs_jsonl, split_by_prompt, write_pairs_jsonl,
};
pub use error::{Result, RewardError};
pub use eval::{
    CategoryEval, EvalOptions, EvalReport, Evaluation, GroupStats, PairScore, evaluate,
    evaluate_to_dir, score_groups, score_pairs, summarize, write_scores_jsonl,
};
pub use export::export_hf;
pub use loss::{LossConfig, RewardLoss, per_pair_loss, ranking_loss, reward_loss, score_penalty};
pub use metrics::{
    EvalLog, LogEntry, TrainLog, Window, append_metrics, read_metrics, write_metrics,
};
pub use plot::{ScoreGroup, score_distribution_svg};
/// Length balancing of a training set (from `rlhf-debias`): its config and report.
pub use rlhf_debias::{BalanceConfig, BalanceMode, BalanceReport, LengthUnit};
pub use score::{batch_scores, score_encoded, score_replies};
pub use train::{
    StepStats, TrainOutcome, TrainState, check_vocab, pairs_fingerprint, prepare_train_set,
    read_train_state, train, train_step, train_with,
};
