//! Parity with HF transformers on the fixtures of `../shared/fixtures` (see its README):
//! logits within 1e-4 on valid positions, token log-probs within 1e-4, identical greedy ids,
//! rewards within 1e-5. Each check runs twice in the same test: on the fused CPU kernels and on
//! the generic burn path (`kernels::reference`), which is what CUDA runs.

use rlhf_core::checkpoint::{LoadOptions, load_causal_lm, load_scalar_model, open_file};
use rlhf_core::logprobs::sequence_logprobs;
use rlhf_core::{PadSide, TokenBatch};
use rlhf_testkit::{assert_close, assert_finite};

use crate::common::{B, device, fixture, on_both_kernel_paths};

fn rows(v: &[i64], shape: &[usize]) -> Vec<Vec<i64>> {
    v.chunks(shape[1]).map(<[i64]>::to_vec).collect()
}

/// The `[vocab]` logit rows of the real (mask 1) positions of `got` and `want`, each
/// `[b, t, vocab]`, concatenated (a failure's index / vocab counts real positions).
fn valid_logits(
    got: &[f32],
    want: &[f32],
    mask: &[i64],
    (b, t, v): (usize, usize, usize),
) -> (Vec<f32>, Vec<f32>) {
    let (mut g, mut w) = (Vec::new(), Vec::new());
    for r in 0..b {
        for p in 0..t {
            if mask[r * t + p] == 1 {
                let o = (r * t + p) * v;
                g.extend_from_slice(&got[o..o + v]);
                w.extend_from_slice(&want[o..o + v]);
            }
        }
    }
    (g, w)
}

/// Logits on valid positions, token log-probs and their sums against transformers, on both
/// kernel paths.
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
    let want = reference.read_f32("logits", &[b, t, v]).unwrap();
    let want_lp = reference.read_f32("token_logprobs", &[b, t - 1]).unwrap();
    let want_sum = reference.read_f32("sequence_logprob_sum", &[b]).unwrap();
    on_both_kernel_paths(name, |path| {
        let logits = model.forward(&batch, &dev);
        let got: Vec<f32> = logits.clone().into_data().to_vec().unwrap();
        let (g, w) = valid_logits(&got, &want, &mask, (b, t, v));
        let what = format!("{name} ({path}): logits on valid positions ([{v}] per position)");
        let d_logits = assert_close(&what, &g, &w, 1e-4);

        let lp = sequence_logprobs(
            logits,
            batch.ids_tensor::<B>(&dev),
            batch.mask_tensor::<B>(&dev),
        );
        let got_lp: Vec<f32> = lp.per_token.into_data().to_vec().unwrap();
        let d_lp = assert_close(
            &format!("{name} ({path}): logprobs"),
            &got_lp,
            &want_lp,
            1e-4,
        );
        let got_sum: Vec<f32> = lp.sums.into_data().to_vec().unwrap();
        let what = format!("{name} ({path}): logprob sums");
        let d_sum = assert_close(&what, &got_sum, &want_sum, 1e-3);
        eprintln!(
            "{name} ({path}): max|Δlogits| {d_logits:.2e}, max|Δlogprob| {d_lp:.2e}, \
             max|Δsum| {d_sum:.2e}"
        );
    });
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
    let want = reference.read_f32("rewards", &[shape[0]]).unwrap();
    let want_all = reference
        .read_f32("score_all_positions", &[shape[0], shape[1]])
        .unwrap();
    let want_loss = reference
        .read_f32("pairwise_loss_row0_chosen", &[1])
        .unwrap()[0] as f64;
    on_both_kernel_paths("llama_reward", |path| {
        let rewards: Vec<f32> = model
            .rewards(&batch, cfg.pad_token_id, &dev)
            .into_data()
            .to_vec()
            .unwrap();
        let d = assert_close(&format!("rewards ({path})"), &rewards, &want, 1e-5);
        let all: Vec<f32> = model
            .forward_all(&batch, &dev)
            .into_data()
            .to_vec()
            .unwrap();
        let (mut g, mut w) = (Vec::new(), Vec::new());
        for (i, &m) in mask.iter().enumerate() {
            if m == 1 {
                g.push(all[i]);
                w.push(want_all[i]);
            }
        }
        assert_close(&format!("scores at valid positions ({path})"), &g, &w, 1e-5);
        let loss = (-((rewards[0] - rewards[1]) as f64)).exp().ln_1p();
        assert!(
            (loss - want_loss).abs() < 1e-5,
            "{path}: pairwise loss {loss} vs {want_loss}"
        );
        eprintln!("llama_reward ({path}): max|Δreward| {d:.2e}");
    });
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
    let left = TokenBatch::from_rows(&real, 0, PadSide::Left);
    let want = reference.read_f32("logits", &[b, t, v]).unwrap();
    on_both_kernel_paths("left padding", |path| {
        let got: Vec<f32> = model.forward(&left, &dev).into_data().to_vec().unwrap();
        // Every position, padding included: no NaN from fully padded rows.
        assert_finite(&format!("left-padded logits ({path})"), &got);
        let (mut g, mut w) = (Vec::new(), Vec::new());
        for (r, row) in real.iter().enumerate() {
            let pad = t - row.len();
            for k in 0..row.len() {
                let o = (r * t + pad + k) * v;
                let o_want = (r * t + k) * v;
                g.extend_from_slice(&got[o..o + v]);
                w.extend_from_slice(&want[o_want..o_want + v]);
            }
        }
        assert_close(&format!("left padding ({path}): logits"), &g, &w, 1e-4);
    });
}
