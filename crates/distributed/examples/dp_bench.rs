//! Data-parallel scaling of one reward-model step (tiny-bench config, Flex CPU backend):
//! milliseconds per optimizer step for a fixed global batch split over N processes (one per
//! node, talking over 127.0.0.1 exactly as separate machines would), and the time of one
//! gradient all-reduce alone.
//!
//! ```sh
//! # 1 process, then 2 processes, global batch 8 pairs × 128 tokens, 2 threads per process:
//! cargo run -p rlhf-distributed --example dp_bench --release -- --spawn 1 --threads 2
//! cargo run -p rlhf-distributed --example dp_bench --release -- --spawn 2 --threads 1
//! # 1 process with 2 in-process replicas (burn-collective's local all-reduce):
//! RAYON_NUM_THREADS=1 cargo run -p rlhf-distributed --example dp_bench --release -- --devices 2
//! # one node of a hand-launched run (what --spawn does for each node):
//! cargo run -p rlhf-distributed --example dp_bench --release -- \
//!     --nodes 2 --node-rank 0 --coordinator 127.0.0.1:29500
//! ```
//!
//! Options: `--pairs P` (global, default 8), `--seq L` (128), `--steps S` (5), `--warmup W`
//! (1), `--devices K` (replicas per process, threads summing through burn-collective; 1),
//! `--threads T` (sets `RAYON_NUM_THREADS` of spawned processes). Rank 0 prints one JSON
//! line: `world`, `global_pairs`, `seq`, `ms_per_step` (mean over the timed steps, rank 0's
//! wall clock, all-reduce included), `pairs_per_s`, `allreduce_ms` (one gradient bucket alone)
//! and `params`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use burn::module::Module;
use burn::optim::AdamWConfig;
use burn::optim::GradientsParams;
use burn::prelude::*;
use rlhf_core::backend::{CpuTrain, Flex, FlexDevice};
use rlhf_core::{ModelConfig, ScalarModel};
use rlhf_distributed::{DistConfig, Peer, launch};
use rlhf_reward::{LossConfig, batch_scores, reward_loss, synthetic_pair_batch};
use rlhf_train::shard_range;

#[derive(Debug, Clone)]
struct Args {
    spawn: Option<usize>,
    threads: Option<usize>,
    devices: usize,
    nodes: usize,
    node_rank: usize,
    coordinator: Option<String>,
    pairs: usize,
    seq: usize,
    steps: usize,
    warmup: usize,
}

fn parse() -> Args {
    let mut a = Args {
        spawn: None,
        threads: None,
        devices: 1,
        nodes: 1,
        node_rank: 0,
        coordinator: None,
        pairs: 8,
        seq: 128,
        steps: 5,
        warmup: 1,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let mut val = || {
            it.next()
                .unwrap_or_else(|| panic!("{flag} needs a value"))
                .clone()
        };
        let num = |s: String| {
            s.parse::<usize>()
                .unwrap_or_else(|_| panic!("bad number {s}"))
        };
        match flag.as_str() {
            "--spawn" => a.spawn = Some(num(val())),
            "--threads" => a.threads = Some(num(val())),
            "--devices" => a.devices = num(val()),
            "--nodes" => a.nodes = num(val()),
            "--node-rank" => a.node_rank = num(val()),
            "--coordinator" => a.coordinator = Some(val()),
            "--pairs" => a.pairs = num(val()),
            "--seq" => a.seq = num(val()),
            "--steps" => a.steps = num(val()),
            "--warmup" => a.warmup = num(val()),
            other => panic!("unknown option {other}"),
        }
    }
    a
}

