//! Fused CPU kernels for the model's element-wise and layout work.
//!
//! burn-flex runs each tensor op as its own pass, and ops on non-contiguous views of more than
//! two dims (a head transpose, a slice of the fused `q‖k‖v` output, a broadcast of the rotary
//! tables) walk the tensor one element at a time: that was over a third of a CPU training
//! step (`docs/perf.md`). Each function here does one such piece of the model in one pass, with
//! a hand-written backward pass:
//!
//! | function | replaces |
//! |---|---|
//! | [`swiglu`] | slicing `gate‖up`, `silu(gate) · up` |
//! | [`split_heads`] | slicing `q‖k‖v`, the head transposes, RoPE (slices, products, concatenation) |
//! | [`merge_heads`] | the transpose back to `[batch, seq, heads·d]` |
//! | [`target_logprobs`] | log-softmax over the vocabulary and the gather of the target |
//! | [`rms_norm`] | RMSNorm's square, mean, root, division and scale |
//! | [`linear`] | burn-flex's matmul, which zero-fills and copies its output buffer, and the reshapes and transposes of its backward pass |
//!
//! They serve the Flex backend, with and without autodiff, in f32. Any other backend or dtype
//! (CUDA, bf16) gets the generic burn code in [`reference`](mod@reference), which is also what the tests
//! compare the kernels against. `RLHF_KERNELS=generic` in the environment, or
//! [`set_enabled(false)`](set_enabled), turns them off (for comparisons);
//! [`with_enabled`] does so on one thread only, and [`thread_calls`] tells which path a thread's
//! ops took (the tests run every parity check on both).

mod cpu;
mod flex;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

use burn::prelude::*;

use crate::model::RopeTables;
use flex::{route, serves, unroute};

/// 0 = unset (read the environment), 1 = on, 2 = off.
static ENABLED: AtomicU8 = AtomicU8::new(0);

thread_local! {
    /// A per-thread override of [`ENABLED`] (see [`with_enabled`]); 0 = none.
    static SCOPED: std::cell::Cell<u8> = const { std::cell::Cell::new(0) };
}

/// Whether the fused kernels are used where they apply (on this thread).
pub fn enabled() -> bool {
    let state = match SCOPED.with(|c| c.get()) {
        0 => ENABLED.load(Ordering::Relaxed),
        s => s,
    };
    match state {
        1 => true,
        2 => false,
        _ => {
            static ENV: OnceLock<bool> = OnceLock::new();
            *ENV.get_or_init(|| std::env::var("RLHF_KERNELS").map_or(true, |v| v != "generic"))
        }
    }
}

static FUSED_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How many ops the fused kernels have served in this process (a check that they are in use).
pub fn fused_calls() -> usize {
    FUSED_CALLS.load(Ordering::Relaxed)
}

/// How many ops of this module one thread ran on each path (see [`thread_calls`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelCalls {
    /// Served by the fused CPU kernels.
    pub fused: usize,
    /// Served by the generic burn code ([`reference`](mod@reference), or burn's `Linear`): what
    /// CUDA and bf16 run, and Flex with the kernels off.
    pub generic: usize,
}

thread_local! {
    static THREAD_CALLS: std::cell::Cell<KernelCalls> =
        const { std::cell::Cell::new(KernelCalls { fused: 0, generic: 0 }) };
}

/// The ops this thread has sent down each path so far. Tests run in parallel threads, so a
/// test compares two readings of its own thread to prove which path its model ran on.
pub fn thread_calls() -> KernelCalls {
    THREAD_CALLS.with(std::cell::Cell::get)
}

fn count_call() {
    FUSED_CALLS.fetch_add(1, Ordering::Relaxed);
    THREAD_CALLS.with(|c| {
        let mut n = c.get();
        n.fused += 1;
        c.set(n);
    });
}

/// Runs the generic version of an op, counting it.
fn generic<T>(f: impl FnOnce() -> T) -> T {
    THREAD_CALLS.with(|c| {
        let mut n = c.get();
        n.generic += 1;
        c.set(n);
    });
    f()
}

/// Turns the fused kernels on or off for the whole process (overrides `RLHF_KERNELS`).
pub fn set_enabled(on: bool) {
    ENABLED.store(if on { 1 } else { 2 }, Ordering::Relaxed);
}

