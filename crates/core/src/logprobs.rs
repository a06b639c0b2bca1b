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
    let [b, t, _] = logits.dims();
    // The shift cancels in value and gradient, so it needs no gradient of its own.
    let max = logits.clone().max_dim(2).detach();
    let lse = (logits.clone() - max.clone()).exp().sum_dim(2).log() + max;
    let picked = logits.gather(2, targets.unsqueeze_dim::<3>(2));
    (picked - lse).reshape([b, t])
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
