//! Generation: greedy ids equal transformers' on every fixture, batched equals unbatched (both
//! on the fused CPU kernels and on the generic path CUDA runs), returned log-probs equal a
//! fresh forward pass, EOS stops rows, sampling is seeded.

use rlhf_core::checkpoint::{LoadOptions, load_causal_lm, open_file};
use rlhf_core::generate::{GenerationConfig, Sampling, generate, generate_rows};
use rlhf_core::logprobs::sequence_logprobs;
use rlhf_core::{CausalLm, ModelConfig, PadSide, TokenBatch};

use rlhf_testkit::assert_close;

use crate::common::{B, device, fixture, on_both_kernel_paths};

fn greedy_matches(name: &str) {
    let Some(dir) = fixture(name) else { return };
    let dev = device();
    let (model, _) = load_causal_lm::<B>(&dir, LoadOptions::default(), &dev).unwrap();
    let reference = open_file(&dir.join("reference.safetensors")).unwrap();
    let (prompt, ps) = reference.read_i64("gen_prompt_ids").unwrap();
    let (want, ws) = reference.read_i64("gen_new_ids").unwrap();
    let prompts: Vec<Vec<u32>> = prompt
        .chunks(ps[1])
        .map(|r| r.iter().map(|&i| i as u32).collect())
        .collect();
    let want: Vec<Vec<u32>> = want
        .chunks(ws[1])
        .map(|r| r.iter().map(|&i| i as u32).collect())
        .collect();
    let cfg = GenerationConfig::greedy(ws[1], 0);
    on_both_kernel_paths(name, |path| {
        let got = generate(&model, &prompts, &cfg, &dev).unwrap();
        assert_eq!(got.new_ids, want, "{name} ({path}): batched greedy ids");
        for (i, p) in prompts.iter().enumerate() {
            let one = generate(&model, std::slice::from_ref(p), &cfg, &dev).unwrap();
            assert_eq!(
                one.new_ids[0], want[i],
                "{name} ({path}): unbatched greedy ids, prompt {i}"
            );
        }
    });
}

#[test]
fn greedy_ids_match_transformers_llama() {
    greedy_matches("llama");
}

#[test]
fn greedy_ids_match_transformers_qwen2() {
    greedy_matches("qwen2");
}

#[test]
fn greedy_ids_match_transformers_glm() {
    greedy_matches("glm");
}

#[test]
fn greedy_ids_match_transformers_glm4() {
    greedy_matches("glm4");
}

fn tiny() -> (CausalLm<B>, ModelConfig) {
    let cfg = ModelConfig::tiny_llama(97);
    (CausalLm::init(&cfg, 0.2, 42, &device()), cfg)
}

#[test]
fn batched_greedy_equals_unbatched_for_prompts_of_different_lengths() {
    let (model, _) = tiny();
    let dev = device();
    let prompts: Vec<Vec<u32>> = vec![
        vec![1, 5, 9, 12, 40, 41, 42],
        vec![1, 7],
        vec![1, 30, 31, 80],
    ];
    let cfg = GenerationConfig::greedy(12, 0);
    on_both_kernel_paths("batched greedy", |path| {
        let batched = generate(&model, &prompts, &cfg, &dev).unwrap();
        for (i, p) in prompts.iter().enumerate() {
            let one = generate(&model, std::slice::from_ref(p), &cfg, &dev).unwrap();
            assert_eq!(one.new_ids[0], batched.new_ids[i], "{path}: prompt {i}");
            let what = format!("{path}: logprobs of prompt {i}, alone vs batched");
            assert_close(&what, &one.logprobs[0], &batched.logprobs[i], 1e-4);
        }
    });
}

#[test]
fn returned_logprobs_equal_a_fresh_forward_pass() {
    let (model, _) = tiny();
    let dev = device();
    let prompts: Vec<Vec<u32>> = vec![vec![1, 5, 9, 12], vec![1, 7]];
    let cfg = GenerationConfig {
        max_new_tokens: 10,
        sampling: Sampling::Sample {
            temperature: 1.0,
            top_k: None,
            top_p: None,
        },
        seed: 3,
        eos_ids: vec![],
        pad_id: 0,
    };
    let out = generate(&model, &prompts, &cfg, &dev).unwrap();
    let full: Vec<Vec<u32>> = prompts
        .iter()
        .zip(&out.new_ids)
        .map(|(p, n)| p.iter().chain(n).copied().collect())
        .collect();
    let batch = TokenBatch::from_rows(&full, 0, PadSide::Right);
    let logits = model.forward(&batch, &dev);
    let lp = sequence_logprobs(
        logits,
        batch.ids_tensor::<B>(&dev),
        batch.mask_tensor::<B>(&dev),
    );
    let lp: Vec<f32> = lp.per_token.into_data().to_vec().unwrap();
    let width = batch.seq - 1;
    for (r, p) in prompts.iter().enumerate() {
        let start = r * width + p.len() - 1;
        let fresh = &lp[start..start + out.logprobs[r].len()];
        let what = format!("row {r}: rollout logprobs vs a fresh forward pass");
        assert_close(&what, &out.logprobs[r], fresh, 1e-4);
    }
}

