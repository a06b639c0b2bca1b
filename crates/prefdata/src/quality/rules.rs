//! The rule-based prompt-quality classifier and its thresholds.

use serde::{Deserialize, Serialize};

use crate::normalize::normalize_text;
use crate::quality::base::PromptClassifier;
use crate::quality::features::{PromptFeatures, is_cjk};
use crate::quality::lexicon::*;
use crate::schema::{Message, PromptQuality};

/// Thresholds of [`RuleBasedClassifier`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleConfig {
    /// A repeated-character run at least this long, covering at least
    /// [`max_run_share`](Self::max_run_share) of the text, makes it unclear. Default 5.
    pub max_run: usize,
    /// See [`max_run`](Self::max_run). Default 0.4.
    pub max_run_share: f32,
    /// Texts of at least 8 characters with fewer distinct characters than this share of
    /// their length (at most 8) are unclear (`abababab`, `哈哈哈哈`). Default 0.25.
    pub min_distinct_share: f32,
    /// More symbols (punctuation, emoji) than this share of the characters makes the text
    /// unclear, unless it has at least [`min_words_with_symbols`](Self::min_words_with_symbols)
    /// letters and CJK characters. Default 0.5.
    pub max_symbol_share: f32,
    /// See [`max_symbol_share`](Self::max_symbol_share). Default 10.
    pub min_words_with_symbols: usize,
    /// Class switches (letter/CJK/digit, symbols skipped) above this ratio in texts of at
    /// least 6 such characters make the text unclear (`x7$k2!p9`). Default 0.6.
    pub max_class_switch_ratio: f32,
    /// At least this share of Latin words looking like keyboard mashing makes the text
    /// unclear (when Latin letters dominate). Default 0.5.
    pub max_gibberish_share: f32,
    /// In a CJK text of at least 5 characters, this share of grammatical particles
    /// (的了吗呢吧...) or more makes it unclear (word salad). Default 0.7.
    pub max_particle_share: f32,
    /// Prompts with at most this many content words (Latin) or content characters (CJK / 2)
    /// and no question or request marker are of unclear intent. Default 2.
    pub min_content: usize,
    /// Years after this one are "the future" for the unanswerable rules. Default 2024.
    pub reference_year: u32,
}

impl Default for RuleConfig {
    fn default() -> Self {
        Self {
            max_run: 5,
            max_run_share: 0.4,
            min_distinct_share: 0.25,
            max_symbol_share: 0.5,
            min_words_with_symbols: 10,
            max_class_switch_ratio: 0.6,
            max_gibberish_share: 0.5,
            max_particle_share: 0.7,
            min_content: 2,
            reference_year: 2024,
        }
    }
}

/// A transparent baseline: character-mix rules for [`PromptQuality::UnclearSemantics`],
/// keyword bags (Chinese and English) for [`PromptQuality::Unanswerable`] and
/// [`PromptQuality::UnclearIntent`], checked in that order.
///
/// - *Unclear semantics*: empty text; no letters or CJK (digits or symbols only) unless it is
///   arithmetic; a long repeated-character run; few distinct characters; mostly symbols;
///   frequent switches between letters, CJK, digits and symbols; mostly keyboard-mash Latin
///   words; CJK text made of grammatical particles only.
/// - *Unanswerable*: future lottery draws; future prices, rates, winners or scores (a future
///   marker such as "next", "will", 明天, 下周, or a year after
///   [`RuleConfig::reference_year`], together with such a target); questions about the
///   user's own thoughts, meals, dreams, pockets, passwords or lost objects.
/// - *Unclear intent*: after removing function words, pronouns, greetings, fillers and vague
///   verbs ("help", "do", 帮, 一下), nothing is left, or very little is left and there is no
///   question word, question mark or request verb ("explain", 翻译).
///
/// In context (non-empty history) a prompt is never of unclear intent: short follow-ups such
/// as "why?" or 继续 are clear there.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuleBasedClassifier {
    /// Thresholds.
    pub config: RuleConfig,
}

impl RuleBasedClassifier {
    /// A classifier with the given thresholds.
    pub fn new(config: RuleConfig) -> Self {
        Self { config }
    }

