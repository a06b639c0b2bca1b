//! The PPO training loop: prompt filter and reference-reward cache before step 0, then per
//! iteration a rollout, rewards (reference baseline, KL penalty), GAE and several PPO epochs
//! over minibatches, with step checkpoints and exact resume, a stop flag, TRL-named metrics,
//! a progress bar and the reward/KL plot. Follows `rlhf_reward::train`'s structure.
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

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::AdamW;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::tensor::backend::AutodiffBackend;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rlhf_core::generate::GenerationConfig;
use rlhf_core::{CausalLm, ScalarModel};
use rlhf_debias::RunningMeanStd;
use rlhf_reward::{
    EncodedRow, LrSchedule, TrainOptions, TrainStatus, epoch_permutation, load_module_record,
    load_optimizer_record, read_state, save_checkpoint_with, save_module_record,
    save_optimizer_record,
};
use serde::{Deserialize, Serialize};

use crate::advantage::compute_gae;
use crate::config::PpoConfig;
use crate::data::{EncodedPrompt, ntp_batch};
use crate::error::{PpoError, Result};
use crate::frozen::{Frozen, module_fingerprint};
use crate::kl::KlController;
use crate::metrics::{PpoLog, append_log, write_logs};
use crate::plot::{PlotRun, reward_kl_svg};
use crate::prepare::{prompts_fingerprint, reference_scores, run_filter};
use crate::reward::{sequence_rewards, token_rewards};
use crate::rollout::rollout;
use crate::scorer::Scorer;
use crate::step::{Minibatch, NtpBatch, StepConfig, StepStats, ppo_step};

/// The four models of a PPO run.
pub struct PpoModels<B: AutodiffBackend> {
    /// The policy being trained (starts from the SFT checkpoint).
    pub actor: CausalLm<B>,
    /// The value model (a trunk initialised from the reward model, with its scalar head).
    pub critic: ScalarModel<B>,
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
}

/// What [`train`] returns.
#[derive(Debug)]
pub struct PpoOutcome<B: AutodiffBackend> {
    /// The trained policy.
    pub actor: CausalLm<B>,
    /// The trained critic.
    pub critic: ScalarModel<B>,
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
    /// The last checkpoint written.
    pub checkpoint: Option<PathBuf>,
}

/// SplitMix64 of `(a, b)`: the per-step seed.
pub fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn progress_bar(show: bool, total: usize, start: usize) -> ProgressBar {
    let target = if show && std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let pb = ProgressBar::with_draw_target(Some(total as u64), target);
    if let Ok(style) = ProgressStyle::with_template(
        "ppo {bar:30.cyan/blue} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}",
    ) {
        pb.set_style(style);
    }
    pb.set_position(start as u64);
    pb
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
pub fn flatten(rows: &[Vec<f32>], width: usize) -> Vec<f32> {
    let mut out = vec![0.0; rows.len() * width];
    for (r, row) in rows.iter().enumerate() {
        out[r * width..r * width + row.len()].copy_from_slice(row);
    }
    out
}

/// The listed rows of a row-major `[_, width]` matrix, in the listed order.
pub fn gather_rows(flat: &[f32], width: usize, rows: &[usize]) -> Vec<f32> {
    rows.iter()
        .flat_map(|&r| flat[r * width..(r + 1) * width].iter().copied())
        .collect()
}

/// The mean, 0 for no values.
pub fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = xs.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 { 0.0 } else { s / n as f64 }
}

/// The AdamW optimizer of a PPO run's actor (or critic).
pub type Adam<M, B> = OptimizerAdaptor<AdamW, M, B>;

