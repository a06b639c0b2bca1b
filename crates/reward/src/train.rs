//! The reward-model training loop: an explicit loop (burn's Learner checkpoints per epoch, not
//! per step) with AdamW, warm-up + cosine, gradient accumulation, global-norm clipping, seeded
//! shuffling, periodic evaluation, step checkpoints with exact resume, a stop flag, TRL-named
//! metrics and a progress bar.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::module::AutodiffModule;
use burn::optim::{GradientsAccumulator, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rlhf_core::ScalarModel;
use rlhf_debias::{BalanceReport, LengthUnit, PairLengths, balance_lengths};

use crate::checkpoint::{
    DataRngState, TrainState, load_model_record, load_optim_record, read_train_state,
    save_checkpoint,
};
use crate::clip::{clip_grad_norm, global_grad_norm};
use crate::config::RewardTrainConfig;
use crate::data::{EncodedPair, PairBatch, PairCollator, PreferencePair, collate, fnv1a};
use crate::error::{Result, RewardError};
use crate::eval::{GroupStats, score_pairs, summarize};
use crate::loss::{LossConfig, reward_loss};
use crate::metrics::{LogEntry, Window, append_metrics, write_metrics};
use crate::schedule::LrSchedule;
use crate::score::batch_scores;
use serde::Serialize;

/// What one optimizer step saw.
#[derive(Debug, Clone, PartialEq)]
pub struct StepStats {
    /// The step's objective (weighted mean over all its pairs).
    pub loss: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Chosen scores of every pair of the step.
    pub chosen: Vec<f32>,
    /// Rejected scores.
    pub rejected: Vec<f32>,
}

/// One optimizer step over `batches` (the micro-batches of one gradient-accumulation cycle):
/// forward both rows of every pair (in `precision`: a bf16 copy of the f32 model for mixed
/// precision), [`reward_loss`] scaled by the micro-batch's share of the
/// step's pairs (so the step's gradient is that of the mean over all its pairs), backward,
/// accumulate, clip to the global norm `max_grad_norm`, and step `optim` with `lr`.
///
/// This is what `bench` times (one micro-batch of 8 pairs).
///
/// # Panics
/// If `batches` is empty.
#[tracing::instrument(skip_all, fields(micro_batches = batches.len()))]
#[allow(clippy::too_many_arguments)]
pub fn train_step<B, O>(
    model: ScalarModel<B>,
    optim: &mut O,
    batches: &[PairBatch],
    loss_cfg: &LossConfig,
    max_grad_norm: Option<f64>,
    lr: f64,
    precision: rlhf_core::Precision,
    device: &B::Device,
) -> (ScalarModel<B>, StepStats)
where
    B: AutodiffBackend,
    O: Optimizer<ScalarModel<B>, B>,
{
    assert!(!batches.is_empty(), "a step needs at least one micro-batch");
    let total: usize = batches.iter().map(|b| b.n).sum();
    let mut stats = StepStats {
        loss: 0.0,
        grad_norm: 0.0,
        chosen: Vec::with_capacity(total),
        rejected: Vec::with_capacity(total),
    };
    let mut acc = GradientsAccumulator::<ScalarModel<B>>::new();
    let mut single = None;
    for b in batches {
        let compute = precision.compute(model.clone());
        let scores = batch_scores(&compute, b, device);
        let chosen = scores.clone().narrow(0, 0, b.n);
        let rejected = scores.clone().narrow(0, b.n, b.n);
        let w = Tensor::<B, 1>::from_data(TensorData::new(b.weights.clone(), [b.n]), device);
        let out = reward_loss(chosen, rejected, Some(w), loss_cfg);
        let loss = out.loss.mul_scalar(b.n as f64 / total as f64);
        let host: Vec<f32> = scores.into_data().iter::<f32>().collect();
        stats.chosen.extend_from_slice(&host[..b.n]);
        stats.rejected.extend_from_slice(&host[b.n..]);
        stats.loss += loss.clone().into_scalar().elem::<f64>();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        if batches.len() == 1 {
            single = Some(grads);
        } else {
            acc.accumulate(&model, grads);
        }
    }
    let mut grads = single.unwrap_or_else(|| acc.grads());
    stats.grad_norm = match max_grad_norm {
        Some(c) => clip_grad_norm::<B, _>(&model, &mut grads, c),
        None => global_grad_norm::<B, _>(&model, &grads),
    };
    let model = optim.step(lr, model, grads);
    (model, stats)
}

/// Run-time options of [`train`] that are not hyper-parameters.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// The run directory (config, metrics, checkpoints).
    pub run_dir: PathBuf,
    /// Set it (e.g. from a Ctrl-C handler) to stop after the current step: a checkpoint is
    /// written and [`train`] returns [`TrainStatus::Stopped`].
    pub stop: Arc<AtomicBool>,
    /// Stop the same way once this many optimizer steps are done (time-boxed runs, tests).
    pub stop_after: Option<usize>,
    /// Continue from the latest checkpoint of `run_dir` when there is one (default `true`);
    /// with `false` a run dir that already has checkpoints is an error.
    pub resume: bool,
    /// Show a progress bar on stderr (only drawn when stderr is a terminal). Default `true`.
    pub progress: bool,
}

