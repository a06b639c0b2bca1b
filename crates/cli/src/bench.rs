//! `rlhf bench core`: forward, forward+backward, a pairwise reward step and KV-cache greedy
//! generation on the "tiny-bench" Llama config, written as JSON.

use std::path::PathBuf;
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use clap::{Args, ValueEnum};
use rlhf_core::backend::{Autodiff, DeviceSpec};
use rlhf_core::generate::{GenerationConfig, generate};
use rlhf_core::logprobs::nll_loss;
use rlhf_core::{CausalLm, ModelConfig, PadSide, TokenBatch};
use serde_json::json;

use crate::device::{parse_device, with_backend};

/// Which benchmark.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Suite {
    /// Model forward/backward/generation throughput (issue: rlhf-core).
    Core,
    /// Single tensor operations of the tiny-bench forward pass, to see what limits it.
    Ops,
    /// One reward-model training step (8 pairs, tiny-bench): forward, Bradley-Terry loss with
    /// the score prior, backward, global-norm clipping, AdamW.
    Reward,
    /// One DPO step (8 pairs, tiny-bench): the reference's forward and the policy's forward,
    /// sigmoid-DPO loss, backward, clipping and AdamW.
    Dpo,
    /// One PPO step (tiny-bench; `--batch` prompts of 64 tokens, 32 sampled new tokens):
    /// generation, reference log-probs, values, reward, GAE, one fused policy+value
    /// backward and AdamW on actor and critic; phase shares and the memory plan.
    Ppo,
}

/// `rlhf bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// The suite to run.
    suite: Suite,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    device: DeviceSpec,
    /// Timed iterations per measurement (after one warm-up).
    #[arg(long, default_value_t = 5)]
    iters: usize,
    /// Batch size (sequences).
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Sequence length.
    #[arg(long, default_value_t = 128)]
    seq: usize,
    /// New tokens for the generation measurement.
    #[arg(long, default_value_t = 64)]
    new_tokens: usize,
    /// Where to write the JSON result.
    #[arg(long, default_value = "target/bench/result.json")]
    out: PathBuf,
}

fn rows(batch: usize, seq: usize, vocab: usize, seed: u64) -> Vec<Vec<u32>> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..batch)
        .map(|_| {
            (0..seq)
                .map(|_| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    3 + ((x >> 33) as usize % (vocab - 3)) as u32
                })
                .collect()
        })
        .collect()
}

fn time<F: FnMut()>(iters: usize, mut f: F) -> f64 {
    f();
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    t.elapsed().as_secs_f64() / iters as f64
}

fn core<A: AutodiffBackend>(a: &BenchArgs, dev: A::Device) -> anyhow::Result<serde_json::Value> {
    let cfg = ModelConfig::tiny_bench();
    let (b, t) = (a.batch, a.seq);
    let batch = TokenBatch::from_rows(&rows(b, t, cfg.vocab_size, 1), 0, PadSide::Right);
    let tokens = (b * t) as f64;

    let train_model = CausalLm::<A>::init(&cfg, 0.02, 0, &dev);
    let model: CausalLm<A::InnerBackend> = train_model.valid();
    let fwd = time(a.iters, || {
        let l = model.forward(&batch, &dev);
        let _ = l.sum().into_scalar();
    });
    let ids = batch.ids_tensor::<A>(&dev);
    let mask = batch.mask_tensor::<A>(&dev);
    let fwd_bwd = time(a.iters, || {
        let loss = nll_loss(train_model.forward(&batch, &dev), ids.clone(), mask.clone());
        let grads = loss.backward();
        drop(grads);
    });

    // Pairwise reward step (8 pairs = 16 sequences): the reward crate's own train step.
    let reward = rlhf_reward::bench_train_step::<A>(b, t, a.iters, &dev);
    let reward_step = reward.ms_per_step / 1e3;

    let prompts = rows(b, 64, cfg.vocab_size, 3);
    let gen_cfg = GenerationConfig::greedy(a.new_tokens, 0);
    let gen_iters = a.iters.clamp(1, 3);
    let generation = time(gen_iters, || {
        let out = generate(&model, &prompts, &gen_cfg, &dev).expect("generation");
        assert_eq!(out.new_ids[0].len(), a.new_tokens);
    });

    Ok(json!({
        "suite": "core",
        "config": {
            "model": "tiny-bench (vocab 8192, hidden 256, 4 layers, 4 heads, 4 KV heads, intermediate 688)",
            "batch": b, "seq": t, "dtype": "f32", "iters": a.iters,
            "device": a.device.to_string(),
            "threads": std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into()), "kernels": kernels_label(),
            "params": cfg.num_params(),
        },
        "forward": { "ms": fwd * 1e3, "tokens_per_s": tokens / fwd },
        "forward_backward": { "ms": fwd_bwd * 1e3, "tokens_per_s": tokens / fwd_bwd },
        "reward_step_8_pairs": { "ms": reward_step * 1e3, "tokens_per_s": 2.0 * tokens / reward_step },
        "greedy_generation": {
            "prompt_len": 64, "new_tokens": a.new_tokens,
            "ms": generation * 1e3, "new_tokens_per_s": (b * a.new_tokens) as f64 / generation,
        },
    }))
}

