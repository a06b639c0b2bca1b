//! What a PPO run is made of: the models, the data, the resume state and its checkpoints (the
//! loop itself is `fit.rs`): prompt filter and reference-reward cache before step 0, then per
//! iteration a rollout, rewards (reference baseline, KL penalty), GAE and several PPO epochs
//! over minibatches, with step checkpoints and exact resume, a stop flag, TRL-named metrics,
//! a progress bar and the reward/KL plot, on `rlhf-train`'s run directory and helpers.
//!
//! # Run directory
//!
//! ```text
//! run_dir/
//! ├── config.json                 the PpoConfig (written before step 0)
//! ├── prompt_filter.json          the filter's report (when the filter is on)
//! ├── reference_rewards.parquet   the reference-reward cache (default location)
//! ├── metrics.jsonl               one PpoLog per logged step
//! ├── reward_kl.svg               reward and KL against the step
//! └── checkpoints/step-N/         actor.mpk, critic.mpk, actor_optim.mpk, critic_optim.mpk,
//!                                 state.json (step, cursors, KL controller, running stats, …)
//! ```
//!
//! # Randomness
//!
//! Nothing random is carried between steps: step `s` samples with seed `mix(seed, s)`, orders
//! its minibatches with `epoch_permutation(rows, mix(seed, s), epoch)`, and the prompt and SFT
//! orders are `epoch_permutation(n, seed, epoch)` read at a cursor. The checkpoint's step and
//! cursors are therefore the whole random state, and a resumed run equals an uninterrupted one.

use std::path::PathBuf;

use burn::optim::AdamW;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::tensor::backend::AutodiffBackend;
use rlhf_core::text::EncodedRow;
use rlhf_core::{CausalLm, ScalarModel};
use rlhf_debias::RunningMeanStd;
use rlhf_train::{
    LrSchedule, TrainStatus, epoch_permutation, load_module_record, load_optimizer_record,
    read_state, save_checkpoint_with, save_module_record, save_optimizer_record,
};
use serde::{Deserialize, Serialize};

use crate::config::PpoConfig;
use crate::data::EncodedPrompt;
use crate::error::{PpoError, Result};
use crate::kl::KlController;
use crate::metrics::{PpoLog, write_logs};
use crate::scorer::Scorer;

/// The four models of a PPO run.
pub struct PpoModels<B: AutodiffBackend> {
    /// The policy being trained (starts from the SFT checkpoint).
    pub actor: CausalLm<B>,
    /// The value model (a trunk initialised from the reward model, with its scalar head);
    /// `None` for a critic-free estimator (`adv_estimator` other than `gae`).
    pub critic: Option<ScalarModel<B>>,
    /// The frozen SFT model: KL reference, reference-reward responses, prompt filter.
    pub reference: CausalLm<B::InnerBackend>,
    /// The frozen reward model.
    pub reward: Box<dyn Scorer<B::InnerBackend>>,
}

impl<B: AutodiffBackend> std::fmt::Debug for PpoModels<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PpoModels")
            .field("reward", &self.reward.fingerprint())
            .finish_non_exhaustive()
    }
}

/// Encoded training data.
#[derive(Debug, Clone)]
pub struct PpoData {
    /// RL prompts.
    pub prompts: Vec<EncodedPrompt>,
    /// SFT rows for the NTP regulariser (may be empty when `ntp_coef == 0`).
    pub sft: Vec<EncodedRow>,
    /// Padding id.
    pub pad_id: u32,
    /// A response stops at any of these.
    pub eos_ids: Vec<u32>,
}

/// A position in a seeded epoch order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Cursor {
    /// Epoch whose permutation is being read.
    pub epoch: usize,
    /// Items of it consumed.
    pub cursor: usize,
}

impl Cursor {
    /// The next `k` indices of the `epoch_permutation(n, seed, ·)` sequence, crossing epochs.
    pub fn take(&mut self, n: usize, k: usize, seed: u64) -> Vec<usize> {
        let mut out = Vec::with_capacity(k);
        let mut perm = epoch_permutation(n, seed, self.epoch);
        while out.len() < k {
            if self.cursor >= n {
                self.epoch += 1;
                self.cursor = 0;
                perm = epoch_permutation(n, seed, self.epoch);
            }
            out.push(perm[self.cursor]);
            self.cursor += 1;
        }
        out
    }
}