#[test]
fn rows_stop_at_eos_and_sampling_is_seeded() {
    let (model, _) = tiny();
    let dev = device();
    let prompts: Vec<Vec<u32>> = vec![vec![1, 5, 9], vec![1, 7, 8, 9, 10]];
    let mut cfg = GenerationConfig {
        max_new_tokens: 40,
        sampling: Sampling::Sample {
            temperature: 1.5,
            top_k: Some(20),
            top_p: Some(0.95),
        },
        seed: 11,
        eos_ids: vec![],
        pad_id: 0,
    };
    let a = generate(&model, &prompts, &cfg, &dev).unwrap();
    let b = generate(&model, &prompts, &cfg, &dev).unwrap();
    assert_eq!(a, b, "same seed, same output");
    cfg.seed = 12;
    let c = generate(&model, &prompts, &cfg, &dev).unwrap();
    assert_ne!(a.new_ids, c.new_ids, "another seed, another output");
    // Make the 3rd token of row 0 an EOS: that row stops there, the other goes on.
    let eos = a.new_ids[0][2];
    cfg.seed = 11;
    cfg.eos_ids = vec![eos];
    let d = generate(&model, &prompts, &cfg, &dev).unwrap();
    assert_eq!(d.new_ids[0], a.new_ids[0][..3].to_vec());
    assert!(d.finished[0]);
    let first_eos_row1 = a.new_ids[1].iter().position(|&t| t == eos);
    match first_eos_row1 {
        Some(k) => assert_eq!(d.new_ids[1].len(), k + 1),
        None => assert_eq!(d.new_ids[1].len(), 40),
    }
}

// Sampling is seeded per row of the whole batch: generating it in two contiguous parts with
// `generate_rows` (as data-parallel ranks do) draws the same tokens as generating it whole.
#[test]
fn a_batch_generated_in_parts_samples_what_the_whole_batch_samples() {
    let (model, _) = tiny();
    let dev = device();
    let prompts: Vec<Vec<u32>> = vec![
        vec![1, 5, 9],
        vec![1, 7, 8, 9, 10],
        vec![1, 4],
        vec![1, 3, 3],
    ];
    let cfg = GenerationConfig {
        max_new_tokens: 12,
        sampling: Sampling::Sample {
            temperature: 1.0,
            top_k: None,
            top_p: None,
        },
        seed: 3,
        eos_ids: vec![],
        pad_id: 0,
    };
    let whole = generate(&model, &prompts, &cfg, &dev).unwrap();
    let head = generate_rows(&model, &prompts[..1], &cfg, 0, &dev).unwrap();
    let tail = generate_rows(&model, &prompts[1..], &cfg, 1, &dev).unwrap();
    let parts: Vec<Vec<u32>> = head.new_ids.into_iter().chain(tail.new_ids).collect();
    assert_eq!(parts, whole.new_ids);
    // Without the offset the tail would reuse the head's random streams.
    let shifted = generate_rows(&model, &prompts[1..], &cfg, 0, &dev).unwrap();
    assert_ne!(shifted.new_ids, whole.new_ids[1..].to_vec());
}

#[test]
fn too_long_and_out_of_vocab_prompts_are_errors() {
    let (model, _) = tiny();
    let dev = device();
    let cfg = GenerationConfig::greedy(600, 0);
    let err = generate(&model, &[vec![1, 2]], &cfg, &dev).unwrap_err();
    assert!(err.to_string().contains("exceeds"), "{err}");
    let err = generate(
        &model,
        &[vec![1, 500]],
        &GenerationConfig::greedy(2, 0),
        &dev,
    )
    .unwrap_err();
    assert!(err.to_string().contains("outside the vocabulary"), "{err}");
}
