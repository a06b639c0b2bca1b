//! [`train_dpo_dp`]: the DPO training loop of `rlhf_policy_dpo::train`, data parallel.
//!
//! The same trajectory as the single-process loop, whatever the world size: every rank walks
//! the same global data order (the epoch permutation of `rlhf_reward`), takes its contiguous
//! shard of each micro-batch ([`crate::plan_step`] with [`Reduction::WeightedMean`], the DPO
//! loss being a weighted mean) and steps through [`dp_dpo_step`].
//!
//! - **Reference log-probs** are computed once, sharded: rank `r` scores the pairs of
//!   [`shard_range`]`(n, r, world)` with its frozen reference, the values are gathered, and rank
//!   0 writes `reference_logps{,_eval}.parquet` (the single-process cache format and
//!   fingerprint); a rerun or resume reads the cache on every rank (a shared run directory).
//! - **Held-out evaluation** is sharded the same way and its per-pair statistics gathered, so no
//!   rank idles (and times out) while another evaluates.
//! - **Checkpoints** are `rlhf_policy_dpo`'s ([`DpoState`], `model` or, with LoRA, `adapters`,
//!   and `optim` records), written by global rank 0: a data-parallel run can resume on one
//!   device and the other way round.
//! - LoRA and bf16 mixed precision work as in the single-process loop (frozen base weights
//!   stay out of the gradient all-reduce).

use std::path::Path;
use std::sync::atomic::Ordering;

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use rlhf_core::CausalLm;
use rlhf_policy_dpo::{
    BatchRef, DpoError, DpoExample, DpoOutcome, DpoStart, DpoTrainConfig, LogEntry, PairStats,
    ReferenceLogps, ReferenceMode, append_metrics, collate_examples, compute_reference, eval_log,
    evaluate_pairs, examples_fingerprint, prepare_examples, read_reference_cache, run_fingerprint,
    save_dpo_checkpoint, start_dpo_run, write_reference_cache,
};
use rlhf_reward::{PairCollator, PreferencePair, TrainOptions, TrainStatus, epoch_permutation};

use crate::collective::Peer;
use crate::config::Rank;
use crate::error::{DistError, Result};
use crate::launch::launch;
use crate::shard::{Reduction, plan_step, shard_range};
use crate::step::{Shard, dp_dpo_step};
use crate::train::{agree, at_step, param_checksum, u64_chunks};

/// Gathers every rank's block of per-example values (`per` arrays of the block's length, laid
/// out array after array) into the full arrays, in rank order. Blocks are
/// [`shard_range`]`(n, r, world)`.
fn gather_blocks<B: burn::prelude::Backend>(
    peer: &Peer<B>,
    n: usize,
    arrays: &[Vec<f32>],
    op: &str,
) -> Result<Vec<Vec<f32>>> {
    let world = peer.rank().world;
    let widest = (0..world)
        .map(|r| shard_range(n, r, world).len())
        .max()
        .unwrap_or(0);
    let mut mine = vec![0f32; arrays.len() * widest];
    for (a, v) in arrays.iter().enumerate() {
        mine[a * widest..a * widest + v.len()].copy_from_slice(v);
    }
    let all = peer.all_gather_scalars(&mine, op)?;
    let mut out = vec![Vec::with_capacity(n); arrays.len()];
    for (r, block) in all.iter().enumerate() {
        let len = shard_range(n, r, world).len();
        for (a, o) in out.iter_mut().enumerate() {
            o.extend_from_slice(&block[a * widest..a * widest + len]);
        }
    }
    Ok(out)
}