/// What a checkpoint's `state.json` holds besides the model and optimizer records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PpoState {
    /// PPO iterations done.
    pub step: usize,
    /// Iterations of the run.
    pub total_steps: usize,
    /// Optimizer steps done (the learning-rate schedule's position).
    pub optimizer_steps: usize,
    /// Position in the prompt order.
    pub prompts: Cursor,
    /// Position in the SFT order.
    pub sft: Cursor,
    /// The KL coefficient controller.
    pub kl: KlController,
    /// Running reward statistics (used when `shaping.running_norm`).
    pub running: RunningMeanStd,
    /// Prompts after filtering.
    pub n_prompts: usize,
    /// FNV-1a of the (filtered) prompts' ids.
    pub prompts_fingerprint: String,
    /// The config the run started with.
    pub config: PpoConfig,
    /// Every metrics entry so far.
    pub history: Vec<PpoLog>,
    /// World size of the run that wrote the checkpoint (informational: a run resumes with any
    /// world size).
    #[serde(default = "one_world")]
    pub world: usize,
    /// The actor's and the critic's architecture (`rlhf_train::model_shape`); a resume into
    /// other shapes is refused (absent in checkpoints written before it was recorded).
    #[serde(default)]
    pub model: Option<String>,
}

fn one_world() -> usize {
    1
}

/// What [`crate::train`] returns.
#[derive(Debug)]
pub struct PpoOutcome<B: AutodiffBackend> {
    /// The trained policy.
    pub actor: CausalLm<B>,
    /// The trained critic (`None` for a critic-free estimator).
    pub critic: Option<ScalarModel<B>>,
    /// Finished or stopped.
    pub status: TrainStatus,
    /// PPO iterations done.
    pub step: usize,
    /// Iterations of the run.
    pub total_steps: usize,
    /// The step the run resumed from, if it did.
    pub resumed_from: Option<usize>,
    /// Every metrics entry (also in `metrics.jsonl`).
    pub history: Vec<PpoLog>,
    /// Prompts trained on (after the filter).
    pub n_prompts: usize,
    /// The last checkpoint written (by the main rank).
    pub checkpoint: Option<PathBuf>,
    /// The KL controller after the last iteration.
    pub kl: KlController,
}

/// SplitMix64 of `(a, b)`: the per-step seed.
pub fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Checks the data against the policy (`vocab` ids, `max_pos` positions) and the config: prompts
/// present, ids inside the vocabulary, prompt + `max_new_tokens` within the positions, SFT
/// data present when the NTP term is on.
///
/// # Errors
/// [`PpoError::Data`], [`PpoError::Config`].
pub fn check_data(data: &PpoData, vocab: usize, cfg: &PpoConfig, max_pos: usize) -> Result<()> {
    if data.prompts.is_empty() {
        return Err(PpoError::Data("no training prompts".into()));
    }
    if cfg.ntp_coef > 0.0 && data.sft.is_empty() {
        return Err(PpoError::config(
            "ntp_coef",
            "the NTP regulariser is on but there is no SFT data",
        ));
    }
    let bad = |what: &str, id: u32| {
        PpoError::Data(format!(
            "{what}: token id {id} is outside the policy's vocabulary of {vocab}"
        ))
    };
    for p in &data.prompts {
        if let Some(&id) = p.ids.iter().find(|&&i| i as usize >= vocab) {
            return Err(bad(&format!("prompt `{}`", p.id), id));
        }
        if p.ids.len() + cfg.max_new_tokens > max_pos {
            return Err(PpoError::Data(format!(
                "prompt `{}`: {} tokens + {} new exceed the model's {max_pos} positions; lower \
                 max_prompt_length or max_new_tokens",
                p.id,
                p.ids.len(),
                cfg.max_new_tokens
            )));
        }
    }
    for (i, r) in data.sft.iter().enumerate() {
        if let Some(&id) = r.ids.iter().find(|&&x| x as usize >= vocab) {
            return Err(bad(&format!("SFT row {i}"), id));
        }
    }
    for &id in data.eos_ids.iter().chain([&data.pad_id]) {
        if id as usize >= vocab {
            return Err(bad("EOS/pad id", id));
        }
    }
    Ok(())
}

