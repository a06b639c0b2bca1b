//! Atomic file writes, through `rlhf-util` (a temp file in the same directory, fsynced, then
//! renamed over the target). Kept as `rlhf_core::io::write_atomic` so callers get a
//! [`CoreError`](crate::CoreError).

use std::path::Path;

use crate::error::Result;

/// Writes `data` to `path` so that readers see either the old file or the whole new one
/// ([`rlhf_util::write_atomic`]: parent directories created; on Unix a new file gets mode 0644
/// and a replaced file keeps its mode).
///
/// # Errors
/// [`CoreError::Util`](crate::CoreError::Util) naming the file or directory at fault.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    Ok(rlhf_util::write_atomic(path, data)?)
}
