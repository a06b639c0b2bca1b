//! The resumable answers store and the generator driver.

use std::io::Write;

use rlhf_alignbench_eval::{
    AnswerRecord, AnswerStore, BoxError, Decoding, Error, Generator, Question, generate_missing,
};

use crate::common::{synthetic_config, synthetic_questions};

/// Echoes the question; fails on the question id given.
struct Echo {
    fail_on: Option<u32>,
    calls: usize,
}

impl Generator for Echo {
    fn generate(&mut self, question: &Question, decoding: &Decoding) -> Result<String, BoxError> {
        self.calls += 1;
        if Some(question.question_id) == self.fail_on {
            return Err("out of memory".into());
        }
        Ok(format!(
            "答：{} (greedy={})",
            question.question, decoding.greedy
        ))
    }
}

#[test]
fn generation_resumes_after_a_failure_and_a_torn_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("answers/ppo.jsonl");
    let questions = synthetic_questions();

    let mut store = AnswerStore::open(&path, "ppo").unwrap();
    let mut generator = Echo {
        fail_on: Some(3),
        calls: 0,
    };
    let err = generate_missing(&mut store, &questions, &mut generator, |_| {
        Decoding::greedy()
    })
    .unwrap_err();
    assert!(
        matches!(err, Error::Generator { question_id: 3, .. }),
        "{err}"
    );
    assert_eq!(store.len(), 2);
    drop(store);

    // A crash in the middle of the next write leaves half a line behind.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    file.write_all(br#"{"question_id": 3, "model_id": "ppo", "ans"#)
        .unwrap();
    drop(file);

    let mut store = AnswerStore::open(&path, "ppo").unwrap();
    assert_eq!(store.len(), 2);
    let pending: Vec<u32> = store
        .pending(&questions)
        .iter()
        .map(|q| q.question_id)
        .collect();
    assert_eq!(pending, [3, 4]);
    let mut generator = Echo {
        fail_on: None,
        calls: 0,
    };
    let config = synthetic_config();
    let n = generate_missing(&mut store, &questions, &mut generator, |q| {
        Decoding::alignbench_default(q, &config)
    })
    .unwrap();
    assert_eq!((n, generator.calls), (2, 2));
    drop(store);

    let store = AnswerStore::open(&path, "ppo").unwrap();
    assert_eq!(store.len(), 4);
    assert!(store.pending(&questions).is_empty());
    assert_eq!(store.get(1).unwrap().decoding, Decoding::greedy());
    assert_eq!(store.get(4).unwrap().decoding, Decoding::sampling(0.7));
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 4);
    assert!(text.ends_with('\n'));
    let ids: Vec<u32> = text
        .lines()
        .map(|l| serde_json::from_str::<AnswerRecord>(l).unwrap().question_id)
        .collect();
    assert_eq!(ids, [1, 2, 3, 4]);
}

#[test]
fn store_rejects_duplicates_and_other_models() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.jsonl");
    let mut store = AnswerStore::open(&path, "sft").unwrap();
    let record = |model: &str| AnswerRecord {
        question_id: 7,
        model_id: model.into(),
        answer: "x".into(),
        decoding: Decoding::greedy(),
    };
    store.append(record("sft")).unwrap();
    assert!(matches!(
        store.append(record("sft")),
        Err(Error::DuplicateAnswer { question_id: 7, .. })
    ));
    assert!(matches!(
        store.append(record("dpo")),
        Err(Error::ModelMismatch { .. })
    ));
    drop(store);
    let err = AnswerStore::open(&path, "dpo").unwrap_err();
    assert!(matches!(err, Error::ModelMismatch { line: 1, .. }), "{err}");
    // Records without a decoding field (e.g. converted from AlignBench) still load.
    std::fs::write(
        &path,
        "{\"question_id\": 1, \"model_id\": \"m\", \"answer\": \"a\", \"answer_id\": \"1_m\"}\n",
    )
    .unwrap();
    let store = AnswerStore::open(&path, "m").unwrap();
    assert_eq!(store.get(1).unwrap().decoding, Decoding::default());
}
