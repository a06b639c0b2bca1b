//! Accounting for every record an import or a cleaning pass keeps or drops.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::quality::QualityReport;

/// Why a record or a comparison was not kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DropReason {
    /// The line or array element is not valid JSON.
    InvalidJson,
    /// A required field is absent.
    MissingField,
    /// A field has the wrong type or an unusable value.
    InvalidValue,
    /// The line is not valid UTF-8.
    InvalidUtf8,
    /// The gzip stream ends early; the rest of the file is lost.
    TruncatedGzip,
    /// The gzip stream is corrupt (bad header, CRC or deflate data); the rest of the file is lost.
    CorruptGzip,
    /// A dialogue transcript cannot be split into turns (HH-RLHF format).
    MalformedDialogue,
    /// A ranked record has fewer than two replies, so it yields no pair.
    TooFewResponses,
    /// The prompt is empty after normalisation.
    EmptyPrompt,
    /// A reply is empty after normalisation.
    EmptyResponse,
    /// Chosen and rejected are identical after normalisation.
    Tie,
    /// The comparison lies on a cycle of the preference graph of its prompt.
    Cycle,
    /// Exact repeat of an earlier comparison (same context, chosen and rejected).
    Duplicate,
    /// The prompt-quality classifier did not rate the prompt clear and answerable.
    LowQualityPrompt,
}

impl DropReason {
    /// The snake-case name used in JSON and Markdown.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::InvalidJson => "invalid_json",
            DropReason::MissingField => "missing_field",
            DropReason::InvalidValue => "invalid_value",
            DropReason::InvalidUtf8 => "invalid_utf8",
            DropReason::TruncatedGzip => "truncated_gzip",
            DropReason::CorruptGzip => "corrupt_gzip",
            DropReason::MalformedDialogue => "malformed_dialogue",
            DropReason::TooFewResponses => "too_few_responses",
            DropReason::EmptyPrompt => "empty_prompt",
            DropReason::EmptyResponse => "empty_response",
            DropReason::Tie => "tie",
            DropReason::Cycle => "cycle",
            DropReason::Duplicate => "duplicate",
            DropReason::LowQualityPrompt => "low_quality_prompt",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One dropped record, located in its input file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    /// Input file.
    pub file: String,
    /// 1-based line where the record starts.
    pub line: u64,
    /// Why it was dropped.
    pub reason: DropReason,
    /// Details.
    pub message: String,
}

/// Outcome of one import: what was read, kept and dropped, and why.
///
/// Every input record is accounted for: `records` is the number of records read, `kept` the
/// number of comparisons (or prompts) handed on, and `dropped` counts, per reason, the records
/// or generated pairs that were not. `issues` lists the first [`ImportOptions::max_issues`]
/// located problems (file and line); `issues_omitted` counts the rest.
///
/// [`ImportOptions::max_issues`]: crate::ImportOptions::max_issues
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportReport {
    /// Name of the source (`hh-rlhf`, `oasst1-zh`, ...).
    pub source: String,
    /// Files read.
    pub files: Vec<String>,
    /// Input records (lines or array elements) read, good or bad.
    pub records: u64,
    /// Comparisons generated from the good records, before dropping ties etc.
    pub generated: u64,
    /// Comparisons (or prompts) handed to the sink.
    pub kept: u64,
    /// Drop counts per reason.
    pub dropped: BTreeMap<DropReason, u64>,
    /// The first located problems.
    pub issues: Vec<Issue>,
    /// Problems not listed in `issues`.
    pub issues_omitted: u64,
}

