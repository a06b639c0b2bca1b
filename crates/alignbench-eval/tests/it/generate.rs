//! Answer generation on a local model: batches, resumable answer stores, decoding groups, and
//! the checks that come before any work.

use burn::backend::Flex;
use burn::backend::flex::FlexDevice;
use rlhf_alignbench_eval::{
    AnswerCodec, AnswerStore, BoxError, Decoding, Error, LocalModel, Question,
};
use rlhf_core::tokenizer::Message;
use rlhf_core::{CausalLm, ModelConfig};

use crate::common::synthetic_questions;

/// UTF-8 bytes as `b + 3` after BOS 1, EOS 2 (the byte-level models of the workspace).
struct Bytes;

impl AnswerCodec for Bytes {
    fn encode_prompt(&self, prompt: &[Message]) -> Result<Vec<u32>, BoxError> {
        let text: String = prompt.iter().map(|m| m.content.as_str()).collect();
        Ok(std::iter::once(1)
            .chain(text.bytes().map(|b| u32::from(b) + 3))
            .collect())
    }

    fn decode(&self, ids: &[u32]) -> Result<String, BoxError> {
        if ids.contains(&2) {
            return Err("EOS handed to decode".into());
        }
        let bytes: Vec<u8> = ids
            .iter()
            .filter(|&&i| i >= 3)
            .map(|&i| (i - 3) as u8)
            .collect();
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn eos_ids(&self) -> Vec<u32> {
        vec![2]
    }

    fn pad_id(&self) -> Option<u32> {
        Some(0)
    }
}

/// A randomly initialised byte-level model with a 96-token context.
struct Tiny(CausalLm<Flex>, ModelConfig);

impl Tiny {
    fn new() -> Self {
        let mut cfg = ModelConfig::tiny_llama(259);
        cfg.max_position_embeddings = 96;
        Tiny(CausalLm::init(&cfg, 0.02, 7, &FlexDevice), cfg)
    }

    fn lm(&self) -> LocalModel<'_, Flex, Bytes> {
        LocalModel {
            model: &self.0,
            config: &self.1,
            codec: &Bytes,
            device: &FlexDevice,
        }
    }
}

fn greedy(max_new: usize) -> Decoding {
    Decoding {
        max_new_tokens: Some(max_new),
        ..Decoding::greedy()
    }
}

#[test]
fn replies_come_in_batches_in_prompt_order() {
    let tiny = Tiny::new();
    let lm = tiny.lm();
    let prompts: Vec<Vec<Message>> = ["a", "bb", "ccc", "dddd", "eeeee"]
        .iter()
        .map(|t| vec![Message::user(*t)])
        .collect();
    let mut batches = Vec::new();
    lm.generate(&prompts, &greedy(4), 2, |b| {
        assert_eq!(b.replies.len(), b.prompts.len());
        assert!(b.new_tokens <= 4 * b.prompts.len());
        for r in &b.replies {
            assert!(r.tokens <= 4 && r.text.chars().count() <= r.tokens, "{r:?}");
        }
        batches.push(b.prompts);
        Ok(())
    })
    .unwrap();
    assert_eq!(batches, [0..2, 2..4, 4..5]);
    // A prompt longer than the context leaves keeps its end and still gets a reply.
    let long = vec![vec![Message::user("x".repeat(500))]];
    let mut n = 0;
    lm.generate(&long, &greedy(4), 8, |b| {
        n += b.replies.len();
        Ok(())
    })
    .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn bad_decodings_fail_before_any_work() {
    let tiny = Tiny::new();
    let lm = tiny.lm();
    let prompts = vec![vec![Message::user("a")]];
    let fail = |d: Decoding| {
        lm.generate(&prompts, &d, 1, |_| panic!("no batch expected"))
            .unwrap_err()
    };
    let err = fail(greedy(96));
    assert!(
        matches!(&err, Error::InvalidArgument(m) if m.contains("max_position_embeddings 96")),
        "{err}"
    );
    assert!(matches!(
        fail(Decoding::greedy()),
        Error::InvalidArgument(_)
    ));
}

#[test]
fn answers_are_appended_per_batch_and_a_rerun_resumes() {
    let tiny = Tiny::new();
    let lm = tiny.lm();
    let questions = synthetic_questions();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.jsonl");
    // Two decodings: sampling for question 2, greedy for the rest.
    let decoding_of = |q: &Question| {
        if q.question_id == 2 {
            Decoding {
                max_new_tokens: Some(3),
                seed: Some(5),
                ..Decoding::sampling(0.9)
            }
        } else {
            greedy(3)
        }
    };
    let mut store = AnswerStore::open(&path, "tiny").unwrap();
    let mut progress = Vec::new();
    let n = lm
        .answer_questions(
            &mut store,
            &questions[..3],
            decoding_of,
            2,
            |done, total, _| progress.push((done, total)),
        )
        .unwrap();
    assert_eq!(n, 3);
    // Greedy group (questions 1 and 3) in one batch, then the sampled one.
    assert_eq!(progress, [(2, 3), (3, 3)]);
    assert_eq!(store.len(), 3);
    assert_eq!(store.get(2).unwrap().decoding, decoding_of(&questions[1]));
    // Reopened, the store knows what is answered: only question 4 is new.
    let mut store = AnswerStore::open(&path, "tiny").unwrap();
    let n = lm
        .answer_questions(&mut store, &questions, decoding_of, 2, |_, total, _| {
            assert_eq!(total, 1)
        })
        .unwrap();
    assert_eq!((n, store.len()), (1, 4));
    let again = lm
        .answer_questions(&mut store, &questions, decoding_of, 2, |_, _, _| {
            panic!("nothing to generate")
        })
        .unwrap();
    assert_eq!(again, 0);
}
