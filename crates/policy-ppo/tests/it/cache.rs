//! The reference-reward cache (built, reused, refused when it belongs to another model or
//! reward model) and the prompt filter.

use burn::module::AutodiffModule;
use rlhf_core::CausalLm;
use rlhf_core::generate::{GenerationConfig, Sampling};
use rlhf_core::text::TextCodec;
use rlhf_policy_ppo::{
    FilterConfig, FnScorer, Frozen, PpoConfig, PpoError, ReferenceCache, build_reference_cache,
    filter_prompts, generation_descriptor, ids_hash, module_fingerprint, train,
};
use rlhf_train::TrainOptions;

use crate::common::{DEV, byte, data, encoded_prompts, letters_scorer, models, tiny_cfg};

type Inner = <crate::common::B as burn::tensor::backend::AutodiffBackend>::InnerBackend;

fn gen_cfg() -> GenerationConfig {
    GenerationConfig {
        max_new_tokens: 6,
        sampling: Sampling::Greedy,
        seed: 3,
        eos_ids: vec![2],
        pad_id: 0,
    }
}

fn dec(ids: &[u32]) -> rlhf_core::Result<String> {
    TextCodec::Bytes.decode(ids)
}

#[test]
fn cache_round_trips_and_refuses_another_model_or_reward_model() {
    let cfg = tiny_cfg();
    let model = CausalLm::<Inner>::init(&cfg, 0.5, 1, &DEV);
    let print = module_fingerprint(&model);
    let mut reference = Frozen::new(model, false);
    let mut rm = letters_scorer();
    let prompts = encoded_prompts(5);
    let gen_cfg = gen_cfg();
    let cache = build_reference_cache(
        &mut reference,
        &mut rm,
        &prompts,
        &gen_cfg,
        2,
        print.clone(),
        &dec,
        &DEV,
    )
    .unwrap();
    assert_eq!(cache.entries.len(), 5);
    assert_eq!(cache.entries[3].prompt_hash, ids_hash(&prompts[3].ids));
    let e = &cache.entries[0];
    assert_eq!(e.response, dec(&e.response_ids).unwrap());
    let want = e
        .response_ids
        .iter()
        .filter(|&&t| (byte(b'a')..=byte(b'z')).contains(&t))
        .count() as f64
        / e.response_ids.len() as f64;
    assert!((e.score - want).abs() < 1e-6);

    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("ref.parquet");
    cache.write(&path).unwrap();
    let back = ReferenceCache::read(&path).unwrap();
    assert_eq!(back, cache);
    let desc = generation_descriptor(&gen_cfg, 2);
    let scores = back
        .scores_for(&path, &print, "fn:letters", &desc, &prompts)
        .unwrap();
    assert_eq!(scores.scores.len(), 5);
    assert_eq!(scores.scores[0] as f64, e.score);

    let refused = |r: rlhf_policy_ppo::Result<_>, what: &str| match r {
        Err(PpoError::CacheMismatch { message, .. }) => {
            assert!(message.contains(what), "{message}")
        }
        other => panic!("expected a mismatch about {what}, got {other:?}"),
    };
    refused(
        back.scores_for(&path, &print, "fn:other", &desc, &prompts),
        "reward model",
    );
    refused(
        back.scores_for(&path, "0123", "fn:letters", &desc, &prompts),
        "reference (SFT) model",
    );
    let other_gen = generation_descriptor(&GenerationConfig { seed: 4, ..gen_cfg }, 2);
    refused(
        back.scores_for(&path, &print, "fn:letters", &other_gen, &prompts),
        "generation",
    );
    let mut changed = prompts.clone();
    changed[2].ids.push(70);
    refused(
        back.scores_for(&path, &print, "fn:letters", &desc, &changed),
        "changed",
    );
    let more = encoded_prompts(6);
    refused(
        back.scores_for(&path, &print, "fn:letters", &desc, &more),
        "no entry",
    );
}

