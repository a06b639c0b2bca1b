//! Preference-pair data for RLHF (ChatGLM-RLHF, arXiv 2404.00934, §A.2): one Arrow/Parquet
//! schema for comparisons, streaming importers, the paper's cleaning and prompt-quality
//! filtering, Table-2 statistics and deterministic splits.
//!
//! # Map
//!
//! | step | items |
//! |---|---|
//! | schema | [`Comparison`], [`Message`], [`comparison_schema`], [`ComparisonBatchBuilder`] |
//! | storage | [`ComparisonWriter`] (zstd, atomic), [`ComparisonReader`], [`read_comparisons`] |
//! | import | [`import_hh_rlhf`], [`import_oasst`], [`import_trl`], [`import_alignbench`], [`export_trl`]; every import returns an [`ImportReport`] |
//! | cleaning | [`clean_comparisons`] (empty, ties, duplicates, cyclic preferences) → [`CleanReport`] |
//! | prompt quality | [`PromptClassifier`], [`RuleBasedClassifier`], [`filter_prompts`] |
//! | statistics | [`compute_stats`], [`StatsAccumulator`], [`length_diff_histogram_svg`] |
//! | splits | [`SplitConfig`], [`assign_splits`] |
//! | lengths | [`TokenCounter`], [`CharCounter`], [`fill_token_lengths`] |
//!
//! Column-by-column documentation of the Parquet layout is in `docs/data-format.md`.
//!
//! # Example
//!
//! ```no_run
//! use rlhf_prefdata::{
//!     CharCounter, CleanOptions, ComparisonWriter, ImportOptions, SplitConfig, assign_splits,
//!     clean_comparisons, fill_token_lengths, import_hh_rlhf,
//! };
//!
//! let mut pairs = Vec::new();
//! let mut report = import_hh_rlhf("pairs.jsonl.gz", &ImportOptions::default(), &mut pairs)?;
//! let (mut pairs, cleaned) = clean_comparisons(pairs, &CleanOptions::default());
//! report.absorb_clean(&cleaned);
//! assign_splits(&mut pairs, &SplitConfig::default())?;
//! let mut writer = ComparisonWriter::create("hh.parquet")?;
//! for mut c in pairs {
//!     fill_token_lengths(&mut c, &CharCounter);
//!     writer.write(&c)?;
//! }
//! writer.finish()?;
//! eprintln!("{}", report.to_markdown());
//! # Ok::<(), rlhf_prefdata::Error>(())
//! ```
#![warn(missing_docs)]

mod clean;
mod columns;
mod error;
mod histogram;
mod import;
mod normalize;
mod parquet;
mod quality;
mod report;
mod schema;
mod sink;
mod split;
mod stats;
mod tokens;

pub use crate::clean::{CleanOptions, clean_comparisons};
pub use crate::columns::{ComparisonBatchBuilder, comparisons_from_batch, comparisons_to_batch};
pub use crate::error::{Error, Result};
pub use crate::histogram::{HistogramOptions, length_diff_histogram_svg};
pub use crate::import::{
    ImportOptions, PromptRecord, RankedPairs, TrlFormat, export_trl, import_alignbench,
    import_hh_rlhf, import_oasst, import_trl,
};
pub use crate::normalize::{context_key, is_blank, normalize_text, normalized_eq, stable_hash};
pub use crate::parquet::{
    ComparisonIter, ComparisonReader, ComparisonWriter, WriteSummary, WriterOptions,
    read_comparisons, write_comparisons,
};
pub use crate::quality::{
    HasPrompt, PromptClassifier, PromptFeatures, QualityReport, RuleBasedClassifier, RuleConfig,
    filter_prompts, label_prompt_quality,
};
pub use crate::report::{CleanReport, DropReason, ImportReport, Issue};
pub use crate::schema::{
    Comparison, CriterionLabel, Message, PromptQuality, Role, SCHEMA_VERSION, SCHEMA_VERSION_KEY,
    Split, check_schema, col, comparison_schema,
};
pub use crate::sink::ComparisonSink;
pub use crate::split::{SplitConfig, SplitCounts, assign_splits};
pub use crate::stats::{DatasetStats, NO_CATEGORY, StatsAccumulator, StatsRow, compute_stats};
pub use crate::tokens::{CharCounter, TokenCounter, fill_token_lengths};
