//! The run directory and its resume contract, shared by every trainer.
//!
//! ```text
//! run_dir/
//! ├── config.json              the resolved trainer config (written before step 0)
//! ├── metrics.jsonl            one TRL-named entry per log step / evaluation
//! ├── balance_report.{json,md} when length balancing is on
//! └── checkpoints/
//!     ├── latest               the name of the newest complete checkpoint, e.g. `step-00000300`
//!     └── step-00000300/
//!         ├── model.mpk        model record (burn NamedMpkFileRecorder, full precision, param ids)
//!         ├── optim.mpk        AdamW record (moments and step count per param id)
//!         └── state.json       step, data cursor/epoch, metrics so far, config, data fingerprint
//! ```
//!
//! A checkpoint is written into `checkpoints/.step-N.tmp/`, renamed to `step-N/` when complete,
//! and only then named in `latest` (written atomically), so a crash never leaves `latest`
//! pointing at a partial checkpoint. The model record keeps burn's parameter ids, which is what
//! the optimizer record is keyed by; HF exports are separate.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use burn::module::{AutodiffModule, Module};
use burn::optim::Optimizer;
use burn::prelude::*;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Recorder};
use burn::tensor::backend::AutodiffBackend;
use serde::Serialize;

use crate::error::{Result, TrainError};

type Rec = NamedMpkFileRecorder<FullPrecisionSettings>;

/// The directory holding the checkpoints of a run.
pub fn checkpoints_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("checkpoints")
}

fn ckpt_name(step: usize) -> String {
    format!("step-{step:08}")
}

fn rec_err(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Record {
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
        Err(e) => return Err(TrainError::io(&latest, e)),
    };
    let dir = checkpoints_dir(run_dir).join(&name);
    if !dir.join("state.json").is_file() {
        return Err(TrainError::Data(format!(
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
/// [`TrainError::Data`] for the refusal, and the errors of [`latest_checkpoint`].
pub fn resume_point(run_dir: &Path, resume: bool) -> Result<Option<PathBuf>> {
    if resume {
        latest_checkpoint(run_dir)
    } else if has_checkpoints(run_dir)? {
        Err(TrainError::Data(format!(
            "{} already holds checkpoints; resume it or use another run dir",
            run_dir.display()
        )))
    } else {
        Ok(None)
    }
}

/// Reads a trainer's `state.json` from a checkpoint directory.
///
/// # Errors
/// IO and JSON errors naming the file.
pub fn read_state<S: serde::de::DeserializeOwned>(ckpt: &Path) -> Result<S> {
    let path = ckpt.join("state.json");
    let text = std::fs::read_to_string(&path).map_err(|e| TrainError::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| TrainError::Json {
        path,
        message: e.to_string(),
    })
}

/// Loads the record `ckpt/<name>.mpk` into any module `module` (written by
/// [`save_checkpoint_with`] under that name).
///
/// # Errors
/// [`TrainError::Record`] when the record is missing or does not fit the module.
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
/// [`TrainError::Record`] when the record is missing or unreadable.
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

/// Writes `<dir>/<name>.mpk` for a module.
///
/// # Errors
/// [`TrainError::Record`].
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
/// [`TrainError::Record`].
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
        std::fs::remove_dir_all(&tmp).map_err(|e| TrainError::io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| TrainError::io(&tmp, e))?;
    write_records(&tmp)?;
    let json = serde_json::to_string_pretty(state).expect("serialisable");
    rlhf_core::io::write_atomic(&tmp.join("state.json"), json.as_bytes())?;
    if dst.exists() {
        std::fs::remove_dir_all(&dst).map_err(|e| TrainError::io(&dst, e))?;
    }
    std::fs::rename(&tmp, &dst).map_err(|e| TrainError::io(&dst, e))?;
    rlhf_core::io::write_atomic(&root.join("latest"), name.as_bytes())?;
    prune(&root, keep, &name)?;
    tracing::info!(step, dir = %dst.display(), "checkpoint saved");
    Ok(dst)
}

/// Completed checkpoint directories of `root`, oldest first.
fn list_checkpoints(root: &Path) -> Result<Vec<(usize, PathBuf)>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(TrainError::io(root, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| TrainError::io(root, e))?;
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
        std::fs::remove_dir_all(&path).map_err(|e| TrainError::io(&path, e))?;
    }
    Ok(())
}

/// Run-time options of a training run that are not hyper-parameters.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// The run directory (config, metrics, checkpoints).
    pub run_dir: PathBuf,
    /// Set it (e.g. from a Ctrl-C handler) to stop after the current step: a checkpoint is
    /// written and the trainer returns [`TrainStatus::Stopped`]. In a data-parallel run the
    /// flag of any rank stops every rank after the same step.
    pub stop: Arc<AtomicBool>,
    /// Stop the same way once this many optimizer steps are done (time-boxed runs, tests).
    pub stop_after: Option<usize>,
    /// Continue from the latest checkpoint of `run_dir` when there is one (default `true`);
    /// with `false` a run dir that already has checkpoints is an error.
    pub resume: bool,
    /// Show a progress bar on stderr (only drawn when stderr is a terminal, and only by the
    /// main rank). Default `true`.
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

/// How a training run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainStatus {
    /// All steps done.
    Finished,
    /// Stopped early by the stop flag or `stop_after`; a checkpoint was written.
    Stopped,
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

/// Writes the resolved config of a fresh run as `run_dir/config.json` (atomically).
///
/// # Errors
/// IO errors naming the file.
pub fn write_config<T: Serialize>(run_dir: &Path, cfg: &T) -> Result<()> {
    let json = serde_json::to_string_pretty(cfg).expect("serialisable");
    rlhf_core::io::write_atomic(&run_dir.join("config.json"), json.as_bytes())?;
    Ok(())
}
