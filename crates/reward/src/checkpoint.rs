//! Resumable training checkpoints in a run directory.
//!
//! ```text
//! run_dir/
//! ├── config.json              the resolved RewardTrainConfig (written before step 0)
//! ├── metrics.jsonl            one TRL-named entry per log step / evaluation
//! ├── balance_report.{json,md} when length balancing is on
//! └── checkpoints/
//!     ├── latest               the name of the newest complete checkpoint, e.g. `step-00000300`
//!     └── step-00000300/
//!         ├── model.mpk        model record (burn NamedMpkFileRecorder, full precision, param ids)
//!         ├── optim.mpk        AdamW record (moments and step count per param id)
//!         └── state.json       step, data cursor/epoch, RNG, metrics so far, config, data fingerprint
//! ```
//!
//! A checkpoint is written into `checkpoints/.step-N.tmp/`, renamed to `step-N/` when complete,
//! and only then named in `latest` (written atomically), so a crash never leaves `latest`
//! pointing at a partial checkpoint. The model record keeps burn's parameter ids, which is what
//! the optimizer record is keyed by; the HF export (`export_hf`) is separate.

use std::path::{Path, PathBuf};

use burn::module::{AutodiffModule, Module};
use burn::optim::Optimizer;
use burn::prelude::*;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Recorder};
use burn::tensor::backend::AutodiffBackend;
use rlhf_core::ScalarModel;
use serde::{Deserialize, Serialize};

use crate::config::RewardTrainConfig;
use crate::error::{Result, RewardError};
use crate::metrics::{LogEntry, Window};

type Rec = NamedMpkFileRecorder<FullPrecisionSettings>;

/// The data-order generator's state. Each epoch's order is a Fisher–Yates shuffle driven by a
/// ChaCha8 stream seeded from `(seed, epoch)`, so `(seed, epoch)` plus the cursor is the whole
/// state: nothing else random happens during training (the model has no dropout).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataRngState {
    /// `RewardTrainConfig::seed`.
    pub seed: u64,
    /// The epoch whose permutation is being consumed.
    pub epoch: usize,
    /// Pairs of that permutation already consumed.
    pub cursor: usize,
}

impl DataRngState {
    /// The next `accumulation` micro-batches of at most `batch` indices into a data set of `n`,
    /// taken in order from `perm` (the permutation of the current epoch, which the caller
    /// keeps); when an epoch runs out the next one starts, and `perm` becomes its permutation
    /// ([`crate::epoch_permutation`] of `seed` and the new epoch).
    pub fn next_batches(
        &mut self,
        n: usize,
        batch: usize,
        accumulation: usize,
        perm: &mut Vec<usize>,
    ) -> Vec<Vec<usize>> {
        (0..accumulation)
            .map(|_| {
                if self.cursor >= n {
                    self.epoch += 1;
                    self.cursor = 0;
                    *perm = crate::epoch_permutation(n, self.seed, self.epoch);
                }
                let end = (self.cursor + batch).min(n);
                let ids = perm[self.cursor..end].to_vec();
                self.cursor = end;
                ids
            })
            .collect()
    }
}

/// Everything besides the model and optimizer records that resuming needs (`state.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainState {
    /// Optimizer steps done (the scheduler's position: the lr is a function of it).
    pub step: usize,
    /// Total optimizer steps of the run.
    pub total_steps: usize,
    /// Data order position.
    pub data: DataRngState,
    /// Training pairs after balancing.
    pub n_train: usize,
    /// FNV-1a of the encoded training set (ids, lengths, weights), hex.
    pub data_fingerprint: String,
    /// The config the run was started with.
    pub config: RewardTrainConfig,
    /// Every metrics entry logged so far (`metrics.jsonl` is rewritten from it on resume).
    pub history: Vec<LogEntry>,
    /// The metrics window accumulated since the last log step.
    #[serde(default)]
    pub(crate) window: Window,
}

/// The directory holding the checkpoints of a run.
pub fn checkpoints_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("checkpoints")
}

fn ckpt_name(step: usize) -> String {
    format!("step-{step:08}")
}

