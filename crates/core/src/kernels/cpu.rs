//! The fused kernels themselves, on plain `f32` slices: no burn types here.
//!
//! Each kernel is written once as a plain loop that LLVM vectorises, and compiled three times
//! (AVX-512, AVX2 + FMA, baseline) with the widest one picked at run time ([`simd!`]). Rows are
//! spread over rayon's pool, the one burn-flex's own kernels use.

use rayon::prelude::*;

/// Calls `$body` (an expression using the listed variables) in a function compiled for the
/// widest instruction set this CPU has. The variables are passed by value.
macro_rules! simd {
    (($($arg:ident : $ty:ty),*) $body:block) => {
        simd!(($($arg: $ty),*) -> () $body)
    };
    (($($arg:ident : $ty:ty),*) -> $ret:ty $body:block) => {{
        #[inline(always)]
        fn body($($arg: $ty),*) -> $ret $body
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f,avx2,fma")]
            unsafe fn v4($($arg: $ty),*) -> $ret { body($($arg),*) }
            #[target_feature(enable = "avx2,fma")]
            unsafe fn v3($($arg: $ty),*) -> $ret { body($($arg),*) }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F (checked above), the only requirement of `v4`.
                unsafe { v4($($arg),*) }
            } else if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: the CPU has AVX2 and FMA (checked above).
                unsafe { v3($($arg),*) }
            } else {
                body($($arg),*)
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            body($($arg),*)
        }
    }};
}

/// `e^x` to within 2 ulp on `[-87, 88]`, branch-free so loops over it vectorise (libm's `expf`
/// is a call per element). Cephes' polynomial after the usual `2^n · e^r` reduction.
/// Below −87.3 it returns about 1e-38 instead of 0 and above 88.3 a large finite value;
/// NaN stays NaN.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 · 2^23: adding it rounds to an integer held in the low mantissa bits.
    const MAGIC: f32 = 12_582_912.0;
    // `clamp` keeps NaN.
    let x = x.clamp(-87.3, 88.3);
    let t = x * LOG2E + MAGIC;
    let n = t - MAGIC;
    let ni = (t.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_2e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    y * f32::from_bits(((ni + 127) as u32) << 23)
}

/// Rows per rayon task: enough work per task that scheduling costs nothing.
fn rows_per_task(row_len: usize) -> usize {
    (16_384 / row_len.max(1)).max(1)
}

// ---------------------------------------------------------------------------------------------
// SwiGLU

/// `out[r, j] = silu(gu[r, j]) · gu[r, i + j]` for rows of `gu` of width `2i`.
pub(crate) fn swiglu_forward(gu: &[f32], i: usize) -> Vec<f32> {
    let rows = gu.len() / (2 * i);
    let mut out = vec![0.0f32; rows * i];
    let per = rows_per_task(2 * i);
    out.par_chunks_mut(per * i)
        .zip(gu.par_chunks(per * 2 * i))
        .for_each(|(o, g)| {
            simd!((o: &mut [f32], g: &[f32], i: usize) {
                for (orow, grow) in o.chunks_exact_mut(i).zip(g.chunks_exact(2 * i)) {
                    let (gate, up) = grow.split_at(i);
                    for ((o, &a), &u) in orow.iter_mut().zip(gate).zip(up) {
                        *o = a / (1.0 + exp(-a)) * u;
                    }
                }
            })
        });
    out
}

/// The gradient of [`swiglu_forward`] with respect to `gu`, given the output gradient `dy`.
pub(crate) fn swiglu_backward(gu: &[f32], dy: &[f32], i: usize) -> Vec<f32> {
    let rows = gu.len() / (2 * i);
    let mut dgu = vec![0.0f32; rows * 2 * i];
    let per = rows_per_task(2 * i);
    dgu.par_chunks_mut(per * 2 * i)
        .zip(gu.par_chunks(per * 2 * i))
        .zip(dy.par_chunks(per * i))
        .for_each(|((d, g), dy)| {
            simd!((d: &mut [f32], g: &[f32], dy: &[f32], i: usize) {
                for ((drow, grow), dyrow) in d
                    .chunks_exact_mut(2 * i)
                    .zip(g.chunks_exact(2 * i))
                    .zip(dy.chunks_exact(i))
                {
                    let (dgate, dup) = drow.split_at_mut(i);
                    let (gate, up) = grow.split_at(i);
                    for j in 0..i {
                        let a = gate[j];
                        let s = 1.0 / (1.0 + exp(-a));
                        let silu = a * s;
                        dup[j] = dyrow[j] * silu;
                        dgate[j] = dyrow[j] * up[j] * (s + silu * (1.0 - s));
                    }
                }
            })
        });
    dgu
}

