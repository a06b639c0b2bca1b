//! How prompts and responses are laid out for the forward passes of a rollout, and the typed
//! masks that say which positions count.
//!
//! A [`PackedSequences`] row is `[left padding | prompt | response | right padding]`: prompts
//! are left-padded to a common width `P`, responses right-padded to `R` (TRL's query/response
//! layout). Position ids come from the padding mask (`rlhf_core::positions_from_mask`), so a
//! row's real tokens get the same positions whatever its padding.
//!
//! Response token `t` of a row sits at column `P + t`; the logits and critic values that
//! belong to it (the state *before* it) sit at column `P + t − 1`. Three masks follow:
//!
//! - the attention mask: the `TokenBatch` mask (1 on real prompt and response tokens);
//! - the [`ResponseMask`] `[rows, R]`: 1 on the response's tokens only (the PPO losses, KL and
//!   entropy average over it);
//! - the reward position: the **last real token** of each row ([`last_real_indices`]), where
//!   the reward model is read and where the sequence reward is added. It is found from the
//!   mask, never from the pad id, so right- and left-padded rows (and rows whose EOS equals the
//!   pad id) are read at the same token.

use burn::prelude::*;
use rlhf_core::logprobs::gather_logprobs;
use rlhf_core::{CausalLm, PadSide, TokenBatch};

/// Which response positions are real: row `r` has `lens[r]` real tokens out of `width`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseMask {
    /// Real response tokens per row.
    pub lens: Vec<usize>,
    /// Columns (the longest response of the batch).
    pub width: usize,
}

impl ResponseMask {
    /// The mask as `rows × width` floats (1.0 real, 0.0 padding), row-major.
    pub fn to_vec(&self) -> Vec<f32> {
        self.lens
            .iter()
            .flat_map(|&l| (0..self.width).map(move |t| if t < l { 1.0 } else { 0.0 }))
            .collect()
    }

    /// The mask as a `[rows, width]` tensor.
    pub fn tensor<B: Backend>(&self, device: &B::Device) -> Tensor<B, 2> {
        Tensor::from_data(
            TensorData::new(self.to_vec(), [self.lens.len(), self.width]),
            device,
        )
    }

    /// Number of real tokens.
    pub fn count(&self) -> usize {
        self.lens.iter().sum()
    }
}

/// Prompts (left-padded) followed by their responses (right-padded), ready for one forward
/// pass of the policy, the reference, the critic or the reward model.
#[derive(Debug, Clone, PartialEq)]
pub struct PackedSequences {
    /// `[rows, P + R]` ids and attention mask.
    pub tokens: TokenBatch,
    /// `P`: the longest prompt.
    pub prompt_width: usize,
    /// `R`: the longest response.
    pub response_width: usize,
    /// Real prompt tokens per row.
    pub prompt_lens: Vec<usize>,
    /// Real response tokens per row.
    pub response_lens: Vec<usize>,
}

