//! Routing to the fused kernels on the Flex backend: plain `Flex` (inference) gets the forward
//! kernel, `Autodiff<Flex>` (training) a custom autodiff op whose backward pass is the matching
//! kernel. Any other backend (CUDA) is told "not here" and takes the generic burn path.
//!
//! The backend is identified by `TypeId`, so model code stays generic over `B: Backend`.

use std::any::{Any, TypeId};

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::backend::BackendTypes;
use burn::tensor::{DType, Shape, TensorMetadata, TensorPrimitive};

use super::cpu::{self, Heads, Rotary};

type Ad = Autodiff<Flex>;
type AdTensor = <Ad as BackendTypes>::FloatTensorPrimitive;

/// A float tensor of one of the two Flex backends, unwrapped.
pub(super) enum Route {
    /// `Flex`: no graph.
    Plain(FlexTensor),
    /// `Autodiff<Flex>`: the Flex tensor inside plus its graph node.
    Tracked(AdTensor),
}

fn cast<T: 'static, U: 'static>(t: T) -> U {
    *(Box::new(t) as Box<dyn Any>)
        .downcast::<U>()
        .expect("kernels: backend type checked by TypeId")
}

fn is<B: 'static, C: 'static>() -> bool {
    TypeId::of::<B>() == TypeId::of::<C>()
}

/// Whether `B` is one of the backends the fused kernels serve.
pub(super) fn serves<B: Backend>() -> bool {
    super::enabled() && (is::<B, Flex>() || is::<B, Ad>())
}

/// Unwraps `t` if the fused kernels serve its backend and dtype (f32), else hands it back.
pub(super) fn route<B: Backend, const D: usize>(t: Tensor<B, D>) -> Result<Route, Tensor<B, D>> {
    if !serves::<B>() || t.dtype() != DType::F32 {
        return Err(t);
    }
    let p = t.into_primitive().tensor();
    Ok(if is::<B, Flex>() {
        Route::Plain(cast(p))
    } else {
        Route::Tracked(cast(p))
    })
}

/// The inverse of [`route`].
pub(super) fn unroute<B: Backend, const D: usize>(r: Route) -> Tensor<B, D> {
    let p: B::FloatTensorPrimitive = match r {
        Route::Plain(f) => cast(f),
        Route::Tracked(a) => cast(a),
    };
    Tensor::from_primitive(TensorPrimitive::Float(p))
}

impl Route {
    /// The Flex tensor (for a constant input: its graph node, if any, is dropped).
    pub(super) fn flex(&self) -> &FlexTensor {
        match self {
            Route::Plain(f) => f,
            Route::Tracked(a) => &a.primitive,
        }
    }
}

/// A contiguous copy (or the tensor itself when already contiguous).
fn contiguous(t: &FlexTensor) -> FlexTensor {
    t.to_contiguous()
}

/// The elements of a contiguous f32 tensor.
fn f32s(t: &FlexTensor) -> &[f32] {
    &t.storage::<f32>()[..t.shape().num_elements()]
}

fn tensor(v: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, shape))
}

