//! The crate's error type and `Result` alias.

use std::path::PathBuf;

/// Everything that can go wrong in this crate (outside of HTTP request handling, whose
/// failures are answered as 4xx/5xx responses, see [`crate::server`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation on `path` failed.
    #[error("I/O error on {}: {error}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error (shown in the message, so not chained as a source).
        error: std::io::Error,
    },
    /// A line of a JSON Lines file (journal, prompts) is unusable.
    #[error("{}:{line}: {message}", file.display())]
    BadLine {
        /// The file.
        file: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong and what was expected.
        message: String,
    },
    /// A file's content does not have the expected shape (a Parquet column, a JSON document).
    #[error("{}: {message}", file.display())]
    BadFile {
        /// The file.
        file: PathBuf,
        /// What is wrong and what was expected.
        message: String,
    },
    /// A configuration or command-line value is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// An annotator name is already registered, or unknown where one is required.
    #[error("annotator {name:?}: {message}")]
    Annotator {
        /// The annotator name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// An Arrow operation failed.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// A Parquet operation failed.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// The preference-data crate reported an error (writing the export).
    #[error(transparent)]
    Prefdata(#[from] rlhf_prefdata::Error),
    /// An atomic write failed (the message names the file, once).
    #[error(transparent)]
    Util(#[from] rlhf_util::Error),
    /// JSON serialisation failed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    /// Wraps an [`std::io::Error`] with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            error,
        }
    }

    /// A [`Error::BadFile`] for `file`.
    pub(crate) fn bad_file(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::BadFile {
            file: file.into(),
            message: message.into(),
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
