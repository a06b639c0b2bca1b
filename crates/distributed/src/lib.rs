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
//! - [`Peer`]: one replica's handle on the collective — sum all-reduces of gradient buckets
//!   and scalars with a timeout, failing with an error that names the lost ranks — and the
//!   `rlhf_train::Collective` of a data-parallel world: every trainer's `train_with` (reward,
//!   SFT, DPO on `rlhf_train::fit`) runs on it unchanged;
//! - [`launch`], [`run_on_node`]: one thread per local device, each joined to the collective,
//!   running a trainer; [`run_on_node`] returns local replica 0's result and rank;
//!
//! The crate knows no trainer: PPO's one loop (`rlhf_policy_ppo::train_with`) runs on a
//! [`Peer`] the same way (rollouts sharded by prompt with per-prompt sampling streams, a
//! sharded reference-reward cache, global reward shaping, whitening and KL controller,
//! token-share-weighted actor and critic updates).
//!
//! See `docs/distributed.md` for what burn's collective provides on which backend, the
//! launcher, failure behaviour, resume and how PPO is split.
//!
//! | module (private) | what |
//! | --- | --- |
//! | `config` | [`DistConfig`], [`Rank`], [`replica_devices`] |
//! | `bucket` | gradients ⇄ one flat f32 bucket, in module order |
//! | `collective` | [`Peer`] and its `rlhf_train::Collective` implementation |
//! | `link` | the inter-node star all-reduce over TCP (a fallback, see its docs) |
//! | `launch` | [`launch`], [`run_on_node`] |
//! | `error` | [`DistError`], [`LostNode`] |
//!
//! # Example
//! ```no_run
//! use rlhf_core::backend::{CpuTrain, Flex, FlexDevice};
//! use rlhf_core::{ModelConfig, ScalarModel};
//! use rlhf_distributed::{DistConfig, run_on_node};
//! use rlhf_core::text::{BYTE_VOCAB, TextCodec};
//! use rlhf_reward::*;
//!
//! # let pairs: Vec<PreferencePair> = vec![];
//! let cfg = RewardTrainConfig::default();
//! let collator = PairCollator::new(TextCodec::Bytes, cfg.max_length);
//! let opts = rlhf_train::TrainOptions::new("runs/rm");
//! // Two replicas on this machine (two CUDA devices in practice; two Flex threads here).
//! let (rank, out) = run_on_node::<Flex, _, _, _>(&DistConfig::single(), &[FlexDevice, FlexDevice], |peer| {
//!     let model =
//!         ScalarModel::<CpuTrain>::init(&ModelConfig::tiny_llama(BYTE_VOCAB), 0.02, 0, &FlexDevice);
//!     train_with(peer, model, &collator, &pairs, &[], &cfg, &opts)
//! })?;
//! # Ok::<(), rlhf_distributed::DistError>(())
//! ```
#![warn(missing_docs)]

mod bucket;
mod collective;
mod config;
mod error;
mod launch;
mod link;

pub use collective::Peer;
pub use config::{DistConfig, Rank, replica_devices};
pub use error::{DistError, LostNode, Result};
pub use launch::{launch, run_on_node};
