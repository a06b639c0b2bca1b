//! The error type of `rlhf-policy-ppo` and its `Result` alias.

use std::path::PathBuf;

/// Everything that can go wrong in `rlhf-policy-ppo`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PpoError {
    /// A config field is out of range or inconsistent with another.
    #[error("invalid PPO config: {field}: {message}")]
    Config {
        /// The field at fault (its serde path).
        field: &'static str,
        /// What is wrong and what is expected.
        message: String,
    },
    /// Input data is empty, malformed or does not fit the models.
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
        /// What the parser said.
        message: String,
    },
    /// A Parquet file could not be read or written.
    #[error("{path}: parquet: {message}")]
    Parquet {
        /// The file at fault.
        path: PathBuf,
        /// What arrow/parquet said.
        message: String,
    },
    /// A reference-reward cache was built with another policy, reward model, prompt set or
    /// generation setting.
    #[error("reference-reward cache {path} does not belong to this run: {message}")]
    CacheMismatch {
        /// The cache file.
        path: PathBuf,
        /// What differs.
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
    /// A loss, score or gradient became NaN or infinite.
    #[error("non-finite {what} at PPO step {step}")]
    NonFinite {
        /// Which value.
        what: &'static str,
        /// The PPO iteration.
        step: usize,
    },
    /// The reward source failed to score a batch (a remote reward server that stayed down
    /// after its retries, a malformed reply, a score that is not finite).
    #[error("reward source {source_name}: {message}")]
    Scorer {
        /// The scorer's fingerprint (e.g. `remote:http://host:port/score`).
        source_name: String,
        /// What went wrong and what was expected.
        message: String,
    },
    /// Drawing the reward/KL plot failed.
    #[error("plot: {0}")]
    Plot(String),
    /// An error from `rlhf-core` (generation, tokenizer, checkpoint IO, …).
    #[error(transparent)]
    Core(#[from] rlhf_core::CoreError),
    /// An error from `rlhf-reward` (data encoding).
    #[error(transparent)]
    Reward(#[from] rlhf_reward::RewardError),
    /// An error from `rlhf-debias` (reward shaping).
    #[error(transparent)]
    Debias(#[from] rlhf_debias::Error),
    /// An error of the training engine (run directory, checkpoints, collective).
    #[error(transparent)]
    Train(rlhf_train::TrainError),
}

impl From<rlhf_train::TrainError> for PpoError {
    /// The engine's IO, JSON, resume and divergence errors keep this crate's variants.
    fn from(e: rlhf_train::TrainError) -> Self {
        use rlhf_train::TrainError as T;
        match e {
            T::Io { path, source } => PpoError::Io { path, source },
            T::Json { path, message } => PpoError::Json { path, message },
            T::ResumeMismatch { path, message } => PpoError::ResumeMismatch { path, message },
            T::Data(m) => PpoError::Data(m),
            T::Core(c) => PpoError::Core(c),
            other => PpoError::Train(other),
        }
    }
}

impl PpoError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        PpoError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn config(field: &'static str, message: impl Into<String>) -> Self {
        PpoError::Config {
            field,
            message: message.into(),
        }
    }
}

/// `Result` with this crate's [`PpoError`].
pub type Result<T> = std::result::Result<T, PpoError>;