impl PackedSequences {
    /// Packs `prompts[i] ++ responses[i]` for every row.
    ///
    /// # Panics
    /// If the two slices differ in length or a prompt is empty (a response needs a state to
    /// be predicted from).
    pub fn new(prompts: &[Vec<u32>], responses: &[Vec<u32>], pad_id: u32) -> Self {
        assert_eq!(prompts.len(), responses.len(), "one response per prompt");
        assert!(
            prompts.iter().all(|p| !p.is_empty()),
            "prompts must not be empty"
        );
        let p = TokenBatch::from_rows(prompts, pad_id, PadSide::Left);
        let r = TokenBatch::from_rows(responses, pad_id, PadSide::Right);
        let (rows, pw, rw) = (prompts.len(), p.seq, r.seq);
        let mut ids = Vec::with_capacity(rows * (pw + rw));
        let mut mask = Vec::with_capacity(rows * (pw + rw));
        for i in 0..rows {
            ids.extend_from_slice(p.row(i));
            ids.extend_from_slice(r.row(i));
            mask.extend_from_slice(p.row_mask(i));
            mask.extend_from_slice(r.row_mask(i));
        }
        PackedSequences {
            tokens: TokenBatch {
                batch: rows,
                seq: pw + rw,
                ids,
                mask,
            },
            prompt_width: pw,
            response_width: rw,
            prompt_lens: prompts.iter().map(Vec::len).collect(),
            response_lens: responses.iter().map(Vec::len).collect(),
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.tokens.batch
    }

    /// Row `r`'s prompt and response ids, padding removed: what a scorer of row `r` reads.
    ///
    /// # Panics
    /// If `r >= self.rows()`.
    pub fn row_parts(&self, r: usize) -> (&[u32], &[u32]) {
        let row = self.tokens.row(r);
        let p = self.prompt_width;
        (
            &row[p - self.prompt_lens[r]..p],
            &row[p..p + self.response_lens[r]],
        )
    }

    /// The response mask `[rows, R]`.
    pub fn response_mask(&self) -> ResponseMask {
        ResponseMask {
            lens: self.response_lens.clone(),
            width: self.response_width,
        }
    }

    /// The response ids `[rows, R]` (the pad id past each response), row-major.
    pub fn response_ids(&self) -> Vec<u32> {
        let (p, t) = (self.prompt_width, self.tokens.seq);
        (0..self.rows())
            .flat_map(|r| self.tokens.ids[r * t + p..(r + 1) * t].iter().copied())
            .collect()
    }

    /// The rows `rows` (in that order) with the same widths.
    pub fn select(&self, rows: &[usize]) -> PackedSequences {
        let t = self.tokens.seq;
        let mut ids = Vec::with_capacity(rows.len() * t);
        let mut mask = Vec::with_capacity(rows.len() * t);
        for &r in rows {
            ids.extend_from_slice(self.tokens.row(r));
            mask.extend_from_slice(self.tokens.row_mask(r));
        }
        PackedSequences {
            tokens: TokenBatch {
                batch: rows.len(),
                seq: t,
                ids,
                mask,
            },
            prompt_width: self.prompt_width,
            response_width: self.response_width,
            prompt_lens: rows.iter().map(|&r| self.prompt_lens[r]).collect(),
            response_lens: rows.iter().map(|&r| self.response_lens[r]).collect(),
        }
    }

    /// Log-probs of the response tokens under `logits` of the whole rows, at `temperature`
    /// (`log softmax(logits / T)`, the distribution the tokens were sampled from).
    ///
    /// # Shapes
    /// - `logits`: `[rows, P + R, vocab]`
    /// - output: `[rows, R]` (values past a response's end are meaningless: mask them)
    pub fn response_logprobs<B: Backend>(
        &self,
        logits: Tensor<B, 3>,
        temperature: f64,
        device: &B::Device,
    ) -> Tensor<B, 2> {
        let logits = self.response_logits(logits, temperature);
        gather_logprobs(logits, self.response_ids_tensor(device))
    }

    /// The logits `model` gives each response token, divided by `temperature`, computed with
    /// the LM head applied to the `R` response states only (the trunk still sees whole rows):
    /// the head and the log-softmax are the most expensive part of a small model's pass, and
    /// the prompt positions do not need them.
    ///
    /// # Shapes
    /// - output: `[rows, R, vocab]`
    pub fn policy_response_logits<B: Backend>(
        &self,
        model: &CausalLm<B>,
        temperature: f64,
        device: &B::Device,
    ) -> Tensor<B, 3> {
        let h = model.trunk.forward(&self.tokens, None, device);
        let [b, _, d] = h.dims();
        let (p, r) = (self.prompt_width, self.response_width);
        let l = model.head(h.slice([0..b, p - 1..p + r - 1, 0..d]));
        if temperature == 1.0 {
            l
        } else {
            l / temperature
        }
    }

    /// The logits that predict each response token, divided by `temperature`.
    ///
    /// # Shapes
    /// - `logits`: `[rows, P + R, vocab]` → `[rows, R, vocab]`
    pub fn response_logits<B: Backend>(
        &self,
        logits: Tensor<B, 3>,
        temperature: f64,
    ) -> Tensor<B, 3> {
        let [b, _, v] = logits.dims();
        let (p, r) = (self.prompt_width, self.response_width);
        let l = logits.slice([0..b, p - 1..p + r - 1, 0..v]);
        if temperature == 1.0 {
            l
        } else {
            l / temperature
        }
    }

    /// The response ids as an Int tensor `[rows, R]`.
    pub fn response_ids_tensor<B: Backend>(&self, device: &B::Device) -> Tensor<B, 2, Int> {
        let ids: Vec<i64> = self.response_ids().into_iter().map(i64::from).collect();
        Tensor::from_data(
            TensorData::new(ids, [self.rows(), self.response_width]),
            device,
        )
    }

    /// Per-position values of the whole rows reduced to the states before each response
    /// token (the critic's `V(s_t)`).
    ///
    /// # Shapes
    /// - `values`: `[rows, P + R]` → `[rows, R]`
    pub fn response_values<B: Backend>(&self, values: Tensor<B, 2>) -> Tensor<B, 2> {
        let b = values.dims()[0];
        let (p, r) = (self.prompt_width, self.response_width);
        values.slice([0..b, p - 1..p + r - 1])
    }
}

/// The column of each row's last real token (mask 1), `None` for an all-padding row. Works
/// for left, right or mixed padding.
pub fn last_real_indices(batch: &TokenBatch) -> Vec<Option<usize>> {
    (0..batch.batch)
        .map(|r| batch.row_mask(r).iter().rposition(|&m| m != 0))
        .collect()
}

/// Values at each row's last real token.
///
/// # Shapes
/// - `values`: `[rows, seq]` (e.g. `ScalarModel::forward_all`) → `[rows]`
///
/// # Panics
/// If a row has no real token.
pub fn gather_last_real<B: Backend>(
    values: Tensor<B, 2>,
    batch: &TokenBatch,
    device: &B::Device,
) -> Tensor<B, 1> {
    let idx: Vec<i64> = last_real_indices(batch)
        .into_iter()
        .enumerate()
        .map(|(r, i)| i.unwrap_or_else(|| panic!("row {r} has no real token")) as i64)
        .collect();
    let b = batch.batch;
    let idx = Tensor::<B, 2, Int>::from_data(TensorData::new(idx, [b, 1]), device);
    values.gather(1, idx).reshape([b])
}

/// A `[rows, width]` tensor back to one vector per row, cut at `lens[r]`.
pub fn rows_to_vecs<B: Backend>(t: Tensor<B, 2>, lens: &[usize]) -> Vec<Vec<f32>> {
    let [_, w] = t.dims();
    let flat: Vec<f32> = t
        .into_data()
        .convert::<f32>()
        .into_vec()
        .expect("float tensor");
    lens.iter()
        .enumerate()
        .map(|(r, &l)| flat[r * w..r * w + l].to_vec())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_left_padded_prompts_and_right_padded_responses() {
        let s = PackedSequences::new(&[vec![5, 6], vec![7]], &[vec![8], vec![9, 10, 11]], 0);
        assert_eq!((s.prompt_width, s.response_width), (2, 3));
        assert_eq!(s.tokens.ids, vec![5, 6, 8, 0, 0, 0, 7, 9, 10, 11]);
        assert_eq!(s.tokens.mask, vec![1, 1, 1, 0, 0, 0, 1, 1, 1, 1]);
        assert_eq!(s.response_ids(), vec![8, 0, 0, 9, 10, 11]);
        assert_eq!(
            s.response_mask().to_vec(),
            vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0]
        );
        assert_eq!(last_real_indices(&s.tokens), vec![Some(2), Some(4)]);
        let one = s.select(&[1]);
        assert_eq!(one.tokens.ids, vec![0, 7, 9, 10, 11]);
        assert_eq!(one.response_lens, vec![3]);
    }

    #[test]
    fn last_real_index_ignores_the_pad_id() {
        // EOS == pad == 0 at the end of row 0: the mask, not the id, decides.
        let b = TokenBatch {
            batch: 2,
            seq: 4,
            ids: vec![3, 4, 0, 0, 0, 0, 3, 4],
            mask: vec![1, 1, 1, 0, 0, 0, 1, 1],
        };
        assert_eq!(last_real_indices(&b), vec![Some(2), Some(3)]);
    }
}