/// Runs `f` with the fused kernels on or off on this thread only (the choice is made when an
/// op is recorded, so a backward pass keeps the kernels of its forward pass). For tests and
/// comparisons that must not disturb other threads.
pub fn with_enabled<R>(on: bool, f: impl FnOnce() -> R) -> R {
    let before = SCOPED.with(|c| c.replace(if on { 1 } else { 2 }));
    struct Restore(u8);
    impl Drop for Restore {
        fn drop(&mut self) {
            SCOPED.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(before);
    f()
}

/// Runs `fused` on `x`'s Flex tensor when the kernels serve its backend and dtype, else
/// `generic` on `x` itself.
fn dispatch<B: Backend, const D: usize, const E: usize>(
    x: Tensor<B, D>,
    fused: impl FnOnce(flex::Route) -> flex::Route,
    generic_fn: impl FnOnce(Tensor<B, D>) -> Tensor<B, E>,
) -> Tensor<B, E> {
    match route(x) {
        Ok(r) => {
            count_call();
            unroute(fused(r))
        }
        Err(x) => generic(|| generic_fn(x)),
    }
}

/// `silu(gate) · up` where `gu` holds `gate‖up` along its last dim (`2i` → `i`).
pub fn swiglu<B: Backend, const D: usize>(gu: Tensor<B, D>) -> Tensor<B, D> {
    dispatch(gu, flex::swiglu, reference::swiglu)
}

/// Splits a fused projection `q‖k‖v` (`[batch, seq, (h + 2·kvh)·d]`) into heads, heads-major
/// (`[batch, h + 2·kvh, seq, d]`: the `h` query heads, then `kvh` key and `kvh` value heads),
/// with the rotary embedding applied to the query and key heads at the positions whose tables
/// `cos`/`sin` (`[batch, 1, seq, rot/2]`, from [`RopeTables::gather`]) hold.
pub fn split_heads<B: Backend>(
    qkv: Tensor<B, 3>,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    rope: &RopeTables<B>,
    cos: &Tensor<B, 4>,
    sin: &Tensor<B, 4>,
) -> Tensor<B, 4> {
    let [b, t, _] = qkv.dims();
    if !serves::<B>() || cos.dtype() != qkv.dtype() {
        return generic(|| reference::split_heads(qkv, heads, kv_heads, head_dim, rope, cos, sin));
    }
    match route(qkv) {
        Ok(r) => {
            let (Ok(c), Ok(s)) = (route(cos.clone()), route(sin.clone())) else {
                unreachable!("same backend and dtype as qkv")
            };
            let shape = cpu::Heads {
                batch: b,
                seq: t,
                heads,
                kv_heads,
                head_dim,
            };
            let rotary = cpu::Rotary {
                rot: rope.rotary_dim(),
                interleaved: rope.interleaved(),
            };
            count_call();
            unroute(flex::split_heads(r, c.flex(), s.flex(), shape, rotary))
        }
        Err(qkv) => {
            generic(|| reference::split_heads(qkv, heads, kv_heads, head_dim, rope, cos, sin))
        }
    }
}

/// Causal self-attention (no KV cache) over [`split_heads`]'s output `heads`
/// (`[batch, h + 2·kvh, seq, d]`), scale `1/sqrt(d)`, grouped-query (query head `i` reads KV
/// head `i / (h / kvh)`), `mask` (`[batch, 1, seq, seq]`) true where a key is hidden. Returns
/// the heads merged, `[batch, seq, h·d]`, ready for the output projection. The probabilities
/// (`batch·h·seq²` floats) are kept for the backward pass.
pub fn self_attention<B: Backend>(
    heads: Tensor<B, 4>,
    num_heads: usize,
    kv_heads: usize,
    mask: Tensor<B, 4, Bool>,
) -> Tensor<B, 3> {
    let [b, _, t, d] = heads.dims();
    if !serves::<B>() || mask.dims() != [b, 1, t, t] {
        return generic(|| reference::self_attention(heads, num_heads, kv_heads, mask));
    }
    match route(heads) {
        Ok(r) => {
            let masked: Vec<bool> = mask.into_data().to_vec().expect("bool mask");
            let shape = cpu::Heads {
                batch: b,
                seq: t,
                heads: num_heads,
                kv_heads,
                head_dim: d,
            };
            count_call();
            unroute(flex::attention(r, &masked, shape, 1.0 / (d as f32).sqrt()))
        }
        Err(heads) => generic(|| reference::self_attention(heads, num_heads, kv_heads, mask)),
    }
}

/// `[batch, heads, seq, d]` → `[batch, seq, heads·d]`.
pub fn merge_heads<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 3> {
    dispatch(x, flex::merge_heads, reference::merge_heads)
}

/// `log_softmax(logits)[target]` over the last dim (`[batch, seq, vocab]` → `[batch, seq]`),
/// without materialising the log-softmax.
pub fn target_logprobs<B: Backend>(
    logits: Tensor<B, 3>,
    targets: Tensor<B, 2, Int>,
) -> Tensor<B, 2> {
    if !serves::<B>() {
        return generic(|| reference::target_logprobs(logits, targets));
    }
    let [_, _, v] = logits.dims();
    match route(logits) {
        Ok(r) => {
            let ids: Vec<usize> = targets
                .into_data()
                .convert::<i64>()
                .into_vec::<i64>()
                .expect("int tensor data")
                .into_iter()
                .map(|id| {
                    assert!(
                        (0..v as i64).contains(&id),
                        "target id {id} outside the vocabulary (0..{v})"
                    );
                    id as usize
                })
                .collect();
            count_call();
            unroute(flex::target_logprobs(r, ids))
        }
        Err(logits) => generic(|| reference::target_logprobs(logits, targets)),
    }
}

/// `x · weight (+ bias)` over the last dim of `x`: burn's `Linear::forward` (weight
/// `[in, out]`), with the product and both gradient products handed straight to `gemm`.
pub fn linear<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    lin: &burn::nn::Linear<B>,
) -> Tensor<B, D> {
    let w = lin.weight.val();
    if !serves::<B>() || w.dtype() != x.dtype() || w.dims()[0] != x.dims()[D - 1] {
        return generic(|| lin.forward(x));
    }
    let y = match (route(x), route(w)) {
        (Ok(x), Ok(w)) => {
            count_call();
            unroute(flex::linear(x, w))
        }
        (Err(x), Err(_)) => return generic(|| lin.forward(x)),
        _ => unreachable!("same backend and dtype"),
    };
    match &lin.bias {
        Some(b) => y + b.val().unsqueeze(),
        None => y,
    }
}

/// RMSNorm over the last dim: `x / sqrt(mean(x²) + eps) · gamma` (burn's `RmsNorm`).
pub fn rms_norm<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    gamma: Tensor<B, 1>,
    eps: f64,
) -> Tensor<B, D> {
    if !serves::<B>() || gamma.dtype() != x.dtype() {
        return generic(|| reference::rms_norm(x, gamma, eps));
    }
    match (route(x), route(gamma)) {
        (Ok(x), Ok(g)) => {
            count_call();
            unroute(flex::rms_norm(x, g, eps as f32))
        }
        (Err(x), Err(g)) => generic(|| reference::rms_norm(x, g, eps)),
        _ => unreachable!("same backend and dtype"),
    }
}

