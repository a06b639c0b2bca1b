//! Rollouts against fresh forward passes, and where the reward is read.

use burn::module::AutodiffModule;
use rlhf_core::generate::{GenerationConfig, Sampling};
use rlhf_core::{CausalLm, PadSide, ScalarModel, TokenBatch};
use rlhf_policy_ppo::{
    Frozen, PackedSequences, RewardModel, Scorer, gather_last_real, rollout, rows_to_vecs,
};

use rlhf_testkit::assert_close;

use crate::common::{B, DEV, encoded_prompts, tiny_cfg};

type Inner = <B as burn::tensor::backend::AutodiffBackend>::InnerBackend;

fn gen_cfg(seed: u64) -> GenerationConfig {
    GenerationConfig {
        max_new_tokens: 10,
        sampling: Sampling::Sample {
            temperature: 0.7,
            top_k: None,
            top_p: Some(0.95),
        },
        seed,
        // Many stop ids, so rows end at different lengths (some on EOS, some at the limit).
        eos_ids: (100..190).collect(),
        pad_id: 0,
    }
}

#[test]
fn rollout_logprobs_equal_a_fresh_forward_pass() {
    let cfg = tiny_cfg();
    let actor = CausalLm::<Inner>::init(&cfg, 0.5, 3, &DEV);
    let critic = ScalarModel::<Inner>::init(&cfg, 0.02, 4, &DEV);
    let mut reference = Frozen::new(actor.clone(), true);
    let mut rm = RewardModel::new(ScalarModel::<Inner>::init(&cfg, 0.02, 5, &DEV), true);
    let prompts: Vec<Vec<u32>> = encoded_prompts(6).into_iter().map(|p| p.ids).collect();
    let ro = rollout(
        &actor,
        &critic,
        &mut reference,
        &mut rm,
        &prompts,
        &gen_cfg(9),
        &DEV,
    )
    .unwrap();
    let lens = &ro.seqs.response_lens;
    assert!(lens.iter().any(|&l| l < 10) && ro.finished.iter().any(|&f| f));
    assert!(ro.finished.iter().zip(lens).all(|(&f, &l)| f || l == 10));

    // The policy's log-probs from the KV cache vs one full forward of the packed rows.
    let fresh = ro
        .seqs
        .response_logprobs(actor.forward(&ro.seqs.tokens, &DEV), 0.7, &DEV);
    let fresh = rows_to_vecs(fresh, lens);
    assert_eq!(ro.logprobs.len(), fresh.len());
    for (r, (a, b)) in ro.logprobs.iter().zip(&fresh).enumerate() {
        assert_close(&format!("row {r}: cached vs fresh log-probs"), a, b, 1e-4);
    }
    // The reference is the same model: its log-probs are the policy's (KL = 0).
    assert_eq!(ro.ref_logprobs.len(), ro.logprobs.len());
    for (r, (a, b)) in ro.ref_logprobs.iter().zip(&ro.logprobs).enumerate() {
        assert_close(
            &format!("row {r}: reference vs policy log-probs"),
            a,
            b,
            1e-4,
        );
    }
    // Values and scores row by row, unpadded.
    for r in 0..ro.seqs.rows() {
        let mut row = prompts[r].clone();
        let resp = &ro.seqs.response_ids()[r * ro.seqs.response_width..][..lens[r]];
        row.extend_from_slice(resp);
        let single = TokenBatch::from_rows(&[row.clone()], 0, PadSide::Right);
        let v: Vec<f32> = critic
            .forward_all(&single, &DEV)
            .into_data()
            .to_vec()
            .unwrap();
        let p = prompts[r].len();
        assert_close(
            &format!("row {r}: rollout values vs a fresh forward"),
            &ro.values[r],
            &v[p - 1..p - 1 + lens[r]],
            1e-4,
        );
        let s: Vec<f32> = rm_model(&cfg)
            .forward_all(&single, &DEV)
            .into_data()
            .to_vec()
            .unwrap();
        assert!((ro.scores[r] - s[row.len() - 1]).abs() < 1e-4);
    }
}

fn rm_model(cfg: &rlhf_core::ModelConfig) -> ScalarModel<Inner> {
    ScalarModel::<Inner>::init(cfg, 0.02, 5, &DEV)
}

#[test]
fn reward_is_read_at_the_last_real_token_for_right_and_left_padding() {
    let cfg = tiny_cfg();
    let rm = rm_model(&cfg);
    // Row 1 ends on id 0, which is also the pad id (tokenizers whose EOS is their pad).
    let rows: Vec<Vec<u32>> = vec![
        vec![1, 50, 60, 70, 2],
        vec![1, 80, 0],
        vec![1, 90, 91, 92, 93, 94, 2],
    ];
    let single: Vec<f32> = rows
        .iter()
        .map(|r| {
            let b = TokenBatch::from_rows(std::slice::from_ref(r), 0, PadSide::Right);
            let all: Vec<f32> = rm.forward_all(&b, &DEV).into_data().to_vec().unwrap();
            all[r.len() - 1]
        })
        .collect();
    for side in [PadSide::Right, PadSide::Left] {
        let b = TokenBatch::from_rows(&rows, 0, side);
        let got: Vec<f32> = gather_last_real(rm.forward_all(&b, &DEV), &b, &DEV)
            .into_data()
            .to_vec()
            .unwrap();
        assert_close(
            &format!("{side:?} padding: last-real-token rewards vs one row at a time"),
            &got,
            &single,
            1e-5,
        );
    }
    // HF's pad-id rule would read row 1 one token early when right-padded.
    let right = TokenBatch::from_rows(&rows, 0, PadSide::Right);
    let hf: Vec<f32> = rm
        .rewards(&right, Some(0), &DEV)
        .into_data()
        .to_vec()
        .unwrap();
    assert!((hf[1] - single[1]).abs() > 1e-6);
    // The packed layout (left-padded prompts, right-padded responses) via the Scorer.
    let prompts: Vec<Vec<u32>> = rows.iter().map(|r| r[..2].to_vec()).collect();
    let responses: Vec<Vec<u32>> = rows.iter().map(|r| r[2..].to_vec()).collect();
    let seqs = PackedSequences::new(&prompts, &responses, 0);
    let mut scorer = RewardModel::new(rm, false);
    let got = Scorer::<Inner>::score(&mut scorer, &seqs, &DEV).unwrap();
    assert_close(
        "packed Scorer rewards vs one row at a time",
        &got,
        &single,
        1e-5,
    );
}

#[test]
fn rollouts_are_a_function_of_the_seed() {
    // Resume relies on it: the trainer rolls out `actor.valid()` with seed mix(seed, step).
    let cfg = tiny_cfg();
    let actor = CausalLm::<B>::init(&cfg, 0.5, 3, &DEV);
    let critic = ScalarModel::<Inner>::init(&cfg, 0.02, 4, &DEV);
    let prompts: Vec<Vec<u32>> = encoded_prompts(3).into_iter().map(|p| p.ids).collect();
    let run = |m: &CausalLm<Inner>, seed: u64| {
        let mut r = Frozen::new(m.clone(), false);
        let mut rm = RewardModel::new(rm_model(&cfg), false);
        rollout(m, &critic, &mut r, &mut rm, &prompts, &gen_cfg(seed), &DEV).unwrap()
    };
    let a = run(&actor.valid(), 1);
    let b = run(&actor.valid(), 1);
    assert_eq!(a.seqs, b.seqs);
    assert_eq!(a.logprobs, b.logprobs);
    assert_eq!(a.scores, b.scores);
    assert_ne!(run(&actor.valid(), 2).seqs, a.seqs);
}