/// Rows of different lengths, zero-padded to `width`, row-major.
pub(crate) fn flatten(rows: &[Vec<f32>], width: usize) -> Vec<f32> {
    let mut out = vec![0.0; rows.len() * width];
    for (r, row) in rows.iter().enumerate() {
        out[r * width..r * width + row.len()].copy_from_slice(row);
    }
    out
}

/// The listed rows of a row-major `[_, width]` matrix, in the listed order.
pub(crate) fn gather_rows(flat: &[f32], width: usize, rows: &[usize]) -> Vec<f32> {
    rows.iter()
        .flat_map(|&r| flat[r * width..(r + 1) * width].iter().copied())
        .collect()
}

/// The mean, 0 for no values.
pub(crate) fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = xs.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 { 0.0 } else { s / n as f64 }
}

/// The AdamW optimizer of a PPO run's actor (or critic).
pub(crate) type Adam<M, B> = OptimizerAdaptor<AdamW, M, B>;

/// What a PPO run starts from: actor and critic (restored from a checkpoint or as given),
/// their AdamW optimizers and learning-rate schedules, and the run state.
pub(crate) struct PpoStart<B: AutodiffBackend> {
    /// The policy.
    pub actor: CausalLm<B>,
    /// The value model (none for a critic-free estimator).
    pub critic: Option<ScalarModel<B>>,
    /// The actor's AdamW.
    pub actor_optim: Adam<CausalLm<B>, B>,
    /// The critic's AdamW (with the critic).
    pub critic_optim: Option<Adam<ScalarModel<B>, B>>,
    /// The actor's warm-up + cosine schedule over every optimizer step of the run.
    pub sched_actor: LrSchedule,
    /// The critic's.
    pub sched_critic: LrSchedule,
    /// Fresh (step 0), or the checkpoint's.
    pub state: PpoState,
    /// The step of the checkpoint resumed from, if any.
    pub resumed_from: Option<usize>,
}

