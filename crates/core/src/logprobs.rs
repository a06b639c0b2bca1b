//! Token log-probabilities of given sequences: the quantity DPO, PPO and evaluation share.

use burn::prelude::*;

/// Per-token log-probs of a batch and their masked sums.
#[derive(Debug, Clone)]
pub struct TokenLogprobs<B: Backend> {
    /// `[batch, seq-1]`: `log p(ids[:, t] | ids[:, <t])` for t = 1.., zero where masked.
    pub per_token: Tensor<B, 2>,
    /// `[batch, seq-1]`: 1.0 where the target token counts.
    pub mask: Tensor<B, 2>,
    /// `[batch]`: row sums of `per_token`.
    pub sums: Tensor<B, 1>,
}

/// Gathers `log_softmax(logits)[target]` without materialising the whole log-softmax.
///
/// # Shapes
/// - `logits`: `[batch, seq, vocab]` (f32)
/// - `targets`: `[batch, seq]`
/// - output: `[batch, seq]`
pub fn gather_logprobs<B: Backend>(
    logits: Tensor<B, 3>,
    targets: Tensor<B, 2, Int>,
) -> Tensor<B, 2> {
    crate::kernels::target_logprobs(logits, targets)
}

/// Log-probs of every next token: position `t` of the output scores `ids[:, t+1]` given the
/// logits at `t`. `target_mask` (`[batch, seq]`, 1.0 = count) selects which *targets* count:
/// pass the padding mask for whole sequences, or a response mask for DPO/PPO.
///
/// # Shapes
/// - `logits`: `[batch, seq, vocab]`
/// - `ids`, `target_mask`: `[batch, seq]`
pub fn sequence_logprobs<B: Backend>(
    logits: Tensor<B, 3>,
    ids: Tensor<B, 2, Int>,
    target_mask: Tensor<B, 2>,
) -> TokenLogprobs<B> {
    let [b, t, v] = logits.dims();
    let logits = logits.slice([0..b, 0..t - 1, 0..v]);
    let targets = ids.slice([0..b, 1..t]);
    let mask = target_mask.slice([0..b, 1..t]);
    let per_token = gather_logprobs(logits, targets) * mask.clone();
    let sums = per_token.clone().sum_dim(1).reshape([b]);
    TokenLogprobs {
        per_token,
        mask,
        sums,
    }
}

/// Mean negative log-likelihood over masked targets (the SFT / NTP loss).
///
/// # Shapes
/// As [`sequence_logprobs`]; output `[1]`.
pub fn nll_loss<B: Backend>(
    logits: Tensor<B, 3>,
    ids: Tensor<B, 2, Int>,
    target_mask: Tensor<B, 2>,
) -> Tensor<B, 1> {
    let lp = sequence_logprobs(logits, ids, target_mask);
    let n = lp.mask.clone().sum().clamp_min(1.0);
    lp.per_token.sum().neg() / n
}

/// Entropy of the next-token distribution at each position.
///
/// # Shapes
/// - `logits`: `[batch, seq, vocab]` → `[batch, seq]`
pub fn entropy<B: Backend>(logits: Tensor<B, 3>) -> Tensor<B, 2> {
    let [b, t, _] = logits.dims();
    let logp = burn::tensor::activation::log_softmax(logits, 2);
    (logp.clone().exp() * logp).sum_dim(2).neg().reshape([b, t])
}

/// Log-probs of the masked targets only, with the LM head applied only where a target counts.
#[derive(Debug, Clone)]
pub struct TargetLogprobs<B: Backend> {
    /// `[batch]`: per row, the sum of its targets' log-probs.
    pub sums: Tensor<B, 1>,
    /// `[n]`: the log-prob of each counted target, rows in order, positions ascending.
    pub per_target: Tensor<B, 1>,
    /// `n` entries: the row of each counted target.
    pub rows: Vec<usize>,
    /// `n` entries: the position (in `ids`) of each counted target.
    pub positions: Vec<usize>,
}

