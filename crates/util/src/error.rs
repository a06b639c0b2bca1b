//! The crate's error type and `Result` alias.

use std::path::PathBuf;

/// What can go wrong in a helper. Every file variant names the file at fault exactly once, so a
/// crate that wraps it (`#[error(transparent)]`) should not add the path again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be created, read, written, synced or renamed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory at fault.
        path: PathBuf,
        /// The underlying IO error.
        source: std::io::Error,
    },
    /// A line of a JSON-lines file is not valid JSON of the expected shape.
    #[error("{path}:{line}: invalid JSON line: {source}")]
    JsonLine {
        /// The file at fault.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What the parser said (its "line 1" is the position within that one line).
        source: serde_json::Error,
    },
    /// A record could not be serialised to JSON (for example a map with non-string keys).
    #[error("{path}: cannot serialise a record as JSON: {source}")]
    Serialize {
        /// The file that was to be written.
        path: PathBuf,
        /// What serde_json said.
        source: serde_json::Error,
    },
    /// The path to write ends in `..` or is a root, so it names no file.
    #[error("{path}: not a file path (expected one ending in a file name)")]
    NotAFile {
        /// The path at fault.
        path: PathBuf,
    },
    /// A chart could not be drawn: its data do not fit the chart (the message says which), or
    /// plotters failed.
    #[error("drawing a chart: {0}")]
    Plot(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
