//! The DPO training loop: reference log-probs precomputed once (or a resident reference),
//! AdamW with warm-up + cosine, gradient accumulation, global-norm clipping, seeded shuffling,
//! held-out evaluation, step checkpoints with exact resume, a stop flag, TRL-named metrics and a
//! progress bar. Same run-dir layout as the reward model's (`rlhf_reward` checkpoint helpers).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, GradientsAccumulator, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use rlhf_core::{CausalLm, Precision};
use rlhf_reward::{
    CADENCE_FIELDS, DataRngState, LrSchedule, PairCollator, PreferencePair, TrainOptions,
    TrainStatus, clip_grad_norm, config_diff, epoch_permutation, global_grad_norm,
    load_module_record, load_optimizer_record, progress_bar, read_state, save_checkpoint_with,
    save_module_record, save_optimizer_record,
};
use serde::{Deserialize, Serialize};

use crate::config::{DpoTrainConfig, ReferenceMode};
use crate::data::{DpoBatch, DpoExample, batch_logps, collate_examples, encode_examples};
use crate::error::{DpoError, Result};
use crate::loss::{DpoLossConfig, PairLogps, dpo_loss};
use crate::metrics::{LogEntry, PairStats, Window, append_metrics, eval_log, write_metrics};
use crate::reference::{
    ReferenceLogps, cached_fingerprint, compute_reference, examples_fingerprint, model_fingerprint,
    read_reference_cache, write_reference_cache,
};

/// Reference log-probs of one batch on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRef {
    /// Per pair, Σ log π_ref(y_c).
    pub chosen: Vec<f32>,
    /// Per pair, Σ log π_ref(y_r).
    pub rejected: Vec<f32>,
}

impl BatchRef {
    fn gather(r: &ReferenceLogps, batch: &DpoBatch, pos: &[usize]) -> Self {
        debug_assert_eq!(pos.len(), batch.n);
        BatchRef {
            chosen: pos.iter().map(|&i| r.chosen[i] as f32).collect(),
            rejected: pos.iter().map(|&i| r.rejected[i] as f32).collect(),
        }
    }

    fn zeros(n: usize) -> Self {
        BatchRef {
            chosen: vec![0.0; n],
            rejected: vec![0.0; n],
        }
    }

    fn tensors<B: Backend>(&self, device: &B::Device) -> PairLogps<B> {
        let n = self.chosen.len();
        PairLogps {
            chosen: Tensor::from_data(TensorData::new(self.chosen.clone(), [n]), device),
            rejected: Tensor::from_data(TensorData::new(self.rejected.clone(), [n]), device),
        }
    }
}

/// What one optimizer step saw.
#[derive(Debug, Clone, PartialEq)]
pub struct DpoStepStats {
    /// The step's objective (pair-weighted mean over its micro-batches).
    pub loss: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Per-pair implicit rewards and policy log-probs.
    pub pairs: PairStats,
}

