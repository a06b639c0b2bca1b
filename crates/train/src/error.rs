//! The error type of `rlhf-train` and its `Result` alias.

use std::path::PathBuf;

/// Everything that can go wrong in the training engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// A data set is empty, inconsistent or too small for what was asked.
    #[error("{0}")]
    Data(String),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file at fault.
        path: PathBuf,
        /// The underlying IO error.
        source: std::io::Error,
    },
    /// A JSON/JSONL file did not parse.
    #[error("{}: {message}", path.display())]
    Json {
        /// The file at fault.
        path: PathBuf,
        /// What the parser said (with the line for JSONL).
        message: String,
    },
    /// burn's recorder failed to save or load a model or optimizer record.
    #[error("{}: checkpoint record: {message}", path.display())]
    Record {
        /// The record file.
        path: PathBuf,
        /// The recorder's message.
        message: String,
    },
    /// A checkpoint does not belong to this run (different config, data or model).
    #[error("cannot resume from {}: {message}", path.display())]
    ResumeMismatch {
        /// The checkpoint directory.
        path: PathBuf,
        /// What differs.
        message: String,
    },
    /// Another process trains in this run directory.
    #[error("{} is in use by process {pid} (lock file {}); wait for it or use another run dir", run_dir.display(), lock.display())]
    Locked {
        /// The run directory.
        run_dir: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// The holder's pid as written in the lock file (0 when unreadable).
        pid: u32,
    },
    /// A loss or gradient norm became NaN or infinite.
    #[error("non-finite {what} at step {step}; lower the learning rate")]
    NonFinite {
        /// Which value.
        what: &'static str,
        /// The optimizer step.
        step: usize,
    },
    /// A collective operation failed (a lost rank, a timeout): the world's own error.
    #[error(transparent)]
    Collective(Box<dyn std::error::Error + Send + Sync>),
    /// Ranks of a data-parallel world disagree on what they train.
    #[error("rank {rank}: ranks disagree on {what}")]
    Mismatch {
        /// The rank that noticed.
        rank: usize,
        /// What differs, with the values.
        what: String,
    },
    /// An error from `rlhf-core` (atomic writes, model IO).
    #[error(transparent)]
    Core(#[from] rlhf_core::CoreError),
    /// An error of `rlhf-util`'s file helpers that has no variant above.
    #[error(transparent)]
    Util(rlhf_util::Error),
}

impl TrainError {
    /// An IO error naming `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.into(),
            source,
        }
    }

    /// Wraps a collective's own error.
    pub fn collective(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        TrainError::Collective(Box::new(e))
    }
}

/// `Result` with [`TrainError`].
pub type Result<T> = std::result::Result<T, TrainError>;
