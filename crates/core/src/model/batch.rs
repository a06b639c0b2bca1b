//! Host-side token batches: padding (left or right), validity masks, position ids and the
//! boolean attention mask the model consumes.

use burn::prelude::*;

use crate::error::{CoreError, Result};

/// Which side padding goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadSide {
    /// Pad after the tokens (training, scoring).
    Right,
    /// Pad before the tokens (batched generation).
    Left,
}

/// A rectangle of token ids with a 0/1 mask of real tokens, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBatch {
    /// Rows.
    pub batch: usize,
    /// Columns.
    pub seq: usize,
    /// `batch × seq` ids (pad id where the mask is 0).
    pub ids: Vec<u32>,
    /// `batch × seq` mask, 1 for a real token.
    pub mask: Vec<u8>,
}

impl TokenBatch {
    /// Pads `rows` to the longest one with `pad_id` on `side`.
    pub fn from_rows(rows: &[Vec<u32>], pad_id: u32, side: PadSide) -> Self {
        let seq = rows.iter().map(Vec::len).max().unwrap_or(0);
        Self::from_rows_to(rows, pad_id, side, seq)
    }

    /// Pads `rows` to exactly `seq` columns.
    ///
    /// # Panics
    /// If a row is longer than `seq`.
    pub fn from_rows_to(rows: &[Vec<u32>], pad_id: u32, side: PadSide, seq: usize) -> Self {
        let batch = rows.len();
        let mut ids = Vec::with_capacity(batch * seq);
        let mut mask = Vec::with_capacity(batch * seq);
        for row in rows {
            assert!(
                row.len() <= seq,
                "row of {} tokens exceeds {seq}",
                row.len()
            );
            let pad = seq - row.len();
            if side == PadSide::Left {
                ids.extend(std::iter::repeat_n(pad_id, pad));
                mask.extend(std::iter::repeat_n(0u8, pad));
            }
            ids.extend_from_slice(row);
            mask.extend(std::iter::repeat_n(1u8, row.len()));
            if side == PadSide::Right {
                ids.extend(std::iter::repeat_n(pad_id, pad));
                mask.extend(std::iter::repeat_n(0u8, pad));
            }
        }
        TokenBatch {
            batch,
            seq,
            ids,
            mask,
        }
    }

    /// Builds a batch from explicit ids and mask (as in HF `input_ids`, `attention_mask`).
    ///
    /// # Errors
    /// [`CoreError::BadInput`] when there are no rows, the rows are empty or differ in length,
    /// the mask does not match the ids, or a mask value is not 0/1.
    pub fn from_ids_and_mask(ids: &[Vec<i64>], mask: Option<&[Vec<i64>]>) -> Result<Self> {
        let batch = ids.len();
        let seq = ids.first().map_or(0, Vec::len);
        if batch == 0 {
            return Err(CoreError::BadInput("input_ids has no rows".into()));
        }
        if seq == 0 {
            return Err(CoreError::BadInput(
                "input_ids row 0 is empty: every row needs at least one token".into(),
            ));
        }
        let mut out_ids = Vec::with_capacity(batch * seq);
        let mut out_mask = Vec::with_capacity(batch * seq);
        for (r, row) in ids.iter().enumerate() {
            if row.len() != seq {
                return Err(CoreError::BadInput(format!(
                    "input_ids row {r} has {} tokens, row 0 has {seq}",
                    row.len()
                )));
            }
            for (p, &id) in row.iter().enumerate() {
                if id < 0 || id > u32::MAX as i64 {
                    return Err(CoreError::BadInput(format!(
                        "input_ids[{r}][{p}] = {id} is not a token id"
                    )));
                }
                out_ids.push(id as u32);
            }
        }
        match mask {
            Some(mask) => {
                if mask.len() != batch {
                    return Err(CoreError::BadInput(format!(
                        "attention_mask has {} rows, input_ids has {batch}",
                        mask.len()
                    )));
                }
                for (r, row) in mask.iter().enumerate() {
                    if row.len() != seq {
                        return Err(CoreError::BadInput(format!(
                            "attention_mask row {r} has {} entries, input_ids rows have {seq}",
                            row.len()
                        )));
                    }
                    for (p, &m) in row.iter().enumerate() {
                        if m != 0 && m != 1 {
                            return Err(CoreError::BadInput(format!(
                                "attention_mask[{r}][{p}] = {m}, expected 0 or 1"
                            )));
                        }
                        out_mask.push(m as u8);
                    }
                }
            }
            None => out_mask.resize(batch * seq, 1),
        }
        Ok(TokenBatch {
            batch,
            seq,
            ids: out_ids,
            mask: out_mask,
        })
    }

    /// Checks every real token is inside the vocabulary.
    ///
    /// # Errors
    /// [`CoreError::TokenOutOfVocab`] naming the first offending position.
    pub fn check_vocab(&self, vocab: usize) -> Result<()> {
        for (i, &id) in self.ids.iter().enumerate() {
            if id as usize >= vocab {
                return Err(CoreError::TokenOutOfVocab {
                    id: id as i64,
                    row: i / self.seq.max(1),
                    pos: i % self.seq.max(1),
                    vocab,
                });
            }
        }
        Ok(())
    }

    /// Row `r`'s ids.
    pub fn row(&self, r: usize) -> &[u32] {
        &self.ids[r * self.seq..(r + 1) * self.seq]
    }

    /// Row `r`'s mask.
    pub fn row_mask(&self, r: usize) -> &[u8] {
        &self.mask[r * self.seq..(r + 1) * self.seq]
    }

