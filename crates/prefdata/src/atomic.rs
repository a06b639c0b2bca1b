//! Atomic output files: the data goes to a temporary file next to the destination, which is
//! renamed over it once complete. A new file gets mode 0644 (less the umask), a replaced file
//! keeps its mode. Temporary files are named `.prefdata-<pid>-<n>.<ext>.tmp`; those left in
//! the directory by a process that is gone (killed mid-write) are removed the next time a file
//! is written there, with a warning.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};

const PREFIX: &str = ".prefdata-";
const SUFFIX: &str = ".tmp";
/// Temporary files of older versions carry no pid (`.prefdata-XXXXXX.parquet.tmp`); they are
/// removed once they have not been written to for this long.
const LEGACY_STALE_AFTER: Duration = Duration::from_secs(3600);

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
    /// Removes stale temporary files in `dest`'s directory, then creates a new temporary file
    /// there (`ext` goes into its name) with the mode `dest` will have.
    ///
    /// # Errors
    /// [`Error::Io`] naming the directory or the temporary file.
    pub(crate) fn create(dest: &Path, ext: &str) -> Result<(Self, File)> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = parent_dir(dest);
        remove_stale(&dir);
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

/// Who left a temporary file of ours, read from its name.
#[derive(Debug, PartialEq, Eq)]
enum Owner {
    /// `.prefdata-<pid>-<n>.<ext>.tmp`.
    Pid(u32),
    /// `.prefdata-<random>.<ext>.tmp`, written by versions that did not record the pid.
    Legacy,
}

fn owner(name: &str) -> Option<Owner> {
    let middle = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let (stem, _ext) = middle.split_once('.')?;
    match stem.split_once('-') {
        Some((pid, n)) if n.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty() => {
            pid.parse().ok().map(Owner::Pid)
        }
        None if stem.len() == 6 && stem.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            Some(Owner::Legacy)
        }
        _ => None,
    }
}

/// Whether process `pid` is alive; `None` where this cannot be told (no `/proc`).
fn alive(pid: u32) -> Option<bool> {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return None;
    }
    Some(proc.join(pid.to_string()).exists())
}

/// Why the temporary file `path` owned by `owner` is stale, or `None` if it may be in use.
fn stale_reason(path: &Path, owner: &Owner) -> Option<String> {
    let old = || {
        std::fs::symlink_metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age >= LEGACY_STALE_AFTER)
    };
    let untouched = format!("untouched for over {} s", LEGACY_STALE_AFTER.as_secs());
    match *owner {
        Owner::Pid(pid) if pid == std::process::id() => None,
        Owner::Pid(pid) => match alive(pid) {
            Some(false) => Some(format!("process {pid} is gone")),
            Some(true) => None,
            None => old().then(|| format!("process {pid}'s file, {untouched}")),
        },
        Owner::Legacy => old().then_some(untouched),
    }
}

/// Removes our stale temporary files in `dir`, logging each one; problems are only logged.
fn remove_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name.to_str().and_then(owner) else {
            continue;
        };
        let path = entry.path();
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let Some(reason) = stale_reason(&path, &owner) else {
            continue;
        };
        let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::warn!(
                file = %path.display(),
                bytes = size,
                "removed a stale temporary file of an interrupted write ({reason})"
            ),
            Err(e) => {
                tracing::debug!(file = %path.display(), error = %e, "could not remove a stale temporary file")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_are_recognised() {
        assert_eq!(owner(".prefdata-123-0.parquet.tmp"), Some(Owner::Pid(123)));
        assert_eq!(owner(".prefdata-9-17.out.tmp"), Some(Owner::Pid(9)));
        assert_eq!(owner(".prefdata-a1B2c3.parquet.tmp"), Some(Owner::Legacy));
        for other in [
            ".prefdata-notes.txt",
            ".prefdata-123-x.parquet.tmp",
            ".prefdata-123-.parquet.tmp",
            ".prefdata-abc.parquet.tmp",
            "prefdata-1-0.parquet.tmp",
            ".prefdata-1-0.tmp",
        ] {
            assert_eq!(owner(other), None, "{other}");
        }
    }

    fn set_age(path: &Path, age: Duration) {
        let f = File::options().write(true).open(path).unwrap();
        f.set_modified(SystemTime::now() - age).unwrap();
    }

    #[test]
    fn only_files_of_gone_processes_and_old_legacy_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let path = |n: &str| dir.path().join(n);
        let names = [
            format!(".prefdata-{dead}-0.parquet.tmp"),
            format!(".prefdata-{}-0.parquet.tmp", std::process::id()),
            ".prefdata-OldOne.parquet.tmp".to_owned(),
            ".prefdata-NewOne.parquet.tmp".to_owned(),
            ".prefdata-notes.txt".to_owned(),
        ];
        for n in &names {
            std::fs::write(path(n), b"x").unwrap();
        }
        set_age(&path(&names[2]), Duration::from_secs(7200));
        remove_stale(dir.path());
        let exists: Vec<bool> = names.iter().map(|n| path(n).exists()).collect();
        assert_eq!(exists, [false, true, false, true, true]);
    }

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