impl TrainOptions {
    /// Defaults for `run_dir`: resume, progress bar, a fresh stop flag.
    pub fn new(run_dir: impl Into<PathBuf>) -> Self {
        TrainOptions {
            run_dir: run_dir.into(),
            stop: Arc::new(AtomicBool::new(false)),
            stop_after: None,
            resume: true,
            progress: true,
        }
    }
}

/// How [`train`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainStatus {
    /// All steps done.
    Finished,
    /// Stopped early by the stop flag or `stop_after`; a checkpoint was written.
    Stopped,
}

/// What [`train`] returns.
#[derive(Debug)]
pub struct TrainOutcome<B: AutodiffBackend> {
    /// The trained model.
    pub model: ScalarModel<B>,
    /// Finished or stopped.
    pub status: TrainStatus,
    /// Optimizer steps done.
    pub step: usize,
    /// Steps of the whole run.
    pub total_steps: usize,
    /// The step the run resumed from, if it did.
    pub resumed_from: Option<usize>,
    /// Every metrics entry of the run (also in `metrics.jsonl`).
    pub history: Vec<LogEntry>,
    /// The last held-out evaluation.
    pub last_eval: Option<GroupStats>,
    /// The length-balancing report, when balancing is on.
    pub balance: Option<BalanceReport>,
    /// The last checkpoint written.
    pub checkpoint: Option<PathBuf>,
}

/// The data order of `epoch`: a Fisher–Yates shuffle of `0..n` driven by ChaCha8 seeded with
/// FNV-1a of `(seed, epoch)`.
pub fn epoch_permutation(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut perm: Vec<usize> = (0..n).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(fnv1a(seed, &(epoch as u64).to_le_bytes()));
    perm.shuffle(&mut rng);
    perm
}

/// Checks every token id of `pairs` is inside the vocabulary; the error names the `what` set
/// and the pair.
///
/// # Errors
/// [`RewardError::Data`].
pub fn check_vocab(pairs: &[EncodedPair], vocab: usize, what: &str) -> Result<()> {
    for p in pairs {
        if let Some(&id) = p
            .chosen
            .iter()
            .chain(&p.rejected)
            .find(|&&i| i as usize >= vocab)
        {
            return Err(RewardError::Data(format!(
                "{what} pair #{}: token id {id} is outside the model's vocabulary of {vocab}",
                p.index
            )));
        }
    }
    Ok(())
}

/// FNV-1a of the encoded pairs (ids, weights, lengths): what checkpoints record so a resume
/// on other data is refused.
pub fn pairs_fingerprint(pairs: &[EncodedPair]) -> u64 {
    let mut bytes = Vec::new();
    for p in pairs {
        for row in [&p.chosen, &p.rejected] {
            bytes.extend((row.len() as u64).to_le_bytes());
            row.iter().for_each(|i| bytes.extend(i.to_le_bytes()));
        }
        bytes.extend(p.weight.to_bits().to_le_bytes());
        bytes.extend((p.chosen_len as u64).to_le_bytes());
        bytes.extend((p.rejected_len as u64).to_le_bytes());
    }
    fnv1a(0, &bytes)
}

/// Cadence fields every trainer's config has: changing them does not change the trajectory.
pub const CADENCE_FIELDS: &[&str] = &[
    "logging_steps",
    "eval_steps",
    "eval_batch_pairs",
    "save_steps",
    "save_total_limit",
];

