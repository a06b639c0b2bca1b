//! Reading scores out of a [`ScalarModel`]: one score per row at its last real token, for a
//! [`PairBatch`] (training) or a whole encoded data set (evaluation, length-sorted batches).

use burn::prelude::*;
use rlhf_core::ScalarModel;

use crate::data::{EncodedPair, PairBatch, collate};

/// The score of every row of `batch`, read at `batch.pool` (the last real token of each row).
///
/// On right-padded rows this is where HF `*ForSequenceClassification` reads too
/// (the rightmost non-pad id), except when a row's last real token *is* the pad id (tokenizers
/// whose pad falls back to EOS): reading by the mask keeps such rows at their end instead of
/// silently moving one token left.
///
/// # Shapes
/// - output: `[2n]`, chosen rows `0..n` then rejected rows `n..2n`
pub fn batch_scores<B: Backend>(
    model: &ScalarModel<B>,
    batch: &PairBatch,
    device: &B::Device,
) -> Tensor<B, 1> {
    let rows = batch.tokens.batch;
    let all = model.forward_all(&batch.tokens, device);
    let idx: Vec<i64> = batch.pool.iter().map(|&i| i as i64).collect();
    let idx = Tensor::<B, 2, Int>::from_data(TensorData::new(idx, [rows, 1]), device);
    all.gather(1, idx).reshape([rows])
}

/// `(chosen, rejected)` scores of every pair, computed in batches of `batch_pairs` pairs of
/// similar length (sorted by their longest row, results returned in input order).
pub fn score_encoded<B: Backend>(
    model: &ScalarModel<B>,
    pairs: &[EncodedPair],
    pad_id: u32,
    batch_pairs: usize,
    device: &B::Device,
) -> Vec<(f32, f32)> {
    let mut order: Vec<usize> = (0..pairs.len()).collect();
    order.sort_by_key(|&i| pairs[i].chosen.len().max(pairs[i].rejected.len()));
    let mut out = vec![(0.0f32, 0.0f32); pairs.len()];
    for chunk in order.chunks(batch_pairs.max(1)) {
        let refs: Vec<&EncodedPair> = chunk.iter().map(|&i| &pairs[i]).collect();
        let batch = collate(&refs, pad_id);
        let s: Vec<f32> = batch_scores(model, &batch, device)
            .into_data()
            .iter::<f32>()
            .collect();
        let n = chunk.len();
        for (k, &i) in chunk.iter().enumerate() {
            out[i] = (s[k], s[n + k]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{PairCollator, PreferencePair, TextEncoder};
    use burn::backend::Flex;
    use burn::backend::flex::FlexDevice;
    use rlhf_core::ModelConfig;
    use rlhf_core::tokenizer::Message;

    #[test]
    fn batched_scores_match_one_pair_at_a_time_and_hf_pooling() {
        let cfg = ModelConfig::tiny_llama(crate::data::BYTE_VOCAB);
        let model = ScalarModel::<Flex>::init(&cfg, 0.02, 3, &FlexDevice);
        let col = PairCollator::new(TextEncoder::Bytes, 64);
        let pairs: Vec<PreferencePair> = ["a", "bbbbbbbbbbbb", "cc", "dddddd"]
            .iter()
            .enumerate()
            .map(|(i, s)| {
                PreferencePair::new(
                    i.to_string(),
                    vec![Message::user("q")],
                    *s,
                    format!("{s}{s}"),
                )
            })
            .collect();
        let enc = col.encode_all(&pairs).unwrap();
        let batched = score_encoded(&model, &enc, 0, 3, &FlexDevice);
        for (i, e) in enc.iter().enumerate() {
            let single = score_encoded(&model, std::slice::from_ref(e), 0, 1, &FlexDevice);
            assert!((single[0].0 - batched[i].0).abs() < 1e-5);
            assert!((single[0].1 - batched[i].1).abs() < 1e-5);
        }
        // Same as ScalarModel::rewards (HF's rule) when no row ends with the pad id.
        let refs: Vec<&EncodedPair> = enc.iter().collect();
        let batch = col.collate_encoded(&refs);
        let ours = batch_scores(&model, &batch, &FlexDevice);
        let hf = model.rewards(&batch.tokens, Some(0), &FlexDevice);
        ours.into_data()
            .assert_approx_eq::<f32>(&hf.into_data(), burn::tensor::Tolerance::default());
    }
}