// ---------------------------------------------------------------------------------------------
// Attention heads: split (with RoPE) and merge

/// Shapes of a fused `q‖k‖v` projection split into heads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Heads {
    pub(crate) batch: usize,
    pub(crate) seq: usize,
    /// Query heads.
    pub(crate) heads: usize,
    /// Key/value heads.
    pub(crate) kv_heads: usize,
    pub(crate) head_dim: usize,
}

impl Heads {
    fn total_heads(&self) -> usize {
        self.heads + 2 * self.kv_heads
    }
    fn width(&self) -> usize {
        self.total_heads() * self.head_dim
    }
    /// The `[seq, d]` block of head `j` within one batch row of the heads-major layout.
    fn block<'a>(&self, x: &'a [f32], j: usize) -> &'a [f32] {
        let sz = self.seq * self.head_dim;
        &x[j * sz..][..sz]
    }
}

/// The rotary embedding's layout.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rotary {
    /// Leading dims of each head that are rotated (0 = none).
    pub(crate) rot: usize,
    /// Pairs `(2i, 2i+1)` (GLM) instead of `(i, i + rot/2)` (Llama, Qwen2).
    pub(crate) interleaved: bool,
}

/// The rotated pair of dims `(a, b)` for pair index `i`.
#[inline(always)]
fn pair(i: usize, half: usize, interleaved: bool) -> (usize, usize) {
    if interleaved {
        (2 * i, 2 * i + 1)
    } else {
        (i, i + half)
    }
}

/// Copies one head's vector `src` to `dst`, rotated by the angles whose `(cos, sin)` are given
/// (`sign` −1 rotates backwards); `None` copies it unchanged (value heads).
#[inline]
fn rotate_head(
    dst: &mut [f32],
    src: &[f32],
    angle: Option<(&[f32], &[f32])>,
    r: Rotary,
    sign: f32,
) {
    dst.copy_from_slice(src);
    let Some((c, sn)) = angle else { return };
    let half = r.rot / 2;
    for i in 0..half {
        let (a, b) = pair(i, half, r.interleaved);
        let (xa, xb, s) = (src[a], src[b], sign * sn[i]);
        dst[a] = xa * c[i] - xb * s;
        dst[b] = xb * c[i] + xa * s;
    }
}

/// `qkv` (`[batch, seq, (h + 2·kvh)·d]`) to heads-major `[batch, h + 2·kvh, seq, d]`, with the
/// rotary embedding applied to the query and key heads. `cos`/`sin` are `[batch, seq, rot/2]`.
pub(crate) fn split_heads_forward(
    qkv: &[f32],
    cos: &[f32],
    sin: &[f32],
    s: Heads,
    r: Rotary,
) -> Vec<f32> {
    let (t, d, w, th) = (s.seq, s.head_dim, s.width(), s.total_heads());
    let half = r.rot / 2;
    let rotated = s.heads + s.kv_heads;
    let mut out = vec![0.0f32; qkv.len()];
    // One task per (batch, head): it writes a contiguous `[seq, d]` block.
    out.par_chunks_mut(t * d)
        .enumerate()
        .for_each(|(bh, block)| {
            let (bi, j) = (bh / th, bh % th);
            for ti in 0..t {
                let bt = bi * t + ti;
                let src = &qkv[bt * w + j * d..][..d];
                let dst = &mut block[ti * d..][..d];
                let angle = (&cos[bt * half..][..half], &sin[bt * half..][..half]);
                rotate_head(dst, src, (j < rotated).then_some(angle), r, 1.0);
            }
        });
    out
}

