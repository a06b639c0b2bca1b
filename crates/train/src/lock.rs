//! [`RunDir`]: a run directory held by one training process at a time.
//!
//! The main rank takes an exclusive `flock` on `run_dir/.lock` (and writes its pid there)
//! before it writes anything; a second trainer on the same directory fails at once, naming
//! the holder's pid. The kernel releases the lock when the process exits, even on `kill -9`,
//! so a killed run is resumable at once. Holding the lock, it removes the checkpoint temp
//! directories (`checkpoints/.step-*.tmp`) that a killed run left behind.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use burn::tensor::backend::AutodiffBackend;

use crate::collective::Collective;
use crate::error::{Result, TrainError};
use crate::run::checkpoints_dir;

/// A run directory, locked by this process when it is the main rank.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    _lock: Option<File>,
}

impl RunDir {
    /// Creates `path` if needed and, on the main rank of `world`, locks it and cleans its
    /// stale checkpoint temp directories. Other ranks only name it.
    ///
    /// # Errors
    /// [`TrainError::Locked`] when another process holds it; IO errors.
    pub fn open<B: AutodiffBackend, C: Collective<B>>(world: &C, path: &Path) -> Result<Self> {
        if world.is_main() {
            Self::lock(path)
        } else {
            Ok(RunDir {
                path: path.to_path_buf(),
                _lock: None,
            })
        }
    }

    /// Creates and locks `path` (what [`RunDir::open`] does on the main rank).
    ///
    /// # Errors
    /// As [`RunDir::open`].
    pub fn lock(path: &Path) -> Result<Self> {
        std::fs::create_dir_all(path).map_err(|e| TrainError::io(path, e))?;
        let lock = path.join(".lock");
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock)
            .map_err(|e| TrainError::io(&lock, e))?;
        if !try_flock(&f, &lock) {
            let mut text = String::new();
            let _ = f.read_to_string(&mut text);
            return Err(TrainError::Locked {
                run_dir: path.to_path_buf(),
                lock,
                pid: text.trim().parse().unwrap_or(0),
            });
        }
        let me = std::process::id().to_string();
        f.set_len(0)
            .and_then(|()| f.rewind())
            .and_then(|()| f.write_all(me.as_bytes()))
            .map_err(|e| TrainError::io(&lock, e))?;
        clean_stale_temps(&checkpoints_dir(path))?;
        Ok(RunDir {
            path: path.to_path_buf(),
            _lock: Some(f),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Takes the exclusive lock; `false` only when another process holds it. A file system that
/// cannot lock at all (some network mounts) is warned about and treated as unlocked, so that
/// training still runs there.
#[cfg(unix)]
fn try_flock(f: &File, lock: &Path) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file descriptor this function borrows; no memory is involved.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return true;
    }
    let e = std::io::Error::last_os_error();
    if e.kind() == std::io::ErrorKind::WouldBlock {
        return false;
    }
    tracing::warn!(lock = %lock.display(), error = %e, "cannot lock the run directory; continuing unlocked");
    true
}

#[cfg(not(unix))]
fn try_flock(_f: &File, _lock: &Path) -> bool {
    true
}

/// Removes `root/.step-*.tmp` directories: checkpoints a killed process did not finish (the
/// caller holds the run's lock, so nobody is writing them).
fn clean_stale_temps(root: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(TrainError::io(root, e)),
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('.') && name.ends_with(".tmp") {
            let p = entry.path();
            tracing::warn!(path = %p.display(), "removing an unfinished checkpoint of a killed run");
            std::fs::remove_dir_all(&p).map_err(|e| TrainError::io(&p, e))?;
        }
    }
    Ok(())
}