fn host(t: Tensor<impl Backend, 1>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

/// One optimizer step over the micro-batches of a gradient-accumulation cycle: policy forward
/// of both rows of every pair (in `precision`: a bf16 copy of the f32 policy for mixed
/// precision), [`dpo_loss`] against the given reference log-probs (scaled by the micro-batch's
/// share of the step's pairs), backward, accumulate, clip, AdamW.
///
/// # Panics
/// If `batches` is empty.
#[allow(clippy::too_many_arguments)]
pub fn dpo_step<B, O>(
    policy: CausalLm<B>,
    optim: &mut O,
    batches: &[(DpoBatch, BatchRef)],
    loss_cfg: &DpoLossConfig,
    max_grad_norm: Option<f64>,
    lr: f64,
    precision: Precision,
    device: &B::Device,
) -> (CausalLm<B>, DpoStepStats)
where
    B: AutodiffBackend,
    O: Optimizer<CausalLm<B>, B>,
{
    assert!(!batches.is_empty(), "a step needs at least one micro-batch");
    let total: usize = batches.iter().map(|(b, _)| b.n).sum();
    let mut stats = DpoStepStats {
        loss: 0.0,
        grad_norm: 0.0,
        pairs: PairStats::default(),
    };
    let mut acc = GradientsAccumulator::<CausalLm<B>>::new();
    let mut single = None;
    for (batch, reference) in batches {
        let compute = precision.compute(policy.clone());
        let lp = batch_logps(&compute, batch, device);
        let (nc, nr) = batch.token_counts::<B>(device);
        let out = dpo_loss(
            lp.clone(),
            reference.tensors(device),
            nc,
            nr,
            Some(batch.weights_tensor(device)),
            loss_cfg,
        );
        let loss = out.loss.mul_scalar(batch.n as f64 / total as f64);
        stats.pairs.extend(&PairStats {
            chosen_rewards: host(out.chosen_rewards),
            rejected_rewards: host(out.rejected_rewards),
            logps_chosen: host(lp.chosen.detach()),
            logps_rejected: host(lp.rejected.detach()),
        });
        stats.loss += loss.clone().into_scalar().elem::<f64>();
        let grads = GradientsParams::from_grads(loss.backward(), &policy);
        if batches.len() == 1 {
            single = Some(grads);
        } else {
            acc.accumulate(&policy, grads);
        }
    }
    let mut grads = single.unwrap_or_else(|| acc.grads());
    stats.grad_norm = match max_grad_norm {
        Some(c) => clip_grad_norm::<B, _>(&policy, &mut grads, c),
        None => global_grad_norm::<B, _>(&policy, &grads),
    };
    let policy = optim.step(lr, policy, grads);
    (policy, stats)
}

/// Held-out statistics of `policy` (inference) on encoded pairs with their reference log-probs.
pub fn evaluate_pairs<B: Backend>(
    policy: &CausalLm<B>,
    examples: &[DpoExample],
    reference: &ReferenceLogps,
    pad_id: u32,
    batch_pairs: usize,
    loss_cfg: &DpoLossConfig,
    device: &B::Device,
) -> (f64, PairStats) {
    let mut stats = PairStats::default();
    let mut loss_sum = 0.0;
    let positions: Vec<usize> = (0..examples.len()).collect();
    for chunk in positions.chunks(batch_pairs.max(1)) {
        let refs: Vec<&DpoExample> = chunk.iter().map(|&i| &examples[i]).collect();
        let batch = collate_examples(&refs, pad_id);
        let r = BatchRef::gather(reference, &batch, chunk);
        let lp = batch_logps(policy, &batch, device);
        let (nc, nr) = batch.token_counts::<B>(device);
        let out = dpo_loss(lp.clone(), r.tensors(device), nc, nr, None, loss_cfg);
        loss_sum += out.losses.sum().into_scalar().elem::<f64>();
        stats.extend(&PairStats {
            chosen_rewards: host(out.chosen_rewards),
            rejected_rewards: host(out.rejected_rewards),
            logps_chosen: host(lp.chosen),
            logps_rejected: host(lp.rejected),
        });
    }
    (loss_sum / examples.len().max(1) as f64, stats)
}

/// Everything besides the model and optimizer records that resuming needs (`state.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpoState {
    /// Optimizer steps done.
    pub step: usize,
    /// Steps of the run.
    pub total_steps: usize,
    /// Data order position.
    pub data: DataRngState,
    /// Training pairs.
    pub n_train: usize,
    /// Fingerprint of the encoded training pairs and the reference.
    pub fingerprint: String,
    /// The run's config.
    pub config: DpoTrainConfig,
    /// Metrics so far.
    pub history: Vec<LogEntry>,
    /// The metrics window since the last log step.
    #[serde(default)]
    pub window: Window,
    /// With LoRA: fingerprint of the frozen base weights (the checkpoint holds the adapters
    /// only, so a resume must start from the same base).
    #[serde(default)]
    pub base_fingerprint: Option<String>,
}

/// What [`train`] returns.
#[derive(Debug)]
pub struct DpoOutcome<B: AutodiffBackend> {
    /// The trained policy.
    pub policy: CausalLm<B>,
    /// Finished or stopped.
    pub status: TrainStatus,
    /// Steps done.
    pub step: usize,
    /// Steps of the run.
    pub total_steps: usize,
    /// The step the run resumed from.
    pub resumed_from: Option<usize>,
    /// All metrics entries.
    pub history: Vec<LogEntry>,
    /// The last checkpoint written.
    pub checkpoint: Option<PathBuf>,
}