/// The gradient of [`split_heads_forward`] with respect to `qkv`: the inverse rotation and
/// layout change of `dy` (`[batch, h + 2·kvh, seq, d]`).
pub(crate) fn split_heads_backward(
    dy: &[f32],
    cos: &[f32],
    sin: &[f32],
    s: Heads,
    r: Rotary,
) -> Vec<f32> {
    let (t, d, w, th) = (s.seq, s.head_dim, s.width(), s.total_heads());
    let half = r.rot / 2;
    let rotated = s.heads + s.kv_heads;
    let mut dqkv = vec![0.0f32; dy.len()];
    // One task per (batch, position): it writes a contiguous row of `dqkv`.
    dqkv.par_chunks_mut(w).enumerate().for_each(|(bt, row)| {
        let (bi, ti) = (bt / t, bt % t);
        for j in 0..th {
            let src = &dy[((bi * th + j) * t + ti) * d..][..d];
            let dst = &mut row[j * d..][..d];
            let angle = (&cos[bt * half..][..half], &sin[bt * half..][..half]);
            // The transpose of a rotation is the rotation by the opposite angle.
            rotate_head(dst, src, (j < rotated).then_some(angle), r, -1.0);
        }
    });
    dqkv
}

/// `[batch, heads, seq, d]` to `[batch, seq, heads·d]`.
pub(crate) fn merge_heads_forward(x: &[f32], b: usize, h: usize, t: usize, d: usize) -> Vec<f32> {
    let _ = b;
    let mut out = vec![0.0f32; x.len()];
    out.par_chunks_mut(h * d).enumerate().for_each(|(bt, row)| {
        let (bi, ti) = (bt / t, bt % t);
        for j in 0..h {
            row[j * d..][..d].copy_from_slice(&x[((bi * h + j) * t + ti) * d..][..d]);
        }
    });
    out
}

/// `[batch, seq, heads·d]` to `[batch, heads, seq, d]` (the inverse of [`merge_heads_forward`]).
pub(crate) fn merge_heads_backward(dy: &[f32], b: usize, h: usize, t: usize, d: usize) -> Vec<f32> {
    let _ = b;
    let mut out = vec![0.0f32; dy.len()];
    out.par_chunks_mut(t * d)
        .enumerate()
        .for_each(|(bh, block)| {
            let (bi, j) = (bh / h, bh % h);
            for ti in 0..t {
                block[ti * d..][..d].copy_from_slice(&dy[((bi * t + ti) * h + j) * d..][..d]);
            }
        });
    out
}

// ---------------------------------------------------------------------------------------------
// Linear layers

/// gemm's threading for an `m×k · k×n` product: rayon's pool when there is enough work
/// (burn-flex's threshold).
fn parallelism(m: usize, n: usize, k: usize) -> gemm::Parallelism {
    if m.saturating_mul(n).saturating_mul(k) >= 192 * 192 * 192 {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    }
}

/// A new `m × n` row-major matrix `lhs (m×k) · rhs (k×n)`, the operands given by slice, row
/// stride and column stride (so transposes cost nothing).
fn product(
    (m, n, k): (usize, usize, usize),
    (lhs, lhs_rs, lhs_cs): (&[f32], usize, usize),
    (rhs, rhs_rs, rhs_cs): (&[f32], usize, usize),
) -> Vec<f32> {
    if m == 0 || n == 0 || k == 0 {
        return vec![0.0; m * n];
    }
    assert!(
        (m - 1) * lhs_rs + (k - 1) * lhs_cs < lhs.len(),
        "product: lhs too short"
    );
    assert!(
        (k - 1) * rhs_rs + (n - 1) * rhs_cs < rhs.len(),
        "product: rhs too short"
    );
    let mut v: Vec<f32> = Vec::with_capacity(m * n);
    // SAFETY: the asserts keep every read inside the operands; the destination is the new
    // vector's `m × n` capacity, every element of which gemm writes (`read_dst = false`), so
    // the length can then be set.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            v.as_mut_ptr(),
            1,
            n as isize,
            false,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism(m, n, k),
        );
        v.set_len(m * n);
    }
    v
}

/// `y = x · w` for `x` `[rows, inp]` and `w` `[inp, out]` (burn's `[in, out]` weight layout).
pub(crate) fn linear_forward(
    x: &[f32],
    w: &[f32],
    rows: usize,
    inp: usize,
    out: usize,
) -> Vec<f32> {
    assert_eq!(
        (x.len(), w.len()),
        (rows * inp, inp * out),
        "linear: operand sizes"
    );
    product((rows, out, inp), (x, inp, 1), (w, out, 1))
}

