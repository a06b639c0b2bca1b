//! The fused CPU kernels against the generic burn code they replace: values and gradients, on
//! contiguous and non-contiguous inputs, kernel by kernel and for whole models.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::DType;
use rlhf_core::kernels::{self, reference};
use rlhf_core::logprobs::nll_loss;
use rlhf_core::{
    CausalLm, Family, ModelConfig, PadSide, RopeConfig, RopeScaling, RopeStyle, RopeTables,
    TokenBatch,
};

use rlhf_testkit::assert_close_rel;

use crate::common::{B, device};

type Ad = rlhf_core::backend::CpuTrain;

/// Deterministic values in [-2, 2).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
        })
        .collect()
}

fn rand<Bk: Backend, const D: usize>(shape: [usize; D], seed: u64) -> Tensor<Bk, D> {
    let n = shape.iter().product();
    Tensor::from_data(TensorData::new(values(n, seed), shape), &Default::default())
}

fn vec_of<Bk: Backend, const D: usize>(t: Tensor<Bk, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().unwrap()
}

/// Output and input gradient of `f` at `x`, for the loss `sum(f(x) · w)` with fixed random `w`.
fn value_and_grad<const D: usize, const E: usize>(
    x: Tensor<Ad, D>,
    f: impl Fn(Tensor<Ad, D>) -> Tensor<Ad, E>,
) -> (Vec<f32>, Vec<f32>) {
    let x = x.require_grad();
    let y = f(x.clone());
    let w = rand::<Ad, E>(y.dims(), 99);
    let grads = (y.clone() * w).sum().backward();
    let dx = x.grad(&grads).expect("input gradient");
    (vec_of(y), vec_of(dx))
}

/// Asserts the fused and reference versions of an op agree in value and gradient.
fn check<const D: usize, const E: usize>(
    what: &str,
    x: Tensor<Ad, D>,
    fused: impl Fn(Tensor<Ad, D>) -> Tensor<Ad, E>,
    generic: impl Fn(Tensor<Ad, D>) -> Tensor<Ad, E>,
) {
    let before = kernels::fused_calls();
    let (y1, g1) = value_and_grad(x.clone(), fused);
    assert!(
        kernels::fused_calls() > before,
        "{what}: the fused kernel was not used"
    );
    let (y2, g2) = value_and_grad(x, generic);
    assert_close_rel(&format!("{what}: values"), &y1, &y2, 2e-6);
    assert_close_rel(&format!("{what}: gradients"), &g1, &g2, 2e-6);
}

#[test]
fn swiglu_matches_silu_times_up() {
    check(
        "swiglu",
        rand::<Ad, 3>([3, 5, 2 * 37], 1),
        kernels::swiglu,
        reference::swiglu,
    );
    // A non-contiguous input: a transposed view.
    check(
        "swiglu (transposed input)",
        rand::<Ad, 3>([3, 2 * 6, 5], 2),
        |x| kernels::swiglu(x.swap_dims(1, 2)),
        |x| reference::swiglu(x.swap_dims(1, 2)),
    );
    // Inference backend, no graph.
    let x = rand::<B, 2>([4, 20], 3);
    assert_close_rel(
        "swiglu on Flex",
        &vec_of(kernels::swiglu(x.clone())),
        &vec_of(reference::swiglu(x)),
        2e-6,
    );
}

fn tables(rot: usize, style: RopeStyle) -> RopeTables<Ad> {
    let cfg = RopeConfig {
        theta: 10_000.0,
        rotary_dim: rot,
        style,
        scaling: RopeScaling::Default,
    };
    RopeTables::new(&cfg, 64, DType::F32, &device())
}

#[test]
fn split_heads_matches_slices_transposes_and_rope() {
    // (heads, kv heads, head dim, rotary dim, style): Llama MHA, Qwen2-like GQA, GLM's
    // partial interleaved rotation, and a partial rotate-half one.
    let cases = [
        (4, 4, 16, 16, RopeStyle::Half),
        (4, 2, 8, 8, RopeStyle::Half),
        (2, 1, 16, 8, RopeStyle::Interleaved),
        (3, 1, 8, 4, RopeStyle::Half),
    ];
    let (b, t) = (2, 7);
    // Row 1 is left-padded: its positions start late.
    let pos: Vec<i64> = (0..t as i64)
        .chain((0..t as i64).map(|p| (p - 3).max(0)))
        .collect();
    let positions =
        Tensor::<Ad, 2, Int>::from_data(TensorData::new(pos, [b, t]), &Default::default());
    for (seed, (h, kvh, hd, rot, style)) in cases.into_iter().enumerate() {
        let rope = tables(rot, style);
        let (cos, sin) = rope.gather(positions.clone());
        let x = rand::<Ad, 3>([b, t, (h + 2 * kvh) * hd], 10 + seed as u64);
        check(
            &format!("split_heads h={h} kvh={kvh} hd={hd} rot={rot} {style:?}"),
            x,
            |x| kernels::split_heads(x, h, kvh, hd, &rope, &cos, &sin),
            |x| reference::split_heads(x, h, kvh, hd, &rope, &cos, &sin),
        );
    }
}