/// Writes a checkpoint of the run in `run_dir` (`state.json`, the model record or, with LoRA,
/// the adapters alone, and the optimizer record), keeping `save_total_limit` of them.
///
/// # Errors
/// IO and record errors.
pub fn save_dpo_checkpoint<B, O>(
    run_dir: &Path,
    policy: &CausalLm<B>,
    optim: &O,
    state: &DpoState,
) -> Result<PathBuf>
where
    B: AutodiffBackend,
    O: Optimizer<CausalLm<B>, B>,
{
    let keep = state.config.save_total_limit;
    Ok(save_checkpoint_with(
        run_dir,
        state.step,
        state,
        keep,
        |dir| {
            if policy.trunk.has_lora() {
                // The base is frozen: the adapters are the whole trained state.
                save_module_record(&policy.trunk.lora_adapters(), dir, "adapters")?;
            } else {
                save_module_record(policy, dir, "model")?;
            }
            save_optimizer_record::<B, CausalLm<B>, O>(optim, dir, "optim")
        },
    )?)
}

/// Encodes a DPO run's training and held-out pairs and checks them: a non-empty training set,
/// the collator's `max_length` equal to the config's, every token id inside the policy's
/// vocabulary (`vocab`), at least one training pair of positive weight (the others are
/// dropped). Warns about truncated training pairs. Returns (training, held-out) examples.
pub fn prepare_examples(
    collator: &PairCollator<'_>,
    train_pairs: &[PreferencePair],
    eval_pairs: &[PreferencePair],
    cfg: &DpoTrainConfig,
    vocab: usize,
) -> Result<(Vec<DpoExample>, Vec<DpoExample>)> {
    if train_pairs.is_empty() {
        return Err(DpoError::Data("the training set is empty".into()));
    }
    if collator.max_length != cfg.max_length {
        return Err(DpoError::Config(format!(
            "the collator's max_length {} differs from the config's {}",
            collator.max_length, cfg.max_length
        )));
    }
    let mut examples = encode_examples(collator, train_pairs)?;
    check_vocab(&examples, vocab, "training")?;
    let eval_examples = encode_examples(collator, eval_pairs)?;
    check_vocab(&eval_examples, vocab, "held-out")?;
    examples.retain(|e| e.weight > 0.0);
    if examples.is_empty() {
        return Err(DpoError::Data(
            "no training pair has a positive weight".into(),
        ));
    }
    let truncated = examples.iter().filter(|e| e.truncated).count();
    if truncated > 0 {
        tracing::warn!(
            pairs = truncated,
            max_length = cfg.max_length,
            "truncated training pairs"
        );
    }
    Ok((examples, eval_examples))
}

/// What a DPO run starts from: the policy (LoRA attached, or restored from a checkpoint), its
/// AdamW optimizer and learning-rate schedule, and the run state.
pub struct DpoStart<B: AutodiffBackend> {
    /// The policy to train.
    pub policy: CausalLm<B>,
    /// AdamW with the config's betas, epsilon and weight decay.
    pub optim: OptimizerAdaptor<AdamW, CausalLm<B>, B>,
    /// Warm-up + cosine over `total` steps.
    pub sched: LrSchedule,
    /// Fresh (step 0), or the checkpoint's.
    pub state: DpoState,
    /// The step of the checkpoint resumed from, if any.
    pub resumed_from: Option<usize>,
}

