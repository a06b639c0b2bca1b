//! The paper's Figure 4 in miniature, and the NTP regulariser's effect on SFT perplexity.
//!
//! ```sh
//! RAYON_NUM_THREADS=2 cargo run --release -p rlhf-policy-ppo --example figure4 -- OUT_DIR [SEEDS]
//! ```
//!
//! A tiny byte-level Llama (hidden 64, 2 layers) is first fine-tuned on synthetic SFT data
//! ("Task k: tell me about TOPIC." → "TOPIC is ADJ and ADJ."), then trained with PPO against a
//! reward model that is a known function with a **task-dependent offset**, the situation the
//! reference reward is meant for (SPEC §A.4.3):
//!
//! `r(x, y) = offset(task(x)) + 4 × (fraction of the response's bytes that are 'e')`,
//! offsets −1.0, −0.5, …, +2.5 for tasks 0–7 (mean +0.75: like a real reward model, the score has
//! an arbitrary absolute level and a task-dependent shift).
//!
//! Runs per seed, all from the same SFT model and otherwise equal settings:
//! `ref` (reference reward on), `noref` (off: the ablation), `ref_ntp0.1` and `ref_ntp0.5` (on,
//! plus λ_ntp = 0.1 or 0.5 on the SFT data). Writes `OUT_DIR/<run>-s<seed>.jsonl` (metrics), `summary.json` and
//! `figure4.svg` (reward and KL of the first seed's `ref` and `noref`).

use std::path::PathBuf;

use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use rlhf_core::backend::{CpuTrain, FlexDevice};
use rlhf_core::logprobs::nll_loss;
use rlhf_core::text::{BYTE_VOCAB, EncodedRow, TextCodec};
use rlhf_core::tokenizer::Message;
use rlhf_core::{CausalLm, ModelConfig, ScalarModel};
use rlhf_policy_ppo::{
    FnScorer, PlotRun, PpoConfig, PpoData, PpoLog, PpoModels, Prompt, SftExample, encode_prompts,
    encode_sft, ntp_batch, reward_kl_svg, train, write_logs,
};
use rlhf_train::{TrainOptions, epoch_permutation};

type B = CpuTrain;
type Inner = <B as burn::tensor::backend::AutodiffBackend>::InnerBackend;
const DEV: FlexDevice = FlexDevice;

const TOPICS: &[&str] = &[
    "the sea",
    "a tree",
    "the moon",
    "bread",
    "a river",
    "snow",
    "the city",
    "a cat",
    "music",
    "the desert",
    "a garden",
    "winter",
    "coffee",
    "a bridge",
    "the wind",
    "a forest",
];
const ADJS: &[&str] = &[
    "green", "deep", "sweet", "cold", "dark", "soft", "round", "warm", "quick", "bright", "old",
    "free", "calm", "loud", "wild", "pure",
];

struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

fn prompt_text(task: usize, topic: &str) -> String {
    format!("Task {task}: tell me about {topic}.")
}

fn sft_set(n: usize, seed: u64) -> Vec<SftExample> {
    let mut rng = Lcg(seed);
    (0..n)
        .map(|_| {
            let (task, topic) = (rng.next(8), TOPICS[rng.next(TOPICS.len())]);
            let (a, b) = (ADJS[rng.next(ADJS.len())], ADJS[rng.next(ADJS.len())]);
            SftExample {
                prompt: vec![Message::user(prompt_text(task, topic))],
                response: format!("{topic} is {a} and {b}."),
            }
        })
        .collect()
}

fn task_of(prompt: &[u32]) -> usize {
    let text: Vec<u8> = prompt
        .iter()
        .filter(|&&t| t >= 3)
        .map(|&t| (t - 3) as u8)
        .collect();
    let text = String::from_utf8_lossy(&text);
    text.split("Task ")
        .nth(1)
        .and_then(|s| s[..1].parse().ok())
        .unwrap_or(0)
}

fn reward(prompt: &[u32], response: &[u32]) -> f32 {
    let offset = -1.0 + 0.5 * task_of(prompt) as f32;
    let e = response.iter().filter(|&&t| t == b'e' as u32 + 3).count();
    offset + 4.0 * e as f32 / response.len().max(1) as f32
}

/// Mean NLL per response token of `rows` (perplexity = its exp).
fn sft_nll(model: &CausalLm<Inner>, rows: &[EncodedRow]) -> f64 {
    let (mut sum, mut n) = (0.0, 0.0);
    for chunk in rows.chunks(32) {
        let refs: Vec<&EncodedRow> = chunk.iter().collect();
        let (tokens, mask) = ntp_batch(&refs, 0);
        // nll_loss averages over the counted targets: every masked column but the first.
        let count: f64 = (0..tokens.batch)
            .map(|r| {
                mask[r * tokens.seq + 1..(r + 1) * tokens.seq]
                    .iter()
                    .sum::<f32>() as f64
            })
            .sum();
        let m = Tensor::from_data(TensorData::new(mask, [tokens.batch, tokens.seq]), &DEV);
        let l = nll_loss(model.forward(&tokens, &DEV), tokens.ids_tensor(&DEV), m);
        let l: f64 = l.into_scalar().elem();
        sum += l * count;
        n += count;
    }
    sum / n
}