fn run_node(a: &Args) -> rlhf_distributed::Result<Option<serde_json::Value>> {
    let cfg = DistConfig {
        nodes: a.nodes,
        node_rank: a.node_rank,
        coordinator: a.coordinator.clone(),
        ..DistConfig::default()
    };
    let devices = vec![FlexDevice; a.devices];
    let out = launch::<Flex, _, _>(&cfg, &devices, |peer: &Peer<Flex>| {
        let r = peer.rank();
        let dev = *peer.device();
        let mcfg = ModelConfig::tiny_bench();
        let mut model = ScalarModel::<CpuTrain>::init(&mcfg, 0.02, 1, &dev);
        let mut optim = AdamWConfig::new().init::<CpuTrain, ScalarModel<CpuTrain>>();
        let range = shard_range(a.pairs, r.rank, r.world);
        let batch = synthetic_pair_batch(range.len(), a.seq, mcfg.vocab_size, 7 + r.rank as u64);
        let share = range.len() as f64 / a.pairs as f64;
        let mut times = Vec::new();
        for step in 0..a.warmup + a.steps {
            let t = Instant::now();
            // This rank's shard of the step, weighted by its share, then the engine's apply
            // (all-reduce, clip, AdamW): what `rlhf_train::fit` does per micro-batch.
            let scores = batch_scores(&model, &batch, &dev);
            let n = batch.n;
            let out = reward_loss(
                scores.clone().narrow(0, 0, n),
                scores.narrow(0, n, n),
                None,
                &LossConfig::default(),
            );
            let grads = GradientsParams::from_grads(out.loss.mul_scalar(share).backward(), &model);
            let (m, _) =
                rlhf_train::apply(peer, model, &mut optim, grads, &[], Some(1.0), 1e-5, "step")?;
            model = m;
            if step >= a.warmup {
                times.push(t.elapsed());
            }
        }
        // One gradient-sized all-reduce on its own.
        let n = model.num_params();
        let bucket = Tensor::<Flex, 1>::ones([n], &dev);
        let mut ar = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            peer.all_reduce_sum(bucket.clone(), "bench all-reduce")?;
            ar.push(t.elapsed());
        }
        let mean =
            |v: &[Duration]| v.iter().map(Duration::as_secs_f64).sum::<f64>() / v.len() as f64;
        let ms = 1e3 * mean(&times);
        Ok(r.is_main().then(|| {
            serde_json::json!({
                "world": r.world,
                "devices_per_node": r.local_world,
                "global_pairs": a.pairs,
                "seq": a.seq,
                "steps": a.steps,
                "ms_per_step": (ms * 10.0).round() / 10.0,
                "pairs_per_s": (a.pairs as f64 / ms * 1e4).round() / 10.0,
                "allreduce_ms": (1e4 * mean(&ar)).round() / 10.0,
                "params": n,
                "rayon_threads": std::env::var("RAYON_NUM_THREADS").ok(),
            })
        }))
    })?;
    Ok(out.into_iter().flatten().next())
}

fn main() {
    let a = parse();
    if let Some(n) = a.spawn {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|x| x.port())
            .expect("free port");
        let exe = std::env::current_exe().expect("exe");
        let kids: Vec<_> = (0..n)
            .map(|r| {
                let mut c = Command::new(&exe);
                c.args(["--nodes", &n.to_string(), "--node-rank", &r.to_string()])
                    .args(["--devices", &a.devices.to_string()])
                    .args(["--coordinator", &format!("127.0.0.1:{port}")])
                    .args(["--pairs", &a.pairs.to_string(), "--seq", &a.seq.to_string()])
                    .args([
                        "--steps",
                        &a.steps.to_string(),
                        "--warmup",
                        &a.warmup.to_string(),
                    ])
                    .stdout(Stdio::piped());
                if let Some(t) = a.threads {
                    c.env("RAYON_NUM_THREADS", t.to_string());
                }
                c.spawn().expect("spawn")
            })
            .collect();
        let mut ok = true;
        for k in kids {
            let out = k.wait_with_output().expect("wait");
            print!("{}", String::from_utf8_lossy(&out.stdout));
            ok &= out.status.success();
        }
        std::process::exit(if ok { 0 } else { 1 });
    }
    match run_node(&a) {
        Ok(Some(v)) => println!("{v}"),
        Ok(None) => {}
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
