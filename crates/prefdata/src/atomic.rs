//! Atomic output files: the data goes to a temporary file next to the destination, which is
//! renamed over it once complete. A new file gets mode 0644 (less the umask), a replaced file
//! keeps its mode. Temporary files are named `.prefdata-<pid>-<n>.<ext>.tmp`.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

const PREFIX: &str = ".prefdata-";
const SUFFIX: &str = ".tmp";

/// A temporary file for `dest`, removed on drop unless [`commit`](Self::commit)ted.
#[derive(Debug)]
pub(crate) struct TempOutput {
    tmp: PathBuf,
    dest: PathBuf,
    dir: PathBuf,
    committed: bool,
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

impl TempOutput {
    /// Creates a new temporary file in `dest`'s directory (`ext` goes into its name) with the
    /// mode `dest` will have.
    ///
    /// # Errors
    /// [`Error::Io`] naming the directory or the temporary file.
    pub(crate) fn create(dest: &Path, ext: &str) -> Result<(Self, File)> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = parent_dir(dest);
        // A replaced file keeps its mode; a new one gets 0644 (less the umask), like any
        // file the user creates, instead of the 0600 of a private temporary file.
        let keep = std::fs::metadata(dest).ok().map(|m| m.permissions());
        loop {
            let tmp = dir.join(format!(
                "{PREFIX}{}-{}.{ext}{SUFFIX}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            let mut opts = OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt as _;
                opts.mode(0o644);
            }
            let file = match opts.open(&tmp) {
                Ok(f) => f,
                // Left by an earlier process that had our pid: take the next number.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io(&tmp, e)),
            };
            let out = TempOutput {
                tmp,
                dest: dest.to_path_buf(),
                dir,
                committed: false,
            };
            if let Some(p) = keep {
                file.set_permissions(p)
                    .map_err(|e| Error::io(&out.tmp, e))?;
            }
            return Ok((out, file));
        }
    }

    /// The temporary file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.tmp
    }

    /// Syncs `file` (the one [`create`](Self::create) returned), renames it over the
    /// destination and syncs the directory (best effort).
    ///
    /// # Errors
    /// [`Error::Io`] if syncing or renaming fails; the temporary file is then removed.
    pub(crate) fn commit(mut self, file: File) -> Result<()> {
        file.sync_all().map_err(|e| Error::io(&self.tmp, e))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.dest).map_err(|e| Error::io(&self.dest, e))?;
        self.committed = true;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Drop for TempOutput {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `bytes` to `path` atomically (temporary file + rename), creating the parent
/// directory if needed. A new file gets mode 0644 (less the umask); a replaced file keeps its
/// mode.
///
/// # Errors
/// [`Error::Io`] naming the directory, the temporary file or `path`.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let path = path.as_ref();
    let dir = parent_dir(path);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let (tmp, mut file) = TempOutput::create(path, "out")?;
    file.write_all(bytes)
        .map_err(|e| Error::io(tmp.path(), e))?;
    tmp.commit(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(unix)]
    fn new_files_get_0644_and_replaced_files_keep_their_mode() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let probe = dir.path().join("probe");
        std::fs::write(&probe, b"").unwrap();
        let fresh = dir.path().join("sub/new.txt");
        write_atomic(&fresh, b"new").unwrap();
        assert_eq!(std::fs::read(&fresh).unwrap(), b"new");
        assert_eq!(mode(&fresh), mode(&probe) & 0o644);
        let old = dir.path().join("old.txt");
        std::fs::write(&old, b"old").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_atomic(&old, b"replaced").unwrap();
        assert_eq!(std::fs::read(&old).unwrap(), b"replaced");
        assert_eq!(mode(&old), 0o600);
        // Nothing but the outputs (and the probe) is left.
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["old.txt", "probe", "sub"]);
    }

    #[test]
    fn an_uncommitted_temporary_file_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x.parquet");
        let (tmp, _file) = TempOutput::create(&dest, "parquet").unwrap();
        let path = tmp.path().to_path_buf();
        assert!(path.exists());
        drop(tmp);
        assert!(!path.exists() && !dest.exists());
    }
}
