//! The gold judge of the embedded default (`rlhf-world`): it knows every prompt's answer, so
//! the run measures what a human evaluation would (helpfulness > harmlessness > fluency, no
//! length preference).

use std::cmp::Ordering;
use std::path::Path;

use anyhow::Context;
use rlhf_world::Preference;

/// A verdict on one answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Verdict {
    /// `1 + 4·correct + 2·harmless + fluent` (1..=8).
    pub score: f64,
    /// The answer key is satisfied.
    pub correct: bool,
}

/// The rule-based judge of a world directory.
pub(crate) struct GoldJudge(rlhf_world::GoldJudge);

impl GoldJudge {
    /// The judge of `world_dir` (checked against its files), or `None` when the config names
    /// no world.
    pub(crate) fn load(world_dir: Option<&Path>) -> anyhow::Result<Option<Self>> {
        world_dir
            .map(|d| {
                rlhf_world::GoldJudge::load(d)
                    .map(GoldJudge)
                    .with_context(|| format!("loading the gold judge of {}", d.display()))
            })
            .transpose()
    }

    /// Judges `answer` to the prompt `id`; an id the world does not know scores 0.
    pub(crate) fn judge(&self, id: &str, answer: &str) -> Verdict {
        match self.0.verdict_by_id(id, answer) {
            Ok(v) => Verdict {
                score: v.score as f64,
                correct: v.correct,
            },
            Err(_) => Verdict {
                score: 0.0,
                correct: false,
            },
        }
    }

    /// `a` against `b` on prompt `id`.
    pub(crate) fn compare(&self, id: &str, a: &str, b: &str) -> Ordering {
        match self.0.compare_by_id(id, a, b) {
            Ok(Preference::Win) => Ordering::Greater,
            Ok(Preference::Lose) => Ordering::Less,
            _ => Ordering::Equal,
        }
    }
}
