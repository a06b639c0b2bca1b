//! JSON-lines files (`metrics.jsonl` of every trainer): `rlhf_util`'s one copy, with its errors
//! as [`TrainError`]s.

use std::path::Path;

use serde::Serialize;

use crate::error::{Result, TrainError};

/// Appends one JSON line to `path` (creating it).
///
/// # Errors
/// IO errors naming the file.
pub fn append_jsonl<T: Serialize>(path: &Path, entry: &T) -> Result<()> {
    Ok(rlhf_util::append_jsonl(path, entry)?)
}

/// Rewrites `path` with exactly `entries`, one JSON line each, atomically (used on resume, so
/// entries logged after the checkpoint by an interrupted run do not appear twice).
///
/// # Errors
/// IO errors naming the file.
pub fn write_jsonl<T: Serialize>(path: &Path, entries: &[T]) -> Result<()> {
    Ok(rlhf_util::write_jsonl(path, entries)?)
}

/// Reads a JSON-lines file of `T` (blank lines skipped).
///
/// # Errors
/// IO errors and [`TrainError::Json`] naming the file and line.
pub fn read_jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    Ok(rlhf_util::read_jsonl(path)?)
}

impl From<rlhf_util::Error> for TrainError {
    fn from(e: rlhf_util::Error) -> Self {
        match e {
            rlhf_util::Error::Io { path, source } => TrainError::Io { path, source },
            rlhf_util::Error::JsonLine { path, line, source } => TrainError::Json {
                path,
                message: format!("line {line}: {source}"),
            },
            other => TrainError::Util(other),
        }
    }
}
