//! The vote journal: an append-only JSON Lines file (`votes.jsonl`), fsynced before a vote is
//! confirmed, replayed on start and by the exporter.
//!
//! Writes go through one writer thread that does *group commit*: every line waiting when it
//! wakes up is written, then one `fdatasync` covers them all, then each waiting request is
//! told its line is durable. Under load that turns N fsyncs into one without giving up
//! "durable before confirmed".

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// File of the journal inside the session directory.
pub const JOURNAL_FILE: &str = "votes.jsonl";

/// One of the two responses of a pair, in file terms (`response_a` / `response_b`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Response {
    /// `response_a`.
    A,
    /// `response_b`.
    B,
}

impl Response {
    /// The other response.
    pub fn other(self) -> Self {
        match self {
            Response::A => Response::B,
            Response::B => Response::A,
        }
    }
}

/// A judgement in file terms: `response_a` better, `response_b` better, or a tie.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Choice {
    /// `response_a` is better.
    A,
    /// `response_b` is better.
    B,
    /// Equally good.
    Tie,
}

impl Choice {
    /// Index 0, 1, 2 for A, B, tie (the category order of the agreement statistics).
    pub fn index(self) -> usize {
        match self {
            Choice::A => 0,
            Choice::B => 1,
            Choice::Tie => 2,
        }
    }

    /// The winning response, if not a tie.
    pub fn winner(self) -> Option<Response> {
        match self {
            Choice::A => Some(Response::A),
            Choice::B => Some(Response::B),
            Choice::Tie => None,
        }
    }
}

/// Optional per-criterion judgements, in file terms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Criteria {
    /// Helpfulness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helpfulness: Option<Choice>,
    /// Harmlessness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harmlessness: Option<Choice>,
    /// Fluency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fluency: Option<Choice>,
}

/// A vote as stored in the journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteRecord {
    /// Position in the journal (1, 2, 3, … over votes and undos together).
    pub seq: u64,
    /// When the server accepted it (ms since the Unix epoch).
    pub at_ms: u64,
    /// Who voted.
    pub annotator: String,
    /// Which pair.
    pub pair_id: String,
    /// Client-chosen id making retries idempotent, if sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vote_id: Option<String>,
    /// Which response was shown on the left (screen side "A").
    pub left: Response,
    /// The overall judgement, in file terms.
    pub choice: Choice,
    /// Per-criterion judgements, in file terms.
    #[serde(default)]
    pub criteria: Criteria,
    /// Free-text comment (may be empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    /// When the pair was served to this annotator, if the server still knew (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_ms: Option<u64>,
}

impl VoteRecord {
    /// `true` when the annotator picked the response shown on the left.
    pub fn picked_left(&self) -> bool {
        self.choice.winner() == Some(self.left)
    }
}

/// The withdrawal of an annotator's last vote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UndoRecord {
    /// Position in the journal.
    pub seq: u64,
    /// When (ms since the Unix epoch).
    pub at_ms: u64,
    /// Whose vote.
    pub annotator: String,
    /// The `seq` of the vote withdrawn.
    pub undoes: u64,
    /// The pair of that vote.
    pub pair_id: String,
}

/// One line of the journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum JournalRecord {
    /// A vote.
    Vote(VoteRecord),
    /// An undo.
    Undo(UndoRecord),
}

impl JournalRecord {
    /// The record's `seq`.
    pub fn seq(&self) -> u64 {
        match self {
            JournalRecord::Vote(v) => v.seq,
            JournalRecord::Undo(u) => u.seq,
        }
    }
}

/// What [`read_journal`] found.
#[derive(Debug, Default)]
pub struct JournalContents {
    /// Records with their 1-based line numbers, in file order.
    pub records: Vec<(u64, JournalRecord)>,
    /// Bytes of complete, valid lines (where the next append must start).
    pub valid_len: u64,
    /// Bytes after the last newline: a write cut short by a crash. Such a line was never
    /// confirmed (confirmation waits for the fsync of the whole line), so it is dropped.
    pub torn_tail: u64,
}

/// Reads a journal. An absent file is an empty journal.
///
/// # Errors
/// [`Error::BadLine`] naming the file and line for a complete line that is not a valid record
/// or whose `seq` does not increase; I/O errors.
pub fn read_journal(path: &Path) -> Result<JournalContents> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(JournalContents::default()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut out = JournalContents::default();
    let mut start = 0usize;
    let mut line_no = 0u64;
    let mut last_seq = 0u64;
    while let Some(rel) = bytes[start..].iter().position(|&b| b == b'\n') {
        let end = start + rel;
        line_no += 1;
        let line = &bytes[start..end];
        start = end + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let bad = |message: String| Error::BadLine {
            file: path.to_path_buf(),
            line: line_no,
            message,
        };
        let rec: JournalRecord = serde_json::from_slice(line).map_err(|e| {
            bad(format!(
                "{e}; expected a journal record {{\"type\": \"vote\"|\"undo\", \"seq\", ...}}"
            ))
        })?;
        if rec.seq() <= last_seq {
            return Err(bad(format!(
                "seq {} does not follow seq {last_seq}; the journal must only grow",
                rec.seq()
            )));
        }
        last_seq = rec.seq();
        out.records.push((line_no, rec));
    }
    out.valid_len = start as u64;
    out.torn_tail = (bytes.len() - start) as u64;
    Ok(out)
}

