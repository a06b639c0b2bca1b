//! [`train_reward_dp`]: the reward-model training loop of `rlhf_reward::train`, data parallel.
//!
//! Every rank walks the same global data order (ChaCha8 permutation per epoch, gradient
//! accumulation micro-batches of `batch_pairs`), takes its contiguous shard of each micro-batch
//! ([`crate::plan_step`]) and steps through [`dp_reward_step`]; the trajectory is that of the
//! single-process loop on the same config, whatever the world size. Global rank 0 alone writes
//! `config.json`, `metrics.jsonl` and the checkpoints (`rlhf_reward`'s run-dir layout and
//! helpers); every rank resumes from the run directory's latest checkpoint (a shared file
//! system across nodes), so a resumed run continues on the same samples, with any world size.
//!
//! Before the first step the ranks check that they agree on the data, the step they start
//! from and the starting parameters. The stop flag (Ctrl-C on any node) and `stop_after` are
//! agreed on through the step's all-reduce: all ranks stop after the same step and rank 0
//! checkpoints it.
//!
//! Length balancing (`RewardTrainConfig::balance`) runs on every rank (it is seeded, so all
//! keep the same pairs; rank 0 writes the report). Not in this loop: periodic held-out
//! evaluation (`eval_steps`; evaluate the exported model afterwards).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use rlhf_core::ScalarModel;
use rlhf_reward::{
    CADENCE_FIELDS, DataRngState, EncodedPair, LogEntry, LrSchedule, PairCollator, PreferencePair,
    RewardTrainConfig, TrainOptions, TrainOutcome, TrainStatus, Window, append_metrics, collate,
    config_diff, epoch_permutation, load_module_record, load_optimizer_record, read_state,
    save_checkpoint_with, save_module_record, save_optimizer_record, write_metrics,
};
use serde::{Deserialize, Serialize};

use crate::collective::Peer;
use crate::config::Rank;
use crate::error::{DistError, Result};
use crate::launch::launch;
use crate::shard::{Reduction, plan_step};
use crate::step::{Shard, dp_reward_step};

/// Everything besides the model and optimizer records that resuming a data-parallel run needs
/// (`state.json` of its checkpoints).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpState {
    /// Optimizer steps done.
    pub step: usize,
    /// Steps of the run.
    pub total_steps: usize,
    /// Data order position (global: the same for every world size).
    pub data: DataRngState,
    /// Training pairs (after dropping zero weights).
    pub n_train: usize,
    /// FNV-1a of the encoded training pairs, hex.
    pub data_fingerprint: String,
    /// The run's config.
    pub config: RewardTrainConfig,
    /// World size of the run that wrote the checkpoint (informational: a run may resume with
    /// another one).
    pub world: usize,
    /// Every metrics entry so far.
    pub history: Vec<LogEntry>,
    /// The metrics window since the last log step.
    window: Window,
}

/// What [`train_reward_dp`] returns on every rank.
#[derive(Debug)]
pub struct DpOutcome<B: AutodiffBackend> {
    /// The trained replica (identical on every rank).
    pub model: ScalarModel<B>,
    /// This replica's rank.
    pub rank: Rank,
    /// Finished or stopped.
    pub status: TrainStatus,
    /// Optimizer steps done.
    pub step: usize,
    /// Steps of the run.
    pub total_steps: usize,
    /// The step the run resumed from.
    pub resumed_from: Option<usize>,
    /// Every metrics entry of the run.
    pub history: Vec<LogEntry>,
    /// The last checkpoint written (rank 0 only).
    pub checkpoint: Option<PathBuf>,
    /// The length-balancing report, when the config balances.
    pub balance: Option<rlhf_reward::BalanceReport>,
}

struct Checksum<B: Backend> {
    sum: f64,
    sq: f64,
    _b: std::marker::PhantomData<B>,
}

impl<B: Backend> ModuleVisitor<B> for Checksum<B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let v = param.val().cast(burn::tensor::DType::F32);
        self.sum += v.clone().sum().into_scalar().elem::<f64>();
        self.sq += v.powi_scalar(2).sum().into_scalar().elem::<f64>();
    }
}

