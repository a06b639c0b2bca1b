//! Data-parallel reward-model training from the command line, on the CPU: the front end
//! `rlhf train-reward --devices/--nodes/--node-rank/--coordinator` will be once the CLI links
//! this crate (see `docs/distributed.md`, "CLI integration"). Same run-dir layout and resume
//! behaviour; node 0 prints the outcome as JSON.
//!
//! ```sh
//! # two CPU replicas in one process
//! cargo run -p rlhf-distributed --example dp_train --release -- \
//!     --train pairs.jsonl --run-dir runs/rm-dp --init tiny-llama --devices cpu,cpu
//! # two nodes (run each line on its machine; the same --run-dir on a shared file system)
//! ... -- --train pairs.jsonl --run-dir /shared/rm --init tiny-llama \
//!        --nodes 2 --node-rank 0 --coordinator node0:29500
//! ... -- --train pairs.jsonl --run-dir /shared/rm --init tiny-llama \
//!        --nodes 2 --node-rank 1 --coordinator node0:29500
//! ```
//!
//! Options: `--train FILE` (Parquet from `rlhf data` or JSONL pairs), `--run-dir DIR`,
//! `--config FILE` (`RewardTrainConfig` JSON), `--init tiny-llama|tiny-bench` or `--model DIR`
//! (HF checkpoint, byte-level ids unless it has a tokenizer), `--init-seed N`,
//! `--devices cpu[,cpu…]`, `--nodes N`, `--node-rank R`, `--coordinator HOST:PORT`,
//! `--timeout SECS` (collective timeout), `--max-steps N`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use rlhf_core::backend::Flex;
use rlhf_core::backend::{CpuTrain, FlexDevice};
use rlhf_core::checkpoint::{LoadOptions, load_scalar_model};
use rlhf_core::text::{BYTE_VOCAB, TextCodec};
use rlhf_core::tokenizer::Tokenizer;
use rlhf_core::{ModelConfig, ScalarModel};
use rlhf_distributed::{DistConfig, run_on_node};
use rlhf_reward::{PairCollator, RewardTrainConfig, read_pairs, train_with};
use rlhf_train::TrainOptions;

#[derive(Debug, Default)]
struct Args {
    train: Option<PathBuf>,
    run_dir: Option<PathBuf>,
    config: Option<PathBuf>,
    init: Option<String>,
    model: Option<PathBuf>,
    init_seed: u64,
    devices: usize,
    dist: DistConfig,
    max_steps: Option<usize>,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        devices: 1,
        ..Args::default()
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let val = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?
            .clone();
        let num = |s: &str| {
            s.parse::<usize>()
                .map_err(|_| format!("{flag}: bad number {s}"))
        };
        match flag.as_str() {
            "--train" => a.train = Some(val.into()),
            "--run-dir" => a.run_dir = Some(val.into()),
            "--config" => a.config = Some(val.into()),
            "--init" => a.init = Some(val),
            "--model" => a.model = Some(val.into()),
            "--init-seed" => a.init_seed = num(&val)? as u64,
            "--devices" => {
                let d: Vec<&str> = val.split(',').collect();
                if let Some(bad) = d.iter().find(|d| !matches!(d.trim(), "cpu" | "flex")) {
                    return Err(format!(
                        "--devices {bad}: this example runs on the CPU only (cpu[,cpu…])"
                    ));
                }
                a.devices = d.len();
            }
            "--nodes" => a.dist.nodes = num(&val)?,
            "--node-rank" => a.dist.node_rank = num(&val)?,
            "--coordinator" => a.dist.coordinator = Some(val),
            "--timeout" => {
                a.dist.timeout_secs = val.parse().map_err(|_| format!("bad --timeout {val}"))?
            }
            "--max-steps" => a.max_steps = Some(num(&val)?),
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(a)
}

fn run(a: Args) -> Result<serde_json::Value, String> {
    let train = a.train.ok_or("--train FILE is required")?;
    let run_dir = a.run_dir.ok_or("--run-dir DIR is required")?;
    let mut cfg = match &a.config {
        Some(p) => RewardTrainConfig::from_json(p).map_err(|e| e.to_string())?,
        None => RewardTrainConfig::default(),
    };
    if a.max_steps.is_some() {
        cfg.max_steps = a.max_steps;
    }
    let tok = match &a.model {
        Some(dir) if dir.join("tokenizer.json").is_file() => {
            Some(Tokenizer::from_dir(dir).map_err(|e| e.to_string())?)
        }
        _ => None,
    };
    let encoder = tok.as_ref().map_or(TextCodec::Bytes, TextCodec::Tokenizer);
    let pairs = read_pairs(&train, None).map_err(|e| e.to_string())?;
    let collator = PairCollator::new(encoder, cfg.max_length);
    let stop = Arc::new(AtomicBool::new(false));
    let opts = TrainOptions {
        stop,
        progress: false,
        ..TrainOptions::new(&run_dir)
    };
    let preset = |name: &str| match name {
        "tiny-llama" => Ok(ModelConfig::tiny_llama(BYTE_VOCAB)),
        "tiny-bench" => Ok(ModelConfig {
            vocab_size: BYTE_VOCAB.max(ModelConfig::tiny_bench().vocab_size),
            ..ModelConfig::tiny_bench()
        }),
        other => Err(format!("unknown --init {other} (tiny-llama or tiny-bench)")),
    };
    let init = |dev: &FlexDevice| -> Result<ScalarModel<CpuTrain>, String> {
        match (&a.model, &a.init) {
            (Some(dir), _) => load_scalar_model::<CpuTrain>(dir, LoadOptions::default(), dev)
                .map(|(m, _)| m)
                .map_err(|e| e.to_string()),
            (None, Some(p)) => Ok(ScalarModel::init(&preset(p)?, 0.02, a.init_seed, dev)),
            (None, None) => Err("give --init PRESET or --model DIR".into()),
        }
    };
    let devices = vec![FlexDevice; a.devices];
    let (rank, o) = run_on_node::<Flex, _, _, _>(&a.dist, &devices, |peer| {
        let model = init(peer.device())?;
        train_with(peer, model, &collator, &pairs, &[], &cfg, &opts).map_err(|e| e.to_string())
    })
    .map_err(|e| e.to_string())?;
    Ok(serde_json::json!({
        "rank": rank.rank,
        "world": rank.world,
        "status": format!("{:?}", o.status),
        "step": o.step,
        "total_steps": o.total_steps,
        "resumed_from": o.resumed_from,
        "checkpoint": o.checkpoint,
        "last_log": o.history.last(),
    }))
}

fn main() {
    let out = parse().and_then(run);
    match out {
        Ok(v) => {
            if v["rank"] == 0 {
                println!("{v}");
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