/// Reference log-probs of `examples`: the cache at `path` when it holds this fingerprint, else
/// computed in shards (rank `r` scores its block), gathered, and written by rank 0.
#[allow(clippy::too_many_arguments)]
fn reference_logps<B: burn::prelude::Backend>(
    peer: &Peer<B>,
    reference: Option<&CausalLm<B>>,
    examples: &[DpoExample],
    path: &Path,
    fingerprint: &str,
    pad: u32,
    batch_pairs: usize,
) -> Result<ReferenceLogps> {
    let rank = peer.rank();
    // Every rank must take the same branch: agree on whether the cache is there.
    let have = f32::from(u8::from(path.is_file()));
    let all = peer.all_gather_scalars(&[have], "reference cache lookup")?;
    if all.iter().all(|v| v[0] > 0.0) {
        return Ok(read_reference_cache(path, fingerprint, examples)?);
    }
    let model = reference.ok_or_else(|| {
        DpoError::Data(format!(
            "no reference model given and no cache at {}",
            path.display()
        ))
    })?;
    let n = examples.len();
    let block = shard_range(n, rank.rank, rank.world);
    let own = compute_reference(
        model,
        &examples[block],
        pad,
        batch_pairs,
        peer.device(),
        |_| {},
    );
    let to32 = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let arrays = [to32(&own.chosen), to32(&own.rejected)];
    let all = gather_blocks(peer, n, &arrays, "reference log-probs gather")?;
    let r = ReferenceLogps {
        chosen: all[0].iter().map(|&x| x as f64).collect(),
        rejected: all[1].iter().map(|&x| x as f64).collect(),
    };
    if rank.is_main() {
        write_reference_cache(path, fingerprint, examples, &r)?;
        tracing::info!(path = %path.display(), pairs = n, "reference log-probs cached");
    }
    Ok(r)
}

/// Held-out statistics, sharded over the ranks and gathered: every rank gets the statistics
/// of the whole held-out set.
fn evaluate_dp<B: AutodiffBackend>(
    peer: &Peer<B::InnerBackend>,
    policy: &CausalLm<B>,
    examples: &[DpoExample],
    reference: &ReferenceLogps,
    pad: u32,
    cfg: &DpoTrainConfig,
) -> Result<(f64, PairStats)> {
    let rank = peer.rank();
    let n = examples.len();
    let block = shard_range(n, rank.rank, rank.world);
    let sub = ReferenceLogps {
        chosen: reference.chosen[block.clone()].to_vec(),
        rejected: reference.rejected[block.clone()].to_vec(),
    };
    let (loss, s) = if block.is_empty() {
        (0.0, PairStats::default())
    } else {
        evaluate_pairs(
            &cfg.precision.compute(policy.valid()),
            &examples[block.clone()],
            &sub,
            pad,
            cfg.eval_batch_pairs,
            &cfg.loss,
            peer.device(),
        )
    };
    let loss_sum = loss * block.len() as f64;
    let arrays = [
        s.chosen_rewards,
        s.rejected_rewards,
        s.logps_chosen,
        s.logps_rejected,
    ];
    let all = gather_blocks(peer, n, &arrays, "evaluation gather")?;
    let total = peer.all_reduce_scalars(&[loss_sum], "evaluation loss")?[0];
    let mut it = all.into_iter();
    let mut next = || it.next().expect("four arrays");
    let stats = PairStats {
        chosen_rewards: next(),
        rejected_rewards: next(),
        logps_chosen: next(),
        logps_rejected: next(),
    };
    Ok((total / n.max(1) as f64, stats))
}

/// What [`train_dpo_dp`] returns on every rank.
#[derive(Debug)]
pub struct DpoDpOutcome<B: AutodiffBackend> {
    /// The outcome in `rlhf_policy_dpo::train`'s shape (`checkpoint` only on rank 0).
    pub outcome: DpoOutcome<B>,
    /// This replica's rank.
    pub rank: Rank,
}

