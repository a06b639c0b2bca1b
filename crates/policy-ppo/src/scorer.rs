//! What PPO needs from a reward model, as a trait: one score per packed row, and a fingerprint
//! that identifies it (ARCHITECTURE: `policy-ppo` depends on the reward model only through a
//! `Scorer`).
//!
//! - [`RewardModel`]: a frozen `ScalarModel` (an HF `*ForSequenceClassification` checkpoint, e.g.
//!   one trained by `rlhf-reward`), read at each row's last real token;
//! - [`FnScorer`]: a host function of the prompt and response ids, for tests and synthetic
//!   experiments where the reward must be a known function;
//! - [`crate::RemoteScorer`] (`remote.rs`): a reward-model server over HTTP;
//! - [`crate::RuleScorer`] (`rule.rs`): a rule of the prompt id and the reply text (the world's
//!   gold judge as an RLVR-style reward).

use burn::prelude::*;
use rlhf_core::ScalarModel;

use crate::error::Result;
use crate::frozen::{Frozen, module_fingerprint};
use crate::sequences::{PackedSequences, gather_last_real};

/// A reward model as PPO sees it.
pub trait Scorer<B: Backend> {
    /// The score of every row of `seqs` (prompt + response), one per row.
    ///
    /// # Errors
    /// [`crate::PpoError::Scorer`] when the source cannot score the batch (after its own
    /// retries); the PPO loop then stops with a checkpoint it can resume from.
    fn score(&mut self, seqs: &PackedSequences, device: &B::Device) -> Result<Vec<f32>>;

    /// Identifies the scorer's weights (or function): a reference-reward cache built with
    /// another fingerprint is refused.
    fn fingerprint(&self) -> String;
}

/// `scorer.score(seqs)`, checked: one finite score per row, else [`crate::PpoError::Scorer`]
/// naming the scorer, the row and the value (every caller scores through this).
///
/// # Errors
/// The scorer's own errors, a wrong number of scores, a NaN or infinite score.
pub fn checked_scores<B: Backend>(
    scorer: &mut dyn Scorer<B>,
    seqs: &PackedSequences,
    device: &B::Device,
) -> Result<Vec<f32>> {
    let scores = scorer.score(seqs, device)?;
    let bad = |message: String| crate::PpoError::Scorer {
        source_name: scorer.fingerprint(),
        message,
    };
    if scores.len() != seqs.rows() {
        return Err(bad(format!(
            "returned {} scores for {} rows",
            scores.len(),
            seqs.rows()
        )));
    }
    if let Some((r, s)) = scores.iter().enumerate().find(|(_, s)| !s.is_finite()) {
        return Err(bad(format!(
            "the score of row {r} is {s}, expected a finite number"
        )));
    }
    Ok(scores)
}

/// A frozen scalar reward model, read at the last real token of each row (by the mask, so
/// padding side and pad id do not matter).
#[derive(Debug)]
pub struct RewardModel<B: Backend> {
    model: Frozen<B, ScalarModel<B>>,
    fingerprint: String,
}

impl<B: Backend> RewardModel<B> {
    /// Wraps `model`; with `offload`, its weights live in host memory between uses.
    pub fn new(model: ScalarModel<B>, offload: bool) -> Self {
        let fingerprint = format!("scalar-model:{}", module_fingerprint(&model));
        RewardModel {
            model: Frozen::new(model, offload),
            fingerprint,
        }
    }
}

impl<B: Backend> Scorer<B> for RewardModel<B> {
    fn score(&mut self, seqs: &PackedSequences, device: &B::Device) -> Result<Vec<f32>> {
        Ok(self.model.with(device, |m| {
            let all = m.forward_all(&seqs.tokens, device);
            gather_last_real(all, &seqs.tokens, device)
                .into_data()
                .convert::<f32>()
                .into_vec()
                .expect("float scores")
        }))
    }

    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }
}

/// The function type of an [`FnScorer`]: `(prompt ids, response ids) -> score`.
pub type ScoreFn = dyn Fn(&[u32], &[u32]) -> f32 + Send + Sync;

/// A reward that is a known host function of the token ids.
pub struct FnScorer {
    name: String,
    f: Box<ScoreFn>,
}

impl std::fmt::Debug for FnScorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnScorer")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl FnScorer {
    /// A scorer named `name` (its fingerprint) computing `f(prompt, response)`.
    pub fn new(
        name: impl Into<String>,
        f: impl Fn(&[u32], &[u32]) -> f32 + Send + Sync + 'static,
    ) -> Self {
        FnScorer {
            name: name.into(),
            f: Box::new(f),
        }
    }
}

impl<B: Backend> Scorer<B> for FnScorer {
    fn score(&mut self, seqs: &PackedSequences, _device: &B::Device) -> Result<Vec<f32>> {
        Ok((0..seqs.rows())
            .map(|r| {
                let (prompt, response) = seqs.row_parts(r);
                (self.f)(prompt, response)
            })
            .collect())
    }

    fn fingerprint(&self) -> String {
        format!("fn:{}", self.name)
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;
    use burn::backend::flex::FlexDevice;

    use super::*;

    /// Returns what it was given, whatever the rows.
    struct Fixed(Vec<f32>);

    impl Scorer<Flex> for Fixed {
        fn score(&mut self, _: &PackedSequences, _: &FlexDevice) -> Result<Vec<f32>> {
            Ok(self.0.clone())
        }

        fn fingerprint(&self) -> String {
            "fixed".into()
        }
    }

    #[test]
    fn checked_scores_wants_one_finite_score_per_row() {
        let seqs = PackedSequences::new(&[vec![5, 6], vec![7]], &[vec![8], vec![9, 10]], 0);
        assert_eq!(seqs.row_parts(0), (&[5u32, 6][..], &[8u32][..]));
        assert_eq!(seqs.row_parts(1), (&[7u32][..], &[9u32, 10][..]));
        let ok = checked_scores(&mut Fixed(vec![1.0, -2.0]), &seqs, &FlexDevice).unwrap();
        assert_eq!(ok, vec![1.0, -2.0]);
        for (scores, needle) in [
            (vec![1.0], "returned 1 scores for 2 rows"),
            (vec![1.0, f32::NAN], "the score of row 1 is NaN"),
            (vec![f32::INFINITY, 0.0], "the score of row 0 is inf"),
        ] {
            match checked_scores(&mut Fixed(scores), &seqs, &FlexDevice) {
                Err(crate::PpoError::Scorer {
                    source_name,
                    message,
                }) => {
                    assert_eq!(source_name, "fixed");
                    assert!(message.contains(needle), "{message}");
                }
                other => panic!("{needle}: {other:?}"),
            }
        }
        // FnScorer reads each row's prompt and response without padding.
        let mut f = FnScorer::new("lens", |p, r| (10 * p.len() + r.len()) as f32);
        let got = checked_scores::<Flex>(&mut f, &seqs, &FlexDevice).unwrap();
        assert_eq!(got, vec![21.0, 12.0]);
    }
}
