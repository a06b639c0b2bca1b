//! Answers of a model run on this machine: the one batched generation loop behind
//! `rlhf eval alignbench` and the pipeline's held-out evaluation.
//!
//! The model is an `rlhf_core` [`CausalLm`]; how text becomes prompt ids and generated ids
//! become text is the caller's [`AnswerCodec`] (a tokenizer with or without a chat template,
//! or a byte codec), so this crate stays independent of any trainer.

use std::ops::Range;
use std::time::Instant;

use burn::prelude::Backend;
use rlhf_core::generate::{GenerationConfig, Sampling, generate};
use rlhf_core::tokenizer::Message;
use rlhf_core::{CausalLm, ModelConfig};

use crate::answers::{AnswerRecord, AnswerStore, Decoding};
use crate::dataset::Question;
use crate::error::{BoxError, Error, Result};

/// How the model under test reads a conversation and writes its reply.
pub trait AnswerCodec {
    /// The ids a reply to `prompt` is generated after (the chat template's generation prompt,
    /// or the codec's plain transcript).
    ///
    /// # Errors
    /// Tokenizer and template errors.
    fn encode_prompt(&self, prompt: &[Message]) -> std::result::Result<Vec<u32>, BoxError>;

    /// The text of generated ids (which stop before any EOS id).
    ///
    /// # Errors
    /// Tokenizer errors.
    fn decode(&self, ids: &[u32]) -> std::result::Result<String, BoxError>;

    /// The ids that end a reply, besides the model config's `eos_token_ids`.
    fn eos_ids(&self) -> Vec<u32>;

    /// The padding id, when the model config names none.
    fn pad_id(&self) -> Option<u32>;
}

/// The workspace's one text codec: a model under test reads its prompt exactly as the
/// trainers encoded it (chat template, or the plain transcript; bytes `b + 3` without a
/// tokenizer).
impl AnswerCodec for rlhf_core::text::TextCodec<'_> {
    fn encode_prompt(&self, prompt: &[Message]) -> std::result::Result<Vec<u32>, BoxError> {
        Ok(rlhf_core::text::TextCodec::encode_prompt(self, prompt)?)
    }

    fn decode(&self, ids: &[u32]) -> std::result::Result<String, BoxError> {
        Ok(rlhf_core::text::TextCodec::decode(self, ids)?)
    }

    fn eos_ids(&self) -> Vec<u32> {
        rlhf_core::text::TextCodec::eos_ids(self)
    }

    fn pad_id(&self) -> Option<u32> {
        Some(rlhf_core::text::TextCodec::pad_id(self))
    }
}

/// One generated reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Its text.
    pub text: String,
    /// Its length in tokens, EOS not counted.
    pub tokens: usize,
}

/// A batch of [`LocalModel::generate`] is done.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchDone {
    /// Indices of the batch's prompts.
    pub prompts: Range<usize>,
    /// Their replies, in prompt order.
    pub replies: Vec<Reply>,
    /// New tokens generated in the batch (EOS included).
    pub new_tokens: usize,
    /// Wall time of the batch.
    pub seconds: f64,
}

/// A causal LM on a device with its config and codec: generates replies in batches.
pub struct LocalModel<'a, B: Backend, C: AnswerCodec + ?Sized> {
    /// The model.
    pub model: &'a CausalLm<B>,
    /// Its config (context length, EOS and pad ids).
    pub config: &'a ModelConfig,
    /// Its codec.
    pub codec: &'a C,
    /// Where it runs.
    pub device: &'a B::Device,
}

/// The sampler of a decoding policy: greedy unless it samples at a positive temperature.
pub fn sampling(decoding: &Decoding) -> Sampling {
    match decoding.temperature {
        Some(t) if !decoding.greedy && t > 0.0 => Sampling::Sample {
            temperature: t as f32,
            top_k: decoding.top_k,
            top_p: decoding.top_p.map(|p| p as f32),
        },
        _ => Sampling::Greedy,
    }
}

/// Keeps the last `max` ids (the end of a chat prompt holds the generation marker).
pub fn clip_left(mut ids: Vec<u32>, max: usize) -> Vec<u32> {
    if ids.len() > max {
        tracing::warn!(
            len = ids.len(),
            max,
            "prompt longer than the model allows: keeping its last tokens"
        );
        ids.drain(..ids.len() - max);
    }
    ids
}