/// Trains `policy` (this rank's replica on `peer.device()`; every rank must pass the same
/// starting parameters) with DPO on `train_pairs`, evaluating on `eval_pairs`, data parallel
/// over the world of `peer`. `reference` is the frozen reference (normally `policy.valid()`);
/// it may be `None` when the run directory already holds the reference caches. Resumes from
/// the run directory's latest checkpoint when `opts.resume` (the default), with any world
/// size.
///
/// # Errors
/// Invalid config or data, cache and resume mismatches ([`DistError::Dpo`]), ranks disagreeing
/// ([`DistError::Mismatch`]), and the collective's errors naming the lost ranks.
#[allow(clippy::too_many_arguments)]
pub fn train_dpo_dp<B: AutodiffBackend>(
    peer: &Peer<B::InnerBackend>,
    policy: CausalLm<B>,
    reference: Option<CausalLm<B::InnerBackend>>,
    collator: &PairCollator<'_>,
    train_pairs: &[PreferencePair],
    eval_pairs: &[PreferencePair],
    cfg: &DpoTrainConfig,
    opts: &TrainOptions,
) -> Result<DpoDpOutcome<B>> {
    let rank = peer.rank();
    let device = peer.device().clone();
    cfg.validate()?;
    if cfg.reference == ReferenceMode::Resident {
        return Err(DistError::config(
            "reference",
            "the data-parallel loop precomputes the reference log-probs: use reference = \
             \"precompute\"",
        ));
    }
    let (examples, eval_examples) =
        prepare_examples(collator, train_pairs, eval_pairs, cfg, policy.vocab_size())?;
    let run_dir = &opts.run_dir;
    if rank.is_main() {
        std::fs::create_dir_all(run_dir).map_err(|e| DpoError::io(run_dir, e))?;
    }
    // Rank 0 creates the directory before anyone reads or writes in it.
    peer.all_reduce_scalars(&[0.0], "run directory")?;
    let pad = collator.encoder.pad_id();
    let n = examples.len();

    let needs_ref = cfg.loss.loss_type.needs_reference();
    let print = run_fingerprint(
        reference.as_ref(),
        needs_ref,
        &examples,
        &eval_examples,
        run_dir,
    )?;
    let zeros = |k: usize| ReferenceLogps {
        chosen: vec![0.0; k],
        rejected: vec![0.0; k],
    };
    let (train_ref, eval_ref) = if !needs_ref {
        (zeros(n), zeros(eval_examples.len()))
    } else {
        let tr = reference_logps(
            peer,
            reference.as_ref(),
            &examples,
            &run_dir.join("reference_logps.parquet"),
            &print,
            pad,
            cfg.eval_batch_pairs,
        )?;
        let ev = if eval_examples.is_empty() {
            zeros(0)
        } else {
            reference_logps(
                peer,
                reference.as_ref(),
                &eval_examples,
                &run_dir.join("reference_logps_eval.parquet"),
                &print,
                pad,
                cfg.eval_batch_pairs,
            )?
        };
        (tr, ev)
    };
    drop(reference);

    let total = cfg.total_steps(n);
    let ckpt = rlhf_reward::resume_point(run_dir, opts.resume)?;
    let DpoStart {
        mut policy,
        mut optim,
        sched,
        mut state,
        resumed_from,
    } = start_dpo_run(
        policy,
        cfg,
        n,
        total,
        &print,
        run_dir,
        ckpt,
        rank.is_main(),
        &device,
    )?;
    let metrics_path = run_dir.join("metrics.jsonl");

    let mut check = vec![n as f32, state.step as f32];
    check.extend(u64_chunks(examples_fingerprint(&examples)));
    agree(
        peer,
        &check,
        "training pairs, data fingerprint and starting step",
    )?;
    agree(peer, &param_checksum(&policy), "starting parameters")?;

    if resumed_from.is_none() && !eval_examples.is_empty() {
        let (loss, s) = evaluate_dp(peer, &policy, &eval_examples, &eval_ref, pad, cfg)?;
        let entry = LogEntry::Eval(eval_log(0, 0.0, loss, &s));
        if rank.is_main() {
            append_metrics(&metrics_path, &entry)?;
        }
        state.history.push(entry);
    }
    let pb = rlhf_reward::progress_bar(opts.progress && rank.is_main(), total, state.step, "dpo");
    let mut perm = epoch_permutation(n, cfg.seed, state.data.epoch);
    let mut last_saved = resumed_from;
    let mut checkpoint = None;
    let mut status = TrainStatus::Finished;
    let mut stop_agreed = false;
    while state.step < total {
        if stop_agreed || opts.stop_after.is_some_and(|s| state.step >= s) {
            if rank.is_main() && last_saved != Some(state.step) {
                checkpoint = Some(save_dpo_checkpoint(run_dir, &policy, &optim, &state)?);
            }
            tracing::info!(rank = rank.rank, step = state.step, "stopped");
            status = TrainStatus::Stopped;
            break;
        }
        let micro = state.data.next_batches(
            n,
            cfg.batch_pairs,
            cfg.gradient_accumulation_steps,
            &mut perm,
        );
        let plan = plan_step(
            &micro,
            rank.rank,
            rank.world,
            Reduction::WeightedMean,
            |i| examples[i].weight as f64,
        );
        let shards: Vec<Shard<_>> = plan
            .micro
            .iter()
            .filter(|m| !m.indices.is_empty())
            .map(|m| {
                let refs: Vec<&DpoExample> = m.indices.iter().map(|&i| &examples[i]).collect();
                let reference = BatchRef {
                    chosen: m
                        .indices
                        .iter()
                        .map(|&i| train_ref.chosen[i] as f32)
                        .collect(),
                    rejected: m
                        .indices
                        .iter()
                        .map(|&i| train_ref.rejected[i] as f32)
                        .collect(),
                };
                Shard {
                    batch: (collate_examples(&refs, pad), reference),
                    offset: m.offset,
                    share: m.share,
                }
            })
            .collect();
        let stop_flag = opts.stop.load(Ordering::SeqCst);
        let lr = sched.lr(state.step);
        let (p, st, flags) = dp_dpo_step(
            peer,
            policy,
            &mut optim,
            &shards,
            plan.global_examples,
            &cfg.loss,
            cfg.max_grad_norm,
            lr,
            &[f32::from(u8::from(stop_flag))],
            cfg.precision,
            &device,
        )
        .map_err(|e| at_step(e, state.step + 1))?;
        policy = p;
        stop_agreed = flags[0] > 0.0;
        state.step += 1;
        if !st.loss.is_finite() || !st.grad_norm.is_finite() {
            return Err(DpoError::NonFinite {
                what: "loss",
                step: state.step,
            }
            .into());
        }
        state.window.add_step(st.loss, st.grad_norm, &st.pairs);
        pb.set_position(state.step as u64);
        let step = state.step;
        let epoch = state.data.epoch as f64 + state.data.cursor as f64 / n as f64;
        if step % cfg.logging_steps == 0 || step == total {
            let log = state.window.finish(step, epoch, lr);
            if rank.is_main() {
                tracing::info!(
                    step,
                    loss = log.loss,
                    accuracy = log.rewards_accuracies,
                    "train"
                );
            }
            let entry = LogEntry::Train(log);
            if rank.is_main() {
                append_metrics(&metrics_path, &entry)?;
            }
            state.history.push(entry);
        }
        let eval_due = cfg.eval_steps.is_some_and(|k| step % k == 0) || step == total;
        if eval_due && !eval_examples.is_empty() {
            let (loss, s) = evaluate_dp(peer, &policy, &eval_examples, &eval_ref, pad, cfg)?;
            let entry = LogEntry::Eval(eval_log(step, epoch, loss, &s));
            if rank.is_main() {
                append_metrics(&metrics_path, &entry)?;
            }
            state.history.push(entry);
        }
        let save_due = cfg.save_steps.is_some_and(|k| step % k == 0) || step == total;
        if save_due {
            if rank.is_main() {
                checkpoint = Some(save_dpo_checkpoint(run_dir, &policy, &optim, &state)?);
            }
            last_saved = Some(step);
        }
    }
    pb.finish_and_clear();
    Ok(DpoDpOutcome {
        outcome: DpoOutcome {
            policy,
            status,
            step: state.step,
            total_steps: total,
            resumed_from,
            history: state.history,
            checkpoint,
        },
        rank,
    })
}

