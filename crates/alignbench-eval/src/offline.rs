//! Offline judges: a reference-overlap heuristic and an adapter for score functions (e.g. a
//! reward model). Neither needs a network, and **neither is comparable with GPT-4 scores**.
//!
//! Both implement [`Judge`] by reading the payload (question, reference, answer) back out of
//! the prompt through its fixed markers (`用户的提问：`, `[参考答案开始]`, …, SPEC §B.6
//! item 7), so they work with the built-in template and with the original one. Their output
//! goes through the same parser as a GPT-4 judgment.

use std::collections::HashMap;
use std::fmt;

use crate::dataset::Question;
use crate::error::{Error, Result};
use crate::judge::Judge;

const QUESTION_LABEL: &str = "用户的提问：";
const REFERENCE_START: &str = "[参考答案开始]\n";
const REFERENCE_END: &str = "\n[参考答案结束]\n";
const ANSWER_START: &str = "[助手的答案开始]\n";
const ANSWER_END: &str = "\n[助手的答案结束]";

/// The payload of a judge prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptPayload<'a> {
    /// The user question.
    pub question: &'a str,
    /// The reference answer.
    pub reference: &'a str,
    /// The answer under evaluation.
    pub answer: &'a str,
}

impl<'a> PromptPayload<'a> {
    /// Finds the payload in a prompt: the question after the first `用户的提问：` (one
    /// following space and one trailing newline dropped) up to the reference block; the reference between the first
    /// `[参考答案开始]` / `[参考答案结束]` pair; the answer from the next `[助手的答案开始]` to
    /// the **last** `[助手的答案结束]`, so an answer that quotes the markers stays whole.
    ///
    /// # Errors
    /// [`Error::PromptPayload`] naming the missing marker.
    pub fn extract(prompt: &'a str) -> Result<Self> {
        let missing = |m: &str| Error::PromptPayload(format!("marker {:?} not found", m.trim()));
        let q_start = prompt
            .find(QUESTION_LABEL)
            .ok_or_else(|| missing(QUESTION_LABEL))?
            + QUESTION_LABEL.len();
        let r_marker = q_start
            + prompt[q_start..]
                .find(REFERENCE_START)
                .ok_or_else(|| missing(REFERENCE_START))?;
        let question = &prompt[q_start..r_marker];
        let question = question.strip_suffix('\n').unwrap_or(question);
        let question = question.strip_prefix(' ').unwrap_or(question);
        let r_start = r_marker + REFERENCE_START.len();
        let r_end = r_start
            + prompt[r_start..]
                .find(REFERENCE_END)
                .ok_or_else(|| missing(REFERENCE_END))?;
        let after_ref = r_end + REFERENCE_END.len();
        let a_start = after_ref
            + prompt[after_ref..]
                .find(ANSWER_START)
                .ok_or_else(|| missing(ANSWER_START))?
            + ANSWER_START.len();
        let a_end = prompt[a_start..]
            .rfind(ANSWER_END)
            .map(|i| a_start + i)
            .ok_or_else(|| missing(ANSWER_END))?;
        Ok(PromptPayload {
            question,
            reference: &prompt[r_start..r_end],
            answer: &prompt[a_start..a_end],
        })
    }
}

/// Character-bigram precision, recall and F1 of `answer` against `reference`.
///
/// Both texts are lower-cased and reduced to alphanumeric characters (Chinese characters
/// count as alphabetic); bigram counts are clipped (multiset intersection). A text with a
/// single character contributes one unigram instead. Empty texts give zeros.
pub fn bigram_f1(answer: &str, reference: &str) -> (f64, f64, f64) {
    fn grams(text: &str) -> HashMap<(char, char), usize> {
        let chars: Vec<char> = text
            .chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect();
        let mut counts = HashMap::new();
        if chars.len() == 1 {
            counts.insert((chars[0], '\0'), 1);
        }
        for pair in chars.windows(2) {
            *counts.entry((pair[0], pair[1])).or_insert(0) += 1;
        }
        counts
    }
    let a = grams(answer);
    let r = grams(reference);
    let total_a: usize = a.values().sum();
    let total_r: usize = r.values().sum();
    if total_a == 0 || total_r == 0 {
        return (0.0, 0.0, 0.0);
    }
    let overlap: usize = a
        .iter()
        .map(|(g, &n)| n.min(r.get(g).copied().unwrap_or(0)))
        .sum();
    let precision = overlap as f64 / total_a as f64;
    let recall = overlap as f64 / total_r as f64;
    let f1 = if overlap == 0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    (precision, recall, f1)
}

/// A deterministic offline judge: the character-bigram F1 between answer and reference,
/// mapped to `1 + round(9 · F1)` (1–10).
///
/// It is a smoke-test and regression signal only. It rewards copying the reference, cannot
/// see correctness, reasoning or style, and its scores are **not comparable with GPT-4
/// (AlignBench) scores**. Its model id (`reference-overlap-bigram-f1-v1`) keeps its cache
/// entries apart from real judges'.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReferenceOverlapJudge;

impl ReferenceOverlapJudge {
    /// The model id used in cache keys.
    pub const MODEL_ID: &'static str = "reference-overlap-bigram-f1-v1";

    /// The score for an answer: `1 + round(9 · F1)`.
    pub fn score(answer: &str, reference: &str) -> u32 {
        let (_, _, f1) = bigram_f1(answer, reference);
        1 + (9.0 * f1).round() as u32
    }

