//! Atomic file writes: the content goes to a temporary file in the target's directory, which is
//! fsynced and renamed over the target, then the directory is fsynced (best effort). Readers
//! see either the old or the whole new content, never a mix, even if the process dies
//! half-way. [`AtomicFile`] streams; [`write_atomic`] / [`write_atomic_mode`] write a buffer.
//!
//! Temporary files and the removal of those a killed process left: see `stale.rs`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::stale::{remove_stale_once, temp_name};

/// The mode a new file gets on Unix unless one is asked for.
const NEW_FILE_MODE: u32 = 0o644;

/// How many temporary names to try when one is taken (left behind by a crashed process that
/// had the same pid).
const TEMP_NAME_TRIES: u32 = 64;

/// A file being written in place of another: created with [`create`](Self::create), written
/// through [`Write`], and put in place by [`commit`](Self::commit). Until then the target is
/// untouched; dropping it uncommitted (an error, a panic) removes the temporary file.
///
/// On Unix the file put in place has the mode the target had, or `0644` (exactly; the umask
/// does not apply) if it is new, or the one given to [`create_mode`](Self::create_mode). The
/// temporary file is owner-only (`0600`) until the commit, so no one else can read a partial
/// or not yet permitted content.
///
/// The temporary file is `.{name}.tmp.{pid}.{n}` next to the target `name`. The first time a
/// process writes into a directory it removes the temporary files there that a process killed
/// mid-write left behind (its pid is gone; also `rlhf-prefdata`'s former
/// `.prefdata-{pid}-{n}.{ext}.tmp` names), logging a warning for each.
///
/// # Example
/// ```
/// use std::io::Write as _;
/// # let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("out.txt");
/// let mut f = rlhf_util::AtomicFile::create(&path)?;
/// writeln!(f, "one")?;
/// assert!(!path.exists(), "nothing is in place before the commit");
/// f.commit()?;
/// assert_eq!(std::fs::read_to_string(&path)?, "one\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct AtomicFile {
    // Field order matters: `file` is closed before `temp` removes the file on drop.
    file: File,
    mode: u32,
    dest: PathBuf,
    dir: PathBuf,
    temp: TempGuard,
}