/// Sets a DPO run up for the single-process and the data-parallel loops alike: attaches LoRA
/// adapters if configured, then either restores policy, optimizer and state from `ckpt`
/// (refusing a checkpoint whose trajectory settings, data, reference or base weights differ)
/// or starts at step 0. With `write_files` (the main process), writes `metrics.jsonl` (the
/// checkpoint's history, or empty) and, on a fresh start, `config.json`.
#[allow(clippy::too_many_arguments)]
pub fn start_dpo_run<B: AutodiffBackend>(
    policy: CausalLm<B>,
    cfg: &DpoTrainConfig,
    n: usize,
    total: usize,
    print: &str,
    run_dir: &Path,
    ckpt: Option<PathBuf>,
    write_files: bool,
    device: &B::Device,
) -> Result<DpoStart<B>> {
    let sched = LrSchedule {
        peak: cfg.learning_rate,
        warmup: cfg.warmup_steps,
        total,
        min_ratio: cfg.min_lr_ratio,
    };
    let mut optim = rlhf_reward::adamw(
        cfg.adam_beta1,
        cfg.adam_beta2,
        cfg.adam_epsilon,
        cfg.weight_decay,
    )
    .init::<B, CausalLm<B>>();
    let metrics_path = run_dir.join("metrics.jsonl");
    let (mut policy, base_print) = attach_lora(policy, cfg.lora.as_ref(), cfg.seed, device);
    let (state, resumed_from) = match ckpt {
        Some(dir) => {
            let st: DpoState = read_state(&dir)?;
            let mismatch = |message: String| DpoError::ResumeMismatch {
                path: dir.clone(),
                message,
            };
            let diff = config_diff(&st.config, cfg, CADENCE_FIELDS);
            if !diff.is_empty() {
                return Err(mismatch(format!("config differs: {}", diff.join("; "))));
            }
            if st.fingerprint != print || st.n_train != n || st.total_steps != total {
                return Err(mismatch(format!(
                    "data or reference differ ({n} pairs, {print}; checkpoint: {} pairs, {})",
                    st.n_train, st.fingerprint
                )));
            }
            policy = restore_policy(policy, &dir, &st, &base_print, device)?;
            optim = load_optimizer_record::<B, CausalLm<B>, _>(optim, &dir, "optim", device)?;
            if write_files {
                write_metrics(&metrics_path, &st.history)?;
            }
            tracing::info!(step = st.step, dir = %dir.display(), "resuming");
            let from = st.step;
            (st, Some(from))
        }
        None => {
            if write_files {
                let json = serde_json::to_string_pretty(cfg).expect("serialisable");
                rlhf_core::io::write_atomic(&run_dir.join("config.json"), json.as_bytes())?;
                write_metrics(&metrics_path, &[])?;
            }
            let st = DpoState {
                step: 0,
                total_steps: total,
                data: DataRngState {
                    seed: cfg.seed,
                    epoch: 0,
                    cursor: 0,
                },
                n_train: n,
                fingerprint: print.to_string(),
                config: cfg.clone(),
                history: Vec::new(),
                window: Window::default(),
                base_fingerprint: base_print,
            };
            (st, None)
        }
    };
    Ok(DpoStart {
        policy,
        optim,
        sched,
        state,
        resumed_from,
    })
}

/// Checks every token id of `examples` is inside the vocabulary; the error names the `what`
/// set and the pair.
///
/// # Errors
/// [`DpoError::Data`].
pub fn check_vocab(examples: &[DpoExample], vocab: usize, what: &str) -> Result<()> {
    for e in examples {
        if let Some(&id) = e
            .chosen
            .iter()
            .chain(&e.rejected)
            .find(|&&i| i as usize >= vocab)
        {
            return Err(DpoError::Data(format!(
                "{what} pair #{}: token id {id} is outside the model's vocabulary of {vocab}",
                e.index
            )));
        }
    }
    Ok(())
}

/// The fingerprint a run's reference caches and checkpoints carry: the reference model's
/// parameters (or, without a model, those recorded in the run dir's cache) and the encoded
/// training and held-out pairs.
///
/// # Errors
/// [`DpoError::Config`] when the loss needs a reference and there is neither a model nor a
/// cache; cache read errors.
pub fn run_fingerprint<B: Backend>(
    reference: Option<&CausalLm<B>>,
    needs_ref: bool,
    examples: &[DpoExample],
    eval_examples: &[DpoExample],
    run_dir: &Path,
) -> Result<String> {
    let ref_print = match (reference, needs_ref) {
        (Some(r), true) => format!("{:016x}", model_fingerprint::<B, _>(r)),
        // No model: the cache of a previous (interrupted) run of this dir stands in for it;
        // the data part of its fingerprint is still checked against the checkpoint.
        (None, true) => {
            let path = run_dir.join("reference_logps.parquet");
            cached_fingerprint(&path)?
                .and_then(|f| {
                    f.strip_prefix("ref-")
                        .and_then(|r| r.split('-').next())
                        .map(str::to_string)
                })
                .ok_or_else(|| {
                    DpoError::Config(format!(
                        "no reference model given and no reference cache at {}",
                        path.display()
                    ))
                })?
        }
        _ => "none".to_string(),
    };
    Ok(format!(
        "ref-{ref_print}-train-{:016x}-eval-{:016x}",
        examples_fingerprint(examples),
        examples_fingerprint(eval_examples)
    ))
}

