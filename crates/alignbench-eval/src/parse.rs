//! Parsing a judge's output into a rating dictionary and a score, exactly as AlignBench's
//! `post_process` does (SPEC §B.7).
//!
//! Python's `\{(.*?)\}(?![^{]*\{)` needs a look-ahead, which the `regex` crate lacks, so the
//! dictionary is located by hand ([`find_rating_dict`]); the two other patterns are the
//! original ones. Like Python 3's `re`, `\d` matches any Unicode decimal digit, and its value
//! is taken the way `int()` / `float()` would.

use std::sync::LazyLock;

use indexmap::IndexMap;
use regex::Regex;
use serde::{Deserialize, Serialize};

/// The score of a judgment that could not be parsed (AlignBench's `-1`).
pub const FAILED_SCORE: f64 = -1.0;

/// The key of the overall score in the rating dictionary.
pub const OVERALL_KEY: &str = "综合得分";

static KV: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"'(.*?)': (\d+)").expect("valid key/value regex"));
static FALLBACK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"'综合得分': (\d+(\.\d{1,2})?)").expect("valid fallback regex"));
static ONE_DIGIT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\A\d\z").expect("valid digit regex"));

/// Where the score of a parsed judgment came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreSource {
    /// The `综合得分` entry of the rating dictionary (an integer).
    Dict,
    /// The fallback search of the whole text for `'综合得分': <number>` (may have decimals).
    Fallback,
    /// Nothing found: the score is [`FAILED_SCORE`].
    Failed,
}

/// A parsed judgment: the rating dictionary and the overall score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParsedJudgment {
    /// Key → integer value, in first-seen order; a later duplicate key overwrites the value.
    /// Values too large for `u64` saturate.
    pub rating: IndexMap<String, u64>,
    /// The overall score, or [`FAILED_SCORE`].
    pub score: f64,
    /// Where `score` came from.
    pub source: ScoreSource,
}

impl ParsedJudgment {
    /// Whether parsing failed (`score == -1`).
    pub fn is_failure(&self) -> bool {
        self.source == ScoreSource::Failed
    }
}

/// Locates the rating dictionary: the text between the first `{` of the line holding the last
/// `{` of the judgment and the first `}` after that last `{` on the same line. `None` when
/// there is no `{`, or no `}` after the last one on its line. Lines end at `\n` only.
pub fn find_rating_dict(judgment: &str) -> Option<&str> {
    let last_open = judgment.rfind('{')?;
    let line_start = judgment[..last_open].rfind('\n').map_or(0, |i| i + 1);
    let line_end = judgment[last_open..]
        .find('\n')
        .map_or(judgment.len(), |i| last_open + i);
    let first_open = line_start + judgment[line_start..last_open + 1].find('{')?;
    let close = last_open + judgment[last_open..line_end].find('}')?;
    Some(&judgment[first_open + 1..close])
}

/// The value of one Unicode decimal digit (`Nd`). Decimal digits come in runs of ten, 0 to 9,
/// so the value is the distance from the start of the run, modulo 10.
fn digit_value(c: char) -> u32 {
    if let Some(d) = c.to_digit(10) {
        return d;
    }
    let mut start = c as u32;
    let mut buf = [0u8; 4];
    while let Some(prev) = start.checked_sub(1).and_then(char::from_u32) {
        if ONE_DIGIT.is_match(prev.encode_utf8(&mut buf)) {
            start -= 1;
        } else {
            break;
        }
    }
    (c as u32 - start) % 10
}

/// Parses a `\d+` match like Python's `int()`, saturating at `u64::MAX`.
fn parse_int(digits: &str) -> u64 {
    digits.chars().fold(0u64, |acc, c| {
        acc.saturating_mul(10)
            .saturating_add(u64::from(digit_value(c)))
    })
}

/// Parses a `\d+(\.\d{1,2})?` match like Python's `float()`.
fn parse_float(text: &str) -> f64 {
    let ascii: String = text
        .chars()
        .map(|c| {
            if c == '.' {
                '.'
            } else {
                char::from_digit(digit_value(c), 10).unwrap_or('0')
            }
        })
        .collect();
    ascii.parse().unwrap_or(FAILED_SCORE)
}

/// Extracts `'key': <int>` pairs from a dictionary capture.
pub fn extract_rating(dict: &str) -> IndexMap<String, u64> {
    let mut rating = IndexMap::new();
    for caps in KV.captures_iter(dict) {
        rating.insert(caps[1].to_owned(), parse_int(&caps[2]));
    }
    rating
}

/// Parses a judge's output (SPEC §B.7):
/// 1. find the rating dictionary and extract `'key': <int>` pairs;
/// 2. score = `rating["综合得分"]` if present;
/// 3. else the first `'综合得分': <number>` anywhere in the text (up to two decimals);
/// 4. else [`FAILED_SCORE`].
pub fn parse_judgment(judgment: &str) -> ParsedJudgment {
    let rating = find_rating_dict(judgment)
        .map(extract_rating)
        .unwrap_or_default();
    if let Some(&value) = rating.get(OVERALL_KEY) {
        return ParsedJudgment {
            score: value as f64,
            rating,
            source: ScoreSource::Dict,
        };
    }
    match FALLBACK.captures(judgment) {
        Some(caps) => ParsedJudgment {
            score: parse_float(&caps[1]),
            rating,
            source: ScoreSource::Fallback,
        },
        None => ParsedJudgment {
            rating,
            score: FAILED_SCORE,
            source: ScoreSource::Failed,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dict_span_rules() {
        assert_eq!(find_rating_dict("no braces"), None);
        assert_eq!(find_rating_dict("a {x} b {y} c"), Some("x} b {y"));
        assert_eq!(find_rating_dict("{x}\n{y}"), Some("y"));
        assert_eq!(find_rating_dict("{x}\n{y"), None);
        assert_eq!(find_rating_dict("{x}\n{y\n}"), None);
        assert_eq!(find_rating_dict("}{"), None);
        assert_eq!(find_rating_dict("{}"), Some(""));
        assert_eq!(find_rating_dict("{a {b} c}"), Some("a {b"));
    }

    #[test]
    fn unicode_digits_have_their_values() {
        assert_eq!(digit_value('7'), 7);
        assert_eq!(digit_value('０'), 0);
        assert_eq!(digit_value('９'), 9);
        assert_eq!(digit_value('٣'), 3); // Arabic-Indic three
        assert_eq!(digit_value('𝟗'), 9); // Mathematical bold nine (adjacent runs)
        assert_eq!(digit_value('𝟘'), 0); // Mathematical double-struck zero
        assert_eq!(parse_int("１０"), 10);
        assert_eq!(parse_int("99999999999999999999999"), u64::MAX);
        assert_eq!(parse_float("７.５"), 7.5);
    }
}
