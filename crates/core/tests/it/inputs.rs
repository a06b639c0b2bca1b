//! Bad model input gives one clear error, never a panic inside burn: empty rows, rows longer
//! than the model's positions, ids outside the vocabulary. And the rotary tables, computed as
//! positions are reached, give the same values whatever the order of the batches.

use burn::prelude::*;
use rlhf_core::{CausalLm, CoreError, ModelConfig, PadSide, ScalarModel, TokenBatch};
use rlhf_testkit::{assert_close, assert_finite};

use crate::common::{B, device};

fn models() -> (CausalLm<B>, ScalarModel<B>) {
    let cfg = ModelConfig::tiny_llama(64);
    (
        CausalLm::init(&cfg, 0.1, 5, &device()),
        ScalarModel::init(&cfg, 0.1, 6, &device()),
    )
}

fn vec_of<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().unwrap()
}

// `rlhf score` on `{"input_ids": [[]]}` divided by zero in the forward pass.
#[test]
fn zero_length_rows_are_refused_with_a_clear_error() {
    let err = TokenBatch::from_ids_and_mask(&[vec![]], None).unwrap_err();
    assert!(
        err.to_string().contains("input_ids row 0 is empty"),
        "{err}"
    );
    let err =
        TokenBatch::from_ids_and_mask(&[vec![], vec![]], Some(&[vec![], vec![]])).unwrap_err();
    assert!(
        err.to_string().contains("input_ids row 0 is empty"),
        "{err}"
    );
    let err = TokenBatch::from_ids_and_mask(&[], None).unwrap_err();
    assert!(err.to_string().contains("input_ids has no rows"), "{err}");

    let (lm, rm) = models();
    let dev = device();
    for batch in [
        TokenBatch::from_rows(&[vec![]], 0, PadSide::Right),
        TokenBatch::from_rows(&[], 0, PadSide::Right),
    ] {
        let (b, t) = (batch.batch, batch.seq);
        let err = rm.try_rewards(&batch, Some(0), &dev).unwrap_err();
        assert!(
            matches!(err, CoreError::BadInput(_))
                && err
                    .to_string()
                    .contains("at least one row of at least one token"),
            "{b}×{t}: {err}"
        );
        assert!(rm.try_forward_all(&batch, &dev).is_err());
        assert!(lm.try_forward(&batch, &dev).is_err());
    }
}

// A 513-token row on a 512-position model panicked inside burn
// (`index 512 out of bounds for dimension of size 512`).
#[test]
fn rows_longer_than_the_positions_are_an_error_not_a_panic_in_burn() {
    let (lm, rm) = models();
    let dev = device();
    let long = TokenBatch::from_rows(&[vec![3; 513], vec![1, 2]], 0, PadSide::Right);
    let err = rm.try_rewards(&long, Some(0), &dev).unwrap_err();
    assert!(
        matches!(
            err,
            CoreError::SequenceTooLong {
                actual: 513,
                max: 512
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "sequence length 513 exceeds the model's maximum of 512 positions"
    );
    assert!(lm.try_forward(&long, &dev).is_err());
    assert!(rm.try_forward_all(&long, &dev).is_err());
    // The infallible entry points say the same in their panic, not burn's index error.
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        lm.forward(&long, &dev);
    }))
    .expect_err("too long for forward");
    let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains("position 512 outside the model's 512 positions"),
        "{msg}"
    );

    // 512 tokens fit; padding columns beyond 512 do not count, only real tokens take
    // positions.
    let full = TokenBatch::from_rows(&[vec![3; 512]], 0, PadSide::Right);
    assert_finite(
        "512 tokens",
        &vec_of(rm.try_rewards(&full, Some(0), &dev).unwrap()),
    );
    let mut padded = TokenBatch::from_rows_to(&[vec![3; 512]], 0, PadSide::Left, 520);
    let r1 = vec_of(rm.try_rewards(&padded, Some(0), &dev).unwrap());
    let r0 = vec_of(rm.rewards(&full, Some(0), &dev));
    assert_close("8 padding columns before 512 tokens", &r1, &r0, 1e-5);
    padded.mask[3] = 1; // a 513th real token
    assert!(rm.try_rewards(&padded, Some(0), &dev).is_err());

    // Ids outside the vocabulary are named, not looked up.
    let oov = TokenBatch::from_rows(&[vec![1, 64]], 0, PadSide::Right);
    let err = lm.try_forward(&oov, &dev).unwrap_err();
    assert!(
        err.to_string()
            .contains("token id 64 at row 0, position 1 is outside the vocabulary"),
        "{err}"
    );
}

#[test]
fn rotary_tables_do_not_depend_on_the_order_positions_are_reached() {
    let cfg = ModelConfig::tiny_llama(64);
    let dev = device();
    let short = TokenBatch::from_rows(&[vec![1, 5, 9]], 0, PadSide::Right);
    let long_rows: Vec<Vec<u32>> = vec![(0..300).map(|i| i % 60 + 1).collect(), vec![1, 7, 3]];
    let long = TokenBatch::from_rows(&long_rows, 0, PadSide::Right);
    // Short batch first (the tables grow later), or the long one straight away.
    let a = CausalLm::<B>::init(&cfg, 0.1, 5, &dev);
    let a_short = vec_of(a.forward(&short, &dev));
    assert!(a.trunk.rope.computed_len() < 300);
    let a_long = vec_of(a.forward(&long, &dev));
    assert!(a.trunk.rope.computed_len() >= 300);
    let b = CausalLm::<B>::init(&cfg, 0.1, 5, &dev);
    let b_long = vec_of(b.forward(&long, &dev));
    let b_short = vec_of(b.forward(&short, &dev));
    assert_finite("logits", &a_long);
    assert_eq!(a_long, b_long);
    assert_eq!(a_short, b_short);
    assert!(b.trunk.rope.computed_len() <= cfg.max_position_embeddings);
}
