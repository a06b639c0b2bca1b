//! [`RuleScorer`]: a reward computed by a rule from the prompt and the reply's text, the
//! RLVR-style verifiable reward (a gold judge that knows each prompt's answer, an exact-match
//! checker).
//!
//! The scorer sees token ids; it finds each row's prompt by its ids among the prompts it was
//! given (the PPO prompts, encoded as the policy sees them) and calls the rule with that
//! prompt's id and the decoded reply. A row whose prompt is not among them is an error, never a
//! silent 0; two prompts that encode to the same ids are fine as long as the rule scores the
//! reply the same for both.

use std::collections::HashMap;

use burn::prelude::Backend;

use crate::data::EncodedPrompt;
use crate::error::{PpoError, Result};
use crate::frozen::ids_hash;
use crate::remote::Decoder;
use crate::scorer::Scorer;
use crate::sequences::PackedSequences;

/// The rule of a [`RuleScorer`]: `(prompt id, reply text) -> score`, or what went wrong.
pub type RuleFn = dyn Fn(&str, &str) -> std::result::Result<f32, String> + Send + Sync;

/// A reward that is a rule of the prompt id and the reply text (module docs).
pub struct RuleScorer {
    name: String,
    by_ids: HashMap<Vec<u32>, Vec<String>>,
    decode: Box<Decoder>,
    rule: Box<RuleFn>,
}

impl std::fmt::Debug for RuleScorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleScorer")
            .field("name", &self.name)
            .field("prompts", &self.by_ids.len())
            .finish_non_exhaustive()
    }
}

impl RuleScorer {
    /// A scorer named `name` (its fingerprint is `rule:{name}`: make it change when the rule
    /// does) that knows `prompts`, decodes replies with `decode` and scores them with `rule`.
    pub fn new(
        name: impl Into<String>,
        prompts: &[EncodedPrompt],
        decode: impl Fn(&[u32]) -> rlhf_core::Result<String> + Send + Sync + 'static,
        rule: impl Fn(&str, &str) -> std::result::Result<f32, String> + Send + Sync + 'static,
    ) -> Self {
        let mut by_ids: HashMap<Vec<u32>, Vec<String>> = HashMap::new();
        for p in prompts {
            by_ids.entry(p.ids.clone()).or_default().push(p.id.clone());
        }
        RuleScorer {
            name: name.into(),
            by_ids,
            decode: Box::new(decode),
            rule: Box::new(rule),
        }
    }

    fn fail(&self, message: String) -> PpoError {
        PpoError::Scorer {
            source_name: format!("rule:{}", self.name),
            message,
        }
    }

    fn score_row(&self, r: usize, prompt: &[u32], response: &[u32]) -> Result<f32> {
        let Some(ids) = self.by_ids.get(prompt) else {
            return Err(self.fail(format!(
                "row {r}: its prompt ({} tokens, ids hash {}) is not one of the {} prompts the \
                 rule was given, so it has no answer to check against",
                prompt.len(),
                ids_hash(prompt),
                self.by_ids.values().map(Vec::len).sum::<usize>()
            )));
        };
        let text = (self.decode)(response)
            .map_err(|e| self.fail(format!("row {r}: decoding the reply: {e}")))?;
        let mut first: Option<(&str, f32)> = None;
        for id in ids {
            let s = (self.rule)(id, &text).map_err(|m| self.fail(format!("prompt `{id}`: {m}")))?;
            if !s.is_finite() {
                return Err(self.fail(format!(
                    "prompt `{id}`: the rule gave {s}, expected a finite number"
                )));
            }
            match first {
                None => first = Some((id, s)),
                Some((a, sa)) if sa != s => {
                    return Err(self.fail(format!(
                        "prompts `{a}` and `{id}` encode to the same tokens but the rule scores \
                         the reply {sa} and {s}: give them different text or one id"
                    )));
                }
                Some(_) => {}
            }
        }
        Ok(first.expect("every entry holds an id").1)
    }
}

impl<B: Backend> Scorer<B> for RuleScorer {
    fn score(&mut self, seqs: &PackedSequences, _device: &B::Device) -> Result<Vec<f32>> {
        (0..seqs.rows())
            .map(|r| {
                let (prompt, response) = seqs.row_parts(r);
                self.score_row(r, prompt, response)
            })
            .collect()
    }

    fn fingerprint(&self) -> String {
        format!("rule:{}", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::backend::flex::FlexDevice;

    fn prompt(id: &str, ids: &[u32]) -> EncodedPrompt {
        EncodedPrompt {
            id: id.into(),
            ids: ids.to_vec(),
        }
    }

    fn text(ids: &[u32]) -> rlhf_core::Result<String> {
        Ok(ids.iter().map(|&i| char::from(b'a' + i as u8)).collect())
    }

    #[test]
    fn rows_are_scored_by_their_prompt_and_unknown_prompts_are_errors() {
        let prompts = [
            prompt("q1", &[1, 2]),
            prompt("q2", &[3]),
            prompt("q2-copy", &[3]),
        ];
        // The answer of q1 is "b", of q2 "d"; the copy of q2 has the same answer.
        let answer = |id: &str| if id == "q1" { "b" } else { "d" };
        let mut s = RuleScorer::new("letters", &prompts, text, move |id, reply| {
            Ok(f32::from(u8::from(reply == answer(id))))
        });
        let seqs = PackedSequences::new(
            &[vec![1, 2], vec![3], vec![1, 2]],
            &[vec![1], vec![3], vec![3]],
            0,
        );
        let got = Scorer::<Flex>::score(&mut s, &seqs, &FlexDevice).unwrap();
        assert_eq!(got, vec![1.0, 1.0, 0.0]);
        assert_eq!(Scorer::<Flex>::fingerprint(&s), "rule:letters");

        let unknown = PackedSequences::new(&[vec![9, 9]], &[vec![1]], 0);
        let e = Scorer::<Flex>::score(&mut s, &unknown, &FlexDevice)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("rule:letters")
                && e.contains("row 0")
                && e.contains("not one of the 3 prompts"),
            "{e}"
        );

        // Two ids with the same tokens but different answers cannot be told apart.
        let clash = [prompt("x", &[5]), prompt("y", &[5])];
        let mut s = RuleScorer::new("clash", &clash, text, |id, _| {
            Ok(if id == "x" { 1.0 } else { 2.0 })
        });
        let seqs = PackedSequences::new(&[vec![5]], &[vec![1]], 0);
        let e = Scorer::<Flex>::score(&mut s, &seqs, &FlexDevice)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`x` and `y` encode to the same tokens"), "{e}");

        // The rule's own errors name the prompt.
        let mut s = RuleScorer::new("err", &clash[..1], text, |_, _| Err("no key".into()));
        let e = Scorer::<Flex>::score(&mut s, &seqs, &FlexDevice)
            .unwrap_err()
            .to_string();
        assert!(e.contains("prompt `x`: no key"), "{e}");
    }
}
