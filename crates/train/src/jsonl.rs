//! JSON-lines files: `metrics.jsonl` of every trainer, and any other per-entry log.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::error::{Result, TrainError};

/// Appends one JSON line to `path` (creating it).
///
/// # Errors
/// IO errors naming the file.
pub fn append_jsonl<T: Serialize>(path: &Path, entry: &T) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| TrainError::io(path, e))?;
    let line = serde_json::to_string(entry).expect("serialisable");
    writeln!(f, "{line}").map_err(|e| TrainError::io(path, e))
}

/// Rewrites `path` with exactly `entries`, one JSON line each, atomically (used on resume, so
/// entries logged after the checkpoint by an interrupted run do not appear twice).
///
/// # Errors
/// IO errors naming the file.
pub fn write_jsonl<T: Serialize>(path: &Path, entries: &[T]) -> Result<()> {
    let mut text = String::new();
    for e in entries {
        text.push_str(&serde_json::to_string(e).expect("serialisable"));
        text.push('\n');
    }
    rlhf_core::io::write_atomic(path, text.as_bytes())?;
    Ok(())
}

/// Reads a JSON-lines file of `T` (blank lines skipped).
///
/// # Errors
/// IO errors and [`TrainError::Json`] naming the file and line.
pub fn read_jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| TrainError::Json {
                path: path.to_path_buf(),
                message: format!("line {}: {e}", i + 1),
            })
        })
        .collect()
}
