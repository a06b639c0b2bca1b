//! Crash-tolerant JSONL append logs. Atomic whole-file writes come from `rlhf-util`.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// An append-only JSONL file; every record is written in one `write` and fsynced.
#[derive(Debug)]
pub(crate) struct AppendLog {
    path: PathBuf,
    file: File,
}

/// Opens (creating if needed) a JSONL append log and returns its records with their 1-based
/// line numbers.
///
/// A last line without a newline that does not parse is the trace of a crash in the middle of
/// a write: it is cut off the file (with a warning). A last line without a newline that does
/// parse gets its newline. Any other invalid line is an error.
pub(crate) fn open_append_log<T: DeserializeOwned>(
    path: &Path,
) -> Result<(AppendLog, Vec<(usize, T)>)> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let mut records = Vec::new();
    let mut start = 0usize;
    let mut line_no = 0usize;
    while start < bytes.len() {
        line_no += 1;
        let (line, complete) = match bytes[start..].iter().position(|&b| b == b'\n') {
            Some(i) => (&bytes[start..start + i], true),
            None => (&bytes[start..], false),
        };
        let next = start + line.len() + usize::from(complete);
        if line.iter().all(u8::is_ascii_whitespace) {
            start = next;
            continue;
        }
        match serde_json::from_slice::<T>(line) {
            Ok(record) => {
                records.push((line_no, record));
                if !complete {
                    file.write_all(b"\n").map_err(|e| Error::io(path, e))?;
                    file.sync_data().map_err(|e| Error::io(path, e))?;
                }
            }
            Err(_) if !complete => {
                tracing::warn!(
                    path = %path.display(),
                    line = line_no,
                    bytes = line.len(),
                    "dropping truncated last line"
                );
                file.set_len(start as u64).map_err(|e| Error::io(path, e))?;
                file.seek(SeekFrom::End(0))
                    .map_err(|e| Error::io(path, e))?;
                file.sync_data().map_err(|e| Error::io(path, e))?;
            }
            Err(source) => {
                return Err(Error::JsonLine {
                    path: path.to_owned(),
                    line: line_no,
                    source,
                });
            }
        }
        start = next;
    }
    Ok((
        AppendLog {
            path: path.to_owned(),
            file,
        },
        records,
    ))
}

impl AppendLog {
    /// Appends one record as a line and fsyncs it.
    pub(crate) fn append<T: Serialize>(&mut self, record: &T) -> Result<()> {
        let mut line = serde_json::to_vec(record).map_err(Error::Serialize)?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .map_err(|e| Error::io(&self.path, e))?;
        self.file.sync_data().map_err(|e| Error::io(&self.path, e))
    }

    /// The file path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct R {
        a: u32,
    }

    #[test]
    fn truncated_last_line_is_cut_and_appends_continue() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/log.jsonl");
        {
            let (mut log, recs) = open_append_log::<R>(&path).unwrap();
            assert!(recs.is_empty());
            log.append(&R { a: 1 }).unwrap();
            log.append(&R { a: 2 }).unwrap();
        }
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"a\": 3");
        std::fs::write(&path, &text).unwrap();
        {
            let (mut log, recs) = open_append_log::<R>(&path).unwrap();
            assert_eq!(recs.len(), 2);
            log.append(&R { a: 4 }).unwrap();
        }
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n{\"a\":2}\n{\"a\":4}\n"
        );
    }

    #[test]
    fn complete_last_line_without_newline_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        std::fs::write(&path, "{\"a\":1}\n\n{\"a\":2}").unwrap();
        let (mut log, recs) = open_append_log::<R>(&path).unwrap();
        assert_eq!(recs, vec![(1, R { a: 1 }), (3, R { a: 2 })]);
        log.append(&R { a: 3 }).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n\n{\"a\":2}\n{\"a\":3}\n"
        );
    }

    #[test]
    fn corrupt_middle_line_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        std::fs::write(&path, "{\"a\":1}\n{\"a\n{\"a\":2}\n").unwrap();
        let err = open_append_log::<R>(&path).unwrap_err();
        assert!(matches!(err, Error::JsonLine { line: 2, .. }), "{err}");
    }
}