fn sft_warmup(rows: &[EncodedRow], steps: usize) -> CausalLm<B> {
    let cfg = ModelConfig::tiny_llama(BYTE_VOCAB);
    let mut model = CausalLm::<B>::init(&cfg, 0.02, 0, &DEV);
    let mut optim = AdamWConfig::new()
        .with_weight_decay(0.0)
        .init::<B, CausalLm<B>>();
    let mut cursor = 0;
    let mut perm = epoch_permutation(rows.len(), 1, 0);
    for s in 0..steps {
        if cursor + 16 > rows.len() {
            perm = epoch_permutation(rows.len(), 1, s + 1);
            cursor = 0;
        }
        let refs: Vec<&EncodedRow> = perm[cursor..cursor + 16]
            .iter()
            .map(|&i| &rows[i])
            .collect();
        cursor += 16;
        let (tokens, mask) = ntp_batch(&refs, 0);
        let m = Tensor::from_data(TensorData::new(mask, [tokens.batch, tokens.seq]), &DEV);
        let loss = nll_loss(model.forward(&tokens, &DEV), tokens.ids_tensor(&DEV), m);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(3e-3, model, grads);
    }
    model
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().unwrap_or_else(|| "target/figure4".into()));
    let seeds: u64 = args.next().map_or(Ok(3), |s| s.parse())?;
    std::fs::create_dir_all(&out)?;
    let enc = TextCodec::Bytes;
    let sft_train = encode_sft(&enc, &sft_set(512, 1), 128)?;
    let sft_eval = encode_sft(&enc, &sft_set(128, 2), 128)?;
    let prompts: Vec<Prompt> = (0..64)
        .map(|i| Prompt {
            id: format!("p{i}"),
            messages: vec![Message::user(prompt_text(
                i % 8,
                TOPICS[(i / 8 + 3 * i) % TOPICS.len()],
            ))],
        })
        .collect();
    let data = PpoData {
        prompts: encode_prompts(&enc, &prompts, 64)?,
        sft: sft_train.clone(),
        pad_id: 0,
        eos_ids: vec![2],
    };

    let t = std::time::Instant::now();
    let sft = sft_warmup(&sft_train, 400);
    let sft_inner = sft.valid();
    let nll0 = sft_nll(&sft_inner, &sft_eval);
    eprintln!(
        "SFT warm-up: {:.1} s, held-out SFT perplexity {:.3}",
        t.elapsed().as_secs_f64(),
        nll0.exp()
    );

    let base = PpoConfig {
        total_steps: 60,
        batch_prompts: 16,
        mini_batch_size: 8,
        ppo_epochs: 2,
        max_new_tokens: 40,
        learning_rate: 2e-4,
        critic_learning_rate: 1e-3,
        vf_coef: 0.5,
        save_steps: None,
        ..PpoConfig::default()
    };
    let mut summary = Vec::new();
    let mut plot = Vec::new();
    for seed in 0..seeds {
        for (name, baseline, ntp) in [
            ("ref", true, 0.0),
            ("noref", false, 0.0),
            ("ref_ntp0.1", true, 0.1),
            ("ref_ntp0.5", true, 0.5),
        ] {
            let mut cfg = PpoConfig {
                seed: 100 + seed,
                ntp_coef: ntp,
                ..base.clone()
            };
            cfg.shaping.reference_baseline = baseline;
            let run_dir = out.join(format!("{name}-s{seed}"));
            let _ = std::fs::remove_dir_all(&run_dir);
            let cfg_model = ModelConfig::tiny_llama(BYTE_VOCAB);
            let models = PpoModels {
                actor: sft.clone(),
                reference: sft_inner.clone(),
                critic: Some(ScalarModel::<B>::init(&cfg_model, 0.02, 7 + seed, &DEV)),
                reward: Box::new(FnScorer::new("task-offset-e-fraction", reward)),
            };
            let t = std::time::Instant::now();
            let dec = |ids: &[u32]| enc.decode(ids);
            let opts = TrainOptions {
                progress: false,
                ..TrainOptions::new(&run_dir)
            };
            let res = train(models, &data, &dec, &cfg, &opts, &DEV)?;
            let secs = t.elapsed().as_secs_f64();
            let nll = sft_nll(&res.actor.valid(), &sft_eval);
            let h: &[PpoLog] = &res.history;
            write_logs(&out.join(format!("{name}-s{seed}.jsonl")), h)?;
            let w = |r: std::ops::Range<usize>, f: fn(&PpoLog) -> f64| {
                h[r.clone()].iter().map(f).sum::<f64>() / r.len() as f64
            };
            let xs: Vec<f64> = h[..10].iter().map(|l| l.shaped_scores).collect();
            let m = xs.iter().sum::<f64>() / 10.0;
            let std_first10 = (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 9.0).sqrt();
            let row = serde_json::json!({
                "run": name, "seed": seed, "seconds": secs,
                "reward_first5": w(0..5, |l| l.shaped_scores), "reward_last5": w(55..60, |l| l.shaped_scores),
                "score_first5": w(0..5, |l| l.scores), "score_last5": w(55..60, |l| l.scores),
                "kl_at_10": w(5..15, |l| l.kl), "kl_at_30": w(25..35, |l| l.kl), "kl_last5": w(55..60, |l| l.kl),
                "reward_std_first10": std_first10,
                "sft_ppl_before": nll0.exp(), "sft_ppl_after": nll.exp(),
            });
            eprintln!("{row}");
            summary.push(row);
            if seed == 0 && ntp == 0.0 {
                let label = if baseline {
                    "with reference reward"
                } else {
                    "without (ablation)"
                };
                plot.push(PlotRun::from_logs(label, h));
            }
        }
    }
    std::fs::write(
        out.join("summary.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;
    let svg = reward_kl_svg("Figure 4 in miniature: PPO reward and KL, seed 0", &plot)?;
    std::fs::write(out.join("figure4.svg"), svg)?;
    Ok(())
}