type Ack = tokio::sync::oneshot::Sender<std::result::Result<(), String>>;

struct Job {
    line: Vec<u8>,
    ack: Ack,
}

/// Appends lines to the journal from a dedicated thread with group commit.
///
/// Lines are written in the order [`append`](Self::append) is called; callers that need the
/// file order to match their own order call it while holding their lock.
#[derive(Debug)]
pub struct JournalWriter {
    tx: mpsc::Sender<Job>,
    broken: Arc<AtomicBool>,
    path: PathBuf,
}

/// Statistics of a writer thread, for logs and tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct CommitStats {
    /// Lines written.
    pub lines: u64,
    /// fsyncs done (each covering one or more lines).
    pub syncs: u64,
}

impl JournalWriter {
    /// Opens `path` for appending after truncating it to `valid_len` (dropping a torn tail),
    /// takes an exclusive lock on it (so two servers cannot share a directory), and starts
    /// the writer thread.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be opened, truncated or locked (the message says that
    /// another server may hold it).
    pub fn open(
        path: &Path,
        valid_len: u64,
    ) -> Result<(Self, std::thread::JoinHandle<CommitStats>)> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        file.try_lock().map_err(|e| {
            Error::io(
                path,
                std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    format!(
                        "cannot lock the journal ({e}); is another server using this directory?"
                    ),
                ),
            )
        })?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len != valid_len {
            tracing::warn!(
                path = %path.display(),
                dropped_bytes = len - valid_len,
                "dropping a torn (unconfirmed) last line of the journal"
            );
            file.set_len(valid_len).map_err(|e| Error::io(path, e))?;
            file.sync_all().map_err(|e| Error::io(path, e))?;
        }
        if let Some(dir) = path.parent() {
            crate::util::sync_dir(dir);
        }
        let (tx, rx) = mpsc::channel::<Job>();
        let broken = Arc::new(AtomicBool::new(false));
        let flag = broken.clone();
        let p = path.to_path_buf();
        let handle = std::thread::Builder::new()
            .name("vote-journal".into())
            .spawn(move || writer_loop(file, &p, rx, &flag))
            .map_err(|e| Error::io(path, e))?;
        Ok((
            JournalWriter {
                tx,
                broken,
                path: path.to_path_buf(),
            },
            handle,
        ))
    }

    /// Queues `record` and returns a receiver that resolves once the line is on disk (or with
    /// the reason it is not).
    pub fn append(
        &self,
        record: &JournalRecord,
    ) -> tokio::sync::oneshot::Receiver<std::result::Result<(), String>> {
        let (ack, rx) = tokio::sync::oneshot::channel();
        let mut line = serde_json::to_vec(record).expect("journal records serialise");
        line.push(b'\n');
        if self.is_broken() {
            let _ = ack.send(Err(format!(
                "journal {} failed earlier",
                self.path.display()
            )));
        } else if let Err(mpsc::SendError(job)) = self.tx.send(Job { line, ack }) {
            let _ = job
                .ack
                .send(Err(format!("journal {} is closed", self.path.display())));
        }
        rx
    }

    /// Returns a receiver that resolves once every line queued before this call is on disk.
    pub fn barrier(&self) -> tokio::sync::oneshot::Receiver<std::result::Result<(), String>> {
        let (ack, rx) = tokio::sync::oneshot::channel();
        if self.is_broken() {
            let _ = ack.send(Err(format!(
                "journal {} failed earlier",
                self.path.display()
            )));
        } else if let Err(mpsc::SendError(job)) = self.tx.send(Job {
            line: Vec::new(),
            ack,
        }) {
            let _ = job
                .ack
                .send(Err(format!("journal {} is closed", self.path.display())));
        }
        rx
    }

    /// `true` once a write or fsync has failed: nothing more is written.
    pub fn is_broken(&self) -> bool {
        self.broken.load(Ordering::SeqCst)
    }
}