/// Removes the temporary file on drop unless disarmed.
#[derive(Debug)]
struct TempGuard {
    path: PathBuf,
    armed: bool,
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl AtomicFile {
    /// Starts writing `path`, creating its parent directories.
    ///
    /// # Errors
    /// [`Error::Io`] naming the directory that could not be created, or `path` if the
    /// temporary file could not be; [`Error::NotAFile`] when `path` names no file.
    pub fn create(path: &Path) -> Result<Self> {
        Self::open(path, None)
    }

    /// [`create`](Self::create) for a file that gets Unix permission `mode` (exactly, whether
    /// it is new or replaced; ignored on other platforms).
    ///
    /// # Errors
    /// As [`create`](Self::create).
    pub fn create_mode(path: &Path, mode: u32) -> Result<Self> {
        Self::open(path, Some(mode))
    }

    fn open(path: &Path, mode: Option<u32>) -> Result<Self> {
        let name = path.file_name().ok_or_else(|| Error::NotAFile {
            path: path.to_owned(),
        })?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        remove_stale_once(&dir);
        let mode = mode.unwrap_or_else(|| existing_mode(path).unwrap_or(NEW_FILE_MODE));
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let (tmp, file) =
            create_temp(&dir, &name.to_string_lossy(), &COUNTER).map_err(|e| Error::io(path, e))?;
        Ok(Self {
            file,
            mode,
            dest: path.to_owned(),
            dir,
            temp: TempGuard {
                path: tmp,
                armed: true,
            },
        })
    }

    /// The file this one will replace.
    pub fn path(&self) -> &Path {
        &self.dest
    }

    /// The temporary file being written.
    pub fn temp_path(&self) -> &Path {
        &self.temp.path
    }

    /// Sets the mode, fsyncs the temporary file, renames it over the target and fsyncs the
    /// directory (best effort: not every platform can open one).
    ///
    /// # Errors
    /// [`Error::Io`] naming the target if any step but the last fails; the temporary file is
    /// then removed and the target left as it was.
    pub fn commit(self) -> Result<()> {
        let AtomicFile {
            file,
            mode,
            dest,
            dir,
            mut temp,
        } = self;
        let synced = set_mode(&file, mode).and_then(|()| file.sync_all());
        drop(file);
        synced
            .and_then(|()| std::fs::rename(&temp.path, &dest))
            .map_err(|e| Error::io(&dest, e))?;
        temp.armed = false;
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
        self.file.write_vectored(bufs)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Writes `bytes` to `path` atomically ([`AtomicFile`]), creating the parent directories.
///
/// On Unix a new file gets mode `0644` (exactly; the umask does not apply) and a replaced file
/// keeps its mode. Elsewhere the platform's default permissions apply.
///
/// # Errors
/// [`Error::Io`] naming the directory that could not be created or the file that could not be
/// written (the temporary file is then removed); [`Error::NotAFile`] when `path` names no file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write(AtomicFile::create(path)?, bytes)
}

/// [`write_atomic`] that gives the file Unix permission `mode` (exactly, whether it is new or
/// replaced; ignored on other platforms). The content is never readable beyond the owner before
/// the mode is set: the temporary file is created `0600`.
///
/// # Errors
/// As [`write_atomic`].
pub fn write_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    write(AtomicFile::create_mode(path, mode)?, bytes)
}

fn write(mut file: AtomicFile, bytes: &[u8]) -> Result<()> {
    file.write_all(bytes)
        .map_err(|e| Error::io(file.path(), e))?;
    file.commit()
}

/// Creates a fresh temporary file for `name` in `dir` (numbered from `counter`), owner-only on
/// Unix.
fn create_temp(dir: &Path, name: &str, counter: &AtomicU64) -> std::io::Result<(PathBuf, File)> {
    let mut tries = 0;
    loop {
        let tmp = dir.join(temp_name(
            name,
            std::process::id(),
            counter.fetch_add(1, Ordering::Relaxed),
        ));
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        match opts.open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && tries < TEMP_NAME_TRIES => {
                tries += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(unix)]
fn existing_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
}

#[cfg(not(unix))]
fn existing_mode(_path: &Path) -> Option<u32> {
    None
}

#[cfg(unix)]
fn set_mode(file: &File, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_file: &File, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn creates_parents_replaces_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b/x.json");
        write_atomic(&p, b"one").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        write_atomic(&p, b"").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"");
        assert_eq!(names(&dir.path().join("a/b")), vec!["x.json"]);
    }

