//! # rlhf-policy-ppo
//!
//! PPO for the ChatGLM-RLHF reproduction (arXiv 2404.00934, SPEC §A.4–A.5): the policy (actor,
//! from the SFT checkpoint) is trained against a frozen reward model with a per-token KL
//! penalty to the frozen SFT model (reference), a value model (critic, its trunk initialised
//! from the reward model) and
//!
//! - the paper's **reference reward** `r(x, y) − r(x, y_ref)`, with `y_ref` generated once per
//!   prompt by the SFT model and cached in Parquet ([`ReferenceCache`]); switchable off for the
//!   ablation;
//! - the **next-token-prediction regulariser** `λ_ntp × NLL` on SFT data;
//! - the **prompt filter** (drop prompts whose `k` sampled responses' scores vary less than ε);
//! - the **fused step**: policy, value and NTP losses in one backward pass and one optimiser
//!   phase ([`ppo_step`], equal to the unfused step up to float rounding);
//! - no reward or advantage normalisation by default (available in the config).
//!
//! | module (private) | what |
//! | --- | --- |
//! | `kl` | [`KlEstimator`] (k1, k3), [`KlController`] (fixed / adaptive), [`KlConfig`] |
//! | `advantage` | [`compute_gae`], [`gae_row`] |
//! | `estimators` | critic-free advantages: [`grpo_advantages`], [`rloo_advantages`], [`reward_to_go`] (REINFORCE++, ReMax), [`critic_free_advantages`], [`frac_reward_zero_std`] |
//! | `loss` | [`policy_loss`], [`policy_loss_with`] (clip-higher, [`aggregate`]), [`value_loss`], [`masked_mean`], [`mean_entropy`] |
//! | `reward` | [`sequence_rewards`] (EOS penalty + shaping), [`token_rewards`] |
//! | `sequences` | [`PackedSequences`], [`ResponseMask`], [`last_real_indices`], [`gather_last_real`] |
//! | `scorer` | [`Scorer`], [`RewardModel`], [`FnScorer`], [`checked_scores`] |
//! | `remote` | [`RemoteScorer`] (a reward server over HTTP, its protocol), [`RemoteRewardConfig`] |
//! | `rule` | [`RuleScorer`]: a rule of the prompt id and the reply text (a gold judge) |
//! | `frozen` | [`Frozen`] (offload to host between phases), [`module_fingerprint`] |
//! | `rollout` | [`rollout`], [`rollout_rows`], [`Rollout`] |
//! | `refcache`, `filter`, `prepare` | [`build_reference_cache`], [`ReferenceCache`], [`filter_prompts`], [`run_filter`], [`reference_generation`]; both run (and are cached) before step 0 |
//! | `step` | [`ppo_step`], [`ppo_gradients`], [`StepShares`], [`Minibatch`], [`NtpBatch`], [`StepConfig`] |
//! | `train` | [`train`], [`PpoModels`], [`PpoData`], [`PpoState`], [`PpoOutcome`] |
//! | `config`, `data` | [`PpoConfig`], prompt and SFT readers and encoders |
//! | `metrics`, `plot`, `memory`, `bench`, `export` | [`PpoLog`], [`reward_kl_svg`], [`ppo_memory_plan`], [`bench_ppo_step`], [`export_actor`] |
//!
//! # Example
//! ```no_run
//! use burn::module::AutodiffModule;
//! use rlhf_core::backend::{CpuTrain, FlexDevice};
//! use rlhf_core::tokenizer::Message;
//! use rlhf_core::{CausalLm, ModelConfig, ScalarModel};
//! use rlhf_policy_ppo::*;
//! use rlhf_core::text::{BYTE_VOCAB, TextCodec};
//! use rlhf_train::TrainOptions;
//!
//! let cfg = ModelConfig::tiny_llama(BYTE_VOCAB);
//! let actor = CausalLm::<CpuTrain>::init(&cfg, 0.02, 0, &FlexDevice);
//! let models = PpoModels {
//!     reference: actor.valid(),
//!     actor,
//!     critic: Some(ScalarModel::init(&cfg, 0.02, 1, &FlexDevice)),
//!     // A known reward: the fraction of response bytes that are spaces.
//!     reward: Box::new(FnScorer::new("spaces", |_, r| {
//!         r.iter().filter(|&&t| t == b' ' as u32 + 3).count() as f32 / r.len().max(1) as f32
//!     })),
//! };
//! let prompts = vec![Prompt { id: "1".into(), messages: vec![Message::user("hi")] }];
//! let data = PpoData {
//!     prompts: encode_prompts(&TextCodec::Bytes, &prompts, 64)?,
//!     sft: Vec::new(),
//!     pad_id: 0,
//!     eos_ids: vec![2],
//! };
//! let ppo = PpoConfig { total_steps: 10, batch_prompts: 1, mini_batch_size: 1, ..Default::default() };
//! let decode = |ids: &[u32]| TextCodec::Bytes.decode(ids);
//! let out = train(models, &data, &decode, &ppo, &TrainOptions::new("runs/ppo"), &FlexDevice)?;
//! println!("{}", out.history.last().unwrap().kl);
//! # Ok::<(), PpoError>(())
//! ```
#![warn(missing_docs)]

