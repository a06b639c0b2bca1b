//! Pairs → token rows with reply masks → summed log-probs.
//!
//! Pairs are encoded with the reward crate's [`PairCollator`] (same chat template, same
//! truncation rule: the reply's end is kept, then as much of the prompt as fits, and a BOS is
//! never dropped), so a reward model and a DPO policy trained on the same file see the same
//! tokens. A batch holds the `n` chosen rows, then the `n` rejected rows, right-padded; the
//! target mask is 1 exactly on reply tokens (the EOS included, the prompt and padding excluded).

use burn::prelude::*;
use rlhf_core::logprobs::target_logprobs;
use rlhf_core::{CausalLm, PadSide, TokenBatch};
use rlhf_reward::{EncodedPair, PairCollator, PreferencePair};

use crate::error::Result;
use crate::loss::PairLogps;

/// One pair ready for DPO: truncated rows and how many of their trailing tokens are reply.
#[derive(Debug, Clone, PartialEq)]
pub struct DpoExample {
    /// Index of the pair in its data set.
    pub index: usize,
    /// Chosen row (prompt + reply), truncated.
    pub chosen: Vec<u32>,
    /// Rejected row, truncated.
    pub rejected: Vec<u32>,
    /// Trailing reply tokens of `chosen` (after truncation).
    pub chosen_reply: usize,
    /// Trailing reply tokens of `rejected`.
    pub rejected_reply: usize,
    /// Training weight.
    pub weight: f32,
    /// Whether a row was truncated.
    pub truncated: bool,
}

/// Reply tokens left in a truncated row: the rule of `rlhf_core::text::truncate_row` keeps the
/// whole reply when it fits beside an optional BOS, else fills the row (after the BOS) with it.
fn reply_in_row(row: &[u32], reply_len: usize, bos: Option<u32>) -> usize {
    let kept_bos = usize::from(bos.is_some() && row.first() == bos.as_ref());
    reply_len.min(row.len() - kept_bos)
}

impl DpoExample {
    /// From a pair encoded by [`PairCollator::encode_pair`].
    pub fn from_encoded(e: &EncodedPair, bos: Option<u32>) -> Self {
        DpoExample {
            index: e.index,
            chosen_reply: reply_in_row(&e.chosen, e.chosen_len, bos),
            rejected_reply: reply_in_row(&e.rejected, e.rejected_len, bos),
            chosen: e.chosen.clone(),
            rejected: e.rejected.clone(),
            weight: e.weight,
            truncated: e.truncated,
        }
    }
}

/// Encodes a data set (pair `i` gets `index = i`).
///
/// # Errors
/// Invalid pairs and tokenizer errors, naming the pair.
pub fn encode_examples(
    collator: &PairCollator<'_>,
    pairs: &[PreferencePair],
) -> Result<Vec<DpoExample>> {
    let bos = collator.encoder.bos_id();
    pairs
        .iter()
        .enumerate()
        .map(|(i, p)| Ok(DpoExample::from_encoded(&collator.encode_pair(i, p)?, bos)))
        .collect()
}

/// `n` pairs as `2n` right-padded rows with reply masks.
#[derive(Debug, Clone, PartialEq)]
pub struct DpoBatch {
    /// Pairs.
    pub n: usize,
    /// Rows `0..n` chosen, `n..2n` rejected.
    pub tokens: TokenBatch,
    /// `2n × seq`, 1.0 on reply tokens.
    pub target_mask: Vec<f32>,
    /// Reply tokens per chosen row (as f32 for the loss).
    pub chosen_tokens: Vec<f32>,
    /// Reply tokens per rejected row.
    pub rejected_tokens: Vec<f32>,
    /// Pair weights.
    pub weights: Vec<f32>,
    /// Data-set indices of the pairs.
    pub indices: Vec<usize>,
}