/// What a PPO run starts from: actor and critic (restored from a checkpoint or as given),
/// their AdamW optimizers and learning-rate schedules, and the run state.
pub struct PpoStart<B: AutodiffBackend> {
    /// The policy.
    pub actor: CausalLm<B>,
    /// The value model.
    pub critic: ScalarModel<B>,
    /// The actor's AdamW.
    pub actor_optim: Adam<CausalLm<B>, B>,
    /// The critic's AdamW.
    pub critic_optim: Adam<ScalarModel<B>, B>,
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
pub fn start_ppo_run<B: AutodiffBackend>(
    actor: CausalLm<B>,
    critic: ScalarModel<B>,
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
    let adam = rlhf_reward::adamw(
        cfg.adam_beta1,
        cfg.adam_beta2,
        cfg.adam_epsilon,
        cfg.weight_decay,
    );
    let mut start = PpoStart {
        actor,
        critic,
        actor_optim: adam.init::<B, CausalLm<B>>(),
        critic_optim: adam.init::<B, ScalarModel<B>>(),
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
        },
        resumed_from: None,
    };
    let metrics_path = run_dir.join("metrics.jsonl");
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
    if st.prompts_fingerprint != print || st.n_prompts != n {
        return Err(mismatch(format!(
            "prompts differ ({n} prompts, fingerprint {print}; checkpoint: {} prompts, {})",
            st.n_prompts, st.prompts_fingerprint
        )));
    }
    start.actor = load_module_record(start.actor, &dir, "actor", device)?;
    start.critic = load_module_record(start.critic, &dir, "critic", device)?;
    start.actor_optim =
        load_optimizer_record::<B, CausalLm<B>, _>(start.actor_optim, &dir, "actor_optim", device)?;
    start.critic_optim = load_optimizer_record::<B, ScalarModel<B>, _>(
        start.critic_optim,
        &dir,
        "critic_optim",
        device,
    )?;
    if write_logs_file {
        write_logs(&metrics_path, &st.history)?;
    }
    tracing::info!(step = st.step, dir = %dir.display(), "resuming");
    start.resumed_from = Some(st.step);
    start.state = st;
    Ok(start)
}

/// Writes a PPO checkpoint (actor, critic, both optimizers, `state`) under `run_dir`, keeping
/// the newest `state.config.save_total_limit`.
pub fn save_ppo_checkpoint<B: AutodiffBackend>(
    run_dir: &std::path::Path,
    actor: &CausalLm<B>,
    critic: &ScalarModel<B>,
    actor_optim: &Adam<CausalLm<B>, B>,
    critic_optim: &Adam<ScalarModel<B>, B>,
    state: &PpoState,
) -> Result<PathBuf> {
    Ok(save_checkpoint_with(
        run_dir,
        state.step,
        state,
        state.config.save_total_limit,
        |dir| {
            save_module_record(actor, dir, "actor")?;
            save_module_record(critic, dir, "critic")?;
            save_optimizer_record::<B, CausalLm<B>, _>(actor_optim, dir, "actor_optim")?;
            save_optimizer_record::<B, ScalarModel<B>, _>(critic_optim, dir, "critic_optim")
        },
    )?)
}

