//! The temporary files of atomic writes: their names, and the removal of those that a process
//! killed mid-write left behind.
//!
//! A temporary file is `.{name}.tmp.{pid}.{n}` next to the file `name` it will replace. Before
//! the first write into a directory, a process removes the temporary files there that are
//! stale, with a warning each:
//! - ours (`.{name}.tmp.{pid}.{n}`) and those of `rlhf-prefdata`'s former writer
//!   (`.prefdata-{pid}-{n}.{ext}.tmp`) when process `pid` is gone (told by `/proc`; where there
//!   is no `/proc`, when the file has not been written to for [`STALE_AFTER`]);
//! - the pid-less `.prefdata-XXXXXX.{ext}.tmp` of older versions once untouched for
//!   [`STALE_AFTER`].
//!
//! A file of this process, or of a live one, is never removed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// How long a temporary file whose writer cannot be told alive must have gone unwritten before
/// it counts as stale.
const STALE_AFTER: Duration = Duration::from_secs(3600);

/// The longest part of the target's name that goes into a temporary name, in bytes, so that
/// the temporary name stays under the usual 255-byte limit.
const MAX_NAME_PART: usize = 128;

/// `rlhf-prefdata`'s former temporary files: `.prefdata-…tmp`.
const PREFDATA_PREFIX: &str = ".prefdata-";
const PREFDATA_SUFFIX: &str = ".tmp";

/// The name of temporary file number `n` of process `pid` for the file `name`.
pub(crate) fn temp_name(name: &str, pid: u32, n: u64) -> String {
    let mut end = name.len().min(MAX_NAME_PART);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!(".{}.tmp.{pid}.{n}", &name[..end])
}

/// Who left a temporary file, read from its name.
#[derive(Debug, PartialEq, Eq)]
enum Owner {
    /// `.{name}.tmp.{pid}.{n}` or `.prefdata-{pid}-{n}.{ext}.tmp`.
    Pid(u32),
    /// `.prefdata-{random}.{ext}.tmp`, written by versions that did not record the pid.
    Legacy,
}

fn owner(name: &str) -> Option<Owner> {
    ours(name).or_else(|| prefdata(name))
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `.{name}.tmp.{pid}.{n}`, `name` not empty.
fn ours(file: &str) -> Option<Owner> {
    let (rest, n) = file.strip_prefix('.')?.rsplit_once('.')?;
    let (rest, pid) = rest.rsplit_once('.')?;
    let name = rest.strip_suffix(".tmp")?;
    if name.is_empty() || !digits(n) || !digits(pid) {
        return None;
    }
    pid.parse().ok().map(Owner::Pid)
}

/// `.prefdata-{pid}-{n}.{ext}.tmp` or `.prefdata-XXXXXX.{ext}.tmp`.
fn prefdata(file: &str) -> Option<Owner> {
    let middle = file
        .strip_prefix(PREFDATA_PREFIX)?
        .strip_suffix(PREFDATA_SUFFIX)?;
    let (stem, _ext) = middle.split_once('.')?;
    match stem.split_once('-') {
        Some((pid, n)) if digits(n) => pid.parse().ok().map(Owner::Pid),
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
            .is_some_and(|age| age >= STALE_AFTER)
    };
    let untouched = format!("untouched for over {} s", STALE_AFTER.as_secs());
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

/// [`remove_stale`] the first time this process writes into `dir` (by that spelling of it), so
/// that writing many files into one directory does not list it each time.
pub(crate) fn remove_stale_once(dir: &Path) {
    static CLEANED: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());
    let first = CLEANED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(dir.to_owned());
    if first {
        remove_stale(dir);
    }
}

/// Removes the stale temporary files in `dir` (regular files only), logging each one; problems
/// are only logged.
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
                tracing::debug!(file = %path.display(), error = %e, "could not remove a stale temporary file");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;

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

    #[test]
    fn our_temporary_names_are_recognised() {
        assert_eq!(owner(&temp_name("x.json", 123, 4)), Some(Owner::Pid(123)));
        assert_eq!(owner(".a.b.tmp.7.0"), Some(Owner::Pid(7)));
        assert_eq!(owner(".x.tmp.tmp.7.0"), Some(Owner::Pid(7)));
        for other in [
            "x.tmp.1.2",
            "..tmp.1.2",
            ".x.tmp.1.",
            ".x.tmp..2",
            ".x.tmp.a.2",
            ".x.tmp.1.b",
            ".x.tmp.99999999999.2",
            ".x.tmp",
            ".x.temp.1.2",
            ".step-00000007.tmp",
        ] {
            assert_eq!(owner(other), None, "{other}");
        }
    }

    #[test]
    fn a_long_name_is_cut_at_a_character_boundary() {
        let long = "é".repeat(100);
        let t = temp_name(&long, 1, 2);
        assert_eq!(t, format!(".{}.tmp.1.2", "é".repeat(64)));
        assert_eq!(owner(&t), Some(Owner::Pid(1)));
        assert_eq!(temp_name("x", 1, 2), ".x.tmp.1.2");
    }

    fn set_age(path: &Path, age: Duration) {
        let f = File::options().write(true).open(path).unwrap();
        f.set_modified(SystemTime::now() - age).unwrap();
    }

    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        dead
    }

    #[test]
    fn only_files_of_gone_processes_and_old_legacy_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dead_pid();
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
    fn our_files_of_gone_processes_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dead_pid();
        let path = |n: &str| dir.path().join(n);
        let names = [
            temp_name("a.json", dead, 0),
            temp_name("a.json", std::process::id(), 0),
            // An old file of ours keeps it while the process lives.
            temp_name("a.json", std::process::id(), 1),
            ".a.json.tmp".to_owned(),
            "a.json".to_owned(),
        ];
        for n in &names {
            std::fs::write(path(n), b"x").unwrap();
        }
        set_age(&path(&names[2]), Duration::from_secs(7200));
        // A directory with a temporary-looking name is not a file of ours.
        let sub = path(&temp_name("d", dead, 0));
        std::fs::create_dir(&sub).unwrap();
        remove_stale(dir.path());
        let exists: Vec<bool> = names.iter().map(|n| path(n).exists()).collect();
        assert_eq!(exists, [false, true, true, true, true]);
        assert!(sub.is_dir());
    }

    #[test]
    fn a_directory_is_cleaned_on_the_first_write_only() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dead_pid();
        let first = dir.path().join(temp_name("x", dead, 0));
        std::fs::write(&first, b"x").unwrap();
        crate::write_atomic(&dir.path().join("x"), b"1").unwrap();
        assert!(
            !first.exists(),
            "the first write into the directory cleans it"
        );
        let second = dir.path().join(temp_name("x", dead, 1));
        std::fs::write(&second, b"x").unwrap();
        crate::write_atomic(&dir.path().join("x"), b"2").unwrap();
        assert!(
            second.exists(),
            "later writes do not list the directory again"
        );
        assert_eq!(std::fs::read(dir.path().join("x")).unwrap(), b"2");
    }
}