/// With a LoRA config: fresh adapters on the frozen `policy` (seeded by `seed`) and the
/// fingerprint of the base weights; without one, `policy` unchanged and `None`.
pub fn attach_lora<B: AutodiffBackend>(
    policy: CausalLm<B>,
    lora: Option<&rlhf_core::LoraConfig>,
    seed: u64,
    device: &B::Device,
) -> (CausalLm<B>, Option<String>) {
    match lora {
        None => (policy, None),
        Some(l) => {
            let print = format!("{:016x}", model_fingerprint::<B, _>(&policy));
            let policy = policy.with_lora(l, seed, device).freeze_base();
            tracing::info!(
                trainable = policy.trunk.lora_num_params(),
                r = l.r,
                "LoRA adapters on a frozen policy"
            );
            (policy, Some(print))
        }
    }
}

/// Restores the policy of checkpoint `dir` onto `policy` (built as at the start of the run):
/// the whole model record, or with LoRA the adapters (the base stays frozen), after checking
/// the base fingerprint recorded in `state`.
///
/// # Errors
/// [`DpoError::ResumeMismatch`] for another LoRA base; record errors.
pub fn restore_policy<B: AutodiffBackend>(
    policy: CausalLm<B>,
    dir: &Path,
    state: &DpoState,
    base_print: &Option<String>,
    device: &B::Device,
) -> Result<CausalLm<B>> {
    if &state.base_fingerprint != base_print {
        return Err(DpoError::ResumeMismatch {
            path: dir.to_path_buf(),
            message: format!(
                "the LoRA base model differs (fingerprint {:?}, checkpoint: {:?})",
                base_print, state.base_fingerprint
            ),
        });
    }
    Ok(if policy.trunk.has_lora() {
        let adapters = load_module_record(policy.trunk.lora_adapters(), dir, "adapters", device)?;
        CausalLm {
            trunk: policy.trunk.set_lora_adapters(adapters),
            lm_head: policy.lm_head,
        }
        .freeze_base()
    } else {
        load_module_record(policy, dir, "model", device)?
    })
}

/// Reference log-probs of `examples`: read from `path` when it holds a cache for the same
/// fingerprint, else computed with `reference` and written there.
#[allow(clippy::too_many_arguments)]
fn reference_logps<B: Backend>(
    reference: Option<&CausalLm<B>>,
    examples: &[DpoExample],
    path: &Path,
    fingerprint: &str,
    pad: u32,
    batch_pairs: usize,
    show: bool,
    device: &B::Device,
) -> Result<ReferenceLogps> {
    if path.is_file() {
        let r = read_reference_cache(path, fingerprint, examples)?;
        tracing::info!(path = %path.display(), pairs = r.chosen.len(), "reference cache reused");
        return Ok(r);
    }
    let model = reference.ok_or_else(|| {
        DpoError::Data(format!(
            "no reference model given and no cache at {}",
            path.display()
        ))
    })?;
    let pb = progress_bar(show, examples.len(), 0, "reference");
    let r = compute_reference(model, examples, pad, batch_pairs, device, |d| {
        pb.set_position(d as u64)
    });
    pb.finish_and_clear();
    write_reference_cache(path, fingerprint, examples, &r)?;
    tracing::info!(path = %path.display(), pairs = examples.len(), "reference log-probs cached");
    Ok(r)
}