#[test]
fn self_attention_matches_burns_attention() {
    let (b, t, d) = (3, 6, 8);
    // Causal, plus padding: row 1 left-padded by 2, row 2 right-padded by 1; a fully masked
    // query row (row 1's padding) must give zeros, as burn's NaN-safe softmax does.
    let mut mask = vec![false; b * t * t];
    for r in 0..b {
        for i in 0..t {
            for j in 0..t {
                let pad = (r == 1 && (j < 2 || i < 2)) || (r == 2 && j == t - 1);
                mask[(r * t + i) * t + j] = j > i || pad;
            }
        }
    }
    let mask = Tensor::<Ad, 4, Bool>::from_data(TensorData::new(mask, [b, 1, t, t]), &device());
    for (h, kvh) in [(4, 4), (4, 2), (3, 1)] {
        check(
            &format!("self_attention h={h} kvh={kvh}"),
            rand::<Ad, 4>([b, h + 2 * kvh, t, d], 20 + h as u64 + kvh as u64),
            |x| kernels::self_attention(x, h, kvh, mask.clone()),
            |x| reference::self_attention(x, h, kvh, mask.clone()),
        );
    }
}

#[test]
fn linear_matches_burns_linear_in_value_and_both_gradients() {
    let w = rand::<Ad, 2>([12, 7], 30).require_grad();
    let bias = rand::<Ad, 1>([7], 31).require_grad();
    let lin = burn::nn::Linear {
        weight: Param::from_tensor(w.clone()),
        bias: Some(Param::from_tensor(bias.clone())),
    };
    check(
        "linear",
        rand::<Ad, 3>([2, 5, 12], 32),
        |x| kernels::linear(x, &lin),
        |x| lin.forward(x),
    );
    // A non-contiguous input, and the weight's and bias's gradients.
    let x = rand::<Ad, 3>([2, 12, 5], 33);
    let wy = rand::<Ad, 3>([2, 5, 7], 34);
    let grads_of = |f: &dyn Fn() -> Tensor<Ad, 3>| {
        let g = (f() * wy.clone()).sum().backward();
        let dw = vec_of(lin.weight.val().grad(&g).expect("weight gradient"));
        let db = vec_of(
            lin.bias
                .as_ref()
                .unwrap()
                .val()
                .grad(&g)
                .expect("bias gradient"),
        );
        (dw, db)
    };
    let (w1, b1) = grads_of(&|| kernels::linear(x.clone().swap_dims(1, 2), &lin));
    let (w2, b2) = grads_of(&|| lin.forward(x.clone().swap_dims(1, 2)));
    assert_close_rel("linear: weight gradients", &w1, &w2, 2e-6);
    assert_close_rel("linear: bias gradients", &b1, &b2, 2e-6);
}

#[test]
fn merge_heads_matches_the_transpose() {
    check(
        "merge_heads",
        rand::<Ad, 4>([2, 3, 5, 8], 4),
        kernels::merge_heads,
        reference::merge_heads,
    );
    check(
        "merge_heads (sliced input)",
        rand::<Ad, 4>([2, 5, 5, 8], 5),
        |x| kernels::merge_heads(x.slice([0..2, 1..4, 0..5, 0..8])),
        |x| reference::merge_heads(x.slice([0..2, 1..4, 0..5, 0..8])),
    );
}

#[test]
fn target_logprobs_match_log_softmax_and_gather() {
    let (b, t, v) = (3, 4, 50);
    let ids: Vec<i64> = (0..(b * t) as i64)
        .map(|i| (i * 17 + 3) % v as i64)
        .collect();
    let targets =
        Tensor::<Ad, 2, Int>::from_data(TensorData::new(ids, [b, t]), &Default::default());
    // Scaled up so the log-sum-exp shift matters.
    check(
        "target_logprobs",
        rand::<Ad, 3>([b, t, v], 6) * 8.0,
        |x| kernels::target_logprobs(x, targets.clone()),
        |x| reference::target_logprobs(x, targets.clone()),
    );
}

#[test]
fn rms_norm_matches_burns_and_trains_its_scale() {
    let gamma = rand::<Ad, 1>([24], 7).require_grad();
    check(
        "rms_norm",
        rand::<Ad, 3>([2, 5, 24], 8),
        |x| kernels::rms_norm(x, gamma.clone(), 1e-6),
        |x| reference::rms_norm(x, gamma.clone(), 1e-6),
    );
    // The scale's gradient.
    let x = rand::<Ad, 3>([2, 5, 24], 9);
    let w = rand::<Ad, 3>([2, 5, 24], 10);
    let dgamma = |f: &dyn Fn() -> Tensor<Ad, 3>| {
        let g = (f() * w.clone()).sum().backward();
        vec_of(gamma.grad(&g).expect("gamma gradient"))
    };
    let fused = dgamma(&|| kernels::rms_norm(x.clone(), gamma.clone(), 1e-6));
    let generic = dgamma(&|| reference::rms_norm(x.clone(), gamma.clone(), 1e-6));
    assert_close_rel("rms_norm: gamma gradients", &fused, &generic, 2e-6);
}