/// This node's part of a data-parallel DPO run: one replica per device of `devices`, each
/// built by `init` on its device (returning the policy and, unless the run dir holds the
/// reference caches, its frozen reference), trained by [`train_dpo_dp`], launched with
/// [`launch`]. Returns local replica 0's outcome: what `rlhf train-dpo --devices/--nodes` runs.
///
/// # Errors
/// As [`launch`] and [`train_dpo_dp`]; `init`'s errors are [`DistError::Init`].
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
pub fn train_dpo_on_node<B, F>(
    dist: &crate::DistConfig,
    devices: &[B::Device],
    init: F,
    collator: &PairCollator<'_>,
    train_pairs: &[PreferencePair],
    eval_pairs: &[PreferencePair],
    cfg: &DpoTrainConfig,
    opts: &TrainOptions,
) -> Result<DpoDpOutcome<B>>
where
    B: AutodiffBackend,
    F: Fn(
            &B::Device,
        ) -> std::result::Result<(CausalLm<B>, Option<CausalLm<B::InnerBackend>>), String>
        + Sync,
{
    let mut outs = launch::<B::InnerBackend, _, _>(dist, devices, |peer| {
        let (policy, reference) = init(peer.device()).map_err(|message| DistError::Init {
            rank: peer.rank().rank,
            message,
        })?;
        let out = train_dpo_dp(
            peer,
            policy,
            reference,
            collator,
            train_pairs,
            eval_pairs,
            cfg,
            opts,
        )?;
        Ok((out.rank.local == 0).then_some(out))
    })?;
    Ok(outs
        .iter_mut()
        .find_map(Option::take)
        .expect("local replica 0 returns its outcome"))
}
