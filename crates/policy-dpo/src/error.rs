//! Errors of the DPO crate.

use std::path::PathBuf;

/// Result alias.
pub type Result<T, E = DpoError> = std::result::Result<T, E>;

/// What can go wrong in DPO data preparation and training.
#[derive(Debug, thiserror::Error)]
pub enum DpoError {
    /// A config value out of range.
    #[error("invalid DPO config: {0}")]
    Config(String),
    /// Bad or empty data.
    #[error("{0}")]
    Data(String),
    /// The reference log-prob cache belongs to another model or data set, or is malformed.
    #[error("reference cache {}: {message}", path.display())]
    Cache {
        /// The cache file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A checkpoint does not belong to this run.
    #[error("cannot resume from {}: {message}", path.display())]
    ResumeMismatch {
        /// The checkpoint.
        path: PathBuf,
        /// What differs.
        message: String,
    },
    /// The loss or the gradient norm became NaN or infinite.
    #[error("{what} is not finite at step {step}; lower the learning rate")]
    NonFinite {
        /// Which quantity.
        what: &'static str,
        /// The optimizer step.
        step: usize,
    },
    /// IO with the path.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Parquet or Arrow failure with the path.
    #[error("{}: {message}", path.display())]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The cause.
        message: String,
    },
    /// From the reward crate (data encoding, checkpoints).
    #[error(transparent)]
    Reward(#[from] rlhf_reward::RewardError),
    /// From the training engine (run directory, checkpoints, collective).
    #[error(transparent)]
    Train(rlhf_train::TrainError),
    /// From the core (models, generation, tokenizer).
    #[error(transparent)]
    Core(#[from] rlhf_core::CoreError),
}

impl DpoError {
    /// An IO error on `path`.
    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        DpoError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn parquet(path: &std::path::Path, e: impl std::fmt::Display) -> Self {
        DpoError::Parquet {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }
}

impl From<rlhf_train::TrainError> for DpoError {
    /// The engine's IO, resume and divergence errors keep this crate's variants.
    fn from(e: rlhf_train::TrainError) -> Self {
        use rlhf_train::TrainError as T;
        match e {
            T::Io { path, source } => DpoError::Io { path, source },
            T::ResumeMismatch { path, message } => DpoError::ResumeMismatch { path, message },
            T::NonFinite { what, step } => DpoError::NonFinite { what, step },
            T::Data(m) => DpoError::Data(m),
            T::Core(c) => DpoError::Core(c),
            other => DpoError::Train(other),
        }
    }
}