fn ops<B: Backend>(a: &BenchArgs, dev: B::Device) -> anyhow::Result<serde_json::Value> {
    use burn::tensor::Distribution;
    use burn::tensor::module::attention;
    use burn::tensor::ops::AttentionModuleOptions;
    let n = a.batch * a.seq;
    let mut out = serde_json::Map::new();
    for (name, k, m) in [
        ("matmul_qkv_256x768", 256, 768),
        ("matmul_o_256x256", 256, 256),
        ("matmul_gate_up_256x1376", 256, 1376),
        ("matmul_down_688x256", 688, 256),
        ("matmul_lm_head_256x8192", 256, 8192),
    ] {
        let x = Tensor::<B, 2>::random([n, k], Distribution::Normal(0.0, 1.0), &dev);
        let w = Tensor::<B, 2>::random([k, m], Distribution::Normal(0.0, 1.0), &dev);
        let s = time(a.iters, || {
            let _ = x.clone().matmul(w.clone()).slice([0..1, 0..1]).into_data();
        });
        let gflops = 2.0 * (n * k * m) as f64 / s / 1e9;
        out.insert(name.into(), json!({"ms": s * 1e3, "gflop_per_s": gflops}));
    }
    let q = Tensor::<B, 4>::random(
        [a.batch, 4, a.seq, 64],
        Distribution::Normal(0.0, 1.0),
        &dev,
    );
    let mask = Tensor::<B, 4, Bool>::tril_mask([a.batch, 4, a.seq, a.seq], 0, &dev);
    let s = time(a.iters, || {
        let o = attention(
            q.clone(),
            q.clone(),
            q.clone(),
            Some(mask.clone()),
            None,
            AttentionModuleOptions::default(),
        );
        let _ = o.slice([0..1, 0..1, 0..1, 0..1]).into_data();
    });
    out.insert("attention_8x4x128x64".into(), json!({"ms": s * 1e3}));
    let logits =
        Tensor::<B, 3>::random([a.batch, a.seq, 8192], Distribution::Normal(0.0, 1.0), &dev);
    let s = time(a.iters, || {
        let _ = burn::tensor::activation::log_softmax(logits.clone(), 2)
            .slice([0..1, 0..1, 0..1])
            .into_data();
    });
    out.insert("log_softmax_8x128x8192".into(), json!({"ms": s * 1e3}));
    // What the trainers use instead: the target's log-prob only (fused on CPU).
    let targets = Tensor::<B, 2, Int>::zeros([a.batch, a.seq], &dev);
    let s = time(a.iters, || {
        let _ = rlhf_core::logprobs::gather_logprobs(logits.clone(), targets.clone())
            .slice([0..1, 0..1])
            .into_data();
    });
    out.insert("target_logprobs_8x128x8192".into(), json!({"ms": s * 1e3}));
    let x = Tensor::<B, 3>::random([a.batch, a.seq, 1376], Distribution::Normal(0.0, 1.0), &dev);
    let s = time(a.iters, || {
        let _ = burn::tensor::activation::silu(x.clone())
            .slice([0..1, 0..1, 0..1])
            .into_data();
    });
    out.insert("silu_8x128x1376".into(), json!({"ms": s * 1e3}));
    // One decoder layer of tiny-bench, piece by piece.
    let cfg = ModelConfig::tiny_bench();
    let model = CausalLm::<B>::init(&cfg, 0.02, 0, &dev);
    let layer = &model.trunk.layers[0];
    let h = Tensor::<B, 3>::random([a.batch, a.seq, 256], Distribution::Normal(0.0, 1.0), &dev);
    let pos: Vec<i64> = (0..a.batch).flat_map(|_| 0..a.seq as i64).collect();
    let pos = Tensor::<B, 2, Int>::from_data(TensorData::new(pos, [a.batch, a.seq]), &dev);
    let (cos, sin) = model.trunk.rope.gather(pos);
    let qh = Tensor::<B, 4>::random(
        [a.batch, 4, a.seq, 64],
        Distribution::Normal(0.0, 1.0),
        &dev,
    );
    let m = Tensor::<B, 3, Bool>::tril_mask([a.batch, a.seq, a.seq], 0, &dev).unsqueeze_dim::<4>(1);
    let sync3 = |t: Tensor<B, 3>| {
        let _ = t.slice([0..1, 0..1, 0..1]).into_data();
    };
    let t_norm = time(a.iters, || sync3(layer.input_norm.forward(h.clone())));
    let t_rope = time(a.iters, || {
        let _ = model
            .trunk
            .rope
            .apply(qh.clone(), &cos, &sin)
            .slice([0..1, 0..1, 0..1, 0..1])
            .into_data();
    });
    let t_attn = time(a.iters, || {
        sync3(
            layer
                .attn
                .forward(h.clone(), &model.trunk.rope, &cos, &sin, m.clone(), None),
        )
    });
    let t_mlp = time(a.iters, || sync3(layer.mlp.forward(h.clone())));
    let t_layer = time(a.iters, || {
        sync3(layer.forward(h.clone(), &model.trunk.rope, &cos, &sin, m.clone(), None))
    });
    let batch = TokenBatch::from_rows(&rows(a.batch, a.seq, cfg.vocab_size, 1), 0, PadSide::Right);
    let t_trunk = time(a.iters, || sync3(model.trunk.forward(&batch, None, &dev)));
    out.insert(
        "layer".into(),
        json!({"rmsnorm_ms": t_norm * 1e3, "rope_q_ms": t_rope * 1e3, "attention_block_ms": t_attn * 1e3,
               "mlp_block_ms": t_mlp * 1e3, "whole_layer_ms": t_layer * 1e3, "trunk_4_layers_ms": t_trunk * 1e3}),
    );
    Ok(serde_json::Value::Object(out))
}