/// `dx = dy · wᵀ` (`[rows, inp]`).
pub(crate) fn linear_backward_input(
    dy: &[f32],
    w: &[f32],
    rows: usize,
    inp: usize,
    out: usize,
) -> Vec<f32> {
    assert_eq!(
        (dy.len(), w.len()),
        (rows * out, inp * out),
        "linear: operand sizes"
    );
    // wᵀ[o, i] = w[i·out + o]: row stride 1, column stride out.
    product((rows, inp, out), (dy, out, 1), (w, 1, out))
}

/// `dw = xᵀ · dy` (`[inp, out]`).
pub(crate) fn linear_backward_weight(
    x: &[f32],
    dy: &[f32],
    rows: usize,
    inp: usize,
    out: usize,
) -> Vec<f32> {
    assert_eq!(
        (x.len(), dy.len()),
        (rows * inp, rows * out),
        "linear: operand sizes"
    );
    // xᵀ[i, r] = x[r·inp + i]: row stride 1, column stride inp.
    product((inp, out, rows), (x, 1, inp), (dy, out, 1))
}

// ---------------------------------------------------------------------------------------------
// Attention

/// `dst (m×n, row stride dst_rs) = [dst +] beta · lhs (m×k) · rhs (k×n)`, matrices given by
/// slice, row stride and column stride. Single-threaded: callers parallelise over heads.
#[allow(clippy::too_many_arguments)]
fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    dst_rs: usize,
    accumulate: bool,
    (lhs, lhs_rs, lhs_cs): (&[f32], usize, usize),
    (rhs, rhs_rs, rhs_cs): (&[f32], usize, usize),
    beta: f32,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!((m - 1) * dst_rs + n <= dst.len(), "matmul: dst too short");
    if k > 0 {
        assert!(
            (m - 1) * lhs_rs + (k - 1) * lhs_cs < lhs.len(),
            "matmul: lhs too short"
        );
        assert!(
            (k - 1) * rhs_rs + (n - 1) * rhs_cs < rhs.len(),
            "matmul: rhs too short"
        );
    }
    // SAFETY: the asserts above keep every index gemm reads or writes inside the slices, and
    // `dst` is borrowed mutably, so it aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            1.0,
            beta,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Softmax attention of each query head over its key/value head (grouped-query: query head
/// `i` uses KV head `i / (h / kvh)`), `masked[b, i, j]` = true hiding key `j` from query `i`.
/// Returns the output with heads merged (`[batch, seq, h·d]`) and the probabilities
/// (`[batch, h, seq, seq]`, kept for the backward pass). A fully masked row outputs zeros.
pub(crate) fn attention_forward(
    qkv: &[f32],
    masked: &[bool],
    s: Heads,
    scale: f32,
) -> (Vec<f32>, Vec<f32>) {
    let (t, d, h, th) = (s.seq, s.head_dim, s.heads, s.total_heads());
    let group = h / s.kv_heads;
    let mut out = vec![0.0f32; s.batch * t * h * d];
    let mut probs = vec![0.0f32; s.batch * h * t * t];
    out.par_chunks_mut(t * h * d)
        .zip(probs.par_chunks_mut(h * t * t))
        .enumerate()
        .for_each(|(bi, (out, probs))| {
            let x = &qkv[bi * th * t * d..][..th * t * d];
            let mask = &masked[bi * t * t..][..t * t];
            for hi in 0..h {
                let (q, k, v) = (
                    s.block(x, hi),
                    s.block(x, h + hi / group),
                    s.block(x, h + s.kv_heads + hi / group),
                );
                let p = &mut probs[hi * t * t..][..t * t];
                // scores = scale · q kᵀ
                matmul((t, t, d), p, t, false, (q, d, 1), (k, 1, d), scale);
                for (row, mrow) in p.chunks_exact_mut(t).zip(mask.chunks_exact(t)) {
                    simd!((row: &mut [f32], mrow: &[bool]) {
                        let mut m = f32::NEG_INFINITY;
                        for (&x, &hide) in row.iter().zip(mrow) {
                            if !hide && x > m {
                                m = x;
                            }
                        }
                        if m == f32::NEG_INFINITY {
                            row.fill(0.0);
                            return;
                        }
                        let mut sum = 0.0f32;
                        for (x, &hide) in row.iter_mut().zip(mrow) {
                            *x = if hide { 0.0 } else { exp(*x - m) };
                            sum += *x;
                        }
                        let inv = 1.0 / sum;
                        for x in row.iter_mut() {
                            *x *= inv;
                        }
                    });
                }
                // out[:, hi·d..] = p v
                matmul(
                    (t, d, t),
                    &mut out[hi * d..],
                    h * d,
                    false,
                    (p, t, 1),
                    (v, d, 1),
                    1.0,
                );
            }
        });
    (out, probs)
}

/// The gradient of [`attention_forward`] with respect to `qkv`, given the output gradient
/// `dy` (`[batch, seq, h·d]`).
pub(crate) fn attention_backward(
    qkv: &[f32],
    probs: &[f32],
    dy: &[f32],
    s: Heads,
    scale: f32,
) -> Vec<f32> {
    let (t, d, h, kvh, th) = (s.seq, s.head_dim, s.heads, s.kv_heads, s.total_heads());
    let group = h / kvh;
    let sz = t * d;
    let mut dqkv = vec![0.0f32; qkv.len()];
    dqkv.par_chunks_mut(th * sz)
        .enumerate()
        .for_each(|(bi, dx)| {
            let x = &qkv[bi * th * sz..][..th * sz];
            let dy = &dy[bi * t * h * d..][..t * h * d];
            let mut ds = vec![0.0f32; t * t];
            let (dq, dkv) = dx.split_at_mut(h * sz);
            let (dk, dv) = dkv.split_at_mut(kvh * sz);
            for hi in 0..h {
                let g = hi / group;
                let (q, k, v) = (s.block(x, hi), s.block(x, h + g), s.block(x, h + kvh + g));
                let p = &probs[(bi * h + hi) * t * t..][..t * t];
                let dout = &dy[hi * d..];
                // dv += pᵀ dout
                matmul(
                    (t, d, t),
                    &mut dv[g * sz..][..sz],
                    d,
                    true,
                    (p, 1, t),
                    (dout, h * d, 1),
                    1.0,
                );
                // dp = dout vᵀ, then ds = p ∘ (dp − rowsum(dp ∘ p))
                matmul(
                    (t, t, d),
                    &mut ds,
                    t,
                    false,
                    (dout, h * d, 1),
                    (v, 1, d),
                    1.0,
                );
                for (drow, prow) in ds.chunks_exact_mut(t).zip(p.chunks_exact(t)) {
                    simd!((drow: &mut [f32], prow: &[f32]) {
                        let mut dot = 0.0f32;
                        for (&a, &b) in drow.iter().zip(prow) {
                            dot += a * b;
                        }
                        for (a, &b) in drow.iter_mut().zip(prow) {
                            *a = b * (*a - dot);
                        }
                    });
                }
                // dq = scale · ds k ; dk += scale · dsᵀ q
                matmul(
                    (t, d, t),
                    &mut dq[hi * sz..][..sz],
                    d,
                    false,
                    (&ds, t, 1),
                    (k, d, 1),
                    scale,
                );
                matmul(
                    (t, d, t),
                    &mut dk[g * sz..][..sz],
                    d,
                    true,
                    (&ds, 1, t),
                    (q, d, 1),
                    scale,
                );
            }
        });
    dqkv
}

// ---------------------------------------------------------------------------------------------
// Log-probs of targets

/// Per row of `logits` (`[rows, vocab]`): `(logits[target] − logsumexp(logits), logsumexp)`.
pub(crate) fn target_logprob_forward(
    logits: &[f32],
    targets: &[usize],
    vocab: usize,
) -> (Vec<f32>, Vec<f32>) {
    let rows = targets.len();
    let mut lse = vec![0.0f32; rows];
    lse.par_iter_mut().enumerate().for_each(|(r, l)| {
        let row = &logits[r * vocab..][..vocab];
        *l = simd!((row: &[f32]) -> f32 {
            let mut m = f32::NEG_INFINITY;
            for &x in row {
                m = m.max(x);
            }
            let mut s = 0.0f32;
            for &x in row {
                s += exp(x - m);
            }
            m + s.ln()
        });
    });
    let out = (0..rows)
        .map(|r| logits[r * vocab + targets[r]] - lse[r])
        .collect();
    (out, lse)
}

/// The gradient of [`target_logprob_forward`]'s first output: `dy[r] · (onehot − softmax)`.
pub(crate) fn target_logprob_backward(
    logits: &[f32],
    targets: &[usize],
    lse: &[f32],
    dy: &[f32],
    vocab: usize,
) -> Vec<f32> {
    let mut d = vec![0.0f32; logits.len()];
    d.par_chunks_mut(vocab).enumerate().for_each(|(r, drow)| {
        let row = &logits[r * vocab..][..vocab];
        let (g, l) = (dy[r], lse[r]);
        simd!((drow: &mut [f32], row: &[f32], g: f32, l: f32) {
            for (o, &x) in drow.iter_mut().zip(row) {
                *o = -g * exp(x - l);
            }
        });
        drow[targets[r]] += g;
    });
    d
}

// ---------------------------------------------------------------------------------------------
// RMSNorm

/// `y = x / sqrt(mean(x²) + eps) · gamma` per row of width `gamma.len()`; also returns each
/// row's `1 / sqrt(mean(x²) + eps)` for the backward pass.
pub(crate) fn rms_norm_forward(x: &[f32], gamma: &[f32], eps: f32) -> (Vec<f32>, Vec<f32>) {
    let n = gamma.len();
    let rows = x.len() / n;
    let mut y = vec![0.0f32; x.len()];
    let mut inv = vec![0.0f32; rows];
    y.par_chunks_mut(n)
        .zip(inv.par_iter_mut())
        .enumerate()
        .for_each(|(r, (yrow, inv))| {
            let xrow = &x[r * n..][..n];
            *inv = simd!((yrow: &mut [f32], xrow: &[f32], gamma: &[f32], eps: f32) -> f32 {
                let mut ss = 0.0f32;
                for &v in xrow {
                    ss += v * v;
                }
                let inv = 1.0 / (ss / xrow.len() as f32 + eps).sqrt();
                for ((o, &v), &g) in yrow.iter_mut().zip(xrow).zip(gamma) {
                    *o = v * inv * g;
                }
                inv
            });
        });
    (y, inv)
}

/// Gradients of [`rms_norm_forward`] with respect to `x` and `gamma`.
pub(crate) fn rms_norm_backward(
    x: &[f32],
    gamma: &[f32],
    inv: &[f32],
    dy: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let n = gamma.len();
    let mut dx = vec![0.0f32; x.len()];
    dx.par_chunks_mut(n).enumerate().for_each(|(r, dxrow)| {
        let xrow = &x[r * n..][..n];
        let dyrow = &dy[r * n..][..n];
        let inv = inv[r];
        simd!((dxrow: &mut [f32], xrow: &[f32], dyrow: &[f32], gamma: &[f32], inv: f32) {
            // dx = inv·(g∘dy) − x·inv³·mean(x∘g∘dy)
            let mut dot = 0.0f32;
            for ((&v, &d), &g) in xrow.iter().zip(dyrow).zip(gamma) {
                dot += v * d * g;
            }
            let k = inv * inv * inv * dot / xrow.len() as f32;
            for (((o, &v), &d), &g) in dxrow.iter_mut().zip(xrow).zip(dyrow).zip(gamma) {
                *o = inv * g * d - v * k;
            }
        });
    });
    // dgamma = Σ_rows dy ∘ x · inv: partial sums over row blocks in parallel, then added in
    // block order, so the result does not depend on how rayon splits the work.
    let rows = x.len() / n;
    let per = rows_per_task(n);
    let partials: Vec<Vec<f32>> = (0..rows.div_ceil(per))
        .into_par_iter()
        .map(|blk| {
            let mut acc = vec![0.0f32; n];
            for r in blk * per..((blk + 1) * per).min(rows) {
                let xrow = &x[r * n..][..n];
                let dyrow = &dy[r * n..][..n];
                let inv = inv[r];
                let acc: &mut [f32] = &mut acc;
                simd!((acc: &mut [f32], xrow: &[f32], dyrow: &[f32], inv: f32) {
                    for ((a, &v), &d) in acc.iter_mut().zip(xrow).zip(dyrow) {
                        *a += d * v * inv;
                    }
                });
            }
            acc
        })
        .collect();
    let mut dgamma = vec![0.0f32; n];
    for p in &partials {
        for (a, b) in dgamma.iter_mut().zip(p) {
            *a += b;
        }
    }
    (dx, dgamma)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulp_of_libm_on_the_useful_range() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = (x as f64).exp();
            let got = exp(x) as f64;
            worst = worst.max(((got - want) / want).abs());
            x += 0.001_3;
        }
        assert!(worst < 2.5e-7, "worst relative error {worst}");
        assert!(exp(f32::NAN).is_nan());
        assert!(exp(-1e4) < 1e-37);
        assert_eq!(exp(0.0), 1.0);
    }
}
