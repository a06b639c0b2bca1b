//! The error type of `rlhf-reward` and its `Result` alias.

use std::path::PathBuf;

/// Everything that can go wrong in `rlhf-reward`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RewardError {
    /// A config field is out of range or inconsistent with another.
    #[error("invalid reward config: {field}: {message}")]
    Config {
        /// The field at fault (its serde name).
        field: &'static str,
        /// What is wrong and what is expected.
        message: String,
    },
    /// A preference pair cannot be used (empty response, non-finite weight, …).
    #[error("preference pair `{id}`: {message}")]
    BadPair {
        /// The pair's id.
        id: String,
        /// What is wrong.
        message: String,
    },
    /// A data set is empty or too small for what was asked.
    #[error("{0}")]
    Data(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file at fault.
        path: PathBuf,
        /// The underlying IO error.
        source: std::io::Error,
    },
    /// A JSON/JSONL file did not parse.
    #[error("{path}: {message}")]
    Json {
        /// The file at fault.
        path: PathBuf,
        /// What the parser said (with the line for JSONL).
        message: String,
    },
    /// burn's recorder failed to save or load a model or optimizer record.
    #[error("{path}: checkpoint record: {message}")]
    Record {
        /// The record file.
        path: PathBuf,
        /// The recorder's message.
        message: String,
    },
    /// A checkpoint does not belong to this run (different config or data).
    #[error("cannot resume from {path}: {message}")]
    ResumeMismatch {
        /// The checkpoint directory.
        path: PathBuf,
        /// What differs.
        message: String,
    },
    /// A loss or score became NaN or infinite.
    #[error("non-finite {what} at step {step}")]
    NonFinite {
        /// Which value.
        what: &'static str,
        /// The optimizer step.
        step: usize,
    },
    /// Drawing the score plot failed.
    #[error("plot: {0}")]
    Plot(String),
    /// An error from `rlhf-core` (tokenizer, checkpoint IO, …).
    #[error(transparent)]
    Core(#[from] rlhf_core::CoreError),
    /// An error from `rlhf-debias` (balancing, diagnostics).
    #[error(transparent)]
    Debias(#[from] rlhf_debias::Error),
    /// An error of the training engine (run directory, checkpoints, collective).
    #[error(transparent)]
    Train(rlhf_train::TrainError),
}

impl From<rlhf_train::TrainError> for RewardError {
    /// The engine's IO, JSON, record, resume and divergence errors keep this crate's variants
    /// (so callers match one set); the rest is wrapped.
    fn from(e: rlhf_train::TrainError) -> Self {
        use rlhf_train::TrainError as T;
        match e {
            T::Io { path, source } => RewardError::Io { path, source },
            T::Json { path, message } => RewardError::Json { path, message },
            T::Record { path, message } => RewardError::Record { path, message },
            T::ResumeMismatch { path, message } => RewardError::ResumeMismatch { path, message },
            T::NonFinite { what, step } => RewardError::NonFinite { what, step },
            T::Data(m) => RewardError::Data(m),
            T::Core(c) => RewardError::Core(c),
            other => RewardError::Train(other),
        }
    }
}

impl RewardError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RewardError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn config(field: &'static str, message: impl Into<String>) -> Self {
        RewardError::Config {
            field,
            message: message.into(),
        }
    }
}

/// `Result` with this crate's [`RewardError`].
pub type Result<T> = std::result::Result<T, RewardError>;