/// The top-level fields of two serialisable configs that differ, ignoring `ignore` (the
/// cadence fields), as `"field: checkpoint A, now B"`: what a resumed run reports when its
/// config is not the checkpoint's.
pub fn config_diff<T: Serialize>(checkpoint: &T, now: &T, ignore: &[&str]) -> Vec<String> {
    let (a, b) = (
        serde_json::to_value(checkpoint).expect("serialisable"),
        serde_json::to_value(now).expect("serialisable"),
    );
    let empty = serde_json::Map::new();
    let (a, b) = (
        a.as_object().unwrap_or(&empty),
        b.as_object().unwrap_or(&empty),
    );
    a.iter()
        .filter(|(k, _)| !ignore.contains(&k.as_str()))
        .filter(|(k, v)| b.get(*k) != Some(v))
        .map(|(k, v)| {
            format!(
                "{k}: checkpoint {v}, now {}",
                b.get(k).unwrap_or(&serde_json::Value::Null)
            )
        })
        .collect()
}

/// Balances the encoded training set (when configured; the balancing report goes to
/// `report_dir/balance_report.{json,md}` when given), drops zero-weight pairs and rescales
/// weights to mean 1. Deterministic: every data-parallel rank gets the same set.
///
/// # Errors
/// Balancing and IO errors, and an empty result.
pub fn prepare_train_set(
    mut enc: Vec<EncodedPair>,
    pairs: &[PreferencePair],
    cfg: &RewardTrainConfig,
    report_dir: Option<&Path>,
) -> Result<(Vec<EncodedPair>, Option<BalanceReport>)> {
    let mut report = None;
    if let Some(b) = &cfg.balance {
        let lens: Vec<PairLengths> = enc
            .iter()
            .map(|e| {
                let p = &pairs[e.index];
                let (c, r) = match b.unit {
                    LengthUnit::Tokens => (e.chosen_len, e.rejected_len),
                    LengthUnit::Characters => {
                        (p.chosen.chars().count(), p.rejected.chars().count())
                    }
                    LengthUnit::Bytes => (p.chosen.len(), p.rejected.len()),
                };
                let l = PairLengths::new(c, r);
                match &p.category {
                    Some(cat) => l.with_category(cat.clone()),
                    None => l,
                }
            })
            .collect();
        let out = balance_lengths(&lens, b)?;
        enc = out
            .kept
            .iter()
            .map(|k| {
                let mut e = enc[k.index].clone();
                e.weight *= k.weight as f32;
                e
            })
            .collect();
        if let Some(dir) = report_dir {
            rlhf_core::io::write_atomic(
                &dir.join("balance_report.json"),
                out.report.to_json_pretty()?.as_bytes(),
            )?;
            rlhf_core::io::write_atomic(
                &dir.join("balance_report.md"),
                out.report.to_markdown().as_bytes(),
            )?;
        }
        tracing::info!(
            before = out.report.n_input,
            after = out.report.n_kept,
            "length balancing"
        );
        report = Some(out.report);
    }
    enc.retain(|e| e.weight > 0.0);
    if enc.is_empty() {
        return Err(RewardError::Data(
            "no training pair with a positive weight is left".into(),
        ));
    }
    let mean = enc.iter().map(|e| e.weight as f64).sum::<f64>() / enc.len() as f64;
    if (mean - 1.0).abs() > 1e-6 {
        enc.iter_mut()
            .for_each(|e| e.weight = (e.weight as f64 / mean) as f32);
    }
    Ok((enc, report))
}

/// A progress bar labelled `what` for `total` steps starting at `start`, with elapsed time and
/// ETA; drawn on stderr only when `show` and stderr is a terminal (hidden otherwise, so piped
/// output stays clean). Shared by every trainer.
pub fn progress_bar(show: bool, total: usize, start: usize, what: &str) -> ProgressBar {
    let target = if show && std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let pb = ProgressBar::with_draw_target(Some(total as u64), target);
    if let Ok(style) = ProgressStyle::with_template(&format!(
        "{what} {{bar:30.cyan/blue}} {{pos}}/{{len}} [{{elapsed_precise}}<{{eta_precise}}] {{msg}}"
    )) {
        pb.set_style(style);
    }
    pb.set_position(start as u64);
    pb
}