/// Trains `models.actor` and `models.critic` with PPO on `data` (see the module docs), with
/// checkpoints and metrics in `opts.run_dir`.
///
/// When `opts.run_dir` holds a checkpoint (and `opts.resume`), training continues from it and
/// ends with the same parameters as an uninterrupted run; the trajectory fields of the config
/// and the (filtered) prompts must be unchanged. `decode` turns ids into text for the
/// reference-reward cache.
///
/// # Errors
/// Invalid config or data, generation errors, a reference cache from another run, IO and
/// record errors, [`PpoError::ResumeMismatch`], and [`PpoError::NonFinite`] on divergence.
pub fn train<B: AutodiffBackend>(
    models: PpoModels<B>,
    data: &PpoData,
    decode: &dyn Fn(&[u32]) -> Result<String>,
    cfg: &PpoConfig,
    opts: &TrainOptions,
    device: &B::Device,
) -> Result<PpoOutcome<B>> {
    cfg.validate()?;
    let PpoModels {
        actor,
        critic,
        reference,
        mut reward,
    } = models;
    let vocab = actor.vocab_size();
    if reference.vocab_size() != vocab {
        return Err(PpoError::Data(format!(
            "the reference model's vocabulary ({}) differs from the policy's ({vocab})",
            reference.vocab_size()
        )));
    }
    check_data(data, vocab, cfg, actor.trunk.rope.max_len())?;
    let run_dir = &opts.run_dir;
    std::fs::create_dir_all(run_dir).map_err(|e| PpoError::io(run_dir, e))?;
    let ckpt = rlhf_reward::resume_point(run_dir, opts.resume)?;
    if ckpt.is_none() {
        let json = serde_json::to_string_pretty(cfg).expect("serialisable");
        rlhf_core::io::write_atomic(&run_dir.join("config.json"), json.as_bytes())?;
    }

    let mut reference = Frozen::new(reference, cfg.offload_frozen);
    let ref_print = reference.with(device, module_fingerprint);
    let base = GenerationConfig {
        max_new_tokens: cfg.max_new_tokens,
        sampling: cfg.sampling,
        seed: cfg.seed,
        eos_ids: data.eos_ids.clone(),
        pad_id: data.pad_id,
    };
    let prompts = run_filter(
        &mut reference,
        reward.as_mut(),
        data.prompts.clone(),
        cfg,
        &base,
        &ref_print,
        opts,
        device,
    )?;
    let refs = reference_scores(
        &mut reference,
        reward.as_mut(),
        &prompts,
        cfg,
        &base,
        &ref_print,
        decode,
        opts,
        device,
    )?;
    let n = prompts.len();
    let print = prompts_fingerprint(&prompts);
    let PpoStart {
        mut actor,
        mut critic,
        mut actor_optim,
        mut critic_optim,
        sched_actor: sched_a,
        sched_critic: sched_c,
        mut state,
        resumed_from,
    } = start_ppo_run(actor, critic, cfg, n, print, run_dir, ckpt, true, device)?;
    let metrics_path = run_dir.join("metrics.jsonl");

    let step_cfg = StepConfig::from(cfg);
    let pb = progress_bar(opts.progress, cfg.total_steps, state.step);
    let mut last_saved = resumed_from;
    let mut checkpoint = None;
    let mut status = TrainStatus::Finished;
    let save = |actor: &CausalLm<B>, critic: &ScalarModel<B>, ao: &_, co: &_, st: &PpoState| {
        save_ppo_checkpoint(run_dir, actor, critic, ao, co, st)
    };

    while state.step < cfg.total_steps {
        let stop_now =
            opts.stop.load(Ordering::SeqCst) || opts.stop_after.is_some_and(|s| state.step >= s);
        if stop_now {
            if last_saved != Some(state.step) {
                checkpoint = Some(save(&actor, &critic, &actor_optim, &critic_optim, &state)?);
            }
            tracing::info!(step = state.step, "stopped");
            status = TrainStatus::Stopped;
            break;
        }
        let step_seed = mix(cfg.seed, state.step as u64);
        let idx = state.prompts.take(n, cfg.batch_prompts, cfg.seed);
        let batch_prompts: Vec<Vec<u32>> = idx.iter().map(|&i| prompts[i].ids.clone()).collect();
        let gen_cfg = GenerationConfig {
            seed: step_seed,
            ..base.clone()
        };

        // Rollout with inference copies of the trained models.
        let t_rollout = Instant::now();
        let ro = {
            let policy = actor.valid();
            let critic_inner = critic.valid();
            rollout(
                &policy,
                &critic_inner,
                &mut reference,
                reward.as_mut(),
                &batch_prompts,
                &gen_cfg,
                device,
            )?
        };
        let time_rollout = t_rollout.elapsed().as_secs_f64();

        // Rewards, KL penalty, advantages.
        let rows = ro.seqs.rows();
        let width = ro.seqs.response_width;
        let lens = ro.seqs.response_lens.clone();
        let batch_refs = refs.as_ref().map(|r| {
            (
                idx.iter().map(|&i| r.scores[i]).collect::<Vec<_>>(),
                idx.iter().map(|&i| r.finished[i]).collect::<Vec<_>>(),
            )
        });
        let seq = sequence_rewards(
            &ro.scores,
            &ro.finished,
            batch_refs
                .as_ref()
                .map(|(s, f)| (s.as_slice(), f.as_slice())),
            cfg.missing_eos_penalty,
            &cfg.shaping,
            &mut state.running,
        )?;
        let kl_coef = state.kl.coef;
        let tr = token_rewards(
            &ro.logprobs,
            &ro.ref_logprobs,
            &seq,
            width,
            kl_coef,
            cfg.kl.estimator,
        )?;
        let values = flatten(&ro.values, width);
        let adv = compute_gae(
            &tr.rewards,
            &values,
            &lens,
            width,
            cfg.gamma,
            cfg.lam,
            cfg.whiten_advantages,
        )?;
        let old_lp = flatten(&ro.logprobs, width);

        // PPO epochs over minibatches.
        let t_update = Instant::now();
        let mut steps: Vec<StepStats> = Vec::with_capacity(cfg.optimizer_steps_per_iteration());
        let mut lr_a = 0.0;
        for epoch in 0..cfg.ppo_epochs {
            let perm = epoch_permutation(rows, step_seed, epoch);
            for chunk in perm.chunks(cfg.mini_batch_size) {
                let mb = Minibatch {
                    seqs: ro.seqs.select(chunk),
                    old_logprobs: gather_rows(&old_lp, width, chunk),
                    old_values: gather_rows(&values, width, chunk),
                    advantages: gather_rows(&adv.advantages, width, chunk),
                    returns: gather_rows(&adv.returns, width, chunk),
                };
                let ntp = (cfg.ntp_coef > 0.0).then(|| {
                    let k = state
                        .sft
                        .take(data.sft.len(), cfg.ntp_batch_size, mix(cfg.seed, 1));
                    let rows: Vec<&EncodedRow> = k.iter().map(|&i| &data.sft[i]).collect();
                    let (tokens, target_mask) = ntp_batch(&rows, data.pad_id);
                    NtpBatch {
                        tokens,
                        target_mask,
                    }
                });
                lr_a = sched_a.lr(state.optimizer_steps);
                let lr_c = sched_c.lr(state.optimizer_steps);
                let (a, c, st) = ppo_step(
                    actor,
                    critic,
                    &mut actor_optim,
                    &mut critic_optim,
                    &mb,
                    ntp.as_ref(),
                    &step_cfg,
                    lr_a,
                    lr_c,
                    device,
                );
                actor = a;
                critic = c;
                state.optimizer_steps += 1;
                let finite = [
                    st.policy_loss,
                    st.value_loss,
                    st.grad_norm_policy,
                    st.grad_norm_value,
                ]
                .iter()
                .chain(st.ntp_loss.as_ref())
                .all(|x| x.is_finite());
                if !finite {
                    return Err(PpoError::NonFinite {
                        what: "loss or gradient",
                        step: state.step + 1,
                    });
                }
                steps.push(st);
            }
        }
        let time_update = t_update.elapsed().as_secs_f64();

        let mean_kl = mean(tr.kl_sum.iter().copied());
        state.kl.update(mean_kl, rows);
        state.step += 1;
        pb.set_position(state.step as u64);
        let step = state.step;
        if step % cfg.logging_steps == 0 || step == cfg.total_steps {
            let avg = |f: fn(&StepStats) -> f64| mean(steps.iter().map(f));
            let shaped = mean(seq.iter().copied());
            let non_score = mean(tr.non_score.iter().copied());
            let penalised =
                crate::reward::apply_eos_penalty(&ro.scores, &ro.finished, cfg.missing_eos_penalty);
            let log = PpoLog {
                step,
                episode: step * cfg.batch_prompts,
                epoch: state.prompts.epoch as f64 + state.prompts.cursor as f64 / n as f64,
                kl: mean_kl,
                entropy: mean(
                    ro.logprobs
                        .iter()
                        .map(|r| -r.iter().map(|&x| x as f64).sum::<f64>()),
                ),
                non_score_reward: non_score,
                rlhf_reward: shaped + non_score,
                scores: mean(penalised.iter().copied()),
                reference_scores: batch_refs.as_ref().map(|(s, f)| {
                    mean(
                        crate::reward::apply_eos_penalty(s, f, cfg.missing_eos_penalty).into_iter(),
                    )
                }),
                shaped_scores: shaped,
                kl_coef,
                approxkl_avg: avg(|s| s.approx_kl),
                clipfrac_avg: avg(|s| s.clipfrac),
                entropy_avg: avg(|s| s.entropy),
                policy_loss_avg: avg(|s| s.policy_loss),
                value_loss_avg: avg(|s| s.value_loss),
                ntp_loss_avg: (cfg.ntp_coef > 0.0)
                    .then(|| mean(steps.iter().filter_map(|s| s.ntp_loss))),
                ratio: avg(|s| s.ratio),
                value_clipfrac_avg: avg(|s| s.value_clipfrac),
                num_eos_tokens: ro.finished.iter().filter(|&&f| f).count(),
                response_length: mean(lens.iter().map(|&l| l as f64)),
                grad_norm_policy: avg(|s| s.grad_norm_policy),
                grad_norm_value: avg(|s| s.grad_norm_value),
                lr: lr_a,
                time_rollout,
                time_update,
            };
            pb.set_message(format!("reward {:.3} kl {:.3}", log.shaped_scores, log.kl));
            tracing::info!(
                step,
                reward = log.shaped_scores,
                score = log.scores,
                kl = log.kl,
                clipfrac = log.clipfrac_avg,
                "ppo"
            );
            append_log(&metrics_path, &log)?;
            state.history.push(log);
        }
        let save_due = cfg.save_steps.is_some_and(|k| step % k == 0) || step == cfg.total_steps;
        if save_due {
            checkpoint = Some(save(&actor, &critic, &actor_optim, &critic_optim, &state)?);
            last_saved = Some(step);
        }
    }
    pb.finish_and_clear();
    if !state.history.is_empty() {
        let svg = reward_kl_svg(
            "PPO: reward and KL",
            &[PlotRun::from_logs("this run", &state.history)],
        )?;
        rlhf_core::io::write_atomic(&run_dir.join("reward_kl.svg"), svg.as_bytes())?;
    }
    Ok(PpoOutcome {
        actor,
        critic,
        status,
        step: state.step,
        total_steps: cfg.total_steps,
        resumed_from,
        history: state.history,
        n_prompts: n,
        checkpoint,
    })
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
