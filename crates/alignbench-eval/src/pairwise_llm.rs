//! Pairwise judging with an LLM: a prompt that shows the question, the reference answer (when
//! there is one) and two answers; a parser for the `[[A]]` / `[[B]]` / `[[C]]` verdict at its
//! end; and [`evaluate_pairwise_llm`], which asks in both orders through the same machinery as
//! [`judge_all`](crate::judge_all) (bounded concurrency, the on-disk cache, strict re-asks) and
//! combines the two verdicts with [`combine_orders`](crate::combine_orders), exactly like every
//! other pairwise judge.
//!
//! A verdict that cannot be parsed counts as a tie vote for that order (so under
//! [`CombineRule::Consistent`] the item is a tie) and is counted in
//! [`LlmPairwiseReport::parse_failures`]. An item whose judge call failed (HTTP errors after the
//! retries) is left out of the tally and listed in [`LlmPairwiseReport::judge_errors`]; its
//! other order stays cached, so a rerun asks only for what is missing.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::cache::JudgmentCache;
use crate::error::{Error, Result};
use crate::judge::{Judge, JudgeAllOptions, JudgeJob, judge_texts};
use crate::pairwise::{
    CombineRule, PairItem, PairwiseQuery, PairwiseReport, Preference, queries, record, vote_for_a,
};

/// The pairwise judge prompt before the payload (our own Chinese wording). The judge is told
/// to end with exactly one of `[[A]]`, `[[B]]`, `[[C]]`.
pub const PAIRWISE_INSTRUCTIONS: &str = "\
你是一名客观公正的评审。下面给出一个用户问题，以及两个AI助手（助手A和助手B）对这个问题的回答。请判断哪一个回答更好地回应了用户的问题。
评判时请遵守以下要求：
1. 最重要的是回答是否正确、是否满足了用户的需求；其次再考虑清晰度、完整性和实用性。
2. 如果提供了参考答案，请把两个回答分别与参考答案对照；与参考答案在事实上相矛盾的内容应当严重扣分。
3. 两个回答出现的先后顺序不能影响你的判断；回答的长短本身不代表质量的高低；不要因为助手的名称偏向任何一方。
请先简要比较两个回答并说明理由，然后在最后一行只写出最终结论，结论必须是下面三种格式之一：[[A]] 表示助手A的回答更好，[[B]] 表示助手B的回答更好，[[C]] 表示两个回答不相上下。
";

/// Builds the pairwise judge prompt for `query`: [`PAIRWISE_INSTRUCTIONS`], then the question,
/// the reference answer (left out when absent or blank), and the first answer as assistant A,
/// the second as assistant B. Texts are inserted verbatim in one pass.
pub fn pairwise_prompt(query: &PairwiseQuery) -> String {
    let mut out = String::from(PAIRWISE_INSTRUCTIONS);
    out.push_str("\n[用户问题开始]\n");
    out.push_str(&query.prompt);
    out.push_str("\n[用户问题结束]\n");
    if let Some(reference) = query.reference.as_deref().filter(|r| !r.trim().is_empty()) {
        out.push_str("[参考答案开始]\n");
        out.push_str(reference);
        out.push_str("\n[参考答案结束]\n");
    }
    out.push_str("[助手A的回答开始]\n");
    out.push_str(&query.first);
    out.push_str("\n[助手A的回答结束]\n[助手B的回答开始]\n");
    out.push_str(&query.second);
    out.push_str("\n[助手B的回答结束]\n");
    out
}

/// Why a pairwise judgment has no usable verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum VerdictFailure {
    /// No `[[A]]`, `[[B]]` or `[[C]]` anywhere in the text.
    #[error("no [[A]], [[B]] or [[C]] verdict in the judgment")]
    NoVerdict,
    /// The last line that carries a verdict marker carries two different ones
    /// (e.g. `[[A]] 或 [[B]]`).
    #[error("the last verdict line names more than one verdict")]
    Ambiguous,
}