/// `(Σ p, Σ p²)` over every float parameter, as f32.
pub(crate) fn param_checksum<B: Backend, M: Module<B>>(m: &M) -> [f32; 2] {
    let mut c = Checksum::<B> {
        sum: 0.0,
        sq: 0.0,
        _b: std::marker::PhantomData,
    };
    m.visit(&mut c);
    [c.sum as f32, c.sq as f32]
}

/// Splits a u64 into four exactly representable f32 chunks.
pub(crate) fn u64_chunks(x: u64) -> [f32; 4] {
    std::array::from_fn(|i| ((x >> (16 * i)) & 0xffff) as f32)
}

/// Checks that every rank agrees on `values`, naming `what`.
pub(crate) fn agree<B: Backend>(peer: &Peer<B>, values: &[f32], what: &str) -> Result<()> {
    let all = peer.all_gather_scalars(values, &format!("consistency check ({what})"))?;
    let own = peer.rank().rank;
    if let Some((r, _)) = all.iter().enumerate().find(|(_, v)| v.as_slice() != values) {
        return Err(DistError::Mismatch {
            rank: own,
            what: format!(
                "{what}: rank {own} has {values:?}, rank {r} has {:?}",
                all[r]
            ),
        });
    }
    Ok(())
}

fn save<B: AutodiffBackend, O: burn::optim::Optimizer<ScalarModel<B>, B>>(
    run_dir: &Path,
    model: &ScalarModel<B>,
    optim: &O,
    state: &DpState,
) -> Result<PathBuf> {
    Ok(save_checkpoint_with(
        run_dir,
        state.step,
        state,
        state.config.save_total_limit,
        |dir| {
            save_module_record(model, dir, "model")?;
            save_optimizer_record::<B, ScalarModel<B>, O>(optim, dir, "optim")
        },
    )?)
}

