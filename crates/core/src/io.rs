//! Atomic file writes: a temp file in the same directory, fsynced, then renamed over the target.

use std::io::Write;
use std::path::Path;

use crate::error::{CoreError, Result};

/// Writes `data` to `path` so that readers see either the old file or the whole new one.
///
/// # Errors
/// IO errors naming the file.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| CoreError::io(&dir, e))?;
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(|e| CoreError::io(&dir, e))?;
    tmp.write_all(data).map_err(|e| CoreError::io(path, e))?;
    #[cfg(unix)]
    {
        // NamedTempFile creates 0600; give the result the usual 0644.
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(|e| CoreError::io(path, e))?;
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| CoreError::io(path, e))?;
    tmp.persist(path)
        .map_err(|e| CoreError::io(path, e.error))?;
    Ok(())
}