/// Loss and every parameter gradient of a model, with the kernels on or off.
fn loss_and_grads(cfg: &ModelConfig, fused: bool) -> (f32, Vec<Vec<f32>>) {
    kernels::with_enabled(fused, || {
        let dev = device();
        let model = CausalLm::<Ad>::init(cfg, 0.1, 5, &dev);
        let batch = TokenBatch::from_rows(
            &[
                vec![1, 5, 9, 12, 40, 7, 3],
                vec![1, 7, 3],
                vec![1, 2, 60, 61],
            ],
            0,
            PadSide::Left,
        );
        let loss = nll_loss(
            model.forward(&batch, &dev),
            batch.ids_tensor::<Ad>(&dev),
            batch.mask_tensor::<Ad>(&dev),
        );
        let value: f32 = loss.clone().into_scalar().elem();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        struct Collect<'a>(&'a GradientsParams, Vec<Vec<f32>>);
        impl ModuleVisitor<Ad> for Collect<'_> {
            fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<Ad, D>>) {
                let g = self
                    .0
                    .get::<B, D>(p.id)
                    .expect("every parameter has a gradient");
                self.1.push(vec_of(g));
            }
        }
        let mut c = Collect(&grads, Vec::new());
        model.visit(&mut c);
        (value, c.1)
    })
}

#[test]
fn whole_models_train_the_same_with_and_without_the_kernels() {
    let llama = ModelConfig::tiny_llama(64);
    let glm = ModelConfig {
        family: Family::Glm,
        num_kv_heads: 1,
        rope: RopeConfig {
            rotary_dim: 8,
            style: RopeStyle::Interleaved,
            ..llama.rope
        },
        qkv_bias: true,
        post_sublayer_norms: true,
        ..llama.clone()
    };
    for (name, cfg) in [
        ("llama (GQA)", llama),
        ("glm (partial interleaved RoPE)", glm),
    ] {
        let before = kernels::fused_calls();
        let (l1, g1) = loss_and_grads(&cfg, true);
        let used = kernels::fused_calls() - before;
        // Per layer: 2+ norms, split, merge, swiglu; plus the final norm and the log-probs.
        assert!(used >= 2 * 5 + 2, "{name}: only {used} fused calls");
        let (l2, g2) = loss_and_grads(&cfg, false);
        assert!((l1 - l2).abs() < 1e-5, "{name}: loss {l1} vs {l2}");
        assert_eq!(g1.len(), g2.len());
        for (i, (a, b)) in g1.iter().zip(&g2).enumerate() {
            assert_close_rel(&format!("{name}: gradient of parameter {i}"), a, b, 1e-5);
        }
    }
}

// The counters the parity tests rely on to prove which path ran: per thread, so tests running
// in parallel do not disturb each other.
#[test]
fn thread_counters_tell_the_fused_path_from_the_generic_one() {
    let cfg = ModelConfig::tiny_llama(64);
    let model = CausalLm::<B>::init(&cfg, 0.1, 5, &device());
    let batch = TokenBatch::from_rows(&[vec![1, 5, 9], vec![1, 7]], 0, PadSide::Right);
    let run = |fused: bool| {
        let before = kernels::thread_calls();
        let logits = kernels::with_enabled(fused, || vec_of(model.forward(&batch, &device())));
        let after = kernels::thread_calls();
        let delta = (after.fused - before.fused, after.generic - before.generic);
        (logits, delta)
    };
    let (fused, (f1, g1)) = run(true);
    let (generic, (f2, g2)) = run(false);
    // Per layer: 2 norms, linear ×4, split, attention, swiglu; plus the final norm and head.
    assert!(f1 >= 2 * 9 + 2, "fused run: {f1} fused calls");
    assert_eq!(g1, 0, "fused run: {g1} generic calls");
    assert_eq!(f2, 0, "generic run: {f2} fused calls");
    assert_eq!(
        g2, f1,
        "generic run: {g2} generic calls, as many ops as the fused run"
    );
    assert_close_rel(
        "tiny llama logits, fused vs generic",
        &fused,
        &generic,
        1e-5,
    );
    // Another thread's work does not show on this one.
    let here = kernels::thread_calls();
    std::thread::scope(|s| {
        s.spawn(|| {
            let model = CausalLm::<B>::init(&cfg, 0.1, 5, &device());
            kernels::with_enabled(true, || model.forward(&batch, &device()))
        });
    });
    assert_eq!(kernels::thread_calls(), here);
}
