//! Atomic whole-file writes: a temporary file in the same directory is written, fsynced and
//! renamed over the target, then the directory is fsynced (best effort). Readers see either the
//! old or the new content, never a mix, even if the process dies half-way.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// The mode a new file gets from [`write_atomic`] on Unix.
const NEW_FILE_MODE: u32 = 0o644;

/// How many temporary names to try when one is taken (left behind by a crashed process that
/// had the same pid).
const TEMP_NAME_TRIES: u32 = 64;

/// Writes `bytes` to `path` atomically, creating the parent directories.
///
/// On Unix a new file gets mode `0644` (exactly; the umask does not apply) and a replaced file
/// keeps its mode. Elsewhere the platform's default permissions apply.
///
/// # Errors
/// [`Error::Io`] naming the directory that could not be created or the file that could not be
/// written (the temporary file is then removed); [`Error::NotAFile`] when `path` names no file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write(path, bytes, None)
}

/// [`write_atomic`] that gives the file Unix permission `mode` (exactly, whether it is new or
/// replaced; ignored on other platforms). The content is never readable beyond the owner before
/// the mode is set: the temporary file is created `0600`.
///
/// # Errors
/// As [`write_atomic`].
pub fn write_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    write(path, bytes, Some(mode))
}

fn write(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<()> {
    let name = path.file_name().ok_or_else(|| Error::NotAFile {
        path: path.to_owned(),
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let mode = mode.unwrap_or_else(|| existing_mode(path).unwrap_or(NEW_FILE_MODE));
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let (tmp, mut file) =
        create_temp(&dir, &name.to_string_lossy(), &COUNTER).map_err(|e| Error::io(path, e))?;
    let result = (|| {
        file.write_all(bytes)?;
        set_mode(&file, mode)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    // Persist the rename itself; not every platform can open a directory, so best effort.
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Creates a fresh `.{name}.tmp.{pid}.{n}` in `dir` (`n` drawn from `counter`), owner-only on
/// Unix.
fn create_temp(dir: &Path, name: &str, counter: &AtomicU64) -> std::io::Result<(PathBuf, File)> {
    let mut tries = 0;
    loop {
        let tmp = dir.join(format!(
            ".{name}.tmp.{}.{}",
            std::process::id(),
            counter.fetch_add(1, Ordering::Relaxed)
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
}
