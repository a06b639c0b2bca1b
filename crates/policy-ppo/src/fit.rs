//! The PPO loop, once, generic over the [`Collective`] world it runs in: [`train`] is
//! [`train_with`] on [`Solo`], a data-parallel run passes `rlhf_distributed::Peer`.
//!
//! Per iteration every rank takes the same global prompt batch (the seeded prompt order read
//! at the checkpointed cursor), generates rollouts for its contiguous shard
//! ([`shard_range`]) with the random stream of each prompt's position in the whole batch
//! ([`crate::rollout_rows`]), and computes per-token rewards and GAE for its own rows. What
//! needs the whole batch goes through the world (the identity for [`Solo`]):
//!
//! - one f64 all-reduce after the rollout gathers every row's score, EOS flag, response
//!   length, summed KL, non-score reward and entropy (and the stop flag): every rank then
//!   shapes the sequence rewards of the whole batch (reference baseline, running
//!   normalisation, with the same running statistics everywhere), updates the KL controller
//!   with the global mean KL, and computes the metrics;
//! - advantage whitening, when on, uses the global mean and unbiased variance over every real
//!   token;
//! - each optimizer step (a minibatch of the global rollout, ordered by the seeded
//!   permutation) has every rank back-propagate the rows of the minibatch it generated, each
//!   loss term weighted by the rank's share of the tokens the term averages over (response
//!   tokens for the policy, entropy and value terms, SFT target tokens for the NTP term, whose
//!   batch is split by rows), so the summed gradient is that of the whole minibatch;
//!   `rlhf_train::apply` then sums, clips and steps the actor and the critic.
//!
//! The reference-reward cache is built before step 0, each rank generating its contiguous
//! share of the cache's generation batches (the same batches and seeds whatever the world);
//! the main rank writes the Parquet file, which every rank reads on resume. The prompt filter,
//! when on, runs on the main rank alone (the others read its report). The main rank alone
//! writes `config.json`, `metrics.jsonl`, the plot and the checkpoints ([`PpoState`]): a
//! checkpoint resumes with any world size.

use std::sync::atomic::Ordering;
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use rlhf_core::generate::GenerationConfig;
use rlhf_core::text::EncodedRow;
use rlhf_core::{CausalLm, ScalarModel};
use rlhf_train::{
    Collective, Monitor, RunDir, Solo, TrainOptions, TrainStatus, agree, apply, epoch_permutation,
    param_checksum, resume_point, shard_range, u64_chunks, write_config,
};

use crate::advantage::compute_gae;
use crate::config::AdvEstimator;
use crate::config::PpoConfig;
use crate::data::ntp_batch;
use crate::error::{PpoError, Result};
use crate::estimators::{critic_free_advantages, frac_reward_zero_std};
use crate::frozen::{Frozen, module_fingerprint};
use crate::metrics::{PpoLog, append_log};
use crate::plot::{PlotRun, reward_kl_svg};
use crate::prepare::{prompts_fingerprint, reference_scores, run_filter};
use crate::reward::{apply_eos_penalty, baseline_rewards, sequence_rewards, token_rewards};
use crate::rollout::{greedy_scores, rollout_rows};
use crate::step::{Minibatch, NtpBatch, StepConfig, StepShares, StepStats, ppo_gradients};
use crate::train::{
    PpoData, PpoModels, PpoOutcome, PpoStart, PpoState, check_data, flatten, gather_rows, mean,
    mix, save_ppo_checkpoint, start_ppo_run,
};

/// Per-row values gathered after the rollout.
const ROW_SLOTS: usize = 6;

/// Trains `models.actor` and `models.critic` with PPO on `data` in a world of one on `device`:
/// [`train_with`] with [`Solo`].
///
/// # Errors
/// As [`train_with`].
pub fn train<B: AutodiffBackend>(
    models: PpoModels<B>,
    data: &PpoData,
    decode: &dyn Fn(&[u32]) -> rlhf_core::Result<String>,
    cfg: &PpoConfig,
    opts: &TrainOptions,
    device: &B::Device,
) -> Result<PpoOutcome<B>> {
    train_with(
        &Solo::<B>::new(device.clone()),
        models,
        data,
        decode,
        cfg,
        opts,
    )
}

