//! Pairwise human-preference collection (ChatGLM-RLHF, arXiv 2404.00934, §2.1): annotators
//! compare two responses to the same prompt on a local web page; their votes become
//! preference data in the `rlhf-prefdata` schema.
//!
//! # Map
//!
//! | step | items |
//! |---|---|
//! | candidate pairs | [`CandidatePair`], [`write_pairs`], [`read_pairs`], [`read_prompts`] (generation itself lives in the CLI, which links burn) |
//! | accounts | [`add_annotator`], [`Annotators`], [`Keys`] (tokens hashed at rest, signed sessions, CSRF) |
//! | serving | [`ServeConfig`], [`AnnotationServer`], [`serve_blocking`] |
//! | assignment | [`Assignment`]: N annotators per pair, nobody twice, reservations, undo |
//! | journal | [`JournalRecord`], [`JournalWriter`] (fsync before confirming, group commit), [`read_journal`] |
//! | export | [`export`], [`build_export`] → [`Comparison`](rlhf_prefdata::Comparison) rows + [`ExportReport`] |
//! | agreement | [`fleiss_kappa`], [`cohen_kappa`], [`agreement`], [`majority`] |
//!
//! A session directory holds `session.json` (which pairs file), `annotators.json` (names and
//! salted token hashes), `server.key` (HMAC key, mode 0600) and `votes.jsonl` (the journal).
//! `docs/annotation.md` documents the page, the guideline, the journal format and the
//! security model.
//!
//! # Example
//!
//! ```no_run
//! use rlhf_annotate::{ServeConfig, add_annotator, export, serve_blocking, ExportOptions};
//! use std::path::Path;
//!
//! let dir = Path::new("runs/annotation");
//! let token = add_annotator(dir, "alice", false)?;
//! eprintln!("alice's token: {token}");
//! serve_blocking(ServeConfig::new("pairs.parquet", dir), |info| eprintln!("open {}", info.url))?;
//! let report = export(dir, None, Path::new("prefs.parquet"), &ExportOptions::default())?;
//! eprintln!("{}", report.to_markdown());
//! # Ok::<(), rlhf_annotate::Error>(())
//! ```
#![warn(missing_docs)]

mod agreement;
mod auth;
mod error;
mod export;
mod journal;
mod pairs;
pub mod server;
mod session;
mod state;
mod util;

pub use crate::agreement::{AgreementReport, agreement, cohen_kappa, fleiss_kappa, majority};
pub use crate::auth::{
    ANNOTATORS_FILE, AnnotatorRecord, Annotators, KEY_FILE, Keys, MAX_NAME_LEN, add_annotator,
    valid_name,
};
pub use crate::error::{Error, Result};
pub use crate::export::{
    AnnotatorStats, CATEGORIES, ExportOptions, ExportReport, build_export, export,
};
pub use crate::journal::{
    Choice, CommitStats, Criteria, JOURNAL_FILE, JournalContents, JournalRecord, JournalWriter,
    Response, UndoRecord, VoteRecord, read_journal,
};
pub use crate::pairs::{
    CandidatePair, PromptInput, file_sha256, pair_col, pairs_schema, read_pairs, read_prompts,
    write_pairs,
};
pub use crate::server::{AnnotationServer, ServeConfig, ServerInfo, serve_blocking};
pub use crate::session::{SESSION_FILE, SessionInfo};
pub use crate::state::{Assignment, Progress, Refusal, VoteCheck, VoteContent};