/// The generic burn versions of the kernels: what every backend other than Flex/f32 runs, and
/// the reference the kernels are tested against.
pub mod reference {
    use burn::prelude::*;

    use crate::model::RopeTables;

    /// See [`super::swiglu`].
    pub fn swiglu<B: Backend, const D: usize>(gu: Tensor<B, D>) -> Tensor<B, D> {
        let i = gu.dims()[D - 1] / 2;
        let [gate, up] = gu.split(i, D - 1).try_into().expect("two halves");
        burn::tensor::activation::silu(gate) * up
    }

    /// See [`super::split_heads`].
    pub fn split_heads<B: Backend>(
        qkv: Tensor<B, 3>,
        heads: usize,
        kv_heads: usize,
        head_dim: usize,
        rope: &RopeTables<B>,
        cos: &Tensor<B, 4>,
        sin: &Tensor<B, 4>,
    ) -> Tensor<B, 4> {
        let [b, t, _] = qkv.dims();
        let th = heads + 2 * kv_heads;
        let x = qkv.reshape([b, t, th, head_dim]).swap_dims(1, 2);
        let qk = x
            .clone()
            .slice([0..b, 0..heads + kv_heads, 0..t, 0..head_dim]);
        let v = x.slice([0..b, heads + kv_heads..th, 0..t, 0..head_dim]);
        Tensor::cat(vec![rope.apply(qk, cos, sin), v], 1)
    }

    /// See [`super::self_attention`].
    pub fn self_attention<B: Backend>(
        heads: Tensor<B, 4>,
        num_heads: usize,
        kv_heads: usize,
        mask: Tensor<B, 4, Bool>,
    ) -> Tensor<B, 3> {
        let [b, _, t, d] = heads.dims();
        let (h, kvh) = (num_heads, kv_heads);
        let q = heads.clone().slice([0..b, 0..h, 0..t, 0..d]);
        let k = heads.clone().slice([0..b, h..h + kvh, 0..t, 0..d]);
        let v = heads.slice([0..b, h + kvh..h + 2 * kvh, 0..t, 0..d]);
        let k = crate::model::repeat_kv(k, h / kvh);
        let v = crate::model::repeat_kv(v, h / kvh);
        let out = burn::tensor::module::attention(
            q,
            k,
            v,
            Some(mask.expand([b, h, t, t])),
            None,
            burn::tensor::ops::AttentionModuleOptions {
                scale: None,
                softcap: None,
                is_causal: false,
            },
        );
        merge_heads(out)
    }

    /// See [`super::merge_heads`].
    pub fn merge_heads<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 3> {
        let [b, h, t, d] = x.dims();
        x.swap_dims(1, 2).reshape([b, t, h * d])
    }

    /// See [`super::target_logprobs`].
    pub fn target_logprobs<B: Backend>(
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

    /// See [`super::rms_norm`].
    pub fn rms_norm<B: Backend, const D: usize>(
        x: Tensor<B, D>,
        gamma: Tensor<B, 1>,
        eps: f64,
    ) -> Tensor<B, D> {
        // burn's `RmsNorm::forward`, with the scale passed in.
        let dtype = x.dtype();
        let rms = (x
            .clone()
            .cast(burn::tensor::DType::F32)
            .square()
            .mean_dim(D - 1)
            + eps)
            .sqrt();
        (x / rms.cast(dtype)) * gamma.unsqueeze()
    }
}
