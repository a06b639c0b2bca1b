//! Deterministic sharding of a global batch across ranks, and the weight of each shard's loss
//! in the step objective, so that the sum over ranks of the weighted shard gradients equals the
//! single-worker gradient of the whole batch.
//!
//! Every rank sees the same global batch (the data order is a function of the seed and the
//! epoch only, never of the world size) and takes a contiguous block of it: rank `r` of `w`
//! gets `[⌊r n / w⌋, ⌊(r+1) n / w⌋)`. A resumed run therefore continues on the same samples,
//! whatever its world size.
//!
//! A single worker's step objective over micro-batches `k` of `n_k` pairs (`N = Σ n_k`) is
//! `Σ_k (n_k / N) L_k`, with `L_k` the micro-batch's reduced loss. Split micro-batch `k` into
//! rank shards `s` of `n_s` pairs and weight `W_s = Σ_{i∈s} w_i`:
//!
//! - [`Reduction::Mean`] (`L = (1/n) Σ w_i ℓ_i`, the reward loss): `L_k = Σ_s (n_s/n_k) L_s`,
//!   so shard `s` enters with share `n_s / N`;
//! - [`Reduction::WeightedMean`] (`L = Σ w_i ℓ_i / Σ w_i`, the DPO loss): `L_k = Σ_s (W_s/W_k)
//!   L_s`, so shard `s` enters with share `(n_k/N)(W_s/W_k)`;
//! - [`Reduction::Sum`] (`L = Σ_i ℓ_i / U`, a sum over the whole step divided by the step's
//!   total units `U = Σ_i u_i`, e.g. SFT's mean over every reply token of the step): shard `s`
//!   divides its sum by [`StepPlan::units`], and its share is `U_s / U` (informational).
//!
//! Each rank back-propagates `share × L_s`; summing the gradients over ranks (the all-reduce)
//! gives exactly the single-worker gradient.

use std::ops::Range;

/// How a loss reduces over the pairs of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduction {
    /// `(1/n) Σ_i w_i ℓ_i` (the reward model's loss).
    Mean,
    /// `Σ_i w_i ℓ_i / Σ_i w_i` (the DPO loss).
    WeightedMean,
    /// `Σ_i ℓ_i / U` over the whole step, `U` the step's units (SFT's reply tokens).
    Sum,
}

/// The block of `0..n` that rank `rank` of `world` takes: contiguous, in rank order, sizes
/// differing by at most one. The blocks of all ranks partition `0..n`.
///
/// # Panics
/// If `world == 0` or `rank >= world`.
pub fn shard_range(n: usize, rank: usize, world: usize) -> Range<usize> {
    assert!(world > 0 && rank < world, "rank {rank} of world {world}");
    (rank * n / world)..((rank + 1) * n / world)
}

/// Rank `rank`'s shard of `batch` (see [`shard_range`]): the concatenation of the shards of
/// ranks `0..world` is `batch`.
///
/// # Panics
/// If `world == 0` or `rank >= world`.
pub fn shard<T>(batch: &[T], rank: usize, world: usize) -> &[T] {
    &batch[shard_range(batch.len(), rank, world)]
}

/// One rank's shard of one micro-batch.
#[derive(Debug, Clone, PartialEq)]
pub struct MicroShard {
    /// Data-set indices of the shard's examples (may be empty).
    pub indices: Vec<usize>,
    /// Position of its first example in the step's global example order.
    pub offset: usize,
    /// The weight of the shard's reduced loss in the step objective (0 when empty).
    pub share: f64,
}

/// One rank's part of one optimizer step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepPlan {
    /// Its shard of every micro-batch, in order.
    pub micro: Vec<MicroShard>,
    /// Examples in the global step (all ranks, all micro-batches).
    pub global_examples: usize,
    /// `Σ weight(i)` over every example of the global step (the divisor of
    /// [`Reduction::Sum`]).
    pub units: f64,
}

impl StepPlan {
    /// Examples this rank processes.
    pub fn local_examples(&self) -> usize {
        self.micro.iter().map(|m| m.indices.len()).sum()
    }

    /// Sum of the shares (the fraction of the step's objective computed here).
    pub fn total_share(&self) -> f64 {
        self.micro.iter().map(|m| m.share).sum()
    }
}