fn rec_err(path: &Path, e: impl std::fmt::Display) -> RewardError {
    RewardError::Record {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// The newest complete checkpoint of `run_dir` (as named by `checkpoints/latest`), if any.
///
/// # Errors
/// IO errors other than "not found", and a `latest` naming a missing directory.
pub fn latest_checkpoint(run_dir: &Path) -> Result<Option<PathBuf>> {
    let latest = checkpoints_dir(run_dir).join("latest");
    let name = match std::fs::read_to_string(&latest) {
        Ok(s) => s.trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(RewardError::io(&latest, e)),
    };
    let dir = checkpoints_dir(run_dir).join(&name);
    if !dir.join("state.json").is_file() {
        return Err(RewardError::Data(format!(
            "{} names `{name}`, which is not a complete checkpoint",
            latest.display()
        )));
    }
    Ok(Some(dir))
}

/// The checkpoint a run in `run_dir` starts from: the latest one when `resume`, none for a
/// fresh run. A fresh run (`resume == false`) in a directory that already holds checkpoints is
/// refused, so a run is never silently overwritten. Every trainer calls this.
///
/// # Errors
/// [`RewardError::Data`] for the refusal, and the errors of [`latest_checkpoint`].
pub fn resume_point(run_dir: &Path, resume: bool) -> Result<Option<PathBuf>> {
    if resume {
        latest_checkpoint(run_dir)
    } else if has_checkpoints(run_dir)? {
        Err(RewardError::Data(format!(
            "{} already holds checkpoints; resume it or use another run dir",
            run_dir.display()
        )))
    } else {
        Ok(None)
    }
}

/// Reads `state.json` of a checkpoint.
///
/// # Errors
/// IO and JSON errors naming the file.
pub fn read_train_state(ckpt: &Path) -> Result<TrainState> {
    read_state(ckpt)
}

/// Reads any trainer's `state.json` from a checkpoint directory (DPO, PPO and SFT keep their
/// own state types in the same layout).
///
/// # Errors
/// IO and JSON errors naming the file.
pub fn read_state<S: serde::de::DeserializeOwned>(ckpt: &Path) -> Result<S> {
    let path = ckpt.join("state.json");
    let text = std::fs::read_to_string(&path).map_err(|e| RewardError::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| RewardError::Json {
        path,
        message: e.to_string(),
    })
}

/// Loads a checkpoint's model record into `model` (same architecture; parameter ids come from
/// the record, so an optimizer record saved with it applies).
///
/// # Errors
/// [`RewardError::Record`] when the record is missing or does not fit the model.
pub fn load_model_record<B: Backend>(
    model: ScalarModel<B>,
    ckpt: &Path,
    device: &B::Device,
) -> Result<ScalarModel<B>> {
    load_module_record(model, ckpt, "model", device)
}

/// Loads the record `ckpt/<name>.mpk` into any module `module` (written by
/// [`save_checkpoint`] under that name).
///
/// # Errors
/// [`RewardError::Record`] when the record is missing or does not fit the module.
pub fn load_module_record<B: Backend, M: Module<B>>(
    module: M,
    ckpt: &Path,
    name: &str,
    device: &B::Device,
) -> Result<M> {
    let path = ckpt.join(name);
    module
        .load_file(path.clone(), &Rec::new(), device)
        .map_err(|e| rec_err(&path, e))
}

/// Loads the optimizer record `ckpt/<name>.mpk` into `optim`.
///
/// # Errors
/// [`RewardError::Record`] when the record is missing or unreadable.
pub fn load_optimizer_record<B, M, O>(
    optim: O,
    ckpt: &Path,
    name: &str,
    device: &B::Device,
) -> Result<O>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
{
    let path = ckpt.join(name);
    let record: O::Record =
        Recorder::<B>::load(&Rec::new(), path.clone(), device).map_err(|e| rec_err(&path, e))?;
    Ok(optim.load_record(record))
}

pub(crate) fn load_optim_record<B, O>(optim: O, ckpt: &Path, device: &B::Device) -> Result<O>
where
    B: AutodiffBackend,
    O: Optimizer<ScalarModel<B>, B>,
{
    load_optimizer_record::<B, ScalarModel<B>, O>(optim, ckpt, "optim", device)
}

/// Writes `<dir>/<name>.mpk` for a module.
///
/// # Errors
/// [`RewardError::Record`].
pub fn save_module_record<B: Backend, M: Module<B>>(
    module: &M,
    dir: &Path,
    name: &str,
) -> Result<()> {
    module
        .clone()
        .save_file(dir.join(name), &Rec::new())
        .map_err(|e| rec_err(&dir.join(format!("{name}.mpk")), e))
}

/// Writes `<dir>/<name>.mpk` for an optimizer.
///
/// # Errors
/// [`RewardError::Record`].
pub fn save_optimizer_record<B, M, O>(optim: &O, dir: &Path, name: &str) -> Result<()>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
{
    Recorder::<B>::record(&Rec::new(), optim.to_record(), dir.join(name))
        .map_err(|e| rec_err(&dir.join(format!("{name}.mpk")), e))
}

/// Writes a checkpoint for `step` in the layout above, with whatever records `write_records`
/// puts into the (temporary) directory it is given, plus `state` as `state.json`; renames it
/// into place, updates `latest` and prunes all but the newest `keep`. Shared by every trainer
/// of the workspace (reward, SFT, DPO, PPO).
///
/// # Errors
/// IO and record errors.
pub fn save_checkpoint_with<S: Serialize>(
    run_dir: &Path,
    step: usize,
    state: &S,
    keep: usize,
    write_records: impl FnOnce(&Path) -> Result<()>,
) -> Result<PathBuf> {
    let root = checkpoints_dir(run_dir);
    let name = ckpt_name(step);
    let tmp = root.join(format!(".{name}.tmp"));
    let dst = root.join(&name);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| RewardError::io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| RewardError::io(&tmp, e))?;
    write_records(&tmp)?;
    let json = serde_json::to_string_pretty(state).expect("serialisable");
    rlhf_core::io::write_atomic(&tmp.join("state.json"), json.as_bytes())?;
    if dst.exists() {
        std::fs::remove_dir_all(&dst).map_err(|e| RewardError::io(&dst, e))?;
    }
    std::fs::rename(&tmp, &dst).map_err(|e| RewardError::io(&dst, e))?;
    rlhf_core::io::write_atomic(&root.join("latest"), name.as_bytes())?;
    prune(&root, keep, &name)?;
    tracing::info!(step, dir = %dst.display(), "checkpoint saved");
    Ok(dst)
}

/// Writes a checkpoint for `state.step` and prunes all but the newest `keep`.
pub(crate) fn save_checkpoint<B, O>(
    run_dir: &Path,
    model: &ScalarModel<B>,
    optim: &O,
    state: &TrainState,
    keep: usize,
) -> Result<PathBuf>
where
    B: AutodiffBackend,
    O: Optimizer<ScalarModel<B>, B>,
{
    save_checkpoint_with(run_dir, state.step, state, keep, |dir| {
        save_module_record(model, dir, "model")?;
        save_optimizer_record::<B, ScalarModel<B>, O>(optim, dir, "optim")
    })
}

/// Completed checkpoint directories of `root`, oldest first.
fn list_checkpoints(root: &Path) -> Result<Vec<(usize, PathBuf)>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(RewardError::io(root, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| RewardError::io(root, e))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if let Some(step) = name.strip_prefix("step-").and_then(|s| s.parse().ok()) {
            out.push((step, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Whether `run_dir` holds any checkpoint.
pub fn has_checkpoints(run_dir: &Path) -> Result<bool> {
    Ok(!list_checkpoints(&checkpoints_dir(run_dir))?.is_empty())
}

fn prune(root: &Path, keep: usize, newest: &str) -> Result<()> {
    let all = list_checkpoints(root)?;
    let n = all.len();
    for (_, path) in all.into_iter().take(n.saturating_sub(keep.max(1))) {
        if path.file_name().is_some_and(|f| f == newest) {
            continue;
        }
        std::fs::remove_dir_all(&path).map_err(|e| RewardError::io(&path, e))?;
    }
    Ok(())
}