    /// The judgment text: a short analysis and a rating dict `{'综合得分': s}`.
    pub fn judgment_for(answer: &str, reference: &str) -> String {
        let (p, r, f1) = bigram_f1(answer, reference);
        let score = 1 + (9.0 * f1).round() as u32;
        format!(
            "离线启发式评分（与参考答案的字符二元组重叠度），不能与GPT-4评分相比较。\n\
             精确率 {p:.3}，召回率 {r:.3}，F1 {f1:.3}。\n\
             {{'综合得分': {score}}}"
        )
    }
}

impl Judge for ReferenceOverlapJudge {
    fn model_id(&self) -> &str {
        Self::MODEL_ID
    }

    async fn judge(&self, prompt: &str) -> Result<String> {
        let payload = PromptPayload::extract(prompt)?;
        Ok(Self::judgment_for(payload.answer, payload.reference))
    }
}

/// A score function: `(question, answer) → score`, expected on the 1–10 scale.
pub type ScoreFn = Box<dyn Fn(&Question, &str) -> f64 + Send + Sync>;

/// A raw reward → 1..10: `1 + 9 · sigmoid(r)` (0 ↦ 5.5).
pub fn reward_to_score(r: f64) -> f64 {
    1.0 + 9.0 / (1.0 + (-r).exp())
}

/// A judge backed by a [`ScoreFn`], so a reward model can stand in for the judge.
///
/// The score is clamped to 1–10 and written with two decimals as `'综合得分': 6.37`
/// **outside** braces, so the parser's fallback reads it as a float (inside a dict only the
/// integer part would be read). The question is found by its text among the questions given
/// to [`ScoreFnJudge::new`]. The function runs inline in the async task: keep it short, or
/// call [`ScoreFnJudge::judgment_for`] from a blocking context. Scores are **not comparable
/// with GPT-4 scores**.
pub struct ScoreFnJudge {
    model_id: String,
    questions: HashMap<String, Question>,
    score: ScoreFn,
}

impl fmt::Debug for ScoreFnJudge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScoreFnJudge")
            .field("model_id", &self.model_id)
            .field("questions", &self.questions.len())
            .finish_non_exhaustive()
    }
}

impl ScoreFnJudge {
    /// A judge named `model_id` (used in cache keys) over `questions`.
    pub fn new(model_id: impl Into<String>, questions: &[Question], score: ScoreFn) -> Self {
        ScoreFnJudge {
            model_id: model_id.into(),
            questions: questions
                .iter()
                .map(|q| (q.question.clone(), q.clone()))
                .collect(),
            score,
        }
    }

    /// A reward model as the judge: `rewards` holds its raw reward for `(question text,
    /// answer)` pairs, each mapped to 1–10 by [`reward_to_score`]; an answer without a reward
    /// fails to judge (NaN). `rm` names the reward model in the judge's model id.
    pub fn reward_model(
        rm: &str,
        questions: &[Question],
        rewards: impl IntoIterator<Item = ((String, String), f64)>,
    ) -> Self {
        let table: HashMap<(String, String), f64> = rewards.into_iter().collect();
        let score: ScoreFn = Box::new(move |q: &Question, answer: &str| {
            table
                .get(&(q.question.clone(), answer.to_owned()))
                .map_or(f64::NAN, |&r| reward_to_score(r))
        });
        ScoreFnJudge::new(
            format!("rm:{rm}+sigmoid-1to10-v1 (not comparable with GPT-4)"),
            questions,
            score,
        )
    }

    /// Scores `answer` and formats the judgment text.
    ///
    /// # Errors
    /// [`Error::Judge`] if the function returns NaN.
    pub fn judgment_for(&self, question: &Question, answer: &str) -> Result<String> {
        let raw = (self.score)(question, answer);
        if raw.is_nan() {
            return Err(Error::Judge(format!(
                "score function {} returned NaN for question {}",
                self.model_id, question.question_id
            )));
        }
        let score = raw.clamp(1.0, 10.0);
        Ok(format!(
            "评分函数 {} 给出的分数（非GPT-4评分，原始值 {raw}）：'综合得分': {score:.2}",
            self.model_id
        ))
    }
}

impl Judge for ScoreFnJudge {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    async fn judge(&self, prompt: &str) -> Result<String> {
        let payload = PromptPayload::extract(prompt)?;
        let question = self.questions.get(payload.question).ok_or_else(|| {
            Error::PromptPayload("the prompt's question is not in this judge's question set".into())
        })?;
        self.judgment_for(question, payload.answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_and_answer_may_quote_markers() {
        let prompt = "前文\n用户的提问： 问题\n第二行\n[参考答案开始]\n参考\n[参考答案结束]\n[助手的答案开始]\n答案\n[助手的答案结束]\n引用\n[助手的答案结束]\n";
        let p = PromptPayload::extract(prompt).unwrap();
        assert_eq!(p.question, "问题\n第二行");
        assert_eq!(p.reference, "参考");
        assert_eq!(p.answer, "答案\n[助手的答案结束]\n引用");
        assert!(PromptPayload::extract("no markers").is_err());
    }

    #[test]
    fn bigram_f1_basics() {
        assert_eq!(bigram_f1("", "abc"), (0.0, 0.0, 0.0));
        let (_, _, f1) = bigram_f1("北京是中国的首都。", "中国的首都是北京");
        assert!(f1 > 0.5 && f1 < 1.0, "{f1}");
        assert_eq!(bigram_f1("ABC", "abc").2, 1.0);
        assert_eq!(bigram_f1("C", "c").2, 1.0);
        assert_eq!(ReferenceOverlapJudge::score("完全无关", "北京"), 1);
        assert_eq!(ReferenceOverlapJudge::score("北京", "北京"), 10);
    }
}
