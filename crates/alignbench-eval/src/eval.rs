//! Glue between the pieces: answers → judge jobs, and judge outcomes → judged items.

use std::collections::HashMap;

use crate::answers::AnswerRecord;
use crate::dataset::{BenchConfig, Question};
use crate::error::{Error, Result};
use crate::judge::{JudgeJob, JudgeOutcome};
use crate::prompt::JudgeTemplate;
use crate::score::{JudgedItem, ScoreMode, Summary, aggregate};

/// One judge job per answered question, in question order, keyed by the question id.
/// Questions without an answer are skipped (and logged).
///
/// # Errors
/// Prompt rendering errors (unknown subcategory or dimension), or
/// [`Error::UnknownQuestion`] for an answer to a question not in `questions`.
pub fn judge_jobs<'a>(
    questions: &[Question],
    answers: impl IntoIterator<Item = &'a AnswerRecord>,
    template: &JudgeTemplate,
    config: &BenchConfig,
) -> Result<Vec<JudgeJob>> {
    let mut by_id: HashMap<u32, &str> = HashMap::new();
    for record in answers {
        by_id.insert(record.question_id, &record.answer);
    }
    for &id in by_id.keys() {
        if !questions.iter().any(|q| q.question_id == id) {
            return Err(Error::UnknownQuestion(id));
        }
    }
    let mut jobs = Vec::with_capacity(by_id.len());
    for question in questions {
        if let Some(answer) = by_id.get(&question.question_id) {
            jobs.push(JudgeJob {
                key: question.question_id.to_string(),
                prompt: template.render(question, answer, config)?,
            });
        }
    }
    let unanswered = questions.len() - jobs.len();
    if unanswered > 0 {
        tracing::warn!(unanswered, "questions without an answer are not judged");
    }
    Ok(jobs)
}

/// [`judged_items`] and their [`aggregate`] [`Summary`], with the failed judgments counted in
/// [`Summary::judge_errors`].
///
/// # Errors
/// [`Error::NothingJudged`] when no outcome succeeded (the judge failed on every job, or there
/// was no job), naming the first failure; otherwise as [`judged_items`] and [`aggregate`].
pub fn judged_summary(
    questions: &[Question],
    outcomes: &[JudgeOutcome],
    mode: ScoreMode,
) -> Result<(Vec<JudgedItem>, Summary)> {
    let items = judged_items(outcomes)?;
    let failed: Vec<&JudgeOutcome> = outcomes.iter().filter(|o| o.result.is_err()).collect();
    if items.is_empty() {
        return Err(Error::NothingJudged {
            jobs: outcomes.len(),
            failed: failed.len(),
            first_failure: failed.first().and_then(|o| {
                let error = o.result.as_ref().err()?;
                Some((o.key.clone(), error.to_string()))
            }),
        });
    }
    if !failed.is_empty() {
        tracing::warn!(
            failed = failed.len(),
            jobs = outcomes.len(),
            "judgments failed; their questions are left out (rerun to retry them)"
        );
    }
    let mut summary = aggregate(questions, &items, mode)?;
    summary.judge_errors = failed.len();
    Ok((items, summary))
}

/// The judged items of successful outcomes whose key is a question id (as made by
/// [`judge_jobs`]); failed outcomes are skipped and logged.
///
/// # Errors
/// [`Error::InvalidArgument`] for a key that is not a question id.
pub fn judged_items(outcomes: &[JudgeOutcome]) -> Result<Vec<JudgedItem>> {
    let mut items = Vec::with_capacity(outcomes.len());
    for outcome in outcomes {
        let question_id: u32 = outcome.key.parse().map_err(|_| {
            Error::InvalidArgument(format!(
                "judge job key {:?} is not a question id",
                outcome.key
            ))
        })?;
        match &outcome.result {
            Ok(text) => items.push(JudgedItem::new(question_id, &text.parsed)),
            Err(error) => tracing::warn!(question_id, %error, "no judgment"),
        }
    }
    Ok(items)
}
