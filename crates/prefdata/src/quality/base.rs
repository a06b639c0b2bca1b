//! The prompt-classifier trait, what can be classified, and the filter keeping clear prompts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::import::PromptRecord;
use crate::schema::{Comparison, Message, PromptQuality};

/// Assigns a [`PromptQuality`] class to a prompt.
///
/// [`RuleBasedClassifier`](crate::RuleBasedClassifier) is the baseline; a trained classifier implements the same trait.
pub trait PromptClassifier {
    /// Classifies a stand-alone prompt.
    fn classify(&self, prompt: &str) -> PromptQuality;

    /// Classifies a prompt that follows `history`. By default the history is ignored.
    fn classify_in_context(&self, history: &[Message], prompt: &str) -> PromptQuality {
        let _ = history;
        self.classify(prompt)
    }
}

/// Anything that carries a prompt to classify.
pub trait HasPrompt {
    /// Earlier turns, if any.
    fn history(&self) -> &[Message] {
        &[]
    }
    /// The prompt text.
    fn prompt_text(&self) -> &str;
}

impl HasPrompt for Comparison {
    fn history(&self) -> &[Message] {
        &self.history
    }
    fn prompt_text(&self) -> &str {
        &self.prompt
    }
}

impl HasPrompt for PromptRecord {
    fn prompt_text(&self) -> &str {
        &self.prompt
    }
}

impl HasPrompt for String {
    fn prompt_text(&self) -> &str {
        self
    }
}

impl HasPrompt for &str {
    fn prompt_text(&self) -> &str {
        self
    }
}

/// Counts per class from [`filter_prompts`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QualityReport {
    /// Prompts seen.
    pub input: u64,
    /// Prompts kept (class [`PromptQuality::ClearAndAnswerable`]).
    pub kept: u64,
    /// Count per class.
    pub by_class: BTreeMap<PromptQuality, u64>,
}

impl QualityReport {
    /// A Markdown table of the counts per class.
    pub fn to_markdown(&self) -> String {
        let mut s = format!(
            "## Prompt quality\n\n{} prompts, {} kept\n\n| class | count |\n|---|---:|\n",
            self.input, self.kept
        );
        for (q, n) in &self.by_class {
            s.push_str(&format!("| {q} | {n} |\n"));
        }
        s
    }
}

/// Keeps the items whose prompt the classifier rates [`PromptQuality::ClearAndAnswerable`].
pub fn filter_prompts<T: HasPrompt>(
    items: impl IntoIterator<Item = T>,
    classifier: &(impl PromptClassifier + ?Sized),
) -> (Vec<T>, QualityReport) {
    let mut report = QualityReport::default();
    let mut out = Vec::new();
    for item in items {
        let q = classifier.classify_in_context(item.history(), item.prompt_text());
        report.input += 1;
        *report.by_class.entry(q).or_default() += 1;
        if q == PromptQuality::ClearAndAnswerable {
            report.kept += 1;
            out.push(item);
        }
    }
    tracing::info!(
        input = report.input,
        kept = report.kept,
        "prompt-quality filter"
    );
    (out, report)
}

/// Sets the `prompt_quality` column of every comparison.
pub fn label_prompt_quality(
    rows: &mut [Comparison],
    classifier: &(impl PromptClassifier + ?Sized),
) {
    for c in rows {
        c.prompt_quality = Some(classifier.classify_in_context(&c.history, &c.prompt));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quality::RuleBasedClassifier;

    #[test]
    fn filter_keeps_only_clear_prompts_and_counts_classes() {
        let c = RuleBasedClassifier::default();
        let prompts = vec![
            "Explain how vaccines train the immune system.",
            "hi",
            "asdfgh",
        ];
        let (kept, rep) = filter_prompts(prompts, &c);
        assert_eq!(kept, vec!["Explain how vaccines train the immune system."]);
        assert_eq!(rep.input, 3);
        assert_eq!(rep.kept, 1);
        assert_eq!(rep.by_class[&PromptQuality::UnclearIntent], 1);
        assert_eq!(rep.by_class[&PromptQuality::UnclearSemantics], 1);
        assert!(rep.to_markdown().contains("| unclear_intent | 1 |"));

        let mut rows = vec![Comparison::new("1", "t", "hi", "a", "b")];
        label_prompt_quality(&mut rows, &c);
        assert_eq!(rows[0].prompt_quality, Some(PromptQuality::UnclearIntent));
    }
}
