//! Batch log-probs against one-row-at-a-time sums, and the reference cache: round trip,
//! refusal of a cache from another model.

use burn::module::AutodiffModule;
use rlhf_core::backend::FlexDevice;
use rlhf_core::logprobs::sequence_logprobs;
use rlhf_core::text::TextCodec;
use rlhf_core::{PadSide, TokenBatch};
use rlhf_policy_dpo::{
    DpoError, DpoExample, batch_logps, collate_examples, compute_reference, encode_examples,
    examples_fingerprint, model_fingerprint, read_reference_cache, write_reference_cache,
};
use rlhf_reward::PairCollator;

use crate::common::{marker_pairs, tiny_policy};

#[test]
fn batched_reply_logps_equal_unpadded_single_rows() {
    let model = tiny_policy(3).0.valid();
    let pairs = marker_pairs(5, 1);
    let ex = encode_examples(&PairCollator::new(TextCodec::Bytes, 48), &pairs).unwrap();
    let refs: Vec<&DpoExample> = ex.iter().collect();
    let batch = collate_examples(&refs, 0);
    let lp = batch_logps(&model, &batch, &FlexDevice);
    let got_c: Vec<f32> = lp.chosen.into_data().iter::<f32>().collect();
    let got_r: Vec<f32> = lp.rejected.into_data().iter::<f32>().collect();
    for (i, e) in ex.iter().enumerate() {
        for (row, reply, got) in [
            (&e.chosen, e.chosen_reply, got_c[i]),
            (&e.rejected, e.rejected_reply, got_r[i]),
        ] {
            let tb = TokenBatch::from_rows(std::slice::from_ref(row), 0, PadSide::Right);
            let logits = model.forward(&tb, &FlexDevice);
            let ids: Vec<i64> = row.iter().map(|&x| x as i64).collect();
            let len = row.len();
            let ids =
                burn::prelude::Tensor::<rlhf_core::backend::Cpu, 2, burn::prelude::Int>::from_data(
                    burn::prelude::TensorData::new(ids, [1, len]),
                    &FlexDevice,
                );
            let mask: Vec<f32> = (0..len)
                .map(|t| if t >= len - reply { 1.0 } else { 0.0 })
                .collect();
            let mask = burn::prelude::Tensor::from_data(
                burn::prelude::TensorData::new(mask, [1, len]),
                &FlexDevice,
            );
            let want: f32 = sequence_logprobs(logits, ids, mask).sums.into_scalar();
            assert!(
                (got - want).abs() < 1e-3,
                "pair {i}: batched {got} vs single {want}"
            );
            assert!(reply >= 2 && got < 0.0);
        }
    }
}

#[test]
fn reference_cache_round_trips_and_refuses_another_model() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("ref.parquet");
    let a = tiny_policy(1).0.valid();
    let b = tiny_policy(2).0.valid();
    let fa = model_fingerprint::<rlhf_core::backend::Cpu, _>(&a);
    let fb = model_fingerprint::<rlhf_core::backend::Cpu, _>(&b);
    assert_ne!(fa, fb, "different weights, different fingerprints");
    assert_eq!(
        fa,
        model_fingerprint::<rlhf_core::backend::Cpu, _>(&tiny_policy(1).0.valid())
    );
    let ex = encode_examples(
        &PairCollator::new(TextCodec::Bytes, 64),
        &marker_pairs(9, 4),
    )
    .unwrap();
    let lp = compute_reference(&a, &ex, 0, 4, &FlexDevice, |_| {});
    assert_eq!(lp.chosen.len(), 9);
    let print_a = format!("{fa:016x}-{:016x}", examples_fingerprint(&ex));
    write_reference_cache(&path, &print_a, &ex, &lp).unwrap();
    let back = read_reference_cache(&path, &print_a, &ex).unwrap();
    assert_eq!(back, lp);
    let print_b = format!("{fb:016x}-{:016x}", examples_fingerprint(&ex));
    match read_reference_cache(&path, &print_b, &ex) {
        Err(DpoError::Cache { message, .. }) => {
            assert!(
                message.contains(&print_a) && message.contains(&print_b),
                "{message}"
            )
        }
        other => panic!("expected a cache mismatch, got {other:?}"),
    }
    // a cache for fewer pairs is refused too
    assert!(read_reference_cache(&path, &print_a, &ex[..5]).is_err());
}