    /// Row `r`'s real tokens, in order.
    pub fn real_tokens(&self, r: usize) -> Vec<u32> {
        self.row(r)
            .iter()
            .zip(self.row_mask(r))
            .filter(|(_, m)| **m != 0)
            .map(|(&i, _)| i)
            .collect()
    }

    /// The ids as an Int tensor `[batch, seq]`.
    pub fn ids_tensor<B: Backend>(&self, device: &B::Device) -> Tensor<B, 2, Int> {
        let ids: Vec<i64> = self.ids.iter().map(|&i| i as i64).collect();
        Tensor::from_data(TensorData::new(ids, [self.batch, self.seq]), device)
    }

    /// The mask as a float tensor `[batch, seq]` (1.0 real, 0.0 pad).
    pub fn mask_tensor<B: Backend>(&self, device: &B::Device) -> Tensor<B, 2> {
        let m: Vec<f32> = self.mask.iter().map(|&m| m as f32).collect();
        Tensor::from_data(TensorData::new(m, [self.batch, self.seq]), device)
    }

    /// Where HF `*ForSequenceClassification` reads each row's score: the rightmost position
    /// whose id differs from `pad_id` (`argmax(arange(T) * (ids != pad))`), or the last
    /// position when there is no pad id.
    pub fn pool_indices(&self, pad_id: Option<u32>) -> Vec<usize> {
        (0..self.batch)
            .map(|r| match pad_id {
                None => self.seq.saturating_sub(1),
                Some(pad) => self.row(r).iter().rposition(|&i| i != pad).unwrap_or(0),
            })
            .collect()
    }
}

/// Position ids from a padding mask: `start[r] + cumsum(mask) - 1` on real tokens, and the
/// position of the next real token on padding (its value never matters).
pub fn positions_from_mask(mask: &[u8], batch: usize, seq: usize, start: &[i64]) -> Vec<i64> {
    let mut out = Vec::with_capacity(batch * seq);
    for r in 0..batch {
        let mut next = start[r];
        for &m in &mask[r * seq..(r + 1) * seq] {
            if m != 0 {
                out.push(next);
                next += 1;
            } else {
                out.push(next.max(0));
            }
        }
    }
    out
}

/// The boolean attention mask (`true` = masked), `[batch, seq, past + seq]` flattened.
///
/// Query `i` of the new chunk sits at key index `past + i`; it may see key `j` when
/// `j <= past + i` and key `j` is a real token. A query that would see nothing (a padding
/// position before any real token) sees itself instead, so no softmax row is empty and no NaN
/// can leak through a zero attention weight into real positions.
pub fn attention_mask(key_valid: &[Vec<bool>], past: usize, seq: usize) -> Vec<bool> {
    let k = past + seq;
    let mut out = Vec::with_capacity(key_valid.len() * seq * k);
    for valid in key_valid {
        debug_assert_eq!(valid.len(), k);
        for i in 0..seq {
            let q = past + i;
            let start = out.len();
            let mut any = false;
            for (j, &v) in valid.iter().enumerate() {
                let see = j <= q && v;
                any |= see;
                out.push(!see);
            }
            if !any {
                out[start + q] = false;
            }
        }
    }
    out
}

/// `rows` rows of `len` pseudo-random token ids in `3..vocab` (ids 0–2 are left to pad, BOS
/// and EOS), from a 64-bit LCG seeded with `seed`: the inputs of every benchmark.
///
/// # Panics
/// If `vocab <= 3`.
pub fn synthetic_rows(rows: usize, len: usize, vocab: usize, seed: u64) -> Vec<Vec<u32>> {
    assert!(
        vocab > 3,
        "a vocabulary of {vocab} has no ids past the special ones"
    );
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..rows)
        .map(|_| {
            (0..len)
                .map(|_| {
                    x = x
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    3 + ((x >> 33) as usize % (vocab - 3)) as u32
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn left_and_right_padding_give_the_same_positions_on_real_tokens() {
        let rows = vec![vec![5, 6, 7], vec![8]];
        let right = TokenBatch::from_rows(&rows, 0, PadSide::Right);
        let left = TokenBatch::from_rows(&rows, 0, PadSide::Left);
        assert_eq!(right.ids, vec![5, 6, 7, 8, 0, 0]);
        assert_eq!(left.ids, vec![5, 6, 7, 0, 0, 8]);
        let pr = positions_from_mask(&right.mask, 2, 3, &[0, 0]);
        let pl = positions_from_mask(&left.mask, 2, 3, &[0, 0]);
        assert_eq!(&pr[..3], &[0, 1, 2]);
        assert_eq!(pr[3], 0);
        assert_eq!(pl[5], 0);
    }

    #[test]
    fn mask_is_causal_and_hides_padding_but_never_empties_a_row() {
        // Row: [pad, a, b]
        let m = attention_mask(&[vec![false, true, true]], 0, 3);
        // query 0 (pad) sees only itself
        assert_eq!(&m[0..3], &[false, true, true]);
        // query 1 sees key 1 only
        assert_eq!(&m[3..6], &[true, false, true]);
        // query 2 sees keys 1, 2
        assert_eq!(&m[6..9], &[true, false, false]);
    }

    #[test]
    fn pool_index_follows_hf() {
        let b = TokenBatch::from_rows(&[vec![1, 4, 5], vec![1, 4]], 0, PadSide::Right);
        assert_eq!(b.pool_indices(Some(0)), vec![2, 1]);
        let l = TokenBatch::from_rows(&[vec![1, 4, 5], vec![1, 4]], 0, PadSide::Left);
        assert_eq!(l.pool_indices(Some(0)), vec![2, 2]);
        assert_eq!(l.pool_indices(None), vec![2, 2]);
    }
}
