//! `rlhf bench core`: forward, forward+backward, a pairwise reward step and KV-cache greedy
//! generation on the "tiny-bench" Llama config, written as JSON.

use std::path::PathBuf;
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::activation::log_sigmoid;
use burn::tensor::backend::AutodiffBackend;
use clap::{Args, ValueEnum};
use rlhf_core::backend::{Autodiff, DeviceSpec};
use rlhf_core::generate::{GenerationConfig, generate};
use rlhf_core::logprobs::nll_loss;
use rlhf_core::{CausalLm, ModelConfig, PadSide, ScalarModel, TokenBatch};
use serde_json::json;

use crate::device::{parse_device, with_backend};

/// Which benchmark.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Suite {
    /// Model forward/backward/generation throughput (issue: rlhf-core).
    Core,
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
    #[arg(long, default_value = "target/bench/core.json")]
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

    // Pairwise reward step: 8 pairs (16 sequences), Bradley-Terry loss, AdamW step.
    let pairs = TokenBatch::from_rows(&rows(2 * b, t, cfg.vocab_size, 2), 0, PadSide::Right);
    let mut rm = ScalarModel::<A>::init(&cfg, 0.02, 1, &dev);
    let mut optim = AdamWConfig::new().init::<A, ScalarModel<A>>();
    let mut rm_step = || {
        let r = rm.rewards(&pairs, Some(0), &dev);
        let chosen = r.clone().slice([0..b]);
        let rejected = r.slice([b..2 * b]);
        let loss = log_sigmoid(chosen - rejected).mean().neg();
        let grads = GradientsParams::from_grads(loss.backward(), &rm);
        rm = optim.step(1e-5, rm.clone(), grads);
    };
    let reward_step = time(a.iters, &mut rm_step);

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
            "threads": std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into()),
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

pub(crate) fn run(a: BenchArgs) -> anyhow::Result<()> {
    let result = match a.suite {
        Suite::Core => with_backend!(a.device, |B, dev| core::<Autodiff<B>>(&a, dev))?,
    };
    let text = serde_json::to_string_pretty(&result)?;
    rlhf_core::io::write_atomic(&a.out, text.as_bytes())?;
    println!("{text}");
    Ok(())
}
