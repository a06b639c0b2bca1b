//! Aggregating per-question scores into category, group and overall scores (SPEC §B.8).
//!
//! `overall = (reasoning + language) / 2`, where `reasoning` is the plain mean of the Math and
//! Logi category means and `language` the plain mean of the six other category means. So each
//! reasoning category weighs 1/4 and each language category 1/12, whatever the counts.

use std::collections::HashMap;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::dataset::{Category, Group, Question};
use crate::error::{Error, Result};
use crate::parse::{FAILED_SCORE, ParsedJudgment};

/// How parse failures (score −1) enter the category means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreMode {
    /// As `show_result.py`: failures count as −1 in the means.
    #[default]
    Compat,
    /// Failures are dropped from the means (re-ask the judge first, see
    /// [`JudgeAllOptions::strict_reasks`](crate::JudgeAllOptions::strict_reasks)).
    Strict,
}

/// The judged score of one question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgedItem {
    /// The question id.
    pub question_id: u32,
    /// The parsed score, −1 on failure.
    pub score: f64,
    /// The parsed rating dictionary.
    pub rating: IndexMap<String, u64>,
}

impl JudgedItem {
    /// Builds an item from a parsed judgment.
    pub fn new(question_id: u32, parsed: &ParsedJudgment) -> Self {
        JudgedItem {
            question_id,
            score: parsed.score,
            rating: parsed.rating.clone(),
        }
    }

    /// Whether this is a parse failure.
    pub fn is_failure(&self) -> bool {
        self.score == FAILED_SCORE
    }
}

/// The mean score of one category.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CategoryScore {
    /// The category.
    pub category: Category,
    /// Mean over the counted items; `None` when none was counted (numpy would give NaN).
    pub mean: Option<f64>,
    /// Items counted in the mean.
    pub counted: usize,
    /// Parse failures among this category's items (counted in compat mode, dropped in strict).
    pub failures: usize,
}

/// The mean of one rating-dictionary key over non-failed judgments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DimensionScore {
    /// The key, e.g. `事实正确性` or `综合得分`.
    pub name: String,
    /// Mean value.
    pub mean: f64,
    /// Number of judgments that had this key.
    pub count: usize,
}

/// The scores of one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// `(reasoning + language) / 2` (总分).
    pub overall: Option<f64>,
    /// Mean of the Math and Logi category means (中文推理).
    pub reasoning: Option<f64>,
    /// Mean of the six language category means (中文语言).
    pub language: Option<f64>,
    /// One entry per category, in [`Category::ALL`] order.
    pub categories: Vec<CategoryScore>,
    /// Per rating key means (keys containing a comma skipped, failures skipped), in
    /// first-seen order.
    pub dimensions: Vec<DimensionScore>,
    /// Judged items after de-duplication by question id.
    pub judged: usize,
    /// Parse failures among them.
    pub failures: usize,
    /// Questions of the set with no judgment.
    pub missing: usize,
    /// Judgments that failed (judge, HTTP or transport errors); their questions are among
    /// `missing`. Set by [`judged_summary`](crate::judged_summary); 0 from [`aggregate`].
    #[serde(default)]
    pub judge_errors: usize,
    /// The mode used.
    pub mode: ScoreMode,
}

/// `reasoning`, `language` and `overall` from the category means (`None` propagates).
pub fn group_scores(
    mean_of: impl Fn(Category) -> Option<f64>,
) -> (Option<f64>, Option<f64>, Option<f64>) {
    let group_mean = |group: Group| -> Option<f64> {
        let cats = group.categories();
        let mut sum = 0.0;
        for &c in cats {
            sum += mean_of(c)?;
        }
        Some(sum / cats.len() as f64)
    };
    let reasoning = group_mean(Group::Reasoning);
    let language = group_mean(Group::Language);
    let overall = match (reasoning, language) {
        (Some(r), Some(l)) => Some((r + l) / 2.0),
        _ => None,
    };
    (reasoning, language, overall)
}

impl Summary {
    /// A summary from given category means (for example a published table row); categories
    /// not listed have no mean.
    pub fn from_category_means(means: &[(Category, f64)]) -> Self {
        let categories: Vec<CategoryScore> = Category::ALL
            .into_iter()
            .map(|category| CategoryScore {
                category,
                mean: means.iter().find(|(c, _)| *c == category).map(|&(_, m)| m),
                counted: 0,
                failures: 0,
            })
            .collect();
        let (reasoning, language, overall) =
            group_scores(|c| categories.iter().find(|s| s.category == c)?.mean);
        Summary {
            overall,
            reasoning,
            language,
            categories,
            dimensions: Vec::new(),
            judged: 0,
            failures: 0,
            missing: 0,
            judge_errors: 0,
            mode: ScoreMode::Compat,
        }
    }

    /// The mean of one category.
    pub fn category(&self, category: Category) -> Option<f64> {
        self.categories
            .iter()
            .find(|s| s.category == category)
            .and_then(|s| s.mean)
    }
}

