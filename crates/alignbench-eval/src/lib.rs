//! AlignBench evaluation for the RLHF workspace (SPEC Part B), plus the pairwise
//! win/tie/lose evaluation of ChatGLM-RLHF's human study.
//!
//! Crate map:
//!
//! | module | what |
//! | --- | --- |
//! | dataset | [`Question`], [`Category`], [`BenchConfig`], [`load_questions`], [`AlignBench`] |
//! | answers | [`AnswerStore`] (resumable JSONL), [`Decoding`], the [`Generator`] trait |
//! | prompt | [`JudgeTemplate`]: built-in wording or a user template file |
//! | judge | the [`Judge`] trait, [`judge_all`] (concurrency, cache, strict re-asks) |
//! | openai | [`OpenAiJudge`]: OpenAI-compatible client with retries |
//! | offline | [`ReferenceOverlapJudge`], [`ScoreFnJudge`] (not comparable with GPT-4) |
//! | cache | [`JudgmentCache`]: JSONL keyed by sha256(judge model, prompt) |
//! | parse | [`parse_judgment`]: AlignBench's `post_process` |
//! | score | [`aggregate`]: category, reasoning, language and overall means |
//! | report | [`ResultsTable`]: Markdown, JSON and SVG |
//! | pairwise | [`evaluate_pairwise`], rating sheets for human raters |
//! | pairwise_llm | [`evaluate_pairwise_llm`]: an LLM judge in both orders, [`pairwise_prompt`], [`parse_pairwise_verdict`] |
//! | generate | [`LocalModel`]: a `rlhf_core` causal LM answering prompts in batches ([`LocalModel::answer_questions`] into an [`AnswerStore`]) through an [`AnswerCodec`] |
//! | lengths | [`answer_lengths`], [`lengths_markdown`]: reply lengths per category (Table 6) |
//! | heldout | [`HeldOutSummary`]: the pipeline's held-out evaluation (RM and gold scores per category, win/tie/lose against SFT), [`gold_agreement`] |
//! | findings (public) | [`Finding`]: each of the paper's findings as a pre-declared test (verdict functions over plain numbers, `rlhf_util::stats`) |
//! | render | [`Report`]: Markdown with the paper's [`Finding`]s checked, SVG plots, one HTML page |
//!
//! The crate depends on `rlhf-core` (the model under test) and on no trainer: a reward model's
//! scores come in as numbers ([`ScoreFnJudge::reward_model`], [`evaluate_pairwise_scored`]).
//!
//! A typical run: load the benchmark, generate answers into an [`AnswerStore`], turn them
//! into [`JudgeJob`]s with [`judge_jobs`], run [`judge_all`] with a [`JudgmentCache`], then
//! [`judged_summary`] ([`judged_items`] → [`aggregate`], failing when nothing was judged) →
//! [`ResultsTable`].
//!
//! ```no_run
//! use rlhf_alignbench_eval::*;
//! # async fn run() -> Result<()> {
//! let bench = AlignBench::load("shared/data/alignbench".as_ref(), DataVersion::V1_0)?;
//! let answers = AnswerStore::open("runs/ppo/answers.jsonl".as_ref(), "ppo")?;
//! let jobs = judge_jobs(&bench.questions, answers.records(), &JudgeTemplate::builtin(), &bench.config)?;
//! let cache = JudgmentCache::open("runs/ppo/judgments.jsonl".as_ref())?;
//! let outcomes = judge_all(&ReferenceOverlapJudge, &jobs, Some(&cache), &JudgeAllOptions::default()).await;
//! let (_items, summary) = judged_summary(&bench.questions, &outcomes, ScoreMode::Compat)?;
//! let mut table = ResultsTable::default();
//! table.push("PPO", summary);
//! table.write_markdown("runs/report.md".as_ref())?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod answers;
mod cache;
mod dataset;
mod error;
mod eval;
pub mod findings;
mod generate;
mod heldout;
mod io;
mod judge;
mod lengths;
mod offline;
mod openai;
mod pairwise;
mod pairwise_llm;
mod parse;
mod prompt;
mod render;
mod report;
mod score;

pub use crate::answers::{AnswerRecord, AnswerStore, Decoding, Generator, generate_missing};
pub use crate::cache::{CachedJudgment, JudgmentCache, cache_key};
pub use crate::dataset::{
    AlignBench, BenchConfig, Category, DEFAULT_TEMPERATURE, DataVersion, Dimension, Evidence,
    Group, Question, load_questions,
};
pub use crate::error::{BoxError, Error, Result};
pub use crate::eval::{judge_jobs, judged_items, judged_summary};
pub use crate::findings::{FINDING_IDS, Finding, Verdict};
pub use crate::generate::{AnswerCodec, BatchDone, LocalModel, Reply, clip_left, sampling};
pub use crate::heldout::{
    BASELINE, CONTROL, HeldOutAnswer, HeldOutCell, HeldOutSummary, gold_agreement,
};
pub use crate::judge::{
    BoxedJudge, DynJudge, Judge, JudgeAllOptions, JudgeJob, JudgeOutcome, JudgedText, judge_all,
};
pub use crate::lengths::{
    LengthRow, LengthStat, ModelLengths, TokenCount, answer_lengths, lengths_markdown,
};
pub use crate::offline::{
    PromptPayload, ReferenceOverlapJudge, ScoreFn, ScoreFnJudge, bigram_f1, reward_to_score,
};
pub use crate::openai::{ApiKey, OpenAiJudge, OpenAiJudgeConfig, RetryPolicy};
pub use crate::pairwise::{
    CombineRule, ItemResult, Outcome, PairItem, PairwiseQuery, PairwiseReport, PairwiseTally,
    Preference, SHEET_HEADER, SheetTally, WinTieLoss, a_is_left, combine_orders, evaluate_pairwise,
    evaluate_pairwise_async, evaluate_pairwise_scored, rating_sheet_csv, read_rating_sheet,
    tabulate_rating_sheet, write_rating_sheet,
};
pub use crate::pairwise_llm::{
    JudgeFailure, LlmItemVerdicts, LlmPairwiseReport, OrderVerdict, PAIRWISE_INSTRUCTIONS,
    PositionStats, VerdictFailure, evaluate_pairwise_llm, pairwise_prompt, parse_pairwise_verdict,
};
pub use crate::parse::{
    FAILED_SCORE, OVERALL_KEY, ParsedJudgment, ScoreSource, extract_rating, find_rating_dict,
    parse_judgment,
};
pub use crate::prompt::{
    BUILTIN_TEMPLATE, JudgeTemplate, PromptFields, TemplateSyntax, format_dimensions,
};
pub use crate::render::{Report, findings_table, fmt3, markdown_to_html};
pub use crate::report::{COLUMNS, ModelResult, ReportRow, ResultsTable};
pub use crate::score::{
    CategoryScore, DimensionScore, JudgedItem, ScoreMode, Summary, aggregate, group_scores,
};
pub use rlhf_util::write_atomic;

/// Compiles the examples of the crate's README as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