    #[test]
    fn a_path_without_a_file_name_is_rejected() {
        let e = write_atomic(Path::new(".."), b"x").unwrap_err();
        assert!(matches!(e, Error::NotAFile { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            "..: not a file path (expected one ending in a file name)"
        );
        assert!(matches!(
            write_atomic(Path::new("/"), b"x"),
            Err(Error::NotAFile { .. })
        ));
    }

    #[test]
    fn failure_names_the_target_once_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        // The target is a non-empty directory: the rename fails after the temp file was written.
        let target = dir.path().join("taken");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("inner"), b"x").unwrap();
        let e = write_atomic(&target, b"data").unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(&e, Error::Io { path, .. } if path == &target),
            "{msg}"
        );
        let shown = target.display().to_string();
        assert_eq!(msg.matches(&shown).count(), 1, "{msg}");
        assert_eq!(names(dir.path()), vec!["taken"], "temp file left behind");
        // A parent that is a file: the directory cannot be created, and that is what is named.
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let e = write_atomic(&file.join("y.json"), b"data").unwrap_err();
        assert!(matches!(&e, Error::Io { path, .. } if path == &file), "{e}");
    }

    #[cfg(unix)]
    fn mode_of(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[cfg(unix)]
    #[test]
    fn new_files_get_0644_and_replaced_files_keep_their_mode() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.txt");
        write_atomic(&p, b"one").unwrap();
        assert_eq!(mode_of(&p), 0o644);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(mode_of(&p), 0o640);
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
    }

    #[cfg(unix)]
    #[test]
    fn explicit_mode_applies_to_new_and_replaced_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("secret");
        write_atomic_mode(&p, b"k1", 0o600).unwrap();
        assert_eq!(mode_of(&p), 0o600);
        write_atomic(&p, b"k2").unwrap();
        assert_eq!(
            mode_of(&p),
            0o600,
            "a plain rewrite keeps the secret's mode"
        );
        write_atomic_mode(&p, b"k3", 0o640).unwrap();
        assert_eq!(mode_of(&p), 0o640);
        assert_eq!(std::fs::read(&p).unwrap(), b"k3");
        assert_eq!(names(dir.path()), vec!["secret"]);
    }

    #[test]
    fn a_stale_temp_name_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let pid = std::process::id();
        for n in 0..3 {
            std::fs::write(dir.path().join(format!(".x.tmp.{pid}.{n}")), b"stale").unwrap();
        }
        let counter = AtomicU64::new(0);
        let (tmp, _file) = create_temp(dir.path(), "x", &counter).unwrap();
        assert_eq!(tmp, dir.path().join(format!(".x.tmp.{pid}.3")));
        // The stale files are left alone.
        let stale = dir.path().join(format!(".x.tmp.{pid}.0"));
        assert_eq!(std::fs::read(stale).unwrap(), b"stale");
    }

    // Moved from `rlhf-prefdata`'s former `atomic.rs` (where new files got 0644 less the umask;
    // now exactly 0644, as everywhere else).
    #[test]
    #[cfg(unix)]
    fn a_new_file_in_a_new_directory_gets_0644_and_a_replaced_0600_file_keeps_it() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let fresh = dir.path().join("sub/new.txt");
        write_atomic(&fresh, b"new").unwrap();
        assert_eq!(std::fs::read(&fresh).unwrap(), b"new");
        assert_eq!(mode(&fresh), 0o644);
        let old = dir.path().join("old.txt");
        std::fs::write(&old, b"old").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_atomic(&old, b"replaced").unwrap();
        assert_eq!(std::fs::read(&old).unwrap(), b"replaced");
        assert_eq!(mode(&old), 0o600);
        // Nothing but the outputs is left.
        assert_eq!(names(dir.path()), ["old.txt", "sub"]);
        assert_eq!(names(&dir.path().join("sub")), ["new.txt"]);
    }

    #[test]
    fn an_uncommitted_temporary_file_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x.parquet");
        let tmp = AtomicFile::create(&dest).unwrap();
        let path = tmp.temp_path().to_path_buf();
        assert!(path.exists());
        drop(tmp);
        assert!(!path.exists() && !dest.exists());
    }

    #[test]
    fn a_streamed_file_replaces_the_target_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x.jsonl");
        std::fs::write(&dest, b"old").unwrap();
        let mut f = AtomicFile::create(&dest).unwrap();
        assert_eq!(f.path(), dest);
        assert_eq!(f.temp_path().parent(), Some(dir.path()));
        f.write_all(b"a\n").unwrap();
        f.write_all(b"b\n").unwrap();
        assert_eq!(
            std::fs::read(&dest).unwrap(),
            b"old",
            "untouched before the commit"
        );
        #[cfg(unix)]
        assert_eq!(mode_of(f.temp_path()), 0o600, "owner-only until the commit");
        let tmp = f.temp_path().to_path_buf();
        f.commit().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"a\nb\n");
        assert!(!tmp.exists());
        assert_eq!(names(dir.path()), ["x.jsonl"]);
        // Dropped half-way: the target keeps its content.
        let mut f = AtomicFile::create(&dest).unwrap();
        f.write_all(b"partial").unwrap();
        drop(f);
        assert_eq!(std::fs::read(&dest).unwrap(), b"a\nb\n");
        assert_eq!(names(dir.path()), ["x.jsonl"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_streamed_file_gets_the_mode_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        let mut f = AtomicFile::create_mode(&p, 0o600).unwrap();
        f.write_all(b"k").unwrap();
        f.commit().unwrap();
        assert_eq!(mode_of(&p), 0o600);
        let e = AtomicFile::create(Path::new("/")).unwrap_err();
        assert!(matches!(e, Error::NotAFile { .. }), "{e}");
    }

    #[test]
    fn a_long_file_name_still_gets_a_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("n".repeat(250));
        write_atomic(&p, b"x").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"x");
        assert_eq!(names(dir.path()), ["n".repeat(250)]);
    }
}
