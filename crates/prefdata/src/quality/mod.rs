//! Prompt quality (the paper's Table 1): a classifier trait, a rule-based baseline, and a filter.

mod base;
mod features;
mod lexicon;
mod rules;

pub use base::{HasPrompt, PromptClassifier, QualityReport, filter_prompts, label_prompt_quality};
pub use features::PromptFeatures;
pub use rules::{RuleBasedClassifier, RuleConfig};