impl ImportReport {
    /// An empty report for `source`.
    pub fn new(source: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            ..Self::default()
        }
    }

    /// Total dropped, all reasons together.
    pub fn total_dropped(&self) -> u64 {
        self.dropped.values().sum()
    }

    /// Drop count for one reason.
    pub fn dropped_for(&self, reason: DropReason) -> u64 {
        self.dropped.get(&reason).copied().unwrap_or(0)
    }

    /// Counts one drop without a location (e.g. a tie found after parsing).
    pub fn count_drop(&mut self, reason: DropReason) {
        *self.dropped.entry(reason).or_default() += 1;
    }

    /// Counts one located drop and keeps its details if fewer than `max_issues` are listed.
    pub fn record_issue(&mut self, issue: Issue, max_issues: usize) {
        self.count_drop(issue.reason);
        if self.issues.len() < max_issues {
            self.issues.push(issue);
        } else {
            self.issues_omitted += 1;
        }
    }

    /// Adds another report's counts and issues to this one (e.g. several input files).
    pub fn merge(&mut self, other: ImportReport) {
        self.files.extend(other.files);
        self.records += other.records;
        self.generated += other.generated;
        self.kept += other.kept;
        for (r, n) in other.dropped {
            *self.dropped.entry(r).or_default() += n;
        }
        self.issues.extend(other.issues);
        self.issues_omitted += other.issues_omitted;
    }

    /// Folds a cleaning pass run on this import's output into the report: its drops are added
    /// and `kept` becomes the number of comparisons that survived cleaning.
    pub fn absorb_clean(&mut self, clean: &CleanReport) {
        for (r, n) in &clean.dropped {
            *self.dropped.entry(*r).or_default() += n;
        }
        self.kept = clean.kept;
    }

    /// Folds a prompt-quality filter run on this import's output into the report: the
    /// prompts it removed are counted as `low_quality_prompt` and `kept` becomes its output.
    pub fn absorb_quality(&mut self, quality: &QualityReport) {
        let removed = quality.input.saturating_sub(quality.kept);
        if removed > 0 {
            *self
                .dropped
                .entry(DropReason::LowQualityPrompt)
                .or_default() += removed;
        }
        self.kept = quality.kept;
    }

    /// Pretty JSON.
    ///
    /// # Errors
    /// Never in practice; serialisation of this type cannot fail.
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Checks that the import kept something.
    ///
    /// # Errors
    /// [`Error::NothingKept`] when records were read but no comparison (or prompt) was kept,
    /// naming the files, the number of records and the three most frequent drop reasons with
    /// their first located example; with `strict`, [`Error::EmptyInput`] when no record was
    /// read at all.
    pub fn ensure_kept(&self, strict: bool) -> Result<()> {
        if self.records == 0 {
            if strict {
                return Err(Error::EmptyInput {
                    file: self.files.join(", ").into(),
                });
            }
            return Ok(());
        }
        if self.kept > 0 {
            return Ok(());
        }
        let mut reasons: Vec<(DropReason, u64)> =
            self.dropped.iter().map(|(r, n)| (*r, *n)).collect();
        reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut why: Vec<String> = reasons
            .iter()
            .take(3)
            .map(
                |(reason, n)| match self.issues.iter().find(|i| i.reason == *reason) {
                    Some(i) => format!("{n} {reason} (first: line {}: {})", i.line, i.message),
                    None => format!("{n} {reason}"),
                },
            )
            .collect();
        if reasons.len() > 3 {
            why.push(format!("{} more reasons", reasons.len() - 3));
        }
        if why.is_empty() {
            why.push("nothing generated".into());
        }
        Err(Error::NothingKept {
            files: self.files.join(", "),
            records: self.records,
            why: why.join(", "),
        })
    }

    /// A Markdown summary: totals, a per-reason table and the listed issues.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "## Import report: {}\n", self.source);
        if !self.files.is_empty() {
            let files: Vec<String> = self.files.iter().map(|f| format!("`{f}`")).collect();
            let _ = writeln!(s, "Files: {}\n", files.join(", "));
        }
        let _ = writeln!(s, "| records read | pairs generated | kept | dropped |");
        let _ = writeln!(s, "|---:|---:|---:|---:|");
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |\n",
            self.records,
            self.generated,
            self.kept,
            self.total_dropped()
        );
        reasons_table(&mut s, &self.dropped);
        if !self.issues.is_empty() {
            let _ = writeln!(s, "\n### Issues\n");
            for i in &self.issues {
                let _ = writeln!(
                    s,
                    "- `{}:{}` {}: {}",
                    i.file,
                    i.line,
                    i.reason,
                    i.message.replace('\n', " ")
                );
            }
            if self.issues_omitted > 0 {
                let _ = writeln!(s, "- … and {} more", self.issues_omitted);
            }
        }
        s
    }
}

fn reasons_table(s: &mut String, dropped: &BTreeMap<DropReason, u64>) {
    if dropped.is_empty() {
        let _ = writeln!(s, "Nothing dropped.");
        return;
    }
    let _ = writeln!(s, "| reason | count |");
    let _ = writeln!(s, "|---|---:|");
    for (r, n) in dropped {
        let _ = writeln!(s, "| {r} | {n} |");
    }
}

/// Outcome of a cleaning pass ([`clean_comparisons`](crate::clean_comparisons)).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CleanReport {
    /// Comparisons in.
    pub input: u64,
    /// Comparisons out.
    pub kept: u64,
    /// Drop counts per reason.
    pub dropped: BTreeMap<DropReason, u64>,
    /// Contexts (prompt + history) whose preference graph had at least one cycle.
    pub cyclic_contexts: u64,
    /// Strongly connected components of size > 1 found over all preference graphs.
    pub cyclic_components: u64,
    /// Ids of the first dropped comparisons per reason (at most `max_examples` each).
    pub examples: BTreeMap<DropReason, Vec<String>>,
}