mod advantage;
mod bench;
mod config;
mod data;
mod error;
mod estimators;
mod export;
mod filter;
mod fit;
mod frozen;
mod kl;
mod loss;
mod memory;
mod metrics;
mod plot;
mod prepare;
mod refcache;
mod remote;
mod reward;
mod rollout;
mod rule;
mod scorer;
mod sequences;
mod step;
mod train;

pub use advantage::{Advantages, compute_gae, gae_row};
pub use bench::{PhaseMs, PpoBench, bench_ppo_step};
pub use config::{
    AdvEstimator, FilterConfig, LossAggMode, PpoConfig, ReferenceConfig, ReferenceDecoding,
};
pub use data::{
    EncodedPrompt, Prompt, SftExample, encode_prompts, encode_sft, ntp_batch, read_prompts,
    read_sft,
};
pub use error::{PpoError, Result};
pub use estimators::{
    GRPO_STD_EPS, broadcast, critic_free_advantages, frac_reward_zero_std, grpo_advantages,
    reward_to_go, rloo_advantages, row_returns,
};
pub use export::export_actor;
pub use filter::{FilterReport, FilteredPrompt, filter_prompts, variance};
pub use fit::{train, train_with};
pub use frozen::{Frozen, ids_hash, module_fingerprint};
pub use kl::{AdaptiveKl, KlConfig, KlController, KlEstimator};
pub use loss::{
    PolicyLoss, ValueLoss, aggregate, masked_mean, mean_entropy, policy_loss, policy_loss_with,
    value_loss,
};
pub use memory::{ScalarModels, ppo_memory_plan};
pub use metrics::{PpoLog, append_log, read_logs, write_logs};
pub use plot::{PlotRun, reward_kl_svg};
pub use prepare::{prompts_fingerprint, reference_cache_path, reference_generation, run_filter};
pub use refcache::{
    ReferenceCache, ReferenceEntry, ReferenceScores, build_reference_cache, generation_descriptor,
};
pub use remote::{Decoder, RemoteInfo, RemoteRewardConfig, RemoteScorer};
pub use reward::{
    TokenRewards, apply_eos_penalty, baseline_rewards, sequence_rewards, token_rewards,
};
pub use rlhf_train::{MemoryPlan, ModelMemory};
pub use rollout::{Rollout, RolloutTimings, greedy_scores, rollout, rollout_rows};
pub use rule::{RuleFn, RuleScorer};
pub use scorer::{FnScorer, RewardModel, ScoreFn, Scorer, checked_scores};
pub use sequences::{
    PackedSequences, ResponseMask, gather_last_real, last_real_indices, rows_to_vecs,
};
pub use step::{Minibatch, NtpBatch, StepConfig, StepShares, StepStats, ppo_gradients, ppo_step};
pub use train::{Cursor, PpoData, PpoModels, PpoOutcome, PpoState, check_data, mix};
