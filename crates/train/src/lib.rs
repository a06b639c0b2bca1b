//! # rlhf-train
//!
//! The training engine every trainer of the workspace shares (reward model, SFT, DPO, PPO):
//!
//! - the run directory and its resume contract ([`RunDir`], [`resume_point`],
//!   [`save_checkpoint_with`], [`config_diff`]): an exclusive lock, atomic checkpoints named by
//!   `checkpoints/latest` only once complete, a config-trajectory check and a data fingerprint;
//! - metrics JSONL ([`append_jsonl`], [`write_jsonl`], [`read_jsonl`]), the warm-up + cosine
//!   schedule ([`LrSchedule`]), AdamW from a config ([`adamw`]), global-norm clipping
//!   ([`clip_grad_norm`]), the seeded data cursor ([`DataRngState`]) and what a run shows
//!   while it trains ([`Monitor`]: burn-train's dashboard on a terminal, a bar, or plain lines);
//! - [`Collective`], the world a loop runs in, with [`Solo`] (a world of one) here and the
//!   data-parallel world in `rlhf-distributed`; [`plan_step`] shards a step's batches by
//!   rank, [`apply`] sums, clips and steps;
//! - [`fit`], the one loop of the reward model, SFT and DPO over an [`Objective`].
//!
//! | module (private) | what |
//! | --- | --- |
//! | `run`, `lock` | run-dir layout, checkpoints, records, [`TrainOptions`], [`RunDir`] |
//! | `cursor`, `schedule`, `clip`, `progress`, `jsonl` | the helpers above |
//! | `collective`, `shard` | [`Collective`], [`Solo`], [`apply`], [`agree`], [`Gather`], [`plan_step`] |
//! | `fit` | [`fit`], [`Objective`], [`FitArgs`], [`FitState`], [`FitOutcome`] |
//! | `monitor`, `dashboard` | [`Monitor`], [`View`], [`LogWriter`]; burn-train's TUI (feature `dashboard`, default) |
//! | `memory` | [`MemoryPlan`] of every trainer (printed before launch, checked against the device) |
//! | `error` | [`TrainError`] |
#![warn(missing_docs)]

mod clip;
mod collective;
mod cursor;
#[cfg(feature = "dashboard")]
mod dashboard;
mod error;
mod fit;
mod jsonl;
mod lock;
mod memory;
mod monitor;
mod progress;
mod run;
mod schedule;
mod shard;

pub use clip::{clip_grad_norm, global_grad_norm};
pub use collective::{
    Accumulated, Applied, Collective, Gather, GradSum, Solo, accumulate, agree, apply,
    clip_and_step, model_shape, param_checksum, u64_chunks,
};
pub use cursor::{DataRngState, epoch_permutation};
pub use error::{Result, TrainError};
pub use fit::{
    Evaluated, FitArgs, FitOutcome, FitResult, FitState, Objective, Scale, ShardLoss, StepOut, fit,
};
pub use jsonl::{append_jsonl, read_jsonl, write_jsonl};
pub use lock::RunDir;
pub use memory::{
    MemoryPlan, ModelMemory, Pass, device_memory_bytes, floats_per_token_layer, peak_rss_bytes,
};
pub use monitor::{LogWriter, Monitor, View, numeric_fields, plain_line, set_view, view};
pub use progress::progress_bar;
pub use run::{
    CADENCE_FIELDS, TrainOptions, TrainStatus, checkpoints_dir, config_diff, has_checkpoints,
    latest_checkpoint, load_module_record, load_optimizer_record, read_state, resume_point,
    save_checkpoint_with, save_module_record, save_optimizer_record, write_config,
};
pub use schedule::{LrSchedule, adamw};
pub use shard::{MicroShard, Reduction, StepPlan, plan_step, shard, shard_range};

/// FNV-1a with a seed mixed into the offset basis (`rlhf_util`'s one copy).
pub use rlhf_util::fnv1a;
