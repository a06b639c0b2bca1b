//! Data-parallel optimizer steps: each rank back-propagates its shards' losses weighted by their
//! share of the step objective, the gradients (and the step's statistics) are summed over all
//! ranks in one all-reduce, clipped to the global norm, and every rank applies the same
//! optimizer step, so the replicas stay identical.
//!
//! [`dp_apply`] is the generic half (all-reduce + clip + step) that any trainer can call with
//! its own local gradients; [`dp_reward_step`] and [`dp_dpo_step`] are the reward-model and DPO
//! steps built on it, equal (within float error) to `rlhf_reward::train_step` and
//! `rlhf_policy_dpo::dpo_step` on the whole global batch.

use burn::module::AutodiffModule;
use burn::optim::{GradientsAccumulator, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use rlhf_core::{CausalLm, Precision, ScalarModel};
use rlhf_policy_dpo::{
    BatchRef, DpoBatch, DpoLossConfig, DpoStepStats, PairLogps, PairStats, batch_logps, dpo_loss,
};
use rlhf_reward::{
    LossConfig, PairBatch, StepStats, batch_scores, clip_grad_norm, global_grad_norm, reward_loss,
};

use crate::collective::Peer;
use crate::error::Result;

/// One rank's shard of one micro-batch, collated, with its place in the step.
#[derive(Debug, Clone)]
pub struct Shard<T> {
    /// The collated examples (never empty: a rank with no example in a micro-batch has no
    /// shard for it).
    pub batch: T,
    /// Position of its first example in the step's global example order (where its
    /// per-example statistics go).
    pub offset: usize,
    /// Weight of its reduced loss in the step objective ([`crate::plan_step`]).
    pub share: f64,
}

/// What [`dp_apply`] returns besides the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// Global gradient norm of the summed gradients, before clipping.
    pub grad_norm: f64,
    /// The `extras` summed over every rank.
    pub extras: Vec<f32>,
}

/// The synchronising half of a data-parallel step: sums `local_grads` (this rank's gradients,
/// already weighted by its share of the objective) and `extras` over every rank in one
/// all-reduce, clips the sum to the global norm `max_grad_norm`, and steps `optim` with `lr`.
/// Every rank gets the same gradients, hence the same parameters.
///
/// This is what a trainer with its own loss plugs into (PPO: local rollouts and advantages,
/// a loss scaled by the rank's share of the global tokens, and its KL statistics in
/// `extras`, so every rank feeds the same sums to its KL controller).
///
/// # Errors
/// The collective's errors (a lost rank, a timeout), naming the ranks.
#[allow(clippy::too_many_arguments)]
#[tracing::instrument(skip_all, fields(rank = peer.rank().rank, op))]
pub fn dp_apply<B, M, O>(
    peer: &Peer<B::InnerBackend>,
    model: M,
    optim: &mut O,
    local_grads: GradientsParams,
    extras: &[f32],
    max_grad_norm: Option<f64>,
    lr: f64,
    op: &str,
) -> Result<(M, Applied)>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
{
    let (mut grads, extras) = peer.all_reduce_grads::<B, M>(&model, local_grads, extras, op)?;
    let grad_norm = match max_grad_norm {
        Some(c) => clip_grad_norm::<B, _>(&model, &mut grads, c),
        None => global_grad_norm::<B, _>(&model, &grads),
    };
    let model = optim.step(lr, model, grads);
    Ok((model, Applied { grad_norm, extras }))
}

/// Adds one backward pass's gradients to the step's running sum (no accumulator for one).
fn accumulate<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    grads: &mut Option<GradientsAccumulator<M>>,
    single: &mut Option<GradientsParams>,
    g: GradientsParams,
) {
    if single.is_none() && grads.is_none() {
        *single = Some(g);
        return;
    }
    let acc = grads.get_or_insert_with(GradientsAccumulator::new);
    if let Some(first) = single.take() {
        acc.accumulate(model, first);
    }
    acc.accumulate(model, g);
}