/// Trains `policy` with DPO on `train_pairs`, evaluating on `eval_pairs` (may be empty).
///
/// `reference` is the frozen reference (normally the same SFT checkpoint as the starting
/// policy: `policy.valid()`). With [`ReferenceMode::Precompute`] its log-probs for every pair
/// are computed once, cached to `reference_logps{,_eval}.parquet` in the run dir, and the model
/// is dropped before the first step; a rerun or resume reads the cache (the reference may then
/// be `None`). With [`ReferenceMode::Resident`] it scores every batch. SimPO needs none.
///
/// Resuming (`opts.resume` and a checkpoint in the run dir) restores policy, optimizer, step,
/// data cursor and metrics, and ends with the same parameters as an uninterrupted run; the
/// config's trajectory fields, the data and the reference must be unchanged.
///
/// # Errors
/// Invalid config or data, cache and checkpoint mismatches, IO, a diverging loss.
#[allow(clippy::too_many_arguments)]
pub fn train<B: AutodiffBackend>(
    policy: CausalLm<B>,
    reference: Option<CausalLm<B::InnerBackend>>,
    collator: &PairCollator<'_>,
    train_pairs: &[PreferencePair],
    eval_pairs: &[PreferencePair],
    cfg: &DpoTrainConfig,
    opts: &TrainOptions,
    device: &B::Device,
) -> Result<DpoOutcome<B>> {
    cfg.validate()?;
    let (examples, eval_examples) =
        prepare_examples(collator, train_pairs, eval_pairs, cfg, policy.vocab_size())?;
    let run_dir = &opts.run_dir;
    std::fs::create_dir_all(run_dir).map_err(|e| DpoError::io(run_dir, e))?;
    let pad = collator.encoder.pad_id();
    let n = examples.len();

    // Reference log-probs (none for SimPO).
    let needs_ref = cfg.loss.loss_type.needs_reference();
    let print = run_fingerprint(
        reference.as_ref(),
        needs_ref,
        &examples,
        &eval_examples,
        run_dir,
    )?;
    let resident = cfg.reference == ReferenceMode::Resident && needs_ref;
    let (train_ref, eval_ref, resident_model) = if !needs_ref {
        let z = |k: usize| ReferenceLogps {
            chosen: vec![0.0; k],
            rejected: vec![0.0; k],
        };
        (z(n), z(eval_examples.len()), None)
    } else {
        let dev = device;
        let tr = if resident {
            None
        } else {
            Some(reference_logps(
                reference.as_ref(),
                &examples,
                &run_dir.join("reference_logps.parquet"),
                &print,
                pad,
                cfg.eval_batch_pairs,
                opts.progress,
                dev,
            )?)
        };
        let ev = if eval_examples.is_empty() {
            ReferenceLogps {
                chosen: vec![],
                rejected: vec![],
            }
        } else {
            reference_logps(
                reference.as_ref(),
                &eval_examples,
                &run_dir.join("reference_logps_eval.parquet"),
                &print,
                pad,
                cfg.eval_batch_pairs,
                opts.progress,
                dev,
            )?
        };
        let keep = if resident {
            Some(reference.ok_or_else(|| {
                DpoError::Config("reference = \"resident\" needs a reference model".into())
            })?)
        } else {
            drop(reference);
            None
        };
        (
            tr.unwrap_or(ReferenceLogps {
                chosen: vec![],
                rejected: vec![],
            }),
            ev,
            keep,
        )
    };

    let total = cfg.total_steps(n);
    let ckpt = rlhf_reward::resume_point(run_dir, opts.resume)?;
    let DpoStart {
        mut policy,
        mut optim,
        sched,
        mut state,
        resumed_from,
    } = start_dpo_run(policy, cfg, n, total, &print, run_dir, ckpt, true, device)?;
    let metrics_path = run_dir.join("metrics.jsonl");

    if resumed_from.is_none() && !eval_examples.is_empty() {
        // Step 0: the starting policy (the reference itself in the usual setup), so the
        // held-out curves start where training starts.
        let (loss, s) = evaluate_pairs(
            &cfg.precision.compute(policy.valid()),
            &eval_examples,
            &eval_ref,
            pad,
            cfg.eval_batch_pairs,
            &cfg.loss,
            device,
        );
        let entry = LogEntry::Eval(eval_log(0, 0.0, loss, &s));
        append_metrics(&metrics_path, &entry)?;
        state.history.push(entry);
    }
    let pb = progress_bar(opts.progress, total, state.step, "dpo");
    let mut perm = epoch_permutation(n, cfg.seed, state.data.epoch);
    let mut last_saved = resumed_from;
    let mut checkpoint = None;
    let mut status = TrainStatus::Finished;
    let epoch_now = |st: &DpoState| st.data.epoch as f64 + st.data.cursor as f64 / n as f64;

    while state.step < total {
        if opts.stop.load(Ordering::SeqCst) || opts.stop_after.is_some_and(|s| state.step >= s) {
            if last_saved != Some(state.step) {
                checkpoint = Some(save_dpo_checkpoint(run_dir, &policy, &optim, &state)?);
            }
            tracing::info!(step = state.step, "stopped");
            status = TrainStatus::Stopped;
            break;
        }
        let micro = state.data.next_batches(
            n,
            cfg.batch_pairs,
            cfg.gradient_accumulation_steps,
            &mut perm,
        );
        let mut batches = Vec::with_capacity(micro.len());
        for pos in &micro {
            let refs: Vec<&DpoExample> = pos.iter().map(|&i| &examples[i]).collect();
            let batch = collate_examples(&refs, pad);
            let r = if !needs_ref {
                BatchRef::zeros(batch.n)
            } else if let Some(m) = &resident_model {
                let lp = batch_logps(m, &batch, device);
                BatchRef {
                    chosen: host(lp.chosen),
                    rejected: host(lp.rejected),
                }
            } else {
                BatchRef::gather(&train_ref, &batch, pos)
            };
            batches.push((batch, r));
        }
        let lr = sched.lr(state.step);
        let (p, st) = dpo_step(
            policy,
            &mut optim,
            &batches,
            &cfg.loss,
            cfg.max_grad_norm,
            lr,
            cfg.precision,
            device,
        );
        policy = p;
        state.step += 1;
        if !st.loss.is_finite() || !st.grad_norm.is_finite() {
            return Err(DpoError::NonFinite {
                what: "loss",
                step: state.step,
            });
        }
        state.window.add_step(st.loss, st.grad_norm, &st.pairs);
        pb.set_position(state.step as u64);
        let step = state.step;
        let epoch = epoch_now(&state);
        if step % cfg.logging_steps == 0 || step == total {
            let log = state.window.finish(step, epoch, lr);
            pb.set_message(format!(
                "loss {:.4} acc {:.3} margin {:.3}",
                log.loss, log.rewards_accuracies, log.rewards_margins
            ));
            tracing::info!(
                step,
                loss = log.loss,
                accuracy = log.rewards_accuracies,
                "train"
            );
            let entry = LogEntry::Train(log);
            append_metrics(&metrics_path, &entry)?;
            state.history.push(entry);
        }
        let eval_due = cfg.eval_steps.is_some_and(|k| step % k == 0) || step == total;
        if eval_due && !eval_examples.is_empty() {
            let (loss, s) = evaluate_pairs(
                &cfg.precision.compute(policy.valid()),
                &eval_examples,
                &eval_ref,
                pad,
                cfg.eval_batch_pairs,
                &cfg.loss,
                device,
            );
            let log = eval_log(step, epoch, loss, &s);
            tracing::info!(step, accuracy = log.eval_rewards_accuracies, loss, "eval");
            let entry = LogEntry::Eval(log);
            append_metrics(&metrics_path, &entry)?;
            state.history.push(entry);
        }
        let save_due = cfg.save_steps.is_some_and(|k| step % k == 0) || step == total;
        if save_due {
            checkpoint = Some(save_dpo_checkpoint(run_dir, &policy, &optim, &state)?);
            last_saved = Some(step);
        }
    }
    pb.finish_and_clear();
    Ok(DpoOutcome {
        policy,
        status,
        step: state.step,
        total_steps: total,
        resumed_from,
        history: state.history,
        checkpoint,
    })
}
