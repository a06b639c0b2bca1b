//! Response lengths per model and category (ChatGLM-RLHF Table 6): characters always, tokens
//! when the caller can count them.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use serde::Serialize;

use crate::answers::AnswerRecord;
use crate::dataset::{Category, Question};
use crate::error::{BoxError, Error, Result};

/// Count, mean and median of some lengths.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LengthStat {
    /// How many.
    pub n: usize,
    /// Their mean.
    pub mean: f64,
    /// Their median (the mean of the middle two for an even count).
    pub median: f64,
}

impl LengthStat {
    /// The statistics of `values`; `None` when there is none.
    pub fn of(mut values: Vec<usize>) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        values.sort_unstable();
        let n = values.len();
        let mean = values.iter().sum::<usize>() as f64 / n as f64;
        let median = if n % 2 == 1 {
            values[n / 2] as f64
        } else {
            (values[n / 2 - 1] + values[n / 2]) as f64 / 2.0
        };
        Some(LengthStat { n, mean, median })
    }
}

/// One category's lengths.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LengthRow {
    /// The category label, or `overall`.
    pub category: String,
    /// Characters (Unicode scalar values).
    pub chars: Option<LengthStat>,
    /// Tokens, when they were counted.
    pub tokens: Option<LengthStat>,
}

/// One model's lengths.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelLengths {
    /// The model id.
    pub model: String,
    /// Its answers file.
    pub file: PathBuf,
    /// Per category (published column order), then `overall`.
    pub rows: Vec<LengthRow>,
}

/// A token counter for [`answer_lengths`].
pub type TokenCount<'a> = &'a dyn Fn(&str) -> std::result::Result<usize, BoxError>;

/// The lengths of one model's answers (`records`, read from `file`), per category of the
/// question answered and overall; tokens too when `count_tokens` is given.
///
/// # Errors
/// [`Error::UnknownQuestion`] for an answer to a question not in `questions`, [`Error::Codec`]
/// when counting tokens fails.
pub fn answer_lengths(
    model: &str,
    file: PathBuf,
    records: &[AnswerRecord],
    questions: &[Question],
    count_tokens: Option<TokenCount<'_>>,
) -> Result<ModelLengths> {
    let category: HashMap<u32, Category> = questions
        .iter()
        .map(|q| (q.question_id, q.category))
        .collect();
    // Column index of the category (usize::MAX = overall, last) → lengths.
    let mut chars: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut tokens: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for r in records {
        let c = category
            .get(&r.question_id)
            .ok_or(Error::UnknownQuestion(r.question_id))?;
        let col = Category::ALL.iter().position(|x| x == c).unwrap_or(0);
        for key in [col, usize::MAX] {
            chars.entry(key).or_default().push(r.answer.chars().count());
        }
        if let Some(count) = count_tokens {
            let n = count(&r.answer).map_err(Error::Codec)?;
            for key in [col, usize::MAX] {
                tokens.entry(key).or_default().push(n);
            }
        }
    }
    let rows = chars
        .into_iter()
        .map(|(col, v)| LengthRow {
            category: if col == usize::MAX {
                "overall".to_owned()
            } else {
                Category::ALL[col].label().to_owned()
            },
            chars: LengthStat::of(v),
            tokens: tokens.remove(&col).and_then(LengthStat::of),
        })
        .collect();
    Ok(ModelLengths {
        model: model.to_owned(),
        file,
        rows,
    })
}

/// The lengths of several models as a Markdown table (one decimal; `–` where not counted).
pub fn lengths_markdown(models: &[ModelLengths]) -> String {
    let f = |s: Option<LengthStat>, pick: fn(LengthStat) -> f64| {
        s.map_or("–".to_owned(), |s| format!("{:.1}", pick(s)))
    };
    let mut md = String::from(
        "# Response lengths\n\n| model | category | n | mean chars | median chars | mean tokens | median tokens |\n|---|---|---:|---:|---:|---:|---:|\n",
    );
    for m in models {
        for r in &m.rows {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                m.model,
                r.category,
                r.chars.map_or(0, |s| s.n),
                f(r.chars, |s| s.mean),
                f(r.chars, |s| s.median),
                f(r.tokens, |s| s.mean),
                f(r.tokens, |s| s.median),
            ));
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answers::Decoding;

    fn question(id: u32, category: Category) -> Question {
        serde_json::from_value(serde_json::json!({
            "question_id": id,
            "category": category,
            "subcategory": "x",
            "question": "q",
            "reference": "r",
        }))
        .unwrap()
    }

    fn answer(id: u32, text: &str) -> AnswerRecord {
        AnswerRecord {
            question_id: id,
            model_id: "m".into(),
            answer: text.into(),
            decoding: Decoding::greedy(),
        }
    }

    #[test]
    fn stats_are_count_mean_and_median() {
        let s = LengthStat::of(vec![3, 1, 2, 10]).unwrap();
        assert_eq!((s.n, s.mean, s.median), (4, 4.0, 2.5));
        let s = LengthStat::of(vec![5, 1, 2]).unwrap();
        assert_eq!((s.n, s.median), (3, 2.0));
        assert!(LengthStat::of(vec![]).is_none());
    }

    #[test]
    fn lengths_per_category_then_overall() {
        let qs = [
            question(1, Category::ALL[0]),
            question(2, Category::ALL[0]),
            question(3, Category::ALL[2]),
        ];
        let recs = [
            answer(1, "ab"),
            answer(2, "abcd"),
            answer(3, "\u{4f60}\u{597d}"),
        ];
        let words = |t: &str| -> std::result::Result<usize, BoxError> { Ok(t.len()) };
        let m = answer_lengths("m", "a.jsonl".into(), &recs, &qs, Some(&words)).unwrap();
        let cats: Vec<&str> = m.rows.iter().map(|r| r.category.as_str()).collect();
        assert_eq!(
            cats,
            [
                Category::ALL[0].label(),
                Category::ALL[2].label(),
                "overall"
            ]
        );
        assert_eq!(m.rows[0].chars.unwrap().mean, 3.0);
        // Characters, not bytes; the counter saw bytes.
        assert_eq!(m.rows[1].chars.unwrap().mean, 2.0);
        assert_eq!(m.rows[1].tokens.unwrap().mean, 6.0);
        assert_eq!(m.rows[2].chars.unwrap().n, 3);
        let md = lengths_markdown(&[m]);
        assert!(
            md.contains("| m | overall | 3 | 2.7 | 2.0 | 4.0 | 4.0 |"),
            "{md}"
        );
        let none = answer_lengths("m", "a".into(), &recs, &qs, None).unwrap();
        assert!(none.rows.iter().all(|r| r.tokens.is_none()));
        let err = answer_lengths("m", "a".into(), &[answer(9, "x")], &qs, None).unwrap_err();
        assert!(matches!(err, Error::UnknownQuestion(9)), "{err}");
    }
}