/// Trains `model` on `train_pairs`, evaluating on `eval_pairs` (may be empty), with checkpoints
/// and metrics in `opts.run_dir`.
///
/// `model` is the starting point of a fresh run (random, or an SFT/pretrained trunk with a new
/// head) and the skeleton the checkpoint is loaded into when the run resumes: if
/// `opts.run_dir` holds a checkpoint (and `opts.resume`), training continues from it and ends
/// with the same parameters as an uninterrupted run. Resuming checks that the trajectory
/// fields of the config and the encoded training set are unchanged.
///
/// Every `logging_steps` steps a [`crate::TrainLog`] is appended to `metrics.jsonl`, every
/// `eval_steps` (and at the end) an [`crate::EvalLog`]; every `save_steps` (and at the end, and
/// when stopped) a checkpoint is written.
///
/// # Errors
/// Invalid config or data, IO and record errors, [`RewardError::ResumeMismatch`], and
/// [`RewardError::NonFinite`] when the loss diverges.
pub fn train<B: AutodiffBackend>(
    model: ScalarModel<B>,
    collator: &PairCollator<'_>,
    train_pairs: &[PreferencePair],
    eval_pairs: &[PreferencePair],
    cfg: &RewardTrainConfig,
    opts: &TrainOptions,
    device: &B::Device,
) -> Result<TrainOutcome<B>> {
    cfg.validate()?;
    if train_pairs.is_empty() {
        return Err(RewardError::Data("the training set is empty".into()));
    }
    let run_dir = &opts.run_dir;
    std::fs::create_dir_all(run_dir).map_err(|e| RewardError::io(run_dir, e))?;
    let vocab = model.trunk.embed.weight.dims()[0];
    let pad = collator.encoder.pad_id();
    let enc = collator.encode_all(train_pairs)?;
    check_vocab(&enc, vocab, "training")?;
    let eval_enc = collator.encode_all(eval_pairs)?;
    check_vocab(&eval_enc, vocab, "held-out")?;
    let n_trunc = enc.iter().filter(|e| e.truncated).count();
    if n_trunc > 0 {
        tracing::warn!(
            pairs = n_trunc,
            max_length = cfg.max_length,
            "truncated training pairs"
        );
    }
    let (enc, balance) = prepare_train_set(enc, train_pairs, cfg, Some(run_dir))?;
    let n = enc.len();
    let total = cfg.total_steps(n);
    let print = format!("{:016x}", pairs_fingerprint(&enc));
    let loss_cfg = cfg.loss();
    let sched = LrSchedule {
        peak: cfg.learning_rate,
        warmup: cfg.warmup_steps,
        total,
        min_ratio: cfg.min_lr_ratio,
    };
    let mut optim = crate::adamw(
        cfg.adam_beta1,
        cfg.adam_beta2,
        cfg.adam_epsilon,
        cfg.weight_decay,
    )
    .init::<B, ScalarModel<B>>();
    let metrics_path = run_dir.join("metrics.jsonl");

    let mut model = model;
    let ckpt = crate::checkpoint::resume_point(run_dir, opts.resume)?;
    let (mut state, resumed_from) = match ckpt {
        Some(dir) => {
            let st = read_train_state(&dir)?;
            let diff = config_diff(&st.config, cfg, CADENCE_FIELDS);
            let mismatch = |message: String| RewardError::ResumeMismatch {
                path: dir.clone(),
                message,
            };
            if !diff.is_empty() {
                return Err(mismatch(format!("config differs: {}", diff.join("; "))));
            }
            if st.data_fingerprint != print || st.n_train != n || st.total_steps != total {
                return Err(mismatch(format!(
                    "training data differs ({} pairs, fingerprint {}; checkpoint: {} pairs, {})",
                    n, print, st.n_train, st.data_fingerprint
                )));
            }
            model = load_model_record(model, &dir, device)?;
            optim = load_optim_record(optim, &dir, device)?;
            write_metrics(&metrics_path, &st.history)?;
            tracing::info!(step = st.step, dir = %dir.display(), "resuming");
            let from = st.step;
            (st, Some(from))
        }
        None => {
            let json = serde_json::to_string_pretty(cfg).expect("serialisable");
            rlhf_core::io::write_atomic(&run_dir.join("config.json"), json.as_bytes())?;
            write_metrics(&metrics_path, &[])?;
            let st = TrainState {
                step: 0,
                total_steps: total,
                data: DataRngState {
                    seed: cfg.seed,
                    epoch: 0,
                    cursor: 0,
                },
                n_train: n,
                data_fingerprint: print,
                config: cfg.clone(),
                history: Vec::new(),
                window: Window::default(),
            };
            (st, None)
        }
    };

    let pb = progress_bar(opts.progress, total, state.step, "reward");
    let mut perm = epoch_permutation(n, cfg.seed, state.data.epoch);
    let mut last_saved = resumed_from;
    let mut checkpoint = None;
    let mut last_eval = None;
    let epoch_now = |st: &TrainState| st.data.epoch as f64 + st.data.cursor as f64 / n as f64;
    let mut status = TrainStatus::Finished;

    while state.step < total {
        let stop_now =
            opts.stop.load(Ordering::SeqCst) || opts.stop_after.is_some_and(|s| state.step >= s);
        if stop_now {
            if last_saved != Some(state.step) {
                checkpoint = Some(save_checkpoint(
                    run_dir,
                    &model,
                    &optim,
                    &state,
                    cfg.save_total_limit,
                )?);
            }
            tracing::info!(step = state.step, "stopped");
            status = TrainStatus::Stopped;
            break;
        }
        let batches: Vec<_> = state
            .data
            .next_batches(
                n,
                cfg.batch_pairs,
                cfg.gradient_accumulation_steps,
                &mut perm,
            )
            .iter()
            .map(|ids| collate(&ids.iter().map(|&i| &enc[i]).collect::<Vec<_>>(), pad))
            .collect();
        let lr = sched.lr(state.step);
        let (m, st) = train_step(
            model,
            &mut optim,
            &batches,
            &loss_cfg,
            cfg.max_grad_norm,
            lr,
            cfg.precision,
            device,
        );
        model = m;
        state.step += 1;
        if !st.loss.is_finite() || !st.grad_norm.is_finite() {
            return Err(RewardError::NonFinite {
                what: "loss",
                step: state.step,
            });
        }
        state
            .window
            .add_step(st.loss, st.grad_norm, &st.chosen, &st.rejected);
        pb.set_position(state.step as u64);
        let step = state.step;
        let epoch = epoch_now(&state);
        if step % cfg.logging_steps == 0 || step == total {
            let log = state.window.finish(step, epoch, lr);
            pb.set_message(format!("loss {:.4} acc {:.3}", log.loss, log.accuracy));
            tracing::info!(
                step,
                loss = log.loss,
                accuracy = log.accuracy,
                score_std = log.score_std,
                lr,
                "train"
            );
            let entry = LogEntry::Train(log);
            append_metrics(&metrics_path, &entry)?;
            state.history.push(entry);
        }
        let eval_due = cfg.eval_steps.is_some_and(|k| step % k == 0) || step == total;
        if eval_due && !eval_enc.is_empty() {
            let scores = score_pairs(
                &cfg.precision.compute(model.valid()),
                &eval_enc,
                pad,
                cfg.eval_batch_pairs,
                device,
            );
            let stats = summarize(&scores, &loss_cfg);
            tracing::info!(step, accuracy = stats.accuracy, loss = stats.loss, "eval");
            let entry = LogEntry::Eval(stats.to_log(step, epoch));
            append_metrics(&metrics_path, &entry)?;
            state.history.push(entry);
            last_eval = Some(stats);
        }
        let save_due = cfg.save_steps.is_some_and(|k| step % k == 0) || step == total;
        if save_due {
            checkpoint = Some(save_checkpoint(
                run_dir,
                &model,
                &optim,
                &state,
                cfg.save_total_limit,
            )?);
            last_saved = Some(step);
        }
    }
    pb.finish_and_clear();
    Ok(TrainOutcome {
        model,
        status,
        step: state.step,
        total_steps: total,
        resumed_from,
        history: state.history,
        last_eval,
        balance,
        checkpoint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutations_are_seeded_per_epoch() {
        let a = epoch_permutation(50, 1, 0);
        assert_eq!(a, epoch_permutation(50, 1, 0));
        assert_ne!(a, epoch_permutation(50, 1, 1));
        assert_ne!(a, epoch_permutation(50, 2, 0));
        let mut s = a.clone();
        s.sort();
        assert_eq!(s, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn config_diff_ignores_cadence_fields() {
        let a = RewardTrainConfig::default();
        let b = RewardTrainConfig {
            logging_steps: 1,
            save_steps: Some(3),
            eval_steps: Some(2),
            ..a.clone()
        };
        assert!(config_diff(&a, &b, CADENCE_FIELDS).is_empty());
        let c = RewardTrainConfig {
            learning_rate: 1.0,
            ..a.clone()
        };
        let d = config_diff(&a, &c, CADENCE_FIELDS);
        assert_eq!(d.len(), 1);
        assert!(d[0].starts_with("learning_rate"), "{d:?}");
    }
}
