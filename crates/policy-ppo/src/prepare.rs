//! What happens once before PPO step 0: the prompt filter (SPEC §A.4.1) and the
//! reference-reward cache (SPEC §A.4.3, built over the world by [`reference_scores`]), both
//! cached in the run directory and reused on resume.

use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use rlhf_core::CausalLm;
use rlhf_core::generate::{GenerationConfig, Sampling};
use rlhf_train::{Collective, TrainError, TrainOptions, shard_range};

use crate::config::{PpoConfig, ReferenceDecoding};
use crate::data::EncodedPrompt;
use crate::error::Result;
use crate::filter::{FilterReport, filter_prompts};
use crate::frozen::{Frozen, ids_hash};
use crate::refcache::{
    ReferenceCache, ReferenceEntry, ReferenceScores, build_reference_cache, generation_descriptor,
};
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

/// The reference scores of every prompt (`None` without the reference baseline): read from
/// the cache when every rank sees it, else built with the world: rank `r` generates and scores
/// the cache's generation batches `shard_range(batches, r, w)` (batch `c` seeded `seed + c`,
/// whatever the world), the entries are gathered through one all-reduce, and the main rank
/// writes the Parquet file.
#[allow(clippy::too_many_arguments)]
pub(crate) fn reference_scores<B: AutodiffBackend, C: Collective<B>>(
    world: &C,
    reference: &mut Frozen<B::InnerBackend, CausalLm<B::InnerBackend>>,
    reward: &mut dyn Scorer<B::InnerBackend>,
    prompts: &[EncodedPrompt],
    cfg: &PpoConfig,
    base: &GenerationConfig,
    ref_print: &str,
    decode: &dyn Fn(&[u32]) -> rlhf_core::Result<String>,
    opts: &TrainOptions,
) -> Result<Option<ReferenceScores>> {
    if !cfg.shaping.reference_baseline {
        return Ok(None);
    }
    let (rank, n_ranks, main) = (world.rank(), world.world(), world.is_main());
    let device = world.device().clone();
    let gen_cfg = reference_generation(cfg, base);
    let path = reference_cache_path(cfg, &opts.run_dir);
    let descriptor = generation_descriptor(&gen_cfg, cfg.reference.batch_prompts);
    let have = world.all_reduce_f64(
        &[f64::from(u8::from(path.is_file()))],
        "reference-cache check",
    )?[0];
    let cache = if have == n_ranks as f64 {
        tracing::info!(path = %path.display(), "using the reference-reward cache");
        ReferenceCache::read(&path)?
    } else if have == 0.0 {
        let n = prompts.len();
        let bp = cfg.reference.batch_prompts.max(1);
        let batches = shard_range(n.div_ceil(bp), rank, n_ranks);
        let (lo, hi) = ((batches.start * bp).min(n), (batches.end * bp).min(n));
        tracing::info!(
            rank,
            prompts = hi - lo,
            total = n,
            "building this rank's share of the reference-reward cache"
        );
        let local = if lo < hi {
            let cfg_here = GenerationConfig {
                seed: gen_cfg.seed.wrapping_add(batches.start as u64),
                ..gen_cfg.clone()
            };
            // Only rank 0 needs the text (it writes the file): the others skip decoding.
            let no_text = |_: &[u32]| Ok(String::new());
            let dec: &dyn Fn(&[u32]) -> rlhf_core::Result<String> =
                if main { decode } else { &no_text };
            build_reference_cache(
                reference,
                reward,
                &prompts[lo..hi],
                &cfg_here,
                bp,
                ref_print.to_string(),
                dec,
                &device,
            )?
            .entries
        } else {
            Vec::new()
        };
        // Slot per prompt: [response length, finished, score, ids…], filled by its rank.
        let w = 3 + cfg.max_new_tokens;
        let mut v = vec![0.0f64; n * w];
        for (k, e) in local.iter().enumerate() {
            let s = &mut v[(lo + k) * w..(lo + k + 1) * w];
            s[0] = e.response_ids.len() as f64;
            s[1] = f64::from(u8::from(e.finished));
            s[2] = e.score;
            for (j, &id) in e.response_ids.iter().enumerate() {
                s[3 + j] = id as f64;
            }
        }
        let v = world.all_reduce_f64(&v, "reference-cache gather")?;
        let mut entries = Vec::with_capacity(n);
        for (i, p) in prompts.iter().enumerate() {
            let s = &v[i * w..(i + 1) * w];
            let ids: Vec<u32> = s[3..3 + s[0] as usize].iter().map(|&x| x as u32).collect();
            entries.push(ReferenceEntry {
                prompt_id: p.id.clone(),
                prompt_hash: ids_hash(&p.ids),
                response: if main { decode(&ids)? } else { String::new() },
                response_ids: ids,
                finished: s[1] > 0.5,
                score: s[2],
            });
        }
        let cache = ReferenceCache {
            policy_fingerprint: ref_print.to_string(),
            reward_fingerprint: reward.fingerprint(),
            generation: descriptor.clone(),
            entries,
        };
        if main {
            cache.write(&path)?;
        }
        cache
    } else {
        return Err(TrainError::Mismatch {
            rank,
            what: format!(
                "whether the reference-reward cache {} exists ({have} of {} ranks see it; \
                 the run directory must be shared)",
                path.display(),
                n_ranks
            ),
        }
        .into());
    };
    Ok(Some(cache.scores_for(
        &path,
        ref_print,
        &reward.fingerprint(),
        &descriptor,
        prompts,
    )?))
}