static MARKER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[\[\s*([ABCabc])\s*\]\]").expect("valid regex"));

/// Maps full-width brackets and letters (`［［Ａ］］`, common in Chinese output) to ASCII, one
/// character for one character.
fn fold_full_width(c: char) -> char {
    match c {
        '［' => '[',
        '］' => ']',
        'Ａ'..='Ｃ' | 'ａ'..='ｃ' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        _ => c,
    }
}

/// Reads the verdict of a pairwise judgment: the **last** `[[A]]` / `[[B]]` / `[[C]]` in the
/// text (so an analysis that first quotes the format is read correctly), letters in either
/// case, blanks inside the brackets and full-width brackets or letters allowed. `A` is the
/// answer shown first, `B` the second, `C` a tie.
///
/// # Errors
/// [`VerdictFailure::NoVerdict`] when there is no marker; [`VerdictFailure::Ambiguous`] when
/// the line holding the last marker also holds a different one.
pub fn parse_pairwise_verdict(text: &str) -> std::result::Result<Preference, VerdictFailure> {
    let folded: String = text.chars().map(fold_full_width).collect();
    let last_line = folded
        .lines()
        .rev()
        .find(|line| MARKER.is_match(line))
        .ok_or(VerdictFailure::NoVerdict)?;
    let letters: Vec<String> = MARKER
        .captures_iter(last_line)
        .map(|c| c[1].to_ascii_uppercase())
        .collect();
    let verdict = letters.last().ok_or(VerdictFailure::NoVerdict)?;
    if letters.iter().any(|l| l != verdict) {
        return Err(VerdictFailure::Ambiguous);
    }
    Ok(match verdict.as_str() {
        "A" => Preference::First,
        "B" => Preference::Second,
        _ => Preference::Tie,
    })
}

/// One order's verdict as the judge gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderVerdict {
    /// The parsed verdict about the answers as shown; `None` when it could not be parsed (the
    /// order then votes for a tie).
    pub verdict: Option<Preference>,
    /// Why it could not be parsed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<VerdictFailure>,
    /// Whether the judgment came from the cache.
    pub from_cache: bool,
}

/// Both orders' verdicts of one tallied item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LlmItemVerdicts {
    /// The item id.
    pub id: String,
    /// With A shown first.
    pub ab: OrderVerdict,
    /// With B shown first.
    pub ba: OrderVerdict,
}

/// An item left out of the tally because a judge call failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JudgeFailure {
    /// The item id.
    pub id: String,
    /// The error (never holds the API key: the client scrubs it).
    pub error: String,
}

/// How the judge used the two positions, over the parsed verdicts of the tallied items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PositionStats {
    /// Verdicts for the answer shown first.
    pub first: usize,
    /// Verdicts for the answer shown second.
    pub second: usize,
    /// Tie verdicts.
    pub tie: usize,
    /// Items whose two parsed verdicts do not name the same model (or one names a model and
    /// the other a tie): the swap changed the judge's mind. An unbiased judge has none.
    pub inconsistent_items: usize,
}

/// The result of [`evaluate_pairwise_llm`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmPairwiseReport {
    /// The judge model id.
    pub judge_model: String,
    /// Tally, combined per-item outcomes (tallied items only, input order) and the rule.
    #[serde(flatten)]
    pub report: PairwiseReport,
    /// The raw verdicts behind `report.items`, in the same order.
    pub verdicts: Vec<LlmItemVerdicts>,
    /// Verdicts (orders, not items) that could not be parsed; each voted for a tie.
    pub parse_failures: usize,
    /// Items left out because a judge call failed.
    pub judge_errors: Vec<JudgeFailure>,
    /// Judgments read from the cache instead of asked for.
    pub cached: usize,
    /// Position statistics.
    pub position: PositionStats,
}