/// Runs a one-input op: `forward` gives the output and the backward state.
fn unary<BO: Backward<Flex, 1>>(
    op: BO,
    x: Route,
    forward: impl FnOnce(&FlexTensor) -> (FlexTensor, BO::State),
) -> Route {
    match x {
        Route::Plain(f) => Route::Plain(forward(&f).0),
        Route::Tracked(a) => Route::Tracked(
            match op
                .prepare::<NoCheckpointing>([a.node.clone()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => {
                    let (out, state) = forward(&a.primitive);
                    prep.finish(state, out)
                }
                OpsKind::UnTracked(prep) => prep.finish(forward(&a.primitive).0),
            },
        ),
    }
}

/// Runs a two-input op: `forward` gives the output and the backward state.
fn binary<BO: Backward<Flex, 2>>(
    op: BO,
    x: Route,
    y: Route,
    forward: impl FnOnce(&FlexTensor, &FlexTensor) -> (FlexTensor, BO::State),
) -> Route {
    match (x, y) {
        (Route::Tracked(x), Route::Tracked(y)) => Route::Tracked(
            match op
                .prepare::<NoCheckpointing>([x.node.clone(), y.node.clone()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => {
                    let (out, state) = forward(&x.primitive, &y.primitive);
                    prep.finish(state, out)
                }
                OpsKind::UnTracked(prep) => prep.finish(forward(&x.primitive, &y.primitive).0),
            },
        ),
        (x, y) => Route::Plain(forward(x.flex(), y.flex()).0),
    }
}

/// Registers `grad(dy)` for the single parent of a one-input op, if it needs one.
fn unary_backward<S>(
    ops: Ops<S, 1>,
    grads: &mut Gradients,
    grad: impl FnOnce(&S, &FlexTensor) -> FlexTensor,
) {
    let [parent] = ops.parents;
    let dy = contiguous(&grads.consume::<Flex>(&ops.node));
    if let Some(node) = parent {
        grads.register::<Flex>(node.id, grad(&ops.state, &dy));
    }
}

// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct SwigluBackward;

impl Backward<Flex, 1> for SwigluBackward {
    type State = FlexTensor;

    fn backward(self, ops: Ops<FlexTensor, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        unary_backward(ops, grads, |gu, dy| {
            let shape = gu.shape();
            let i = shape[shape.num_dims() - 1] / 2;
            tensor(cpu::swiglu_backward(f32s(gu), f32s(dy), i), shape)
        });
    }
}

/// `silu(gate) · up` of a fused `gate‖up` tensor (last dim `2i` → `i`).
pub(super) fn swiglu(gu: Route) -> Route {
    unary(SwigluBackward, gu, |gu| {
        let gu = contiguous(gu);
        let mut shape = gu.shape();
        let last = shape.num_dims() - 1;
        let i = shape[last] / 2;
        shape[last] = i;
        (tensor(cpu::swiglu_forward(f32s(&gu), i), shape), gu)
    })
}

// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct SplitHeadsBackward;

impl Backward<Flex, 1> for SplitHeadsBackward {
    /// cos, sin (contiguous `[batch, seq, rot/2]`), shapes.
    type State = (FlexTensor, FlexTensor, Heads, Rotary);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        unary_backward(ops, grads, |(cos, sin, s, r), dy| {
            let d = cpu::split_heads_backward(f32s(dy), f32s(cos), f32s(sin), *s, *r);
            tensor(
                d,
                Shape::from([
                    s.batch,
                    s.seq,
                    dy.shape().num_elements() / (s.batch * s.seq),
                ]),
            )
        });
    }
}

/// `[batch, seq, (h + 2·kvh)·d]` → `[batch, h + 2·kvh, seq, d]` with RoPE on the q and k heads.
pub(super) fn split_heads(
    qkv: Route,
    cos: &FlexTensor,
    sin: &FlexTensor,
    s: Heads,
    r: Rotary,
) -> Route {
    let (cos, sin) = (contiguous(cos), contiguous(sin));
    unary(SplitHeadsBackward, qkv, |qkv| {
        let qkv = contiguous(qkv);
        let th = s.heads + 2 * s.kv_heads;
        let out = cpu::split_heads_forward(f32s(&qkv), f32s(&cos), f32s(&sin), s, r);
        let out = tensor(out, Shape::from([s.batch, th, s.seq, s.head_dim]));
        (out, (cos.clone(), sin.clone(), s, r))
    })
}

#[derive(Debug)]
struct MergeHeadsBackward;

impl Backward<Flex, 1> for MergeHeadsBackward {
    /// batch, heads, seq, head_dim.
    type State = [usize; 4];

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        unary_backward(ops, grads, |&[b, h, t, d], dy| {
            tensor(
                cpu::merge_heads_backward(f32s(dy), b, h, t, d),
                Shape::from([b, h, t, d]),
            )
        });
    }
}

/// `[batch, heads, seq, d]` → `[batch, seq, heads·d]`.
pub(super) fn merge_heads(x: Route) -> Route {
    unary(MergeHeadsBackward, x, |x| {
        let x = contiguous(x);
        let shape = x.shape();
        let [b, h, t, d] = [shape[0], shape[1], shape[2], shape[3]];
        let out = cpu::merge_heads_forward(f32s(&x), b, h, t, d);
        (tensor(out, Shape::from([b, t, h * d])), [b, h, t, d])
    })
}

// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct TargetLogprobBackward;

impl Backward<Flex, 1> for TargetLogprobBackward {
    /// logits (contiguous `[rows, vocab]`), targets, log-sum-exp per row.
    type State = (FlexTensor, Vec<usize>, Vec<f32>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        unary_backward(ops, grads, |(logits, targets, lse), dy| {
            let shape = logits.shape();
            let vocab = shape[shape.num_dims() - 1];
            let d = cpu::target_logprob_backward(f32s(logits), targets, lse, f32s(dy), vocab);
            tensor(d, shape)
        });
    }
}