fn writer_loop(
    mut file: File,
    path: &Path,
    rx: mpsc::Receiver<Job>,
    broken: &AtomicBool,
) -> CommitStats {
    use std::io::Seek as _;
    let mut stats = CommitStats::default();
    if let Err(e) = file.seek(std::io::SeekFrom::End(0)) {
        tracing::error!(path = %path.display(), "journal seek failed: {e}");
        broken.store(true, Ordering::SeqCst);
    }
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < 4096 {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let result = if broken.load(Ordering::SeqCst) {
            Err(format!("journal {} failed earlier", path.display()))
        } else {
            let mut buf = Vec::with_capacity(batch.iter().map(|j| j.line.len()).sum());
            for j in &batch {
                buf.extend_from_slice(&j.line);
            }
            // A batch of barriers only has nothing to write: earlier batches were synced
            // before their acknowledgements were sent.
            let sync = |f: &mut File| {
                if buf.is_empty() {
                    Ok(())
                } else {
                    f.sync_data()
                }
            };
            file.write_all(&buf)
                .and_then(|()| sync(&mut file))
                .map_err(|e| {
                    broken.store(true, Ordering::SeqCst);
                    tracing::error!(path = %path.display(), "journal write failed: {e}");
                    format!("writing journal {}: {e}", path.display())
                })
        };
        if result.is_ok() {
            let lines = batch.iter().filter(|j| !j.line.is_empty()).count() as u64;
            stats.lines += lines;
            stats.syncs += u64::from(lines > 0);
        }
        for j in batch {
            let _ = j.ack.send(result.clone());
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vote(seq: u64, who: &str, pair: &str) -> JournalRecord {
        JournalRecord::Vote(VoteRecord {
            seq,
            at_ms: 5,
            annotator: who.into(),
            pair_id: pair.into(),
            vote_id: None,
            left: Response::B,
            choice: Choice::B,
            criteria: Criteria {
                helpfulness: Some(Choice::Tie),
                ..Criteria::default()
            },
            comment: String::new(),
            served_ms: Some(1),
        })
    }

    #[test]
    fn record_format_is_stable() {
        let line = serde_json::to_string(&vote(3, "al", "p1")).unwrap();
        assert_eq!(
            line,
            r#"{"type":"vote","seq":3,"at_ms":5,"annotator":"al","pair_id":"p1","left":"b","choice":"b","criteria":{"helpfulness":"tie"},"served_ms":1}"#
        );
        let undo = JournalRecord::Undo(UndoRecord {
            seq: 4,
            at_ms: 6,
            annotator: "al".into(),
            undoes: 3,
            pair_id: "p1".into(),
        });
        let line = serde_json::to_string(&undo).unwrap();
        assert_eq!(
            line,
            r#"{"type":"undo","seq":4,"at_ms":6,"annotator":"al","undoes":3,"pair_id":"p1"}"#
        );
        assert!(matches!(vote(1, "a", "p"), JournalRecord::Vote(v) if v.picked_left()));
    }

    #[tokio::test]
    async fn writes_are_durable_and_torn_tails_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        {
            let (w, handle) = JournalWriter::open(&path, 0).unwrap();
            let rxs: Vec<_> = (1..=50)
                .map(|i| w.append(&vote(i, "a", &format!("p{i}"))))
                .collect();
            for rx in rxs {
                rx.await.unwrap().unwrap();
            }
            drop(w);
            let stats = handle.join().unwrap();
            assert_eq!(stats.lines, 50);
            assert!(stats.syncs >= 1 && stats.syncs <= 50);
        }
        // A crash in the middle of a write leaves a partial line.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"type":"vote","seq":51,"at"#).unwrap();
        drop(f);
        let c = read_journal(&path).unwrap();
        assert_eq!(c.records.len(), 50);
        assert!(c.torn_tail > 0);
        let (w, handle) = JournalWriter::open(&path, c.valid_len).unwrap();
        w.append(&vote(51, "a", "p51")).await.unwrap().unwrap();
        drop(w);
        handle.join().unwrap();
        let c = read_journal(&path).unwrap();
        assert_eq!(c.records.len(), 51);
        assert_eq!(c.torn_tail, 0);
    }

    #[test]
    fn a_bad_complete_line_is_an_error_with_its_line_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let good = serde_json::to_string(&vote(1, "a", "p")).unwrap();
        std::fs::write(&path, format!("{good}\n{{\"type\":\"nope\"}}\n")).unwrap();
        let err = read_journal(&path).unwrap_err().to_string();
        assert!(err.contains("votes.jsonl:2:"), "{err}");
        std::fs::write(&path, format!("{good}\n{good}\n")).unwrap();
        let err = read_journal(&path).unwrap_err().to_string();
        assert!(err.contains(":2:") && err.contains("seq 1"), "{err}");
    }

    #[test]
    fn a_second_writer_cannot_lock_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let (w, h) = JournalWriter::open(&path, 0).unwrap();
        let err = JournalWriter::open(&path, 0).unwrap_err().to_string();
        assert!(err.contains("another server"), "{err}");
        drop(w);
        h.join().unwrap();
    }
}
