//! The on-disk judgment cache: a JSONL file keyed by sha256(judge model, prompt).
//!
//! Each finished judgment is appended and fsynced as soon as it completes, so a crash loses
//! nothing already judged; a re-run finds it and does not ask the judge again. A truncated
//! last line (a crash in the middle of a write) is dropped on open.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::io::{AppendLog, open_append_log};

/// One cached judgment (one line of the cache file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedJudgment {
    /// [`cache_key`] of (`judge_model`, prompt), lowercase hex.
    pub hash: String,
    /// The caller's job key (e.g. the question id), for people reading the file.
    pub key: String,
    /// The judge model id.
    pub judge_model: String,
    /// The raw judgment text.
    pub judgment: String,
}

/// The cache key of a (judge model, prompt) pair: the lowercase hex sha256 of the model id's
/// byte length (8 bytes, little endian), the model id, then the prompt.
pub fn cache_key(judge_model: &str, prompt: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update((judge_model.len() as u64).to_le_bytes());
    hasher.update(judge_model.as_bytes());
    hasher.update(prompt.as_bytes());
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A judgment cache backed by a JSONL file. Safe to share between concurrent tasks.
#[derive(Debug)]
pub struct JudgmentCache {
    path: PathBuf,
    entries: Mutex<HashMap<String, CachedJudgment>>,
    log: Mutex<AppendLog>,
}

impl JudgmentCache {
    /// Opens (creating if needed) the cache file and loads its entries. When a hash occurs
    /// more than once, the first entry is kept.
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io), or [`Error::JsonLine`](crate::Error::JsonLine) for a
    /// corrupt line other than a truncated last one.
    pub fn open(path: &Path) -> Result<Self> {
        let (log, records) = open_append_log::<CachedJudgment>(path)?;
        let mut entries = HashMap::with_capacity(records.len());
        for (_, record) in records {
            entries.entry(record.hash.clone()).or_insert(record);
        }
        tracing::debug!(path = %path.display(), n = entries.len(), "opened judgment cache");
        Ok(JudgmentCache {
            path: path.to_owned(),
            entries: Mutex::new(entries),
            log: Mutex::new(log),
        })
    }

    /// The cache file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cached judgment with this hash.
    pub fn get(&self, hash: &str) -> Option<CachedJudgment> {
        self.lock_entries().get(hash).cloned()
    }

    /// Number of cached judgments.
    pub fn len(&self) -> usize {
        self.lock_entries().len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a judgment (fsynced) unless its hash is already cached. Returns whether it was
    /// written.
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) if the write or fsync fails; the entry is then not
    /// cached.
    pub fn insert(&self, record: CachedJudgment) -> Result<bool> {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        if self.lock_entries().contains_key(&record.hash) {
            return Ok(false);
        }
        log.append(&record)?;
        tracing::trace!(path = %log.path().display(), key = %record.key, "cached judgment");
        self.lock_entries().insert(record.hash.clone(), record);
        Ok(true)
    }

    fn lock_entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, CachedJudgment>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_separates_model_and_prompt() {
        assert_ne!(cache_key("ab", "c"), cache_key("a", "bc"));
        assert_eq!(cache_key("m", "p"), cache_key("m", "p"));
        assert_eq!(cache_key("m", "p").len(), 64);
    }

    #[test]
    fn insert_is_idempotent_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.jsonl");
        let rec = CachedJudgment {
            hash: cache_key("m", "p"),
            key: "1".into(),
            judge_model: "m".into(),
            judgment: "{'综合得分': 7}".into(),
        };
        let cache = JudgmentCache::open(&path).unwrap();
        assert!(cache.insert(rec.clone()).unwrap());
        assert!(!cache.insert(rec.clone()).unwrap());
        drop(cache);
        let cache = JudgmentCache::open(&path).unwrap();
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get(&rec.hash), Some(rec));
    }
}
