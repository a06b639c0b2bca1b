//! A world of one equals the single-process trainers of before the engine: the final
//! parameters of short reward, SFT, DPO and PPO runs on a fixed seed, hashed bit for bit, are
//! those recorded in `golden/solo_params.json` by the loops of commit `8f481fe` (before
//! `rlhf-train` existed).
//!
//! Bits depend on the matmul kernel `gemm` picks at run time, so the file records the CPU path
//! it was made on (AVX-512 or not, fused or generic kernels). On the same path the hashes must
//! be equal; on another the test compares `Σ p` and `Σ p²` within 1e-4 relative instead and
//! says so. `RLHF_WRITE_GOLDEN=1` rewrites the file (only ever from the pre-engine commit).

use std::path::PathBuf;

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use rlhf_core::backend::{CpuTrain, FlexDevice};
use rlhf_core::tokenizer::Message;
use rlhf_core::{CausalLm, ModelConfig, ScalarModel};
use serde_json::{Value, json};

use crate::golden_runs as runs;

struct Flat(Vec<f32>);

impl<B: Backend> ModuleVisitor<B> for Flat {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
        self.0
            .extend(p.val().into_data().convert::<f32>().iter::<f32>());
    }
}

/// FNV-1a of the bits of every float parameter (visiting order), and `(Σ p, Σ p²)`.
pub(crate) fn digest<B: Backend, M: Module<B>>(m: &M) -> (String, f64, f64) {
    let mut f = Flat(Vec::new());
    m.visit(&mut f);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for x in &f.0 {
        for b in x.to_bits().to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    assert!(f.0.iter().all(|x| x.is_finite()), "non-finite parameter");
    let s: f64 = f.0.iter().map(|&x| x as f64).sum();
    let q: f64 = f.0.iter().map(|&x| (x as f64) * (x as f64)).sum();
    (format!("{h:016x}"), s, q)
}

fn cpu_path() -> String {
    #[cfg(target_arch = "x86_64")]
    let simd = if std::is_x86_feature_detected!("avx512f") {
        "avx512"
    } else {
        "no-avx512"
    };
    #[cfg(not(target_arch = "x86_64"))]
    let simd = std::env::consts::ARCH;
    let kernels = match std::env::var("RLHF_KERNELS").as_deref() {
        Ok("generic") => "generic",
        _ => "fused",
    };
    format!("{simd}/{kernels}")
}

fn golden_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("e2e/golden/solo_params.json")
}

pub(crate) fn byte_cfg() -> ModelConfig {
    ModelConfig::tiny_llama(256 + 3)
}

pub(crate) fn words(i: usize, k: usize) -> String {
    const W: &[&str] = &[
        "apple", "river", "stone", "cloud", "green", "quiet", "table",
    ];
    (0..k)
        .map(|j| W[(i * 7 + j * 3) % W.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn user(s: String) -> Vec<Message> {
    vec![Message::user(s)]
}

pub(crate) fn scalar(seed: u64) -> ScalarModel<CpuTrain> {
    ScalarModel::init(&byte_cfg(), 0.02, seed, &FlexDevice)
}

pub(crate) fn causal(seed: u64) -> CausalLm<CpuTrain> {
    CausalLm::init(&byte_cfg(), 0.02, seed, &FlexDevice)
}

#[test]
fn world_of_one_gives_the_pre_engine_parameters() {
    let tmp = tempfile::tempdir().unwrap();
    let results = [
        ("reward", runs::reward(&tmp.path().join("rm"))),
        ("sft", runs::sft(&tmp.path().join("sft"))),
        ("dpo", runs::dpo(&tmp.path().join("dpo"))),
        ("ppo", runs::ppo(&tmp.path().join("ppo"))),
    ];
    let path = cpu_path();
    let now: serde_json::Map<String, Value> = results
        .iter()
        .map(|(k, (h, s, q))| (k.to_string(), json!({"hash": h, "sum": s, "sumsq": q})))
        .collect();
    if std::env::var("RLHF_WRITE_GOLDEN").as_deref() == Ok("1") {
        let doc = json!({"cpu_path": path, "runs": now});
        std::fs::write(golden_file(), serde_json::to_string_pretty(&doc).unwrap()).unwrap();
        return;
    }
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(golden_file()).unwrap()).unwrap();
    let same_path = doc["cpu_path"] == json!(path);
    if !same_path {
        eprintln!(
            "golden made on {}, this is {path}: comparing parameter sums, not bits",
            doc["cpu_path"]
        );
    }
    for (k, v) in &now {
        let want = &doc["runs"][k];
        if same_path {
            assert_eq!(
                v["hash"], want["hash"],
                "{k}: parameters differ from the pre-engine loop"
            );
        }
        for f in ["sum", "sumsq"] {
            let (a, b) = (v[f].as_f64().unwrap(), want[f].as_f64().unwrap());
            assert!(
                a.is_finite() && (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                "{k} {f}: {a} vs golden {b}"
            );
        }
    }
}
