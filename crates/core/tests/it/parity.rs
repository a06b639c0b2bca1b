//! Parity with HF transformers on the fixtures of `../shared/fixtures` (see its README):
//! logits within 1e-4 on valid positions, token log-probs within 1e-4, identical greedy ids,
//! rewards within 1e-5.

use rlhf_core::TokenBatch;
use rlhf_core::checkpoint::{LoadOptions, load_causal_lm, load_scalar_model, open_file};
use rlhf_core::logprobs::sequence_logprobs;

use crate::common::{B, device, fixture, max_abs_diff};

fn rows(v: &[i64], shape: &[usize]) -> Vec<Vec<i64>> {
    v.chunks(shape[1]).map(<[i64]>::to_vec).collect()
}

fn check_causal(name: &str) {
    let Some(dir) = fixture(name) else { return };
    let dev = device();
    let (model, cfg) = load_causal_lm::<B>(&dir, LoadOptions::default(), &dev).unwrap();
    let reference = open_file(&dir.join("reference.safetensors")).unwrap();
    let (ids, shape) = reference.read_i64("input_ids").unwrap();
    let (mask, _) = reference.read_i64("attention_mask").unwrap();
    let batch =
        TokenBatch::from_ids_and_mask(&rows(&ids, &shape), Some(&rows(&mask, &shape))).unwrap();
    let (b, t, v) = (shape[0], shape[1], cfg.vocab_size);
    let logits = model.forward(&batch, &dev);
    let got: Vec<f32> = logits.clone().into_data().to_vec().unwrap();
    let want = reference.read_f32("logits", &[b, t, v]).unwrap();
    let mut worst = 0f32;
    for r in 0..b {
        for p in 0..t {
            if mask[r * t + p] == 1 {
                let o = (r * t + p) * v;
                worst = worst.max(max_abs_diff(&got[o..o + v], &want[o..o + v]));
            }
        }
    }
    assert!(worst < 1e-4, "{name}: max |Δlogits| = {worst}");

    let lp = sequence_logprobs(
        logits,
        batch.ids_tensor::<B>(&dev),
        batch.mask_tensor::<B>(&dev),
    );
    let got_lp: Vec<f32> = lp.per_token.into_data().to_vec().unwrap();
    let want_lp = reference.read_f32("token_logprobs", &[b, t - 1]).unwrap();
    let d_lp = max_abs_diff(&got_lp, &want_lp);
    assert!(d_lp < 1e-4, "{name}: max |Δlogprob| = {d_lp}");
    let got_sum: Vec<f32> = lp.sums.into_data().to_vec().unwrap();
    let want_sum = reference.read_f32("sequence_logprob_sum", &[b]).unwrap();
    let d_sum = max_abs_diff(&got_sum, &want_sum);
    assert!(d_sum < 1e-3, "{name}: max |Δsum| = {d_sum}");
    eprintln!("{name}: max|Δlogits| {worst:.2e}, max|Δlogprob| {d_lp:.2e}, max|Δsum| {d_sum:.2e}");
}

#[test]
fn llama_logits_and_logprobs_match_transformers() {
    check_causal("llama");
}

#[test]
fn qwen2_logits_and_logprobs_match_transformers() {
    check_causal("qwen2");
}

#[test]
fn glm_logits_and_logprobs_match_transformers() {
    check_causal("glm");
}

#[test]
fn glm4_logits_and_logprobs_match_transformers() {
    check_causal("glm4");
}

#[test]
fn reward_model_matches_transformers() {
    let Some(dir) = fixture("llama_reward") else {
        return;
    };
    let dev = device();
    let (model, cfg) = load_scalar_model::<B>(&dir, LoadOptions::default(), &dev).unwrap();
    let reference = open_file(&dir.join("reference.safetensors")).unwrap();
    let (ids, shape) = reference.read_i64("input_ids").unwrap();
    let (mask, _) = reference.read_i64("attention_mask").unwrap();
    let batch =
        TokenBatch::from_ids_and_mask(&rows(&ids, &shape), Some(&rows(&mask, &shape))).unwrap();
    let (pool, _) = reference.read_i64("pool_index").unwrap();
    let got_pool: Vec<i64> = batch
        .pool_indices(cfg.pad_token_id)
        .into_iter()
        .map(|i| i as i64)
        .collect();
    assert_eq!(got_pool, pool);
    let rewards: Vec<f32> = model
        .rewards(&batch, cfg.pad_token_id, &dev)
        .into_data()
        .to_vec()
        .unwrap();
    let want = reference.read_f32("rewards", &[shape[0]]).unwrap();
    let d = max_abs_diff(&rewards, &want);
    assert!(d < 1e-5, "max |Δreward| = {d}");
    let all: Vec<f32> = model
        .forward_all(&batch, &dev)
        .into_data()
        .to_vec()
        .unwrap();
    let want_all = reference
        .read_f32("score_all_positions", &[shape[0], shape[1]])
        .unwrap();
    for r in 0..shape[0] {
        for p in 0..shape[1] {
            if mask[r * shape[1] + p] == 1 {
                let i = r * shape[1] + p;
                assert!((all[i] - want_all[i]).abs() < 1e-5, "score at ({r},{p})");
            }
        }
    }
    let loss = (-((rewards[0] - rewards[1]) as f64)).exp().ln_1p();
    let want_loss = reference
        .read_f32("pairwise_loss_row0_chosen", &[1])
        .unwrap()[0] as f64;
    assert!(
        (loss - want_loss).abs() < 1e-5,
        "pairwise loss {loss} vs {want_loss}"
    );
    eprintln!("llama_reward: max|Δreward| {d:.2e}");
}

#[test]
fn left_padded_rows_give_the_same_logits_as_right_padded_ones() {
    let Some(dir) = fixture("llama") else { return };
    let dev = device();
    let (model, cfg) = load_causal_lm::<B>(&dir, LoadOptions::default(), &dev).unwrap();
    let reference = open_file(&dir.join("reference.safetensors")).unwrap();
    let (ids, shape) = reference.read_i64("input_ids").unwrap();
    let (mask, _) = reference.read_i64("attention_mask").unwrap();
    let (b, t, v) = (shape[0], shape[1], cfg.vocab_size);
    let real: Vec<Vec<u32>> = (0..b)
        .map(|r| {
            (0..t)
                .filter(|&p| mask[r * t + p] == 1)
                .map(|p| ids[r * t + p] as u32)
                .collect()
        })
        .collect();
    let left = TokenBatch::from_rows(&real, 0, rlhf_core::PadSide::Left);
    let got: Vec<f32> = model.forward(&left, &dev).into_data().to_vec().unwrap();
    assert!(
        got.iter().all(|x| x.is_finite()),
        "no NaN from fully padded rows"
    );
    let want = reference.read_f32("logits", &[b, t, v]).unwrap();
    let mut worst = 0f32;
    for (r, row) in real.iter().enumerate() {
        let pad = t - row.len();
        for k in 0..row.len() {
            let g = (r * t + pad + k) * v;
            let w = (r * t + k) * v;
            worst = worst.max(max_abs_diff(&got[g..g + v], &want[w..w + v]));
        }
    }
    assert!(worst < 1e-4, "left padding: max |Δlogits| = {worst}");
}