pub(crate) fn run(a: BenchArgs) -> anyhow::Result<()> {
    let result = match a.suite {
        Suite::Core => with_backend!(a.device, |B, dev| core::<Autodiff<B>>(&a, dev))?,
        Suite::Ops => with_backend!(a.device, |B, dev| ops::<B>(&a, dev))?,
        Suite::Reward => with_backend!(a.device, |B, dev| {
            let r = rlhf_reward::bench_train_step::<Autodiff<B>>(a.batch, a.seq, a.iters, &dev);
            Ok::<_, anyhow::Error>(json!({
                "suite": "reward",
                "config": {"model": "tiny-bench", "pairs": r.pairs, "seq": r.seq, "iters": r.iters,
                           "params": r.params, "device": a.device.to_string(),
                           "threads": std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into()), "kernels": kernels_label()},
                "reward_step": {"ms": r.ms_per_step, "tokens_per_s": r.tokens_per_s},
            }))
        })?,
        Suite::Dpo => with_backend!(a.device, |B, dev| {
            let r = rlhf_policy_dpo::bench_dpo_step::<Autodiff<B>>(a.batch, a.seq, a.iters, &dev);
            Ok::<_, anyhow::Error>(json!({
                "suite": "dpo",
                "config": {"model": "tiny-bench", "pairs": r.pairs, "seq": r.seq, "reply": r.reply,
                           "iters": r.iters, "params": r.params, "device": a.device.to_string(),
                           "threads": std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into()), "kernels": kernels_label()},
                "dpo_step": {"ms": r.ms_per_step, "reference_forward_ms": r.reference_ms,
                             "policy_step_ms": r.policy_step_ms},
            }))
        })?,
        Suite::Ppo => with_backend!(a.device, |B, dev| {
            let (prompt_len, new_tokens) = (64, 32);
            let cfg = ModelConfig::tiny_bench();
            let plan = rlhf_policy_ppo::MemoryPlan::estimate(
                &cfg, &cfg, a.batch, a.batch, prompt_len, new_tokens, 4,
            );
            eprint!("{}", plan.to_table());
            let r = rlhf_policy_ppo::bench_ppo_step::<Autodiff<B>>(
                a.batch, prompt_len, new_tokens, a.iters, &dev,
            );
            let phases: serde_json::Map<String, serde_json::Value> = r
                .phases
                .shares()
                .into_iter()
                .map(|(n, ms, share)| (n.to_string(), json!({"ms": ms, "share": share})))
                .collect();
            for (n, ms, share) in r.phases.shares() {
                eprintln!("{n:<20} {ms:>9.1} ms {:>5.1} %", 100.0 * share);
            }
            Ok::<_, anyhow::Error>(json!({
                "suite": "ppo",
                "config": {"model": "tiny-bench", "prompts": r.prompts, "prompt_len": r.prompt_len,
                           "new_tokens": r.new_tokens, "iters": r.iters, "params": cfg.num_params(),
                           "device": a.device.to_string(),
                           "threads": std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into()), "kernels": kernels_label()},
                "ppo_step": {"ms": r.ms_per_step, "phases": phases},
                "memory_plan": r.memory,
                "memory_plan_peak_mib": plan.peak_bytes() as f64 / (1024.0 * 1024.0),
            }))
        })?,
    };
    let text = serde_json::to_string_pretty(&result)?;
    rlhf_core::io::write_atomic(&a.out, text.as_bytes())?;
    println!("{text}");
    Ok(())
}

/// Which kernels the CPU ran: "fused" (`rlhf_core::kernels`) or "generic" (`RLHF_KERNELS=generic`).
fn kernels_label() -> &'static str {
    if rlhf_core::kernels::enabled() {
        "fused"
    } else {
        "generic"
    }
}