/// Rank `rank` of `world`'s part of the step made of `micro_batches` (data-set indices, the
/// same on every rank). `weight(i)` is example `i`'s loss weight for
/// [`Reduction::WeightedMean`] and its units (e.g. reply tokens) for [`Reduction::Sum`].
///
/// # Panics
/// If `world == 0`, `rank >= world` or there is no example at all.
pub fn plan_step(
    micro_batches: &[Vec<usize>],
    rank: usize,
    world: usize,
    reduction: Reduction,
    weight: impl Fn(usize) -> f64,
) -> StepPlan {
    let total: usize = micro_batches.iter().map(Vec::len).sum();
    assert!(total > 0, "a step needs at least one example");
    let units: f64 = micro_batches.iter().flatten().map(|&i| weight(i)).sum();
    let mut offset = 0;
    let mut micro = Vec::with_capacity(micro_batches.len());
    for mb in micro_batches {
        let r = shard_range(mb.len(), rank, world);
        let indices = mb[r.clone()].to_vec();
        let share = if indices.is_empty() {
            0.0
        } else {
            match reduction {
                Reduction::Mean => indices.len() as f64 / total as f64,
                Reduction::Sum => {
                    let u_s: f64 = indices.iter().map(|&i| weight(i)).sum();
                    if units > 0.0 { u_s / units } else { 0.0 }
                }
                Reduction::WeightedMean => {
                    let w_k: f64 = mb.iter().map(|&i| weight(i)).sum();
                    let w_s: f64 = indices.iter().map(|&i| weight(i)).sum();
                    let frac = if w_k > 0.0 { w_s / w_k } else { 0.0 };
                    mb.len() as f64 / total as f64 * frac
                }
            }
        };
        micro.push(MicroShard {
            indices,
            offset: offset + r.start,
            share,
        });
        offset += mb.len();
    }
    StepPlan {
        micro,
        global_examples: total,
        units,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_batch_in_order() {
        for n in 0..20 {
            for world in 1..6 {
                let batch: Vec<usize> = (100..100 + n).collect();
                let joined: Vec<usize> = (0..world)
                    .flat_map(|r| shard(&batch, r, world).to_vec())
                    .collect();
                assert_eq!(joined, batch, "n {n} world {world}");
                let sizes: Vec<usize> =
                    (0..world).map(|r| shard_range(n, r, world).len()).collect();
                let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                assert!(hi - lo <= 1, "{sizes:?}");
            }
        }
    }

    #[test]
    fn shares_sum_to_one_over_ranks() {
        let mbs = vec![vec![4, 1, 7], vec![0, 2, 9, 3, 5], vec![8]];
        let w = |i: usize| 0.5 + i as f64 / 4.0;
        for reduction in [Reduction::Mean, Reduction::WeightedMean] {
            for world in 1..5 {
                let plans: Vec<StepPlan> = (0..world)
                    .map(|r| plan_step(&mbs, r, world, reduction, w))
                    .collect();
                let total: f64 = plans.iter().map(StepPlan::total_share).sum();
                assert!(
                    (total - 1.0).abs() < 1e-12,
                    "{reduction:?} {world}: {total}"
                );
                let n: usize = plans.iter().map(StepPlan::local_examples).sum();
                assert_eq!(n, 9);
                // Positions tile the global order.
                let mut pos: Vec<usize> = plans
                    .iter()
                    .flat_map(|p| {
                        p.micro
                            .iter()
                            .flat_map(|m| m.offset..m.offset + m.indices.len())
                    })
                    .collect();
                pos.sort();
                assert_eq!(pos, (0..9).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn weighted_share_is_micro_batch_share_times_weight_fraction() {
        let mbs = vec![vec![0, 1], vec![2, 3]];
        let w = |i: usize| [1.0, 3.0, 1.0, 1.0][i];
        let p0 = plan_step(&mbs, 0, 2, Reduction::WeightedMean, w);
        let p1 = plan_step(&mbs, 1, 2, Reduction::WeightedMean, w);
        assert_eq!(p0.micro[0].share, 0.5 * 0.25);
        assert_eq!(p1.micro[0].share, 0.5 * 0.75);
        assert_eq!(p0.micro[1].share, 0.25);
        let m = plan_step(&mbs, 1, 2, Reduction::Mean, w);
        assert_eq!(m.micro[0].share, 0.25);
    }

    #[test]
    fn small_micro_batches_leave_some_ranks_empty() {
        let p = plan_step(&[vec![5]], 0, 2, Reduction::Mean, |_| 1.0);
        assert!(p.micro[0].indices.is_empty());
        assert_eq!(p.micro[0].share, 0.0);
        let p = plan_step(&[vec![5]], 1, 2, Reduction::Mean, |_| 1.0);
        assert_eq!(p.micro[0].indices, vec![5]);
        assert_eq!(p.micro[0].share, 1.0);
    }
}