/// SFT target tokens of a row (what `nll_loss` averages over: positions ≥ 1 of the response).
fn ntp_targets(row: &EncodedRow) -> usize {
    row.ids.len().saturating_sub(row.response_start.max(1))
}

/// Whitens `adv` (row-major `[lens.len(), width]`) over the real tokens of every rank, as
/// `rlhf_debias::whiten(.., shift_mean = true, 1e-8)` does over one batch.
fn whiten_global<B: AutodiffBackend, C: Collective<B>>(
    world: &C,
    adv: &mut [f32],
    lens: &[usize],
    width: usize,
) -> Result<()> {
    let real = || {
        lens.iter()
            .enumerate()
            .flat_map(move |(r, &len)| (0..len).map(move |t| r * width + t))
    };
    let local_sum: f64 = real().map(|i| adv[i] as f64).sum();
    let local_n = real().count() as f64;
    let s = world.all_reduce_f64(&[local_sum, local_n], "advantage mean")?;
    let (mean, n) = (s[0] / s[1], s[1]);
    if n < 2.0 {
        return Err(PpoError::Data(format!(
            "advantage whitening needs at least 2 response tokens, the rollout has {n}"
        )));
    }
    let local_sq: f64 = real().map(|i| (adv[i] as f64 - mean).powi(2)).sum();
    let sq = world.all_reduce_f64(&[local_sq], "advantage variance")?[0];
    let inv = 1.0 / (sq / (n - 1.0) + 1e-8).sqrt();
    for i in real().collect::<Vec<_>>() {
        adv[i] = ((adv[i] as f64 - mean) * inv) as f32;
    }
    Ok(())
}