#[test]
fn training_refuses_a_cache_from_another_reward_model_and_reuses_its_own() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("shared-ref.parquet");
    let mut cfg = PpoConfig {
        total_steps: 1,
        batch_prompts: 2,
        mini_batch_size: 2,
        ppo_epochs: 1,
        max_new_tokens: 4,
        learning_rate: 1e-3,
        critic_learning_rate: 1e-3,
        ..PpoConfig::default()
    };
    cfg.reference.cache = Some(cache.clone());
    let d = data(3, 0);
    let opts = |dir: &str| TrainOptions {
        progress: false,
        ..TrainOptions::new(tmp.path().join(dir))
    };
    train(models(0), &d, &dec, &cfg, &opts("a"), &DEV).unwrap();
    assert!(cache.is_file());
    let first = ReferenceCache::read(&cache).unwrap();
    // Same SFT model and RM: the cache is reused as is.
    train(models(0), &d, &dec, &cfg, &opts("b"), &DEV).unwrap();
    assert_eq!(ReferenceCache::read(&cache).unwrap(), first);
    // Another reward model: refused with a clear error.
    let mut m = models(0);
    m.reward = Box::new(FnScorer::new("other", |_, _| 0.0));
    let err = train(m, &d, &dec, &cfg, &opts("c"), &DEV).unwrap_err();
    assert!(matches!(err, PpoError::CacheMismatch { .. }), "{err}");
    assert!(err.to_string().contains("fn:letters"), "{err}");
    // Another SFT model: refused too.
    let err = train(models(7), &d, &dec, &cfg, &opts("d"), &DEV).unwrap_err();
    assert!(err.to_string().contains("reference (SFT) model"), "{err}");
}

#[test]
fn filter_drops_prompts_whose_scores_do_not_vary() {
    let cfg = tiny_cfg();
    let policy = CausalLm::<crate::common::B>::init(&cfg, 0.02, 2, &DEV).valid();
    let mut frozen = Frozen::new(policy, false);
    // Prompts about "rain" or "snow" get a constant score; the others one that varies with the
    // sampled response.
    let mut rm = FnScorer::new("mixed", |p, r| {
        let text: Vec<u8> = p
            .iter()
            .filter(|&&t| t >= 3)
            .map(|&t| (t - 3) as u8)
            .collect();
        let text = String::from_utf8_lossy(&text);
        if text.contains("about rain") || text.contains("about snow") {
            0.5
        } else {
            r.iter().map(|&t| t as f32).sum::<f32>() / 100.0
        }
    });
    let prompts = encoded_prompts(8);
    let fcfg = FilterConfig {
        k: 4,
        temperature: 1.0,
        epsilon: 1e-6,
        batch_prompts: 3,
    };
    let base = GenerationConfig {
        max_new_tokens: 5,
        sampling: Sampling::Greedy,
        seed: 1,
        eos_ids: vec![2],
        pad_id: 0,
    };
    let report = filter_prompts(
        &mut frozen,
        &mut rm,
        &prompts,
        &fcfg,
        &base,
        "x".into(),
        &DEV,
    )
    .unwrap();
    assert_eq!(report.n_input, 8);
    let dropped: Vec<&str> = report
        .prompts
        .iter()
        .filter(|p| !p.kept)
        .map(|p| p.id.as_str())
        .collect();
    // TOPICS[1] = rain (p1), TOPICS[5] = snow (p5).
    assert_eq!(dropped, vec!["p1", "p5"]);
    assert_eq!(report.n_kept, 6);
    assert!(report.prompts.iter().all(|p| p.scores.len() == 4));
    assert_eq!(report.prompts[1].variance, 0.0);
    let all_const = FilterConfig {
        epsilon: 1e9,
        ..fcfg
    };
    assert!(
        filter_prompts(
            &mut frozen,
            &mut rm,
            &prompts,
            &all_const,
            &base,
            "x".into(),
            &DEV
        )
        .is_err()
    );
}