    fn unclear_semantics(&self, f: &PromptFeatures, norm: &str) -> bool {
        let cfg = &self.config;
        if f.chars == 0 {
            return true;
        }
        if f.cjk + f.letters == 0 && !f.has_math {
            return true; // digits and symbols only
        }
        if f.max_run >= cfg.max_run && f.max_run as f32 >= cfg.max_run_share * f.chars as f32 {
            return true;
        }
        // Few distinct characters: relative to length, capped so long texts are not penalised.
        let distinct_floor = (cfg.min_distinct_share * f.chars as f32).min(8.0);
        if f.chars >= 8 && (f.distinct as f32) < distinct_floor {
            return true;
        }
        if !f.has_math {
            if f.symbols as f32 > cfg.max_symbol_share * f.chars as f32
                && f.cjk + f.letters < cfg.min_words_with_symbols
            {
                return true;
            }
            if f.chars - f.symbols >= 6 && f.class_switch_ratio > cfg.max_class_switch_ratio {
                return true;
            }
        }
        if f.latin_words > 0
            && f.letters >= f.cjk
            && f.gibberish_words as f32 >= cfg.max_gibberish_share * f.latin_words as f32
        {
            return true;
        }
        if f.cjk >= 5 && f.cjk >= f.letters {
            let particles = norm.chars().filter(|c| PARTICLES.contains(*c)).count();
            if particles as f32 >= cfg.max_particle_share * f.cjk as f32 {
                return true;
            }
        }
        false
    }

    fn has_future_year(&self, text: &str) -> bool {
        let b = text.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i].is_ascii_digit() {
                let start = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                if i - start == 4 {
                    let year: u32 = text[start..i].parse().unwrap_or(0);
                    if year > self.config.reference_year && year < 2200 {
                        return true;
                    }
                }
            } else {
                i += 1;
            }
        }
        false
    }

    fn unanswerable(&self, lower: &str) -> bool {
        let padded = format!(" {lower} ");
        let future = contains_any(lower, ZH_FUTURE)
            || contains_any(&padded, EN_FUTURE)
            || self.has_future_year(lower);
        let lottery = contains_any(lower, ZH_LOTTERY) || contains_any(lower, EN_LOTTERY);
        if lottery && future {
            return true;
        }
        let outcome = contains_any(lower, ZH_OUTCOME) || contains_any(lower, EN_OUTCOME);
        if outcome && future {
            return true;
        }
        matches_all_of_any(lower, ZH_PRIVATE) || matches_all_of_any(&padded, EN_PRIVATE)
    }

    fn unclear_intent(&self, f: &PromptFeatures, lower: &str) -> bool {
        // Latin content words and numbers.
        let mut content = 0usize;
        let mut question = lower.contains('?');
        let mut request = false;
        for (k, w) in lower
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .enumerate()
        {
            if k == 0 && EN_QUESTION.contains(&w) {
                question = true;
            }
            if EN_REQUEST.contains(&w) {
                request = true;
            }
            if !EN_STOPWORDS.contains(&w) {
                content += 1;
            }
        }
        if f.has_math {
            content += 1;
            question = true;
        }
        // CJK content characters, after removing filler words and characters.
        let mut cjk: String = lower.chars().filter(|c| is_cjk(*c)).collect();
        if !cjk.is_empty() {
            question |= contains_any(lower, ZH_QUESTION);
            request |= contains_any(&cjk, ZH_REQUEST);
            for w in ZH_FILLER_WORDS {
                cjk = cjk.replace(w, "");
            }
            let left = cjk
                .chars()
                .filter(|c| !ZH_FILLER_CHARS.contains(*c))
                .count();
            // Two CJK characters carry about as much as one English word.
            content += left.div_ceil(2);
        }
        content == 0 || (content <= self.config.min_content && !question && !request)
    }
}

impl PromptClassifier for RuleBasedClassifier {
    fn classify(&self, prompt: &str) -> PromptQuality {
        let norm = normalize_text(prompt);
        let f = PromptFeatures::extract(&norm);
        if self.unclear_semantics(&f, &norm) {
            return PromptQuality::UnclearSemantics;
        }
        let lower = norm.to_lowercase();
        if self.unanswerable(&lower) {
            return PromptQuality::Unanswerable;
        }
        if self.unclear_intent(&f, &lower) {
            return PromptQuality::UnclearIntent;
        }
        PromptQuality::ClearAndAnswerable
    }

    fn classify_in_context(&self, history: &[Message], prompt: &str) -> PromptQuality {
        match self.classify(prompt) {
            PromptQuality::UnclearIntent if !history.is_empty() => {
                PromptQuality::ClearAndAnswerable
            }
            q => q,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Role;

    #[test]
    fn history_makes_short_follow_ups_clear() {
        let c = RuleBasedClassifier::default();
        assert_eq!(c.classify("why?"), PromptQuality::UnclearIntent);
        let h = [
            Message::new(Role::User, "Is the sky blue?"),
            Message::new(Role::Assistant, "Yes."),
        ];
        assert_eq!(
            c.classify_in_context(&h, "why?"),
            PromptQuality::ClearAndAnswerable
        );
        // Garbage stays garbage in context.
        assert_eq!(
            c.classify_in_context(&h, "?????"),
            PromptQuality::UnclearSemantics
        );
    }

    #[test]
    fn future_years_follow_the_reference_year() {
        let c = RuleBasedClassifier::default();
        assert!(c.has_future_year("in 2031 who"));
        assert!(!c.has_future_year("in 2018 who"));
        assert!(!c.has_future_year("room 12345"));
    }
}