/// Trains `models.actor` and `models.critic` with PPO on `data` (the whole data set, the same
/// on every rank) in `world` (see the module docs): this rank's replica of the four models,
/// built on `world.device()` with the same parameters on every rank. Checkpoints and metrics
/// go to `opts.run_dir`, written by the main rank; every rank resumes from the latest
/// checkpoint there when `opts.resume` (the default), and ends with the same parameters as an
/// uninterrupted run, whatever the world sizes; the trajectory fields of the config and the
/// (filtered) prompts must be unchanged. `decode` turns ids into text for the
/// reference-reward cache (used on the main rank).
///
/// A stop request (`opts.stop`, on any rank) is agreed on through the next rollout's
/// all-reduce, so all ranks stop after the same iteration.
///
/// # Errors
/// Invalid config or data (also `batch_prompts` smaller than the world), generation errors, a
/// reference cache from another run, IO and record errors, a locked run directory,
/// [`PpoError::ResumeMismatch`], [`PpoError::NonFinite`] on divergence, ranks disagreeing, and
/// the collective's errors naming the lost ranks.
pub fn train_with<B: AutodiffBackend, C: Collective<B>>(
    world: &C,
    models: PpoModels<B>,
    data: &PpoData,
    decode: &dyn Fn(&[u32]) -> rlhf_core::Result<String>,
    cfg: &PpoConfig,
    opts: &TrainOptions,
) -> Result<PpoOutcome<B>> {
    let (rank, n_ranks, main) = (world.rank(), world.world(), world.is_main());
    let device = world.device().clone();
    cfg.validate()?;
    if cfg.batch_prompts < n_ranks {
        return Err(PpoError::config(
            "batch_prompts",
            format!(
                "batch_prompts ({}) is smaller than the number of replicas ({n_ranks}): every \
                 replica needs at least one prompt per rollout",
                cfg.batch_prompts
            ),
        ));
    }
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
    let run = RunDir::open(world, &opts.run_dir)?;
    let run_dir = run.path();
    let ckpt = resume_point(run_dir, opts.resume)?;
    if main && ckpt.is_none() {
        write_config(run_dir, cfg)?;
    }

    let mut reference = Frozen::new(reference, cfg.offload_frozen);
    let ref_print = reference.with(&device, module_fingerprint);
    let base = GenerationConfig {
        max_new_tokens: cfg.max_new_tokens,
        sampling: cfg.sampling,
        seed: cfg.seed,
        eos_ids: data.eos_ids.clone(),
        pad_id: data.pad_id,
    };
    let prompts = if cfg.filter.is_some() {
        // Rank 0 filters (and writes prompt_filter.json); the others then read its report.
        let mut kept = None;
        if main {
            kept = Some(run_filter(
                &mut reference,
                reward.as_mut(),
                data.prompts.clone(),
                cfg,
                &base,
                &ref_print,
                opts,
                &device,
            )?);
        }
        world.all_reduce(&[0.0], "prompt filter")?;
        match kept {
            Some(k) => k,
            None => run_filter(
                &mut reference,
                reward.as_mut(),
                data.prompts.clone(),
                cfg,
                &base,
                &ref_print,
                opts,
                &device,
            )?,
        }
    } else {
        data.prompts.clone()
    };
    let n = prompts.len();
    let print = prompts_fingerprint(&prompts);
    let mut check = vec![n as f32];
    check.extend(u64_chunks(rlhf_train::fnv1a(0, print.as_bytes())));
    check.extend(u64_chunks(rlhf_train::fnv1a(0, ref_print.as_bytes())));
    agree::<B, _>(
        world,
        &check,
        "prompts (after the filter) and reference model",
    )?;
    let refs = reference_scores(
        world,
        &mut reference,
        reward.as_mut(),
        &prompts,
        cfg,
        &base,
        &ref_print,
        decode,
        opts,
    )?;

    let PpoStart {
        mut actor,
        mut critic,
        mut actor_optim,
        mut critic_optim,
        sched_actor: sched_a,
        sched_critic: sched_c,
        mut state,
        resumed_from,
    } = start_ppo_run(actor, critic, cfg, n, print, run_dir, ckpt, main, &device)?;
    state.world = n_ranks;
    let metrics_path = run_dir.join("metrics.jsonl");
    agree::<B, _>(
        world,
        &[
            state.step as f32,
            state.optimizer_steps as f32,
            state.kl.coef as f32,
        ],
        "starting step and KL coefficient",
    )?;
    let mut sums = param_checksum(&actor).to_vec();
    if let Some(c) = &critic {
        sums.extend(param_checksum(c));
    }
    agree::<B, _>(world, &sums, "starting actor and critic parameters")?;

    let step_cfg = StepConfig::from(cfg);
    let mut last_saved = resumed_from;
    let mut checkpoint = None;
    let mut status = TrainStatus::Finished;
    let save = |actor: &CausalLm<B>,
                critic: &Option<ScalarModel<B>>,
                ao: &_,
                co: &Option<_>,
                st: &PpoState| {
        save_ppo_checkpoint(run_dir, actor, critic.as_ref(), ao, co.as_ref(), st)
    };

    // Prompts are sharded, so a prompt's k responses (its group) stay on one rank; row
    // `p·k + j` of the rollout is response j to prompt p.
    let bp = cfg.batch_prompts;
    let k = cfg.num_generations;
    let n_rows = cfg.rollout_rows();
    let mine = shard_range(bp, rank, n_ranks);
    let mine_rows = mine.start * k..mine.end * k;
    let estimator = cfg.adv_estimator;
    let mut mon = Monitor::new(
        opts.progress && main,
        "ppo",
        cfg.total_steps,
        state.step,
        opts.stop.clone(),
    );
    let stop_flag = || f64::from(u8::from(opts.stop.load(Ordering::SeqCst)));
    let mut stop_agreed = world.all_reduce_f64(&[stop_flag()], "stop flag")?[0] > 0.0;
    while state.step < cfg.total_steps {
        if stop_agreed || opts.stop_after.is_some_and(|s| state.step >= s) {
            if main && last_saved != Some(state.step) {
                checkpoint = Some(save(&actor, &critic, &actor_optim, &critic_optim, &state)?);
            }
            tracing::info!(rank, step = state.step, "stopped");
            status = TrainStatus::Stopped;
            break;
        }
        let iteration = state.step + 1;
        let step_seed = mix(cfg.seed, state.step as u64);
        let cursor_before = state.prompts;
        let idx = state.prompts.take(n, bp, cfg.seed);
        // The prompt of every row of the rollout (each prompt `k` times).
        let row_prompt: Vec<usize> = idx
            .iter()
            .flat_map(|&i| std::iter::repeat_n(i, k))
            .collect();
        let my_prompts: Vec<Vec<u32>> = row_prompt[mine_rows.clone()]
            .iter()
            .map(|&i| prompts[i].ids.clone())
            .collect();
        let gen_cfg = GenerationConfig {
            seed: step_seed,
            ..base.clone()
        };

        // Rollout of this rank's prompts, with inference copies of the trained models.
        let t_rollout = Instant::now();
        let policy_now = actor.valid();
        let ro = rollout_rows(
            &policy_now,
            critic.as_ref().map(|c| c.valid()).as_ref(),
            &mut reference,
            reward.as_mut(),
            &my_prompts,
            mine_rows.start,
            &gen_cfg,
            &device,
        )
        .and_then(|ro| {
            // ReMax: the greedy response of the current policy to each prompt, scored.
            let greedy = if estimator == AdvEstimator::Remax {
                let once: Vec<Vec<u32>> = my_prompts.iter().step_by(k).cloned().collect();
                Some(greedy_scores(
                    &policy_now,
                    reward.as_mut(),
                    &once,
                    &gen_cfg,
                    &device,
                )?)
            } else {
                None
            };
            Ok((ro, greedy))
        });
        let (ro, greedy) = match ro {
            Ok(ro) => ro,
            Err(e @ PpoError::Scorer { .. }) => {
                // Nothing of this iteration is in the state once the prompt cursor is put
                // back: the checkpoint of the iteration before resumes exactly.
                state.prompts = cursor_before;
                if main && last_saved != Some(state.step) {
                    save(&actor, &critic, &actor_optim, &critic_optim, &state)?;
                }
                tracing::error!(rank, step = state.step, "reward source failed: {e}");
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let time_rollout = t_rollout.elapsed().as_secs_f64();
        let rows = ro.seqs.rows();
        let width = ro.seqs.response_width;
        let lens = ro.seqs.response_lens.clone();
        let kl_coef = state.kl.coef;
        // KL and non-score reward per row do not depend on the sequence rewards.
        let pre = token_rewards(
            &ro.logprobs,
            &ro.ref_logprobs,
            &vec![0.0; rows],
            width,
            kl_coef,
            cfg.kl.estimator,
        )?;

        // Every row's statistics (and the stop flag), each rank filling its rows' slots.
        let mut v = vec![0.0f64; n_rows * ROW_SLOTS + 1];
        let here = &mut v[mine_rows.start * ROW_SLOTS..(mine_rows.start + rows) * ROW_SLOTS];
        for (r, s) in here.chunks_mut(ROW_SLOTS).enumerate() {
            let entropy = -ro.logprobs[r].iter().map(|&x| x as f64).sum::<f64>();
            s.copy_from_slice(&[
                ro.scores[r] as f64,
                f64::from(u8::from(ro.finished[r])),
                lens[r] as f64,
                pre.kl_sum[r],
                pre.non_score[r],
                entropy,
            ]);
        }
        v[n_rows * ROW_SLOTS] = stop_flag();
        let op = format!("PPO rollout statistics all-reduce of step {iteration}");
        let g = world.all_reduce_f64(&v, &op)?;
        stop_agreed = g[n_rows * ROW_SLOTS] > 0.0;
        let slot = |r: usize, j: usize| g[r * ROW_SLOTS + j];
        let scores_g: Vec<f32> = (0..n_rows).map(|r| slot(r, 0) as f32).collect();
        let finished_g: Vec<bool> = (0..n_rows).map(|r| slot(r, 1) > 0.5).collect();
        let lens_g: Vec<usize> = (0..n_rows).map(|r| slot(r, 2) as usize).collect();
        let kl_sum_g: Vec<f64> = (0..n_rows).map(|r| slot(r, 3)).collect();
        let non_score_g: Vec<f64> = (0..n_rows).map(|r| slot(r, 4)).collect();
        let entropy_g: Vec<f64> = (0..n_rows).map(|r| slot(r, 5)).collect();

        // Sequence rewards of the whole batch (identical running statistics on every rank),
        // then this rank's per-token rewards and advantages.
        let batch_refs = refs.as_ref().map(|r| {
            (
                row_prompt.iter().map(|&i| r.scores[i]).collect::<Vec<_>>(),
                row_prompt
                    .iter()
                    .map(|&i| r.finished[i])
                    .collect::<Vec<_>>(),
            )
        });
        let seq = sequence_rewards(
            &scores_g,
            &finished_g,
            batch_refs
                .as_ref()
                .map(|(s, f)| (s.as_slice(), f.as_slice())),
            cfg.missing_eos_penalty,
            &cfg.shaping,
            &mut state.running,
        )?;
        let frac_zero_std = (k >= 2)
            .then(|| frac_reward_zero_std(&seq, k))
            .transpose()?;
        let tr = token_rewards(
            &ro.logprobs,
            &ro.ref_logprobs,
            &seq[mine_rows.clone()],
            width,
            kl_coef,
            cfg.kl.estimator,
        )?;
        let values = flatten(&ro.values, width);
        let mut adv = if estimator == AdvEstimator::Gae {
            compute_gae(
                &tr.rewards,
                &values,
                &lens,
                width,
                cfg.gamma,
                cfg.lam,
                false,
            )?
        } else {
            let baselines = match &greedy {
                Some((s, f)) => Some(baseline_rewards(
                    s,
                    f,
                    cfg.missing_eos_penalty,
                    &cfg.shaping,
                    &state.running,
                )?),
                None => None,
            };
            critic_free_advantages(cfg, &tr.rewards, &lens, width, baselines.as_deref())?
        };
        if cfg.whiten_advantages || estimator == AdvEstimator::ReinforcePp {
            whiten_global(world, &mut adv.advantages, &lens, width)?;
        }
        let old_lp = flatten(&ro.logprobs, width);

        // PPO epochs over the global minibatches; each rank back-propagates its rows.
        let t_update = Instant::now();
        let mut steps: Vec<StepStats> = Vec::with_capacity(cfg.optimizer_steps_per_iteration());
        let mut lr_a = 0.0;
        for epoch in 0..cfg.ppo_epochs {
            let perm = epoch_permutation(n_rows, step_seed, epoch);
            for chunk in perm.chunks(cfg.mini_batch_size) {
                let local: Vec<usize> = chunk
                    .iter()
                    .filter(|g| mine_rows.contains(g))
                    .map(|g| g - mine_rows.start)
                    .collect();
                let tokens_all: usize = chunk.iter().map(|&g| lens_g[g]).sum();
                let tokens_here: usize = local.iter().map(|&l| lens[l]).sum();
                let mb = (!local.is_empty()).then(|| Minibatch {
                    seqs: ro.seqs.select(&local),
                    old_logprobs: gather_rows(&old_lp, width, &local),
                    old_values: gather_rows(&values, width, &local),
                    advantages: gather_rows(&adv.advantages, width, &local),
                    returns: gather_rows(&adv.returns, width, &local),
                });
                let mut ntp_share = 0.0;
                let ntp = if cfg.ntp_coef > 0.0 {
                    let k = state
                        .sft
                        .take(data.sft.len(), cfg.ntp_batch_size, mix(cfg.seed, 1));
                    let part = &k[shard_range(k.len(), rank, n_ranks)];
                    let all: usize = k.iter().map(|&i| ntp_targets(&data.sft[i])).sum();
                    let here: usize = part.iter().map(|&i| ntp_targets(&data.sft[i])).sum();
                    if all > 0 {
                        ntp_share = here as f64 / all as f64;
                    }
                    (!part.is_empty()).then(|| {
                        let rows: Vec<&EncodedRow> = part.iter().map(|&i| &data.sft[i]).collect();
                        let (tokens, target_mask) = ntp_batch(&rows, data.pad_id);
                        NtpBatch {
                            tokens,
                            target_mask,
                        }
                    })
                } else {
                    None
                };
                let share = if tokens_all > 0 {
                    tokens_here as f64 / tokens_all as f64
                } else {
                    0.0
                };
                let policy_share = match cfg.loss_agg_mode {
                    crate::config::LossAggMode::TokenMean => share,
                    _ => local.len() as f64 / chunk.len() as f64,
                };
                let shares = StepShares {
                    policy: policy_share,
                    tokens: share,
                    ntp: ntp_share,
                };
                let (ga, gc, st) = ppo_gradients(
                    &actor,
                    critic.as_ref(),
                    mb.as_ref(),
                    ntp.as_ref(),
                    &step_cfg,
                    shares,
                    &device,
                );
                let extras = [
                    st.policy_loss * policy_share,
                    st.value_loss * share,
                    st.entropy * share,
                    st.approx_kl * share,
                    st.clipfrac * share,
                    st.ratio * share,
                    st.value_clipfrac * share,
                    st.ntp_loss.unwrap_or(0.0) * ntp_share,
                ]
                .map(|x| x as f32);
                lr_a = sched_a.lr(state.optimizer_steps);
                let lr_c = sched_c.lr(state.optimizer_steps);
                let op = format!("PPO actor gradient all-reduce of step {iteration}");
                let (a, applied_a) = apply(
                    world,
                    actor,
                    &mut actor_optim,
                    ga,
                    &extras,
                    cfg.max_grad_norm,
                    lr_a,
                    &op,
                )?;
                let mut grad_norm_value = 0.0;
                if let (Some(c), Some(co)) = (critic.take(), critic_optim.as_mut()) {
                    let op = format!("PPO critic gradient all-reduce of step {iteration}");
                    let (c, applied_c) =
                        apply(world, c, co, gc, &[], cfg.max_grad_norm, lr_c, &op)?;
                    critic = Some(c);
                    grad_norm_value = applied_c.grad_norm;
                }
                actor = a;
                state.optimizer_steps += 1;
                let x = |i: usize| applied_a.extras[i] as f64;
                let st = StepStats {
                    policy_loss: x(0),
                    value_loss: x(1),
                    ntp_loss: (cfg.ntp_coef > 0.0).then(|| x(7)),
                    entropy: x(2),
                    approx_kl: x(3),
                    clipfrac: x(4),
                    value_clipfrac: x(6),
                    ratio: x(5),
                    grad_norm_policy: applied_a.grad_norm,
                    grad_norm_value,
                    forward_backward_s: st.forward_backward_s,
                    optimizer_s: st.optimizer_s,
                };
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
                        step: iteration,
                    });
                }
                steps.push(st);
            }
        }
        let time_update = t_update.elapsed().as_secs_f64();

        let mean_kl = mean(kl_sum_g.iter().copied());
        state.kl.update(mean_kl, bp);
        state.step += 1;
        let step = state.step;
        if step % cfg.logging_steps == 0 || step == cfg.total_steps {
            let avg = |f: fn(&StepStats) -> f64| mean(steps.iter().map(f));
            let shaped = mean(seq.iter().copied());
            let non_score = mean(non_score_g.iter().copied());
            let penalised = apply_eos_penalty(&scores_g, &finished_g, cfg.missing_eos_penalty);
            let log = PpoLog {
                step,
                episode: step * n_rows,
                epoch: state.prompts.epoch as f64 + state.prompts.cursor as f64 / n as f64,
                kl: mean_kl,
                entropy: mean(entropy_g.iter().copied()),
                non_score_reward: non_score,
                rlhf_reward: shaped + non_score,
                scores: mean(penalised.iter().copied()),
                reference_scores: batch_refs.as_ref().map(|(s, f)| {
                    mean(apply_eos_penalty(s, f, cfg.missing_eos_penalty).into_iter())
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
                num_eos_tokens: finished_g.iter().filter(|&&f| f).count(),
                response_length: mean(lens_g.iter().map(|&l| l as f64)),
                grad_norm_policy: avg(|s| s.grad_norm_policy),
                grad_norm_value: avg(|s| s.grad_norm_value),
                lr: lr_a,
                frac_reward_zero_std: frac_zero_std,
                time_rollout,
                time_update,
            };
            let line = format!("reward {:.3} kl {:.3}", log.shaped_scores, log.kl);
            mon.train(step, &line, &log);
            if main {
                tracing::info!(
                    step,
                    reward = log.shaped_scores,
                    score = log.scores,
                    kl = log.kl,
                    clipfrac = log.clipfrac_avg,
                    "ppo"
                );
                append_log(&metrics_path, &log)?;
            }
            state.history.push(log);
        }
        mon.step(step);
        let save_due = cfg.save_steps.is_some_and(|k| step % k == 0) || step == cfg.total_steps;
        if save_due {
            if main {
                checkpoint = Some(save(&actor, &critic, &actor_optim, &critic_optim, &state)?);
            }
            last_saved = Some(step);
        }
    }
    mon.finish();
    if main && !state.history.is_empty() {
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
        kl: state.kl,
    })
}