/// Trains the reward model `model` (this rank's replica, built on `peer.device()`; every rank
/// must pass the same starting parameters) on `train_pairs` (the whole set, the same on every
/// rank), data parallel over the world of `peer`, with checkpoints and metrics in
/// `opts.run_dir` written by global rank 0. Resumes from the latest checkpoint there when
/// `opts.resume` (the default).
///
/// # Errors
/// Invalid config or data ([`DistError::Reward`]), a resume mismatch, ranks disagreeing
/// ([`DistError::Mismatch`]), and the collective's errors naming the lost ranks.
pub fn train_reward_dp<B: AutodiffBackend>(
    peer: &Peer<B::InnerBackend>,
    model: ScalarModel<B>,
    collator: &PairCollator<'_>,
    train_pairs: &[PreferencePair],
    cfg: &RewardTrainConfig,
    opts: &TrainOptions,
) -> Result<DpOutcome<B>> {
    let rank = peer.rank();
    let device = peer.device().clone();
    cfg.validate()?;
    if train_pairs.is_empty() {
        return Err(rlhf_reward::RewardError::Data("the training set is empty".into()).into());
    }
    let run_dir = &opts.run_dir;
    if rank.is_main() {
        std::fs::create_dir_all(run_dir).map_err(|source| rlhf_reward::RewardError::Io {
            path: run_dir.clone(),
            source,
        })?;
    }
    let vocab = model.trunk.embed.weight.dims()[0];
    let pad = collator.encoder.pad_id();
    let enc = collator.encode_all(train_pairs)?;
    rlhf_reward::check_vocab(&enc, vocab, "training")?;
    // Balancing is seeded, so every rank keeps the same pairs; rank 0 writes the report.
    let (enc, balance) = rlhf_reward::prepare_train_set(
        enc,
        train_pairs,
        cfg,
        rank.is_main().then_some(run_dir.as_path()),
    )?;
    let n = enc.len();
    let total = cfg.total_steps(n);
    let print = rlhf_reward::pairs_fingerprint(&enc);
    let loss_cfg = cfg.loss();
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
    .init::<B, ScalarModel<B>>();
    let metrics_path = run_dir.join("metrics.jsonl");

    let mut model = model;
    let ckpt = rlhf_reward::resume_point(run_dir, opts.resume)?;
    let (mut state, resumed_from) = match ckpt {
        Some(dir) => {
            let st: DpState = read_state(&dir)?;
            let mismatch = |message: String| -> DistError {
                rlhf_reward::RewardError::ResumeMismatch {
                    path: dir.clone(),
                    message,
                }
                .into()
            };
            let diff = config_diff(&st.config, cfg, CADENCE_FIELDS);
            if !diff.is_empty() {
                return Err(mismatch(format!("config differs: {}", diff.join("; "))));
            }
            if st.data_fingerprint != format!("{print:016x}") || st.n_train != n {
                return Err(mismatch(format!(
                    "training data differs ({n} pairs, fingerprint {print:016x}; checkpoint: \
                     {} pairs, {})",
                    st.n_train, st.data_fingerprint
                )));
            }
            model = load_module_record(model, &dir, "model", &device)?;
            optim = load_optimizer_record::<B, ScalarModel<B>, _>(optim, &dir, "optim", &device)?;
            if rank.is_main() {
                write_metrics(&metrics_path, &st.history)?;
            }
            tracing::info!(rank = rank.rank, step = st.step, dir = %dir.display(), "resuming");
            let from = st.step;
            (st, Some(from))
        }
        None => {
            if rank.is_main() {
                let json = serde_json::to_string_pretty(cfg).expect("serialisable");
                rlhf_core::io::write_atomic(&run_dir.join("config.json"), json.as_bytes())?;
                write_metrics(&metrics_path, &[])?;
            }
            let st = DpState {
                step: 0,
                total_steps: total,
                data: DataRngState {
                    seed: cfg.seed,
                    epoch: 0,
                    cursor: 0,
                },
                n_train: n,
                data_fingerprint: format!("{print:016x}"),
                config: cfg.clone(),
                world: rank.world,
                history: Vec::new(),
                window: Window::default(),
            };
            (st, None)
        }
    };
    state.world = rank.world;

    let mut check = vec![n as f32, state.step as f32];
    check.extend(u64_chunks(print));
    agree(
        peer,
        &check,
        "training pairs, data fingerprint and starting step",
    )?;
    agree(peer, &param_checksum(&model), "starting parameters")?;

    let mut perm = epoch_permutation(n, cfg.seed, state.data.epoch);
    let mut last_saved = resumed_from;
    let mut checkpoint = None;
    let mut status = TrainStatus::Finished;
    let mut stop_agreed = false;
    while state.step < total {
        if stop_agreed || opts.stop_after.is_some_and(|s| state.step >= s) {
            if rank.is_main() && last_saved != Some(state.step) {
                checkpoint = Some(save(run_dir, &model, &optim, &state)?);
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
        let plan = plan_step(&micro, rank.rank, rank.world, Reduction::Mean, |i| {
            enc[i].weight as f64
        });
        let shards: Vec<Shard<_>> = plan
            .micro
            .iter()
            .filter(|m| !m.indices.is_empty())
            .map(|m| {
                let refs: Vec<&EncodedPair> = m.indices.iter().map(|&i| &enc[i]).collect();
                Shard {
                    batch: collate(&refs, pad),
                    offset: m.offset,
                    share: m.share,
                }
            })
            .collect();
        let stop_flag = opts.stop.load(Ordering::SeqCst);
        let lr = sched.lr(state.step);
        let (m, st, flags) = dp_reward_step(
            peer,
            model,
            &mut optim,
            &shards,
            plan.global_examples,
            &loss_cfg,
            cfg.max_grad_norm,
            lr,
            &[f32::from(u8::from(stop_flag))],
            cfg.precision,
            &device,
        )
        .map_err(|e| at_step(e, state.step + 1))?;
        model = m;
        stop_agreed = flags[0] > 0.0;
        state.step += 1;
        if !st.loss.is_finite() || !st.grad_norm.is_finite() {
            return Err(rlhf_reward::RewardError::NonFinite {
                what: "loss",
                step: state.step,
            }
            .into());
        }
        state
            .window
            .add_step(st.loss, st.grad_norm, &st.chosen, &st.rejected);
        let step = state.step;
        let epoch = state.data.epoch as f64 + state.data.cursor as f64 / n as f64;
        if step % cfg.logging_steps == 0 || step == total {
            let log = state.window.finish(step, epoch, lr);
            if rank.is_main() {
                tracing::info!(step, loss = log.loss, accuracy = log.accuracy, lr, "train");
            }
            let entry = LogEntry::Train(log);
            if rank.is_main() {
                append_metrics(&metrics_path, &entry)?;
            }
            state.history.push(entry);
        }
        let save_due = cfg.save_steps.is_some_and(|k| step % k == 0) || step == total;
        if save_due {
            if rank.is_main() {
                checkpoint = Some(save(run_dir, &model, &optim, &state)?);
            }
            last_saved = Some(step);
        }
    }
    Ok(DpOutcome {
        model,
        rank,
        status,
        step: state.step,
        total_steps: total,
        resumed_from,
        history: state.history,
        checkpoint,
        balance,
    })
}

/// What [`train_reward_on_node`] returns: local replica 0's outcome, in the shape of
/// `rlhf_reward::train`'s, and its rank.
#[derive(Debug)]
pub struct NodeOutcome<B: AutodiffBackend> {
    /// The outcome (`last_eval` is `None`: the data-parallel loop does not evaluate).
    pub outcome: TrainOutcome<B>,
    /// Local replica 0's rank: global rank 0 (`rank.is_main()`) is the process that should
    /// evaluate, export and report.
    pub rank: Rank,
}

/// This node's part of a data-parallel reward-model run: one replica per device of
/// `devices` (see [`crate::replica_devices`]), each built by `init` on its device and trained
/// by [`train_reward_dp`], launched with [`launch`]. What `rlhf train-reward --devices/--nodes`
/// runs: a drop-in for `rlhf_reward::train` that returns the same outcome type.
///
/// # Errors
/// As [`launch`] and [`train_reward_dp`]; `init`'s errors are [`DistError::Init`].
pub fn train_reward_on_node<B, F>(
    dist: &crate::DistConfig,
    devices: &[B::Device],
    init: F,
    collator: &PairCollator<'_>,
    train_pairs: &[PreferencePair],
    cfg: &RewardTrainConfig,
    opts: &TrainOptions,
) -> Result<NodeOutcome<B>>
where
    B: AutodiffBackend,
    F: Fn(&B::Device) -> std::result::Result<ScalarModel<B>, String> + Sync,
{
    let mut outs = launch::<B::InnerBackend, _, _>(dist, devices, |peer| {
        let model = init(peer.device()).map_err(|message| DistError::Init {
            rank: peer.rank().rank,
            message,
        })?;
        let out = train_reward_dp(peer, model, collator, train_pairs, cfg, opts)?;
        // Only local replica 0's model leaves the node; the others are identical.
        Ok((out.rank.local == 0).then_some(out))
    })?;
    let out = outs
        .iter_mut()
        .find_map(Option::take)
        .expect("local replica 0 returns its outcome");
    Ok(NodeOutcome {
        rank: out.rank,
        outcome: TrainOutcome {
            model: out.model,
            status: out.status,
            step: out.step,
            total_steps: out.total_steps,
            resumed_from: out.resumed_from,
            history: out.history,
            last_eval: None,
            balance: out.balance,
            checkpoint: out.checkpoint,
        },
    })
}

/// Adds the step number to a collective error's operation.
pub(crate) fn at_step(e: DistError, step: usize) -> DistError {
    match e {
        DistError::PeerLost {
            rank,
            lost,
            op,
            timeout,
        } => DistError::PeerLost {
            rank,
            lost,
            op: format!("{op} of step {step}"),
            timeout,
        },
        DistError::Collective {
            rank,
            op,
            message,
            timeout,
        } => DistError::Collective {
            rank,
            op: format!("{op} of step {step}"),
            message,
            timeout,
        },
        e => e,
    }
}