/// Aggregates judged items of one model (SPEC §B.8).
///
/// The category of each item comes from `questions` (the question file), not from the item.
/// If a question id occurs more than once, the last item wins (AlignBench appends re-runs).
///
/// # Errors
/// [`Error::UnknownQuestion`] if an item's id is not in `questions`.
pub fn aggregate(questions: &[Question], items: &[JudgedItem], mode: ScoreMode) -> Result<Summary> {
    let category_of: HashMap<u32, Category> = questions
        .iter()
        .map(|q| (q.question_id, q.category))
        .collect();
    let mut latest: IndexMap<u32, &JudgedItem> = IndexMap::new();
    for item in items {
        if !category_of.contains_key(&item.question_id) {
            return Err(Error::UnknownQuestion(item.question_id));
        }
        if latest.insert(item.question_id, item).is_some() {
            tracing::warn!(
                question_id = item.question_id,
                "duplicate judgment, keeping the last"
            );
        }
    }

    let mut sums = [(0.0f64, 0usize, 0usize); 8];
    let mut dims: IndexMap<String, (f64, usize)> = IndexMap::new();
    let mut failures = 0;
    for item in latest.values() {
        let index = Category::ALL
            .iter()
            .position(|c| *c == category_of[&item.question_id])
            .expect("every category is in ALL");
        let slot = &mut sums[index];
        if item.is_failure() {
            failures += 1;
            slot.2 += 1;
            if mode == ScoreMode::Strict {
                continue;
            }
        } else {
            for (key, &value) in &item.rating {
                if key.contains(',') {
                    continue;
                }
                let entry = dims.entry(key.clone()).or_insert((0.0, 0));
                entry.0 += value as f64;
                entry.1 += 1;
            }
        }
        slot.0 += item.score;
        slot.1 += 1;
    }

    let categories: Vec<CategoryScore> = Category::ALL
        .into_iter()
        .zip(sums)
        .map(|(category, (sum, counted, failures))| CategoryScore {
            category,
            mean: (counted > 0).then(|| sum / counted as f64),
            counted,
            failures,
        })
        .collect();
    let (reasoning, language, overall) = group_scores(|c| {
        categories
            .iter()
            .find(|s| s.category == c)
            .and_then(|s| s.mean)
    });
    let judged = latest.len();
    Ok(Summary {
        overall,
        reasoning,
        language,
        categories,
        dimensions: dims
            .into_iter()
            .map(|(name, (sum, count))| DimensionScore {
                name,
                mean: sum / count as f64,
                count,
            })
            .collect(),
        judged,
        failures,
        missing: questions
            .iter()
            .filter(|q| !latest.contains_key(&q.question_id))
            .count(),
        judge_errors: 0,
        mode,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn question(id: u32, category: Category) -> Question {
        Question {
            question_id: id,
            category,
            subcategory: String::new(),
            question: String::new(),
            reference: String::new(),
            evidences: None,
        }
    }

    fn item(id: u32, score: f64, rating: &[(&str, u64)]) -> JudgedItem {
        JudgedItem {
            question_id: id,
            score,
            rating: rating.iter().map(|&(k, v)| (k.to_owned(), v)).collect(),
        }
    }

    #[test]
    fn compat_counts_failures_strict_drops_them() {
        let questions: Vec<_> = Category::ALL
            .iter()
            .enumerate()
            .flat_map(|(i, &c)| [question(2 * i as u32, c), question(2 * i as u32 + 1, c)])
            .collect();
        let mut items: Vec<_> = (0..16).map(|id| item(id, 6.0, &[("a", 6)])).collect();
        // Math (ids 12, 13): one failure.
        items[12] = item(12, -1.0, &[("a", 1)]);
        let compat = aggregate(&questions, &items, ScoreMode::Compat).unwrap();
        assert_eq!(compat.category(Category::Mathematics), Some(2.5));
        assert_eq!(compat.failures, 1);
        assert_eq!(compat.reasoning, Some(4.25));
        assert_eq!(compat.language, Some(6.0));
        assert_eq!(compat.overall, Some(5.125));
        let strict = aggregate(&questions, &items, ScoreMode::Strict).unwrap();
        assert_eq!(strict.category(Category::Mathematics), Some(6.0));
        assert_eq!(strict.overall, Some(6.0));
        assert_eq!(strict.failures, 1);
        // Dimension means skip failures in both modes.
        assert_eq!(strict.dimensions[0].count, 15);
        assert_eq!(compat.dimensions, strict.dimensions);
    }

    #[test]
    fn empty_category_propagates_none() {
        let questions = [
            question(1, Category::Mathematics),
            question(2, Category::Logic),
        ];
        let s = aggregate(&questions, &[item(1, 5.0, &[])], ScoreMode::Compat).unwrap();
        assert_eq!(s.category(Category::Mathematics), Some(5.0));
        assert_eq!(s.reasoning, None);
        assert_eq!(s.overall, None);
        assert_eq!(s.missing, 1);
    }

    #[test]
    fn duplicates_keep_last_and_unknown_ids_fail() {
        let questions = [question(1, Category::Writing)];
        let s = aggregate(
            &questions,
            &[item(1, 2.0, &[]), item(1, 8.0, &[])],
            ScoreMode::Compat,
        )
        .unwrap();
        assert_eq!(s.category(Category::Writing), Some(8.0));
        assert_eq!(s.judged, 1);
        let err = aggregate(&questions, &[item(9, 2.0, &[])], ScoreMode::Compat).unwrap_err();
        assert!(matches!(err, Error::UnknownQuestion(9)));
    }

    #[test]
    fn dimension_keys_with_commas_are_skipped() {
        let questions = [
            question(1, Category::Writing),
            question(2, Category::Writing),
        ];
        let items = [
            item(1, 7.0, &[("a': 'x', 'b", 3), ("综合得分", 7)]),
            item(2, 9.0, &[("综合得分", 9)]),
        ];
        let s = aggregate(&questions, &items, ScoreMode::Compat).unwrap();
        assert_eq!(s.dimensions.len(), 1);
        assert_eq!(s.dimensions[0].name, "综合得分");
        assert_eq!(s.dimensions[0].mean, 8.0);
    }
}
