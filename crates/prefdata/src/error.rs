//! The crate's error type and `Result` alias.

use std::path::PathBuf;

use crate::report::DropReason;

/// Everything that can go wrong in this crate.
///
/// Bad input records are normally *reported and skipped* (see
/// [`ImportReport`](crate::ImportReport)); they only become an
/// [`Error::BadRecord`] in strict mode.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation on `path` failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A bad input record, raised instead of skipped because the import runs in strict mode.
    #[error("{}:{line}: {reason}: {message}", file.display())]
    BadRecord {
        /// The input file.
        file: PathBuf,
        /// 1-based line where the record starts.
        line: u64,
        /// Why the record is unusable.
        reason: DropReason,
        /// Details (parser message, missing field name, ...).
        message: String,
    },
    /// An input had records but none of them gave a comparison (wrong `--format`, or every
    /// pair dropped): importing it would write an empty file.
    #[error("{files}: no pairs kept out of {records} records read; dropped: {why}")]
    NothingKept {
        /// The input file(s), comma-separated.
        files: String,
        /// Records read.
        records: u64,
        /// The main drop reasons with counts and the first located example of each.
        why: String,
    },
    /// A strict import found no record at all in an input.
    #[error("{}: no records (the file is empty); nothing to import", file.display())]
    EmptyInput {
        /// The input file.
        file: PathBuf,
    },
    /// An Arrow operation failed (building or decoding a record batch).
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// A Parquet operation failed.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Reading the Parquet file `path` failed: it is not Parquet, its footer or data is
    /// corrupt, or it does not hold comparisons. `source` is the [`Error::Parquet`],
    /// [`Error::Arrow`] or [`Error::Schema`] underneath.
    #[error("{}: {source}", path.display())]
    ParquetFile {
        /// The file read.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: Box<Error>,
    },
    /// A record batch or Parquet file does not match the comparison schema.
    #[error("schema mismatch: {0}")]
    Schema(String),
    /// JSON (de)serialisation of a report or an exported record failed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// Rendering a plot failed.
    #[error("plot: {0}")]
    Plot(String),
    /// An output file could not be written for a reason other than I/O (its path names no
    /// file); I/O failures of `rlhf-util`'s atomic writes become [`Error::Io`].
    #[error(transparent)]
    Output(rlhf_util::Error),
}

impl From<rlhf_util::Error> for Error {
    fn from(e: rlhf_util::Error) -> Self {
        match e {
            rlhf_util::Error::Io { path, source } => Self::Io { path, source },
            other => Self::Output(other),
        }
    }
}

impl Error {
    /// Wraps an [`std::io::Error`] with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// Wraps an error met while reading the Parquet file `path`.
    pub(crate) fn parquet_file(path: impl Into<PathBuf>, source: impl Into<Error>) -> Self {
        Self::ParquetFile {
            path: path.into(),
            source: Box::new(source.into()),
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