/// Pads examples into one batch.
///
/// # Panics
/// If `examples` is empty.
pub fn collate_examples(examples: &[&DpoExample], pad_id: u32) -> DpoBatch {
    assert!(!examples.is_empty(), "cannot collate an empty batch");
    let rows: Vec<(&Vec<u32>, usize)> = examples
        .iter()
        .map(|e| (&e.chosen, e.chosen_reply))
        .chain(examples.iter().map(|e| (&e.rejected, e.rejected_reply)))
        .collect();
    let ids: Vec<Vec<u32>> = rows.iter().map(|(r, _)| (*r).clone()).collect();
    let tokens = TokenBatch::from_rows(&ids, pad_id, PadSide::Right);
    let mut target_mask = vec![0f32; tokens.batch * tokens.seq];
    for (i, (row, reply)) in rows.iter().enumerate() {
        let end = row.len();
        for t in end - reply..end {
            target_mask[i * tokens.seq + t] = 1.0;
        }
    }
    DpoBatch {
        n: examples.len(),
        tokens,
        target_mask,
        chosen_tokens: examples.iter().map(|e| e.chosen_reply as f32).collect(),
        rejected_tokens: examples.iter().map(|e| e.rejected_reply as f32).collect(),
        weights: examples.iter().map(|e| e.weight).collect(),
        indices: examples.iter().map(|e| e.index).collect(),
    }
}

impl DpoBatch {
    /// Reply token counts as tensors (`[n]` each).
    pub fn token_counts<B: Backend>(&self, device: &B::Device) -> (Tensor<B, 1>, Tensor<B, 1>) {
        let n = self.n;
        (
            Tensor::from_data(TensorData::new(self.chosen_tokens.clone(), [n]), device),
            Tensor::from_data(TensorData::new(self.rejected_tokens.clone(), [n]), device),
        )
    }

    /// Pair weights as a tensor.
    pub fn weights_tensor<B: Backend>(&self, device: &B::Device) -> Tensor<B, 1> {
        Tensor::from_data(TensorData::new(self.weights.clone(), [self.n]), device)
    }
}

/// Summed reply log-probs of every row of `batch` under `model`: one forward pass over the
/// `2n` rows, split into chosen and rejected.
pub fn batch_logps<B: Backend>(
    model: &CausalLm<B>,
    batch: &DpoBatch,
    device: &B::Device,
) -> PairLogps<B> {
    // The LM head runs only on the positions that predict reply tokens.
    let sums = target_logprobs(model, &batch.tokens, &batch.target_mask, device).sums;
    PairLogps {
        chosen: sums.clone().narrow(0, 0, batch.n),
        rejected: sums.narrow(0, batch.n, batch.n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlhf_core::text::{EncodedRow, truncate_row};

    fn check(prompt: usize, reply: usize, max: usize, bos: bool) {
        let mut ids: Vec<u32> = Vec::new();
        if bos {
            ids.push(1);
        }
        ids.extend((0..prompt).map(|i| 100 + i as u32));
        let start = ids.len();
        ids.extend((0..reply).map(|i| 1000 + i as u32));
        let row = EncodedRow {
            ids: ids.clone(),
            response_start: start,
        };
        let bos_id = bos.then_some(1);
        let t = truncate_row(&row, max, bos_id);
        let n = reply_in_row(&t, reply, bos_id);
        let expect = t.iter().filter(|&&i| i >= 1000).count();
        assert_eq!(
            n, expect,
            "prompt {prompt} reply {reply} max {max} bos {bos}: {t:?}"
        );
        // the reply tokens are the trailing ones
        assert!(t[t.len() - n..].iter().all(|&i| i >= 1000));
    }

    #[test]
    fn reply_tokens_survive_truncation_as_counted() {
        for bos in [false, true] {
            for prompt in [1, 3, 10] {
                for reply in [1, 2, 5, 12] {
                    for max in [2, 4, 8, 16, 40] {
                        check(prompt, reply, max, bos);
                    }
                }
            }
        }
    }

    #[test]
    fn batch_masks_mark_reply_tokens_only() {
        let a = DpoExample {
            index: 0,
            chosen: vec![1, 5, 6, 7],
            rejected: vec![1, 5, 8],
            chosen_reply: 2,
            rejected_reply: 1,
            weight: 1.0,
            truncated: false,
        };
        let b = collate_examples(&[&a], 0);
        assert_eq!(b.tokens.seq, 4);
        assert_eq!(b.target_mask, vec![0., 0., 1., 1., 0., 0., 1., 0.]);
        assert_eq!(b.chosen_tokens, vec![2.0]);
        assert_eq!(b.rejected_tokens, vec![1.0]);
    }
}
