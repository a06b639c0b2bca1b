//! What happens once before PPO step 0: the prompt filter (SPEC §A.4.1) and the
//! reference-reward cache (SPEC §A.4.3), both cached in the run directory and reused on resume.

use burn::prelude::*;
use rlhf_core::CausalLm;
use rlhf_core::generate::{GenerationConfig, Sampling};
use rlhf_train::TrainOptions;

use crate::config::{PpoConfig, ReferenceDecoding};
use crate::data::EncodedPrompt;
use crate::error::Result;
use crate::filter::{FilterReport, filter_prompts};
use crate::frozen::{Frozen, ids_hash};
use crate::refcache::generation_descriptor;
use crate::scorer::Scorer;

/// FNV-1a of the prompts' lengths and ids.
pub fn prompts_fingerprint(prompts: &[EncodedPrompt]) -> String {
    let mut all = Vec::new();
    for p in prompts {
        all.push(p.ids.len() as u32);
        all.extend_from_slice(&p.ids);
    }
    ids_hash(&all)
}

/// The prompt filter, reusing `RUN_DIR/prompt_filter.json` when it was computed for the same
/// policy, reward model, prompts and settings (and writing it otherwise). Returns the kept
/// prompts, or all of them when `cfg.filter` is `None`. `ref_print` is the reference model's
/// [`module_fingerprint`](crate::module_fingerprint).
///
/// # Errors
/// Generation and IO errors.
#[allow(clippy::too_many_arguments)]
pub fn run_filter<B: Backend>(
    reference: &mut Frozen<B, CausalLm<B>>,
    reward: &mut dyn Scorer<B>,
    prompts: Vec<EncodedPrompt>,
    cfg: &PpoConfig,
    base: &GenerationConfig,
    ref_print: &str,
    opts: &TrainOptions,
    device: &B::Device,
) -> Result<Vec<EncodedPrompt>> {
    let Some(fcfg) = &cfg.filter else {
        return Ok(prompts);
    };
    let path = opts.run_dir.join("prompt_filter.json");
    let print = format!(
        "{ref_print}|{}|{}|{}",
        reward.fingerprint(),
        prompts_fingerprint(&prompts),
        generation_descriptor(base, fcfg.batch_prompts)
    );
    let cached: Option<FilterReport> = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .filter(|r: &FilterReport| r.fingerprint == print && &r.config == fcfg);
    let report = match cached {
        Some(r) => r,
        None => {
            let r = filter_prompts(reference, reward, &prompts, fcfg, base, print, device)?;
            let json = serde_json::to_string_pretty(&r).expect("serialisable");
            rlhf_core::io::write_atomic(&path, json.as_bytes())?;
            r
        }
    };
    let keep = report.kept_indices();
    Ok(keep.into_iter().map(|i| prompts[i].clone()).collect())
}

/// The decoding settings of the reference responses: the rollout's `base` settings with the
/// reference's decoding and seed.
pub fn reference_generation(cfg: &PpoConfig, base: &GenerationConfig) -> GenerationConfig {
    GenerationConfig {
        sampling: match cfg.reference.decoding {
            ReferenceDecoding::Greedy => Sampling::Greedy,
            ReferenceDecoding::Sampled => cfg.sampling,
        },
        seed: cfg.reference.seed,
        ..base.clone()
    }
}

/// Where the reference-reward cache lives: `cfg.reference.cache`, by default
/// `RUN_DIR/reference_rewards.parquet`.
pub fn reference_cache_path(cfg: &PpoConfig, run_dir: &std::path::Path) -> std::path::PathBuf {
    cfg.reference
        .cache
        .clone()
        .unwrap_or_else(|| run_dir.join("reference_rewards.parquet"))
}