fn host(t: Tensor<impl Backend, 1>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

/// The step objective's value and per-pair statistics gathered through the all-reduce: slot
/// 0 is the loss, then `k` arrays of `n` values, each rank writing its pairs' positions.
struct Gather {
    n: usize,
    v: Vec<f32>,
}

impl Gather {
    fn new(n: usize, arrays: usize, user: &[f32]) -> Self {
        let mut v = vec![0.0; 1 + arrays * n];
        v.extend_from_slice(user);
        Gather { n, v }
    }

    fn add_loss(&mut self, x: f64) {
        self.v[0] += x as f32;
    }

    fn put(&mut self, array: usize, offset: usize, xs: &[f32]) {
        let s = 1 + array * self.n + offset;
        self.v[s..s + xs.len()].copy_from_slice(xs);
    }

    fn array(v: &[f32], n: usize, array: usize) -> Vec<f32> {
        v[1 + array * n..1 + (array + 1) * n].to_vec()
    }
}

/// A data-parallel reward-model step: this rank's `shards` (its part of every micro-batch of
/// the step, see [`crate::plan_step`] with [`crate::Reduction::Mean`]) go through
/// [`reward_loss`] weighted by their shares, then [`dp_apply`]. The returned [`StepStats`]
/// are global (every pair of the step, in step order) and identical on every rank; `extras`
/// (e.g. a stop flag) come back summed over ranks.
///
/// With one rank and one shard of share 1 this is `rlhf_reward::train_step`.
///
/// # Errors
/// The collective's errors.
#[allow(clippy::too_many_arguments)]
pub fn dp_reward_step<B, O>(
    peer: &Peer<B::InnerBackend>,
    model: ScalarModel<B>,
    optim: &mut O,
    shards: &[Shard<PairBatch>],
    global_pairs: usize,
    loss_cfg: &LossConfig,
    max_grad_norm: Option<f64>,
    lr: f64,
    extras: &[f32],
    precision: Precision,
    device: &B::Device,
) -> Result<(ScalarModel<B>, StepStats, Vec<f32>)>
where
    B: AutodiffBackend,
    O: Optimizer<ScalarModel<B>, B>,
{
    let mut gather = Gather::new(global_pairs, 2, extras);
    let (mut acc, mut single) = (None, None);
    for s in shards {
        let b = &s.batch;
        let scores = batch_scores(&precision.compute(model.clone()), b, device);
        let chosen = scores.clone().narrow(0, 0, b.n);
        let rejected = scores.clone().narrow(0, b.n, b.n);
        let w = Tensor::<B, 1>::from_data(TensorData::new(b.weights.clone(), [b.n]), device);
        let out = reward_loss(chosen, rejected, Some(w), loss_cfg);
        let loss = out.loss.mul_scalar(s.share);
        let h = host(scores);
        gather.put(0, s.offset, &h[..b.n]);
        gather.put(1, s.offset, &h[b.n..]);
        gather.add_loss(loss.clone().into_scalar().elem::<f64>());
        let g = GradientsParams::from_grads(loss.backward(), &model);
        accumulate(&model, &mut acc, &mut single, g);
    }
    let grads = single
        .or_else(|| acc.map(|mut a| a.grads()))
        .unwrap_or_default();
    let op = "reward gradient all-reduce";
    let (model, applied) = dp_apply(peer, model, optim, grads, &gather.v, max_grad_norm, lr, op)?;
    let v = &applied.extras;
    let stats = StepStats {
        loss: v[0] as f64,
        grad_norm: applied.grad_norm,
        chosen: Gather::array(v, global_pairs, 0),
        rejected: Gather::array(v, global_pairs, 1),
    };
    let user = v[1 + 2 * global_pairs..].to_vec();
    Ok((model, stats, user))
}

/// A data-parallel DPO step: this rank's shards (see [`crate::plan_step`] with
/// [`crate::Reduction::WeightedMean`], the DPO loss being a weighted mean) with their reference
/// log-probs go through [`dpo_loss`] weighted by their shares, then [`dp_apply`]. Statistics
/// are global and identical on every rank.
///
/// With one rank and one shard of share 1 this is `rlhf_policy_dpo::dpo_step`.
///
/// # Errors
/// The collective's errors.
#[allow(clippy::too_many_arguments)]
pub fn dp_dpo_step<B, O>(
    peer: &Peer<B::InnerBackend>,
    policy: CausalLm<B>,
    optim: &mut O,
    shards: &[Shard<(DpoBatch, BatchRef)>],
    global_pairs: usize,
    loss_cfg: &DpoLossConfig,
    max_grad_norm: Option<f64>,
    lr: f64,
    extras: &[f32],
    precision: Precision,
    device: &B::Device,
) -> Result<(CausalLm<B>, DpoStepStats, Vec<f32>)>
where
    B: AutodiffBackend,
    O: Optimizer<CausalLm<B>, B>,
{
    let mut gather = Gather::new(global_pairs, 4, extras);
    let (mut acc, mut single) = (None, None);
    for s in shards {
        let (batch, reference) = &s.batch;
        let n = batch.n;
        let lp = batch_logps(&precision.compute(policy.clone()), batch, device);
        let (nc, nr) = batch.token_counts::<B>(device);
        let refs = PairLogps {
            chosen: Tensor::from_data(TensorData::new(reference.chosen.clone(), [n]), device),
            rejected: Tensor::from_data(TensorData::new(reference.rejected.clone(), [n]), device),
        };
        let out = dpo_loss(
            lp.clone(),
            refs,
            nc,
            nr,
            Some(batch.weights_tensor(device)),
            loss_cfg,
        );
        let loss = out.loss.mul_scalar(s.share);
        gather.put(0, s.offset, &host(out.chosen_rewards));
        gather.put(1, s.offset, &host(out.rejected_rewards));
        gather.put(2, s.offset, &host(lp.chosen.detach()));
        gather.put(3, s.offset, &host(lp.rejected.detach()));
        gather.add_loss(loss.clone().into_scalar().elem::<f64>());
        let g = GradientsParams::from_grads(loss.backward(), &policy);
        accumulate(&policy, &mut acc, &mut single, g);
    }
    let grads = single
        .or_else(|| acc.map(|mut a| a.grads()))
        .unwrap_or_default();
    let op = "DPO gradient all-reduce";
    let (policy, applied) = dp_apply(peer, policy, optim, grads, &gather.v, max_grad_norm, lr, op)?;
    let v = &applied.extras;
    let stats = DpoStepStats {
        loss: v[0] as f64,
        grad_norm: applied.grad_norm,
        pairs: PairStats {
            chosen_rewards: Gather::array(v, global_pairs, 0),
            rejected_rewards: Gather::array(v, global_pairs, 1),
            logps_chosen: Gather::array(v, global_pairs, 2),
            logps_rejected: Gather::array(v, global_pairs, 3),
        },
    };
    let user = v[1 + 4 * global_pairs..].to_vec();
    Ok((policy, stats, user))
}