impl CleanReport {
    /// Drop count for one reason.
    pub fn dropped_for(&self, reason: DropReason) -> u64 {
        self.dropped.get(&reason).copied().unwrap_or(0)
    }

    /// Total dropped.
    pub fn total_dropped(&self) -> u64 {
        self.dropped.values().sum()
    }

    pub(crate) fn drop_one(&mut self, reason: DropReason, id: &str, max_examples: usize) {
        *self.dropped.entry(reason).or_default() += 1;
        let ex = self.examples.entry(reason).or_default();
        if ex.len() < max_examples {
            ex.push(id.to_owned());
        }
    }

    /// Pretty JSON.
    ///
    /// # Errors
    /// Never in practice; serialisation of this type cannot fail.
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// A Markdown summary.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "## Cleaning report\n");
        let _ = writeln!(
            s,
            "| in | kept | dropped | cyclic contexts | cyclic components |"
        );
        let _ = writeln!(s, "|---:|---:|---:|---:|---:|");
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |\n",
            self.input,
            self.kept,
            self.total_dropped(),
            self.cyclic_contexts,
            self.cyclic_components
        );
        reasons_table(&mut s, &self.dropped);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_are_capped_but_counted() {
        let mut r = ImportReport::new("t");
        for line in 1..=5 {
            r.record_issue(
                Issue {
                    file: "f.jsonl".into(),
                    line,
                    reason: DropReason::InvalidJson,
                    message: "bad".into(),
                },
                3,
            );
        }
        r.count_drop(DropReason::Tie);
        assert_eq!(r.issues.len(), 3);
        assert_eq!(r.issues_omitted, 2);
        assert_eq!(r.dropped_for(DropReason::InvalidJson), 5);
        assert_eq!(r.total_dropped(), 6);
        let md = r.to_markdown();
        assert!(md.contains("| invalid_json | 5 |"), "{md}");
        assert!(md.contains("`f.jsonl:1` invalid_json: bad"), "{md}");
        assert!(md.contains("and 2 more"), "{md}");
    }

    #[test]
    fn nothing_kept_names_the_file_the_count_and_the_reasons() {
        let mut r = ImportReport::new("t");
        r.files.push("in.jsonl".into());
        assert!(
            r.ensure_kept(false).is_ok(),
            "an empty file is fine unless strict"
        );
        let err = r.ensure_kept(true).unwrap_err();
        assert!(matches!(err, Error::EmptyInput { .. }), "{err:?}");
        assert!(err.to_string().starts_with("in.jsonl: no records"), "{err}");
        r.records = 4;
        for (line, reason) in [
            (1, DropReason::MissingField),
            (2, DropReason::InvalidJson),
            (3, DropReason::MissingField),
        ] {
            let message = format!("problem {line}");
            let issue = Issue {
                file: "in.jsonl".into(),
                line,
                reason,
                message,
            };
            r.record_issue(issue, 10);
        }
        r.count_drop(DropReason::Tie);
        let err = r.ensure_kept(false).unwrap_err().to_string();
        assert_eq!(
            err,
            "in.jsonl: no pairs kept out of 4 records read; dropped: 2 missing_field (first: \
             line 1: problem 1), 1 invalid_json (first: line 2: problem 2), 1 tie"
        );
        r.kept = 1;
        assert!(r.ensure_kept(true).is_ok());
    }

    #[test]
    fn report_json_round_trips_with_snake_case_reasons() {
        let mut r = ImportReport::new("t");
        r.records = 3;
        r.kept = 2;
        r.count_drop(DropReason::MissingField);
        let json = r.to_json().unwrap();
        assert!(json.contains("\"missing_field\": 1"), "{json}");
        let back: ImportReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn merge_and_absorb_add_up() {
        let mut a = ImportReport::new("t");
        a.records = 2;
        a.kept = 2;
        let mut b = ImportReport::new("t");
        b.records = 3;
        b.kept = 1;
        b.count_drop(DropReason::InvalidUtf8);
        b.count_drop(DropReason::InvalidUtf8);
        a.merge(b);
        assert_eq!((a.records, a.kept), (5, 3));
        let mut c = CleanReport {
            input: 3,
            ..CleanReport::default()
        };
        c.drop_one(DropReason::Tie, "x", 10);
        c.kept = 2;
        a.absorb_clean(&c);
        assert_eq!(a.kept, 2);
        assert_eq!(a.dropped_for(DropReason::Tie), 1);
        assert_eq!(a.total_dropped(), 3);
        assert!(c.to_markdown().contains("| tie | 1 |"));
        let q = QualityReport {
            input: 2,
            kept: 1,
            ..QualityReport::default()
        };
        a.absorb_quality(&q);
        assert_eq!(a.kept, 1);
        assert_eq!(a.dropped_for(DropReason::LowQualityPrompt), 1);
    }
}
