//! `session.json`: which pairs file a session directory belongs to.
//!
//! Written (atomically) the first time a directory is served; checked on every later start
//! and by the exporter, so votes are never matched against a different pairs file.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use rlhf_util::write_atomic;

/// File name inside the session directory.
pub const SESSION_FILE: &str = "session.json";

/// The identity of a session directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Layout version (1).
    pub version: u32,
    /// The pairs file, absolute.
    pub pairs_path: PathBuf,
    /// SHA-256 of the pairs file's bytes.
    pub pairs_sha256: String,
    /// Pairs in it.
    pub pairs: usize,
    /// When the session was first served (ms since the Unix epoch).
    pub created_ms: u64,
}

impl SessionInfo {
    /// Reads `dir/session.json`; `None` if absent.
    ///
    /// # Errors
    /// [`Error::BadFile`] for malformed JSON; I/O errors.
    pub fn read(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(SESSION_FILE);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
                Error::bad_file(
                    &path,
                    format!(
                        "{e}; expected {{\"version\", \"pairs_path\", \"pairs_sha256\", \"pairs\", \"created_ms\"}}"
                    ),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    /// Writes `dir/session.json` atomically.
    ///
    /// # Errors
    /// I/O errors.
    pub fn write(&self, dir: &Path) -> Result<()> {
        Ok(write_atomic(
            &dir.join(SESSION_FILE),
            &serde_json::to_vec_pretty(self)?,
        )?)
    }
}