/// `logits[.., target] − logsumexp(logits[..])` over the last dim; output drops that dim.
pub(super) fn target_logprobs(logits: Route, targets: Vec<usize>) -> Route {
    unary(TargetLogprobBackward, logits, |logits| {
        let logits = contiguous(logits);
        let shape = logits.shape();
        let vocab = shape[shape.num_dims() - 1];
        let (out, lse) = cpu::target_logprob_forward(f32s(&logits), &targets, vocab);
        let out_shape = Shape::from(shape.as_slice()[..shape.num_dims() - 1].to_vec());
        (tensor(out, out_shape), (logits, targets, lse))
    })
}

// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct RmsNormBackward;

impl Backward<Flex, 2> for RmsNormBackward {
    /// x (contiguous), gamma (contiguous), `1/rms` per row.
    type State = (FlexTensor, FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [px, pg] = ops.parents;
        let dy = contiguous(&grads.consume::<Flex>(&ops.node));
        let (x, gamma, inv) = &ops.state;
        let (dx, dgamma) = cpu::rms_norm_backward(f32s(x), f32s(gamma), f32s(inv), f32s(&dy));
        if let Some(node) = px {
            grads.register::<Flex>(node.id, tensor(dx, x.shape()));
        }
        if let Some(node) = pg {
            grads.register::<Flex>(node.id, tensor(dgamma, gamma.shape()));
        }
    }
}

/// RMSNorm over the last dim with scale `gamma`.
pub(super) fn rms_norm(x: Route, gamma: Route, eps: f32) -> Route {
    let forward = |x: &FlexTensor, g: &FlexTensor| {
        let (x, g) = (contiguous(x), contiguous(g));
        let (y, inv) = cpu::rms_norm_forward(f32s(&x), f32s(&g), eps);
        let rows = inv.len();
        let y = tensor(y, x.shape());
        (y, (x, g, tensor(inv, Shape::from([rows]))))
    };
    binary(RmsNormBackward, x, gamma, forward)
}

// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct AttentionBackward;

impl Backward<Flex, 1> for AttentionBackward {
    /// The heads (contiguous), the probabilities, shapes.
    type State = (FlexTensor, FlexTensor, Heads, f32);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        unary_backward(ops, grads, |(heads, probs, s, scale), dy| {
            let d = cpu::attention_backward(f32s(heads), f32s(probs), f32s(dy), *s, *scale);
            tensor(d, heads.shape())
        });
    }
}

/// Self-attention over heads-major `q‖k‖v` (`[batch, h + 2·kvh, seq, d]`), heads merged in
/// the output (`[batch, seq, h·d]`).
pub(super) fn attention(heads: Route, masked: &[bool], s: Heads, scale: f32) -> Route {
    unary(AttentionBackward, heads, |heads| {
        let heads = contiguous(heads);
        let (out, probs) = cpu::attention_forward(f32s(&heads), masked, s, scale);
        let out = tensor(out, Shape::from([s.batch, s.seq, s.heads * s.head_dim]));
        let probs = tensor(probs, Shape::from([s.batch, s.heads, s.seq, s.seq]));
        (out, (heads, probs, s, scale))
    })
}

// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct LinearBackward;

impl Backward<Flex, 2> for LinearBackward {
    /// x (contiguous, `[rows, in]` flattened), w (contiguous `[in, out]`).
    type State = (FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [px, pw] = ops.parents;
        let dy = contiguous(&grads.consume::<Flex>(&ops.node));
        let (x, w) = &ops.state;
        let [inp, out] = w.shape().dims::<2>();
        let rows = x.shape().num_elements() / inp.max(1);
        if let Some(node) = px {
            let dx = cpu::linear_backward_input(f32s(&dy), f32s(w), rows, inp, out);
            grads.register::<Flex>(node.id, tensor(dx, x.shape()));
        }
        if let Some(node) = pw {
            let dw = cpu::linear_backward_weight(f32s(x), f32s(&dy), rows, inp, out);
            grads.register::<Flex>(node.id, tensor(dw, w.shape()));
        }
    }
}

/// `x · w` over the last dim of `x`, `w` `[in, out]`.
pub(super) fn linear(x: Route, w: Route) -> Route {
    let forward = |x: &FlexTensor, w: &FlexTensor| {
        let (x, w) = (contiguous(x), contiguous(w));
        let [inp, out] = w.shape().dims::<2>();
        let mut shape = x.shape();
        let last = shape.num_dims() - 1;
        let rows = shape.num_elements() / inp.max(1);
        shape[last] = out;
        let y = tensor(
            cpu::linear_forward(f32s(&x), f32s(&w), rows, inp, out),
            shape,
        );
        (y, (x, w))
    };
    binary(LinearBackward, x, w, forward)
}
