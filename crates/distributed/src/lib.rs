//! # rlhf-distributed
//!
//! Data-parallel training for the ChatGLM-RLHF reproduction on burn's own collective engine
//! (`burn-collective`, burn 0.21): every device holds a replica, takes its shard of every
//! global batch, the gradients are summed in one all-reduce per step, and the optimizer steps
//! in lockstep. Across machines, each node runs the same command with its `--node-rank`
//! (torchrun style) and node 0 listens at `--coordinator HOST:PORT`. Within a node the replicas
//! sum through burn-collective; across nodes through a TCP star via node 0, a fallback because
//! burn-collective 0.21's global all-reduce hangs from its second call (`docs/distributed.md`).
//!
//! - [`DistConfig`], [`Rank`]: nodes, node rank, coordinator, timeouts, retries;
//! - [`shard`], [`shard_range`], [`plan_step`]: deterministic contiguous sharding by rank and
//!   each shard's share of the step objective, so the summed gradient equals the
//!   single-worker gradient of the whole batch;
//! - [`launch`], [`Peer`]: one thread per local device, each joined to the collective;
//!   sum all-reduces of gradient buckets and scalars with a timeout, failing with an error
//!   that names the lost ranks;
//! - [`dp_apply`], [`dp_reward_step`], [`dp_dpo_step`]: data-parallel optimizer steps;
//! - [`train_reward_dp`]: the resumable data-parallel reward-model loop (rank 0 alone writes
//!   checkpoints and metrics), and [`train_reward_on_node`], one node's part of a run in the
//!   shape of `rlhf_reward::train` (what a `--devices/--nodes` front end calls);
//! - [`train_dpo_dp`], [`train_dpo_on_node`]: the same for DPO (sharded reference log-probs
//!   and evaluation, LoRA, bf16);
//! - [`train_ppo_dp`], [`train_ppo_on_node`]: the same for PPO (rollouts sharded by prompt
//!   with per-prompt sampling streams, sharded reference-reward cache, global reward shaping,
//!   whitening and KL controller, token-share-weighted actor and critic updates).
//!
//! See `docs/distributed.md` for what burn's collective provides on which backend, the
//! launcher, failure behaviour, resume and how PPO is split.
//!
//! | module (private) | what |
//! | --- | --- |
//! | `config` | [`DistConfig`], [`Rank`], [`replica_devices`] |
//! | `shard` | [`shard`], [`shard_range`], [`plan_step`], [`StepPlan`], [`MicroShard`], [`Reduction`] |
//! | `bucket` | gradients ⇄ one flat f32 bucket, in module order |
//! | `collective` | [`Peer`] |
//! | `link` | the inter-node star all-reduce over TCP (a fallback, see its docs) |
//! | `launch` | [`launch`] |
//! | `step` | [`dp_apply`], [`dp_reward_step`], [`dp_dpo_step`], [`Shard`], [`Applied`] |
//! | `dpo` | [`train_dpo_dp`], [`train_dpo_on_node`], [`DpoDpOutcome`] |
//! | `ppo` | [`train_ppo_dp`], [`train_ppo_on_node`], [`PpoDpOutcome`] |
//! | `train` | [`train_reward_dp`], [`train_reward_on_node`], [`DpOutcome`], [`NodeOutcome`], [`DpState`] |
//! | `error` | [`DistError`], [`LostNode`] |
//!
//! # Example
//! ```no_run
//! use rlhf_core::backend::{CpuTrain, Flex, FlexDevice};
//! use rlhf_core::{ModelConfig, ScalarModel};
//! use rlhf_distributed::{DistConfig, launch, train_reward_dp};
//! use rlhf_reward::*;
//!
//! # let pairs: Vec<PreferencePair> = vec![];
//! let cfg = RewardTrainConfig::default();
//! let collator = PairCollator::new(TextEncoder::Bytes, cfg.max_length);
//! // Two replicas on this machine (two CUDA devices in practice; two Flex threads here).
//! let outcomes = launch::<Flex, _, _>(&DistConfig::single(), &[FlexDevice, FlexDevice], |peer| {
//!     let model =
//!         ScalarModel::<CpuTrain>::init(&ModelConfig::tiny_llama(BYTE_VOCAB), 0.02, 0, peer.device());
//!     train_reward_dp(peer, model, &collator, &pairs, &cfg, &TrainOptions::new("runs/rm"))
//! })?;
//! # Ok::<(), rlhf_distributed::DistError>(())
//! ```
#![warn(missing_docs)]

mod bucket;
mod collective;
mod config;
mod dpo;
mod error;
mod launch;
mod link;
mod ppo;
mod shard;
mod step;
mod train;

pub use collective::Peer;
pub use config::{DistConfig, Rank, replica_devices};
pub use dpo::{DpoDpOutcome, train_dpo_dp, train_dpo_on_node};
pub use error::{DistError, LostNode, Result};
pub use launch::launch;
pub use ppo::{PpoDpOutcome, train_ppo_dp, train_ppo_on_node};
pub use shard::{MicroShard, Reduction, StepPlan, plan_step, shard, shard_range};
pub use step::{Applied, Shard, dp_apply, dp_dpo_step, dp_reward_step};
pub use train::{DpOutcome, DpState, NodeOutcome, train_reward_dp, train_reward_on_node};