/// Sets a PPO run up for the single-process and the data-parallel loops alike: either restores
/// actor, critic, both optimizers and the state from `ckpt` (refusing a checkpoint whose
/// trajectory settings or prompts differ; `n` prompts with fingerprint `print`) or starts at
/// step 0. With `write_logs_file` (the main process), rewrites `metrics.jsonl` with the
/// checkpoint's history, or empty.
#[allow(clippy::too_many_arguments)]
pub(crate) fn start_ppo_run<B: AutodiffBackend>(
    actor: CausalLm<B>,
    critic: Option<ScalarModel<B>>,
    cfg: &PpoConfig,
    n: usize,
    print: String,
    run_dir: &std::path::Path,
    ckpt: Option<PathBuf>,
    write_logs_file: bool,
    device: &B::Device,
) -> Result<PpoStart<B>> {
    let per_step = cfg.optimizer_steps_per_iteration();
    let sched = |peak: f64| LrSchedule {
        peak,
        warmup: cfg.warmup_steps,
        total: cfg.total_steps * per_step,
        min_ratio: cfg.min_lr_ratio,
    };
    let adam = rlhf_train::adamw(
        cfg.adam_beta1,
        cfg.adam_beta2,
        cfg.adam_epsilon,
        cfg.weight_decay,
    );
    if critic.is_some() != cfg.adv_estimator.uses_critic() {
        return Err(PpoError::config(
            "adv_estimator",
            format!(
                "adv_estimator = {} {} a critic, and one was {}",
                cfg.adv_estimator.name(),
                if cfg.adv_estimator.uses_critic() {
                    "needs"
                } else {
                    "takes no"
                },
                if critic.is_some() {
                    "given"
                } else {
                    "not given"
                }
            ),
        ));
    }
    let shape = match &critic {
        Some(c) => format!(
            "actor {}; critic {}",
            rlhf_train::model_shape(&actor),
            rlhf_train::model_shape(c)
        ),
        None => format!("actor {}; no critic", rlhf_train::model_shape(&actor)),
    };
    let critic_optim = critic.as_ref().map(|_| adam.init::<B, ScalarModel<B>>());
    let mut start = PpoStart {
        actor,
        critic,
        actor_optim: adam.init::<B, CausalLm<B>>(),
        critic_optim,
        sched_actor: sched(cfg.learning_rate),
        sched_critic: sched(cfg.critic_learning_rate),
        state: PpoState {
            step: 0,
            total_steps: cfg.total_steps,
            optimizer_steps: 0,
            prompts: Cursor::default(),
            sft: Cursor::default(),
            kl: cfg.kl.controller(),
            running: RunningMeanStd::new(),
            n_prompts: n,
            prompts_fingerprint: print.clone(),
            config: cfg.clone(),
            history: Vec::new(),
            world: 1,
            model: None,
        },
        resumed_from: None,
    };
    let metrics_path = run_dir.join("metrics.jsonl");
    start.state.model = Some(shape.clone());
    let Some(dir) = ckpt else {
        if write_logs_file {
            write_logs(&metrics_path, &[])?;
        }
        return Ok(start);
    };
    let st: PpoState = read_state(&dir)?;
    let mismatch = |message: String| PpoError::ResumeMismatch {
        path: dir.clone(),
        message,
    };
    let diff = st.config.trajectory_diff(cfg);
    if !diff.is_empty() {
        return Err(mismatch(format!("config differs: {}", diff.join("; "))));
    }
    if let Some(ck) = &st.model
        && ck != &shape
    {
        return Err(mismatch(format!(
            "model differs: checkpoint {ck}, now {shape} (another --init preset or config.json?)"
        )));
    }
    if st.prompts_fingerprint != print || st.n_prompts != n {
        return Err(mismatch(format!(
            "prompts differ ({n} prompts, fingerprint {print}; checkpoint: {} prompts, {})",
            st.n_prompts, st.prompts_fingerprint
        )));
    }
    start.actor = load_module_record(start.actor, &dir, "actor", device)?;
    start.actor_optim =
        load_optimizer_record::<B, CausalLm<B>, _>(start.actor_optim, &dir, "actor_optim", device)?;
    if let (Some(critic), Some(optim)) = (start.critic.take(), start.critic_optim.take()) {
        start.critic = Some(load_module_record(critic, &dir, "critic", device)?);
        start.critic_optim = Some(load_optimizer_record::<B, ScalarModel<B>, _>(
            optim,
            &dir,
            "critic_optim",
            device,
        )?);
    }
    if write_logs_file {
        write_logs(&metrics_path, &st.history)?;
    }
    tracing::info!(step = st.step, dir = %dir.display(), "resuming");
    start.resumed_from = Some(st.step);
    start.state = PpoState {
        model: Some(shape),
        ..st
    };
    Ok(start)
}

/// Writes a PPO checkpoint (actor, critic, both optimizers, `state`; no critic files for a
/// critic-free run) under `run_dir`, keeping the newest `state.config.save_total_limit`.
pub(crate) fn save_ppo_checkpoint<B: AutodiffBackend>(
    run_dir: &std::path::Path,
    actor: &CausalLm<B>,
    critic: Option<&ScalarModel<B>>,
    actor_optim: &Adam<CausalLm<B>, B>,
    critic_optim: Option<&Adam<ScalarModel<B>, B>>,
    state: &PpoState,
) -> Result<PathBuf> {
    Ok(save_checkpoint_with(
        run_dir,
        state.step,
        state,
        state.config.save_total_limit,
        |dir| {
            save_module_record(actor, dir, "actor")?;
            save_optimizer_record::<B, CausalLm<B>, _>(actor_optim, dir, "actor_optim")?;
            if let (Some(c), Some(o)) = (critic, critic_optim) {
                save_module_record(c, dir, "critic")?;
                save_optimizer_record::<B, ScalarModel<B>, _>(o, dir, "critic_optim")?;
            }
            Ok(())
        },
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_crosses_epochs_and_resumes() {
        let mut c = Cursor::default();
        let a = c.take(5, 3, 7);
        let b = c.take(5, 4, 7);
        assert_eq!(
            c,
            Cursor {
                epoch: 1,
                cursor: 2
            }
        );
        let mut first: Vec<usize> = a.iter().chain(&b[..2]).copied().collect();
        first.sort();
        assert_eq!(first, vec![0, 1, 2, 3, 4]);
        let mut d = Cursor {
            epoch: 0,
            cursor: 3,
        };
        assert_eq!(d.take(5, 4, 7), b);
        assert_ne!(mix(1, 2), mix(2, 1));
    }
}
