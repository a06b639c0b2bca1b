//! Reading scores out of a [`ScalarModel`]: one score per row at its last real token, for a
//! [`PairBatch`] (training) or a whole encoded data set (evaluation, length-sorted batches).

use burn::prelude::*;
use rlhf_core::ScalarModel;

use rlhf_core::tokenizer::Message;
use rlhf_core::{PadSide, TokenBatch};

use crate::data::{EncodedPair, PairBatch, collate};
use crate::error::Result;
use rlhf_core::text::{TextCodec, truncate_row};

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

/// The score of each single reply (`(prompt, reply)`, not a pair): one row per reply, encoded
/// and truncated as the training rows are, right-padded in batches of `batch_rows` rows of
/// similar length, read at the last real token. Results are in input order.
///
/// # Errors
/// Tokenizer and chat-template errors.
pub fn score_replies<B: Backend>(
    model: &ScalarModel<B>,
    encoder: &TextCodec<'_>,
    items: &[(&[Message], &str)],
    max_length: usize,
    batch_rows: usize,
    device: &B::Device,
) -> Result<Vec<f32>> {
    let bos = encoder.bos_id();
    let rows = items
        .iter()
        .map(|(prompt, reply)| {
            Ok(truncate_row(
                &encoder.encode(prompt, reply)?,
                max_length,
                bos,
            ))
        })
        .collect::<Result<Vec<Vec<u32>>>>()?;
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| rows[i].len());
    let mut out = vec![0f32; rows.len()];
    for chunk in order.chunks(batch_rows.max(1)) {
        let batch: Vec<Vec<u32>> = chunk.iter().map(|&i| rows[i].clone()).collect();
        let tokens = TokenBatch::from_rows(&batch, encoder.pad_id(), PadSide::Right);
        let idx: Vec<i64> = batch.iter().map(|r| r.len() as i64 - 1).collect();
        let n = chunk.len();
        let idx = Tensor::<B, 2, Int>::from_data(TensorData::new(idx, [n, 1]), device);
        let s = model
            .forward_all(&tokens, device)
            .gather(1, idx)
            .reshape([n]);
        for (k, v) in s.into_data().iter::<f32>().enumerate() {
            out[chunk[k]] = v;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{PairCollator, PreferencePair};
    use burn::backend::Flex;
    use burn::backend::flex::FlexDevice;
    use rlhf_core::ModelConfig;
    use rlhf_core::text::TextCodec;
    use rlhf_core::tokenizer::Message;

    #[test]
    fn batched_scores_match_one_pair_at_a_time_and_hf_pooling() {
        let cfg = ModelConfig::tiny_llama(rlhf_core::text::BYTE_VOCAB);
        let model = ScalarModel::<Flex>::init(&cfg, 0.02, 3, &FlexDevice);
        let col = PairCollator::new(TextCodec::Bytes, 64);
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

    #[test]
    fn single_reply_scores_equal_the_chosen_side_of_pairs() {
        let cfg = ModelConfig::tiny_llama(rlhf_core::text::BYTE_VOCAB);
        let model = ScalarModel::<Flex>::init(&cfg, 0.02, 5, &FlexDevice);
        let prompt = vec![Message::user("question")];
        let replies = ["x", "a longer reply here", "mid reply", "yy"];
        let pairs: Vec<PreferencePair> = replies
            .iter()
            .map(|r| PreferencePair::new("p", prompt.clone(), *r, "other"))
            .collect();
        let enc = PairCollator::new(TextCodec::Bytes, 16)
            .encode_all(&pairs)
            .unwrap();
        let want = score_encoded(&model, &enc, 0, 4, &FlexDevice);
        let items: Vec<(&[Message], &str)> =
            replies.iter().map(|r| (prompt.as_slice(), *r)).collect();
        let got = score_replies(&model, &TextCodec::Bytes, &items, 16, 3, &FlexDevice).unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w.0).abs() < 1e-5, "{got:?} vs {want:?}");
        }
    }
}
