//! Options shared by all importers and the bookkeeping every importer does per record.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::import::source::RecordError;
use crate::normalize::normalized_eq;
use crate::report::{DropReason, ImportReport, Issue};
use crate::schema::Comparison;
use crate::sink::ComparisonSink;

/// Options shared by every importer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportOptions {
    /// Fail on the first bad record instead of reporting and skipping it.
    ///
    /// Only *format* problems (invalid JSON or UTF-8, missing or mistyped fields, damaged gzip,
    /// unparsable dialogues) are errors in strict mode; ties are always counted and skipped.
    pub strict: bool,
    /// Value of the `source` column; `None` uses the importer's default (`hh-rlhf`, ...).
    pub source: Option<String>,
    /// Value of the `language` column; `None` uses the importer's default, if it has one.
    pub language: Option<String>,
    /// Value of the `category` column for every record that does not carry its own.
    pub category: Option<String>,
    /// How many located issues the report lists in full (the rest are only counted).
    pub max_issues: usize,
    /// Skip pairs whose replies are equal after normalisation (counted as `tie`).
    pub drop_ties: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            strict: false,
            source: None,
            language: None,
            category: None,
            max_issues: 100,
            drop_ties: true,
        }
    }
}

impl ImportOptions {
    /// Default options with [`strict`](Self::strict) set.
    pub fn strict() -> Self {
        Self {
            strict: true,
            ..Self::default()
        }
    }
}

/// Per-file import state: the report under construction plus the drop/keep helpers.
pub(crate) struct Ctx<'a> {
    pub(crate) path: &'a Path,
    pub(crate) opts: &'a ImportOptions,
    pub(crate) report: ImportReport,
    pub(crate) source: String,
    pub(crate) language: Option<String>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(
        path: &'a Path,
        opts: &'a ImportOptions,
        default_source: &str,
        default_language: Option<&str>,
    ) -> Self {
        let source = opts
            .source
            .clone()
            .unwrap_or_else(|| default_source.to_owned());
        let mut report = ImportReport::new(source.clone());
        report.files.push(path.display().to_string());
        Self {
            path,
            opts,
            report,
            source,
            language: opts
                .language
                .clone()
                .or_else(|| default_language.map(str::to_owned)),
        }
    }

    /// A bad record: an error in strict mode, otherwise reported (with location) and skipped.
    pub(crate) fn bad(&mut self, line: u64, err: RecordError) -> Result<()> {
        if self.opts.strict {
            return Err(Error::BadRecord {
                file: self.path.to_path_buf(),
                line,
                reason: err.reason,
                message: err.message,
            });
        }
        self.skip(line, err);
        Ok(())
    }

    /// A record or pair skipped for a content reason (never an error).
    pub(crate) fn skip(&mut self, line: u64, err: RecordError) {
        let shown = self.report.issues.len() < self.opts.max_issues;
        if shown {
            tracing::warn!(file = %self.path.display(), line, reason = %err.reason, "{}", err.message);
        } else {
            tracing::debug!(file = %self.path.display(), line, reason = %err.reason, "{}", err.message);
        }
        self.report.record_issue(
            Issue {
                file: self.path.display().to_string(),
                line,
                reason: err.reason,
                message: err.message,
            },
            self.opts.max_issues,
        );
    }

    /// Fills the shared columns, drops ties if asked, and hands the pair to the sink.
    pub(crate) fn emit(
        &mut self,
        line: u64,
        mut c: Comparison,
        sink: &mut (impl ComparisonSink + ?Sized),
    ) -> Result<()> {
        self.report.generated += 1;
        if self.opts.drop_ties && normalized_eq(&c.chosen, &c.rejected) {
            self.skip(
                line,
                RecordError::new(
                    DropReason::Tie,
                    format!(
                        "{}: chosen and rejected are identical after normalisation",
                        c.id
                    ),
                ),
            );
            return Ok(());
        }
        if c.language.is_none() {
            c.language.clone_from(&self.language);
        }
        if c.category.is_none() {
            c.category.clone_from(&self.opts.category);
        }
        sink.accept(c)?;
        self.report.kept += 1;
        Ok(())
    }

    pub(crate) fn finish(self) -> ImportReport {
        let r = self.report;
        tracing::info!(
            source = %r.source,
            records = r.records,
            kept = r.kept,
            dropped = r.total_dropped(),
            "import finished"
        );
        r
    }
}

/// Maps a serde_json error to a drop reason: syntax errors are invalid JSON, type errors are
/// invalid values.
pub(crate) fn json_error(e: &serde_json::Error) -> RecordError {
    use serde_json::error::Category;
    let reason = match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => DropReason::InvalidJson,
        Category::Data => {
            if e.to_string().starts_with("missing field") {
                DropReason::MissingField
            } else {
                DropReason::InvalidValue
            }
        }
    };
    RecordError::new(reason, e.to_string())
}

/// Unwraps a required field or reports it missing.
pub(crate) fn required<T>(v: Option<T>, name: &str) -> std::result::Result<T, RecordError> {
    v.ok_or_else(|| RecordError::new(DropReason::MissingField, format!("missing field `{name}`")))
}