/// The same quantity as [`sequence_logprobs`] for a [`crate::CausalLm`], computed only where
/// `target_mask` (host, `[batch × seq]` row-major, 1.0 = count) marks a target: the trunk runs
/// on the whole batch, but the LM head and the log-softmax only on the hidden states that
/// predict a counted token. With replies that are half of each row this halves the cost of the
/// vocabulary-sized part of the forward and backward passes (what dominates small models).
///
/// A target at position 0 has no prediction and is not counted.
///
/// # Panics
/// If `target_mask` does not have `batch × seq` entries.
pub fn target_logprobs<B: Backend>(
    model: &crate::CausalLm<B>,
    batch: &crate::TokenBatch,
    target_mask: &[f32],
    device: &B::Device,
) -> TargetLogprobs<B> {
    let (b, t) = (batch.batch, batch.seq);
    assert_eq!(target_mask.len(), b * t, "target mask must be batch × seq");
    let mut src = Vec::new();
    let mut tgt = Vec::new();
    let mut rows = Vec::new();
    let mut positions = Vec::new();
    for r in 0..b {
        for p in 1..t {
            if target_mask[r * t + p] != 0.0 {
                src.push((r * t + p - 1) as i64);
                tgt.push(batch.ids[r * t + p] as i64);
                rows.push(r);
                positions.push(p);
            }
        }
    }
    let h = model.trunk.forward(batch, None, device);
    let [_, _, d] = h.dims();
    let n = src.len();
    if n == 0 {
        return TargetLogprobs {
            sums: Tensor::zeros([b], device),
            per_target: Tensor::zeros([0], device),
            rows,
            positions,
        };
    }
    let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(src, [n]), device);
    let hs = h.reshape([b * t, d]).select(0, idx).reshape([1, n, d]);
    let logits = model.head(hs);
    let targets = Tensor::<B, 2, Int>::from_data(TensorData::new(tgt, [1, n]), device);
    let per_target = gather_logprobs(logits, targets).reshape([n]);
    // Per-row sums as a [b, n] 0/1 matrix times the per-target column.
    let mut seg = vec![0f32; b * n];
    for (k, &r) in rows.iter().enumerate() {
        seg[r * n + k] = 1.0;
    }
    let seg = Tensor::<B, 2>::from_data(TensorData::new(seg, [b, n]), device);
    let sums = seg.matmul(per_target.clone().reshape([n, 1])).reshape([b]);
    TargetLogprobs {
        sums,
        per_target,
        rows,
        positions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Cpu, FlexDevice};
    use crate::{CausalLm, ModelConfig, PadSide, TokenBatch};

    #[test]
    fn target_logprobs_equal_the_full_sequence_logprobs() {
        let cfg = ModelConfig::tiny_llama(64);
        let model = CausalLm::<Cpu>::init(&cfg, 0.05, 4, &FlexDevice);
        let rows = vec![vec![1u32, 5, 9, 12, 7, 2], vec![1, 8, 3, 2]];
        let batch = TokenBatch::from_rows(&rows, 0, PadSide::Right);
        let (b, t) = (batch.batch, batch.seq);
        let mut mask = vec![0f32; b * t];
        for p in [3, 4, 5] {
            mask[p] = 1.0;
        }
        for p in [0, 2, 3] {
            mask[t + p] = 1.0;
        }
        let fast = target_logprobs(&model, &batch, &mask, &FlexDevice);
        let logits = model.forward(&batch, &FlexDevice);
        let ids: Vec<i64> = batch.ids.iter().map(|&i| i as i64).collect();
        let ids = Tensor::<Cpu, 2, Int>::from_data(TensorData::new(ids, [b, t]), &FlexDevice);
        let m = Tensor::<Cpu, 2>::from_data(TensorData::new(mask.clone(), [b, t]), &FlexDevice);
        let slow = sequence_logprobs(logits, ids, m);
        let a: Vec<f32> = fast.sums.into_data().iter::<f32>().collect();
        let e: Vec<f32> = slow.sums.into_data().iter::<f32>().collect();
        for (x, y) in a.iter().zip(&e) {
            assert!((x - y).abs() < 1e-5, "{a:?} vs {e:?}");
        }
        // position 0 of row 1 has no prediction: 5 counted targets
        assert_eq!(fast.rows, vec![0, 0, 0, 1, 1]);
        assert_eq!(fast.positions, vec![3, 4, 5, 2, 3]);
    }
}