impl<B: Backend, C: AnswerCodec + ?Sized> LocalModel<'_, B, C> {
    /// Generates a reply to every prompt with `decoding` (its `max_new_tokens` is required;
    /// batch `b` samples with seed `decoding.seed + b`), `batch_size` prompts at a time, and
    /// hands each batch to `on_batch` as soon as it is done. A prompt longer than the context
    /// leaves for the reply keeps its last tokens.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `decoding` has no `max_new_tokens` or leaves no room for
    /// a prompt, [`Error::Codec`], [`Error::Core`] from generation, or `on_batch`'s error.
    pub fn generate(
        &self,
        prompts: &[Vec<Message>],
        decoding: &Decoding,
        batch_size: usize,
        mut on_batch: impl FnMut(BatchDone) -> Result<()>,
    ) -> Result<()> {
        let max_new = decoding
            .max_new_tokens
            .ok_or_else(|| Error::InvalidArgument("the decoding names no max_new_tokens".into()))?;
        let context = self.config.max_position_embeddings;
        if max_new >= context {
            return Err(Error::InvalidArgument(format!(
                "max_new_tokens {max_new} leaves no room for the prompt \
                 (max_position_embeddings {context})"
            )));
        }
        let mut eos = self.config.eos_token_ids.clone();
        for e in self.codec.eos_ids() {
            if !eos.contains(&e) {
                eos.push(e);
            }
        }
        let pad_id = self
            .config
            .pad_token_id
            .or(self.codec.pad_id())
            .unwrap_or(0);
        let batch_size = batch_size.max(1);
        for (b, chunk) in prompts.chunks(batch_size).enumerate() {
            let first = b * batch_size;
            let rows = chunk
                .iter()
                .map(|m| Ok(clip_left(self.codec.encode_prompt(m)?, context - max_new)))
                .collect::<std::result::Result<Vec<_>, BoxError>>()
                .map_err(Error::Codec)?;
            let cfg = GenerationConfig {
                max_new_tokens: max_new,
                sampling: sampling(decoding),
                seed: decoding.seed.unwrap_or(0).wrapping_add(b as u64),
                eos_ids: eos.clone(),
                pad_id,
            };
            let started = Instant::now();
            let out = generate(self.model, &rows, &cfg, self.device)?;
            let replies = out
                .new_ids
                .iter()
                .map(|ids| {
                    let end = ids.iter().position(|i| eos.contains(i));
                    let ids = &ids[..end.unwrap_or(ids.len())];
                    Ok(Reply {
                        text: self.codec.decode(ids)?,
                        tokens: ids.len(),
                    })
                })
                .collect::<std::result::Result<Vec<_>, BoxError>>()
                .map_err(Error::Codec)?;
            on_batch(BatchDone {
                prompts: first..first + chunk.len(),
                replies,
                new_tokens: out.new_ids.iter().map(Vec::len).sum(),
                seconds: started.elapsed().as_secs_f64(),
            })?;
        }
        Ok(())
    }

    /// Answers every question `store` has no answer for (one user turn each), grouped by the
    /// decoding `decoding_of` gives it (file order kept inside a group), appending each batch's
    /// answers as soon as it is done, so an interrupted run resumes where it stopped.
    /// `progress` hears `(answered, pending, batch)` after each batch. Returns how many answers
    /// were generated.
    ///
    /// # Errors
    /// As [`LocalModel::generate`], or a store error.
    pub fn answer_questions(
        &self,
        store: &mut AnswerStore,
        questions: &[Question],
        decoding_of: impl Fn(&Question) -> Decoding,
        batch_size: usize,
        mut progress: impl FnMut(usize, usize, &BatchDone),
    ) -> Result<usize> {
        let pending: Vec<&Question> = store.pending(questions);
        let mut groups: Vec<(Decoding, Vec<&Question>)> = Vec::new();
        for q in pending.iter().copied() {
            let d = decoding_of(q);
            match groups.iter_mut().find(|(g, _)| *g == d) {
                Some((_, qs)) => qs.push(q),
                None => groups.push((d, vec![q])),
            }
        }
        let model_id = store.model_id().to_owned();
        let mut done = 0usize;
        for (decoding, qs) in &groups {
            let prompts: Vec<Vec<Message>> = qs
                .iter()
                .map(|q| vec![Message::user(&q.question)])
                .collect();
            self.generate(&prompts, decoding, batch_size, |batch| {
                for (q, reply) in qs[batch.prompts.clone()].iter().zip(&batch.replies) {
                    store.append(AnswerRecord {
                        question_id: q.question_id,
                        model_id: model_id.clone(),
                        answer: reply.text.clone(),
                        decoding: decoding.clone(),
                    })?;
                }
                done += batch.replies.len();
                progress(done, pending.len(), &batch);
                Ok(())
            })?;
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_follows_the_decoding_and_clipping_keeps_the_end() {
        assert_eq!(sampling(&Decoding::greedy()), Sampling::Greedy);
        assert_eq!(sampling(&Decoding::sampling(0.0)), Sampling::Greedy);
        let mut d = Decoding::sampling(0.7);
        d.top_k = Some(5);
        assert_eq!(
            sampling(&d),
            Sampling::Sample {
                temperature: 0.7,
                top_k: Some(5),
                top_p: None
            }
        );
        assert_eq!(clip_left(vec![1, 2, 3, 4], 2), vec![3, 4]);
        assert_eq!(clip_left(vec![1, 2], 2), vec![1, 2]);
    }
}