#[cfg(test)]
mod tests {
    use burn::backend::Autodiff;
    use burn::backend::Flex;
    use burn::backend::flex::FlexDevice;

    use super::*;

    /// The loop's whitening (one process) is the batch whitening of
    /// `tests/golden/estimators.py`'s REINFORCE++ (γ = 0.9: 11 real tokens of 6 rows, width 3),
    /// and leaves the padding positions untouched.
    #[test]
    fn whiten_global_matches_the_golden_reinforce_pp_whitening() {
        let world = Solo::<Autodiff<Flex>>::new(FlexDevice);
        let lens = [2, 1, 3, 1, 2, 2];
        let returns: [&[f32]; 6] = [
            &[0.62, 0.8],
            &[0.0],
            &[0.274, 0.36, 0.4],
            &[2.0],
            &[1.8, 2.0],
            &[1.8, 2.0],
        ];
        let mut adv = vec![9.0f32; 18];
        for (r, row) in returns.iter().enumerate() {
            adv[r * 3..r * 3 + row.len()].copy_from_slice(row);
        }
        whiten_global(&world, &mut adv, &lens, 3).unwrap();
        let golden: [&[f64]; 6] = [
            &[-0.583043809250, -0.362480809190],
            &[-1.342760809457],
            &[-1.007014909366, -0.901634809337, -0.852620809323],
            &[1.107939191211],
            &[0.862869191144, 1.107939191211],
            &[0.862869191144, 1.107939191211],
        ];
        for (r, row) in golden.iter().enumerate() {
            for t in 0..3 {
                let got = adv[r * 3 + t] as f64;
                let want = row.get(t).copied().unwrap_or(9.0);
                assert!(
                    (got - want).abs() < 1e-5,
                    "row {r} token {t}: {got} vs {want}"
                );
            }
        }
    }
}