/// Judges every item with `judge` in both orders ([`pairwise_prompt`]), at most
/// `options.max_concurrency` calls at a time, caching each judgment under
/// `cache_key(judge model, prompt)` and re-asking up to `options.strict_reasks` times while a
/// verdict cannot be parsed; then combines the two verdicts of each item with `rule`.
///
/// # Errors
/// [`Error::InvalidArgument`] if two items share an id (their verdicts could not be told
/// apart in the report and the cache). Judge failures are per item, not errors (see
/// [`LlmPairwiseReport::judge_errors`]).
pub async fn evaluate_pairwise_llm<J: Judge + ?Sized>(
    judge: &J,
    model_a: &str,
    model_b: &str,
    items: &[PairItem],
    rule: CombineRule,
    cache: Option<&JudgmentCache>,
    options: &JudgeAllOptions,
) -> Result<LlmPairwiseReport> {
    let mut ids = std::collections::HashSet::new();
    if let Some(dup) = items.iter().find(|i| !ids.insert(i.id.as_str())) {
        return Err(Error::InvalidArgument(format!(
            "duplicate pairwise item id {:?}",
            dup.id
        )));
    }
    let mut jobs = Vec::with_capacity(2 * items.len());
    for item in items {
        let (ab, ba) = queries(item);
        for (order, query) in [("ab", ab), ("ba", ba)] {
            jobs.push(JudgeJob {
                key: format!("{}/{order}", item.id),
                prompt: pairwise_prompt(&query),
            });
        }
    }
    let accept = |text: &str| parse_pairwise_verdict(text).is_ok();
    let outcomes = judge_texts(judge, &jobs, cache, options, &accept).await;

    let mut out = LlmPairwiseReport {
        judge_model: judge.model_id().to_owned(),
        report: PairwiseReport::empty(model_a, model_b, rule, items.len()),
        verdicts: Vec::with_capacity(items.len()),
        parse_failures: 0,
        judge_errors: Vec::new(),
        cached: 0,
        position: PositionStats::default(),
    };
    for (item, pair) in items.iter().zip(outcomes.chunks(2)) {
        let (ab, ba) = match (&pair[0].result, &pair[1].result) {
            (Ok(ab), Ok(ba)) => (ab, ba),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(id = %item.id, error = %e, "no verdict: item left out");
                out.judge_errors.push(JudgeFailure {
                    id: item.id.clone(),
                    error: e.to_string(),
                });
                continue;
            }
        };
        let mut order = |raw: &crate::judge::RawJudged| {
            let parsed = parse_pairwise_verdict(&raw.judgment);
            out.cached += usize::from(raw.from_cache);
            match parsed {
                Ok(Preference::First) => out.position.first += 1,
                Ok(Preference::Second) => out.position.second += 1,
                Ok(Preference::Tie) => out.position.tie += 1,
                Err(failure) => {
                    out.parse_failures += 1;
                    tracing::warn!(id = %item.id, %failure, "unparseable verdict counts as a tie");
                }
            }
            OrderVerdict {
                verdict: parsed.ok(),
                failure: parsed.err(),
                from_cache: raw.from_cache,
            }
        };
        let (ab, ba) = (order(ab), order(ba));
        if let (Some(x), Some(y)) = (ab.verdict, ba.verdict)
            && vote_for_a(x, true) != vote_for_a(y, false)
        {
            out.position.inconsistent_items += 1;
        }
        record(
            &mut out.report,
            item,
            ab.verdict.unwrap_or(Preference::Tie),
            ba.verdict.unwrap_or(Preference::Tie),
        );
        out.verdicts.push(LlmItemVerdicts {
            id: item.id.clone(),
            ab,
            ba,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Preference::{First, Second, Tie};
    use expect_test::expect;

    #[test]
    fn verdict_parser_edge_cases() {
        let cases: [(&str, std::result::Result<Preference, VerdictFailure>); 16] = [
            ("A 更好。\n[[A]]", Ok(First)),
            ("[[B]]", Ok(Second)),
            ("两者差不多。[[C]]", Ok(Tie)),
            // Case, inner blanks, full-width brackets and letters.
            ("结论：[[ b ]]", Ok(Second)),
            ("结论：［［Ａ］］", Ok(First)),
            ("结论：[[ｃ]]", Ok(Tie)),
            // The last marker wins: the analysis may quote the format first.
            (
                "按要求，[[A]] 表示A更好，[[B]] 表示B更好。\n分析……\n最终结论：[[B]]",
                Ok(Second),
            ),
            ("[[A]]\n再想一想，B 其实更准确。\n[[B]]\n", Ok(Second)),
            // The same marker twice on the last line is fine.
            ("[[A]]，重复一遍：[[A]]", Ok(First)),
            // Two different markers on the last verdict line: ambiguous.
            ("[[A]] 或 [[B]]", Err(VerdictFailure::Ambiguous)),
            (
                "分析。\n[[C]]/[[A]]\n谢谢。",
                Err(VerdictFailure::Ambiguous),
            ),
            // Not markers.
            ("[A]", Err(VerdictFailure::NoVerdict)),
            ("[[D]]", Err(VerdictFailure::NoVerdict)),
            ("[[AB]]", Err(VerdictFailure::NoVerdict)),
            ("A 更好", Err(VerdictFailure::NoVerdict)),
            ("", Err(VerdictFailure::NoVerdict)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_pairwise_verdict(text), want, "{text:?}");
        }
        // Inside a longer bracket run the marker is still found.
        assert_eq!(parse_pairwise_verdict("[[[A]]]"), Ok(First));
    }

    fn query(reference: Option<&str>) -> PairwiseQuery {
        PairwiseQuery {
            id: "7".into(),
            prompt: "12 乘以 15 等于多少？".into(),
            reference: reference.map(str::to_owned),
            first: "等于 180。{second}".into(),
            second: "等于 170。".into(),
        }
    }

    #[test]
    fn prompt_snapshot_with_reference() {
        expect![[r#"
            你是一名客观公正的评审。下面给出一个用户问题，以及两个AI助手（助手A和助手B）对这个问题的回答。请判断哪一个回答更好地回应了用户的问题。
            评判时请遵守以下要求：
            1. 最重要的是回答是否正确、是否满足了用户的需求；其次再考虑清晰度、完整性和实用性。
            2. 如果提供了参考答案，请把两个回答分别与参考答案对照；与参考答案在事实上相矛盾的内容应当严重扣分。
            3. 两个回答出现的先后顺序不能影响你的判断；回答的长短本身不代表质量的高低；不要因为助手的名称偏向任何一方。
            请先简要比较两个回答并说明理由，然后在最后一行只写出最终结论，结论必须是下面三种格式之一：[[A]] 表示助手A的回答更好，[[B]] 表示助手B的回答更好，[[C]] 表示两个回答不相上下。

            [用户问题开始]
            12 乘以 15 等于多少？
            [用户问题结束]
            [参考答案开始]
            180
            [参考答案结束]
            [助手A的回答开始]
            等于 180。{second}
            [助手A的回答结束]
            [助手B的回答开始]
            等于 170。
            [助手B的回答结束]
        "#]]
        .assert_eq(&pairwise_prompt(&query(Some("180"))));
    }

    #[test]
    fn prompt_without_reference_has_no_reference_block() {
        for reference in [None, Some(""), Some("  \n")] {
            let p = pairwise_prompt(&query(reference));
            assert!(!p.contains("[参考答案开始]"), "{reference:?}");
            assert!(p.ends_with(
                "[用户问题结束]\n[助手A的回答开始]\n等于 180。{second}\n[助手A的回答结束]\n[助手B的回答开始]\n等于 170。\n[助手B的回答结束]\n"
            ));
        }
    }

    #[test]
    fn the_instructions_alone_are_ambiguous_not_a_verdict() {
        // A judge that only echoes the format line must not be read as a verdict.
        let echo = PAIRWISE_INSTRUCTIONS.lines().last().unwrap();
        assert_eq!(parse_pairwise_verdict(echo), Err(VerdictFailure::Ambiguous));
    }
}
