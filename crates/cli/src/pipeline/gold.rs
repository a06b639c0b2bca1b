//! The gold judge of the embedded default, from `rlhf-world`.

use std::cmp::Ordering;
use std::path::Path;

/// A verdict on one answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Verdict {
    pub score: f64,
    pub correct: bool,
}

/// The rule-based judge that knows each held-out prompt's answer.
pub(crate) struct GoldJudge;

impl GoldJudge {
    /// The judge of `world_dir`, or `None` when the config names none.
    pub(crate) fn load(
        world_dir: Option<&Path>,
        _eval_prompts: &Path,
    ) -> anyhow::Result<Option<Self>> {
        Ok(world_dir.map(|_| GoldJudge))
    }

    pub(crate) fn judge(&self, _id: &str, _answer: &str) -> Verdict {
        Verdict {
            score: 0.0,
            correct: false,
        }
    }

    pub(crate) fn compare(&self, _id: &str, _a: &str, _b: &str) -> Ordering {
        Ordering::Equal
    }
}
