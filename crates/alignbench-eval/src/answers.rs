//! Answers of the model under test: a resumable JSONL store keyed by question id, and the
//! `Generator` trait through which a model is plugged in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dataset::{BenchConfig, Question};
use crate::error::{BoxError, Error, Result};
use crate::io::{AppendLog, open_append_log};

/// The decoding policy an answer was generated with (SPEC §B.9: record it with every result).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Decoding {
    /// Greedy (argmax) decoding; ChatGLM-RLHF evaluated this way.
    pub greedy: bool,
    /// Sampling temperature (`None` for greedy).
    pub temperature: Option<f64>,
    /// Nucleus sampling threshold.
    pub top_p: Option<f64>,
    /// Top-k sampling.
    pub top_k: Option<usize>,
    /// Most new tokens.
    pub max_new_tokens: Option<usize>,
    /// Sampling seed.
    pub seed: Option<u64>,
}

impl Decoding {
    /// Greedy decoding.
    pub fn greedy() -> Self {
        Decoding {
            greedy: true,
            ..Decoding::default()
        }
    }

    /// Sampling at `temperature`.
    pub fn sampling(temperature: f64) -> Self {
        Decoding {
            temperature: Some(temperature),
            ..Decoding::default()
        }
    }

    /// AlignBench's default for a question: sampling at its category's temperature from
    /// `temperature.json` (0.7 if absent).
    pub fn alignbench_default(question: &Question, config: &BenchConfig) -> Self {
        Decoding::sampling(config.temperature(question.category))
    }
}

/// One answer (one line of an answers file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnswerRecord {
    /// The question answered.
    pub question_id: u32,
    /// The model under test.
    pub model_id: String,
    /// The answer text.
    pub answer: String,
    /// How it was decoded.
    #[serde(default)]
    pub decoding: Decoding,
}

/// A resumable answers file for one model: appends are fsynced, a reopened store knows which
/// questions are answered, and a truncated last line is dropped.
#[derive(Debug)]
pub struct AnswerStore {
    path: PathBuf,
    model_id: String,
    answers: BTreeMap<u32, AnswerRecord>,
    log: AppendLog,
}

impl AnswerStore {
    /// Opens (creating if needed) the answers file of `model_id`. When a question id occurs
    /// more than once in the file, the first answer is kept.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::JsonLine`] for a corrupt line (other than a truncated last one),
    /// [`Error::ModelMismatch`] if the file holds another model's answers.
    pub fn open(path: &Path, model_id: &str) -> Result<Self> {
        let (log, records) = open_append_log::<AnswerRecord>(path)?;
        let mut answers = BTreeMap::new();
        for (line, record) in records {
            if record.model_id != model_id {
                return Err(Error::ModelMismatch {
                    path: path.to_owned(),
                    line,
                    expected: model_id.to_owned(),
                    found: record.model_id,
                });
            }
            if answers.contains_key(&record.question_id) {
                tracing::warn!(
                    line,
                    question_id = record.question_id,
                    "duplicate answer ignored"
                );
                continue;
            }
            answers.insert(record.question_id, record);
        }
        tracing::debug!(path = %path.display(), n = answers.len(), "opened answer store");
        Ok(AnswerStore {
            path: path.to_owned(),
            model_id: model_id.to_owned(),
            answers,
            log,
        })
    }

    /// The answers file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The model id.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// Number of answered questions.
    pub fn len(&self) -> usize {
        self.answers.len()
    }

    /// Whether no question is answered yet.
    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }

    /// Whether `question_id` is answered.
    pub fn contains(&self, question_id: u32) -> bool {
        self.answers.contains_key(&question_id)
    }

    /// The answer to `question_id`.
    pub fn get(&self, question_id: u32) -> Option<&AnswerRecord> {
        self.answers.get(&question_id)
    }

    /// All answers, by question id.
    pub fn records(&self) -> impl Iterator<Item = &AnswerRecord> {
        self.answers.values()
    }

    /// The questions not answered yet, in the given order.
    pub fn pending<'q>(&self, questions: &'q [Question]) -> Vec<&'q Question> {
        questions
            .iter()
            .filter(|q| !self.contains(q.question_id))
            .collect()
    }

    /// Appends an answer (fsynced).
    ///
    /// # Errors
    /// [`Error::DuplicateAnswer`] if the question is answered, [`Error::ModelMismatch`] for
    /// another model's record, [`Error::Io`] if the write fails.
    pub fn append(&mut self, record: AnswerRecord) -> Result<()> {
        if record.model_id != self.model_id {
            return Err(Error::ModelMismatch {
                path: self.path.clone(),
                line: 0,
                expected: self.model_id.clone(),
                found: record.model_id,
            });
        }
        if self.contains(record.question_id) {
            return Err(Error::DuplicateAnswer {
                path: self.path.clone(),
                question_id: record.question_id,
            });
        }
        self.log.append(&record)?;
        self.answers.insert(record.question_id, record);
        Ok(())
    }
}

/// The model under test, as seen by this crate: question in, answer text out.
pub trait Generator {
    /// Answers one question (single turn, no system prompt) with the given decoding.
    ///
    /// # Errors
    /// Whatever the model code reports.
    fn generate(
        &mut self,
        question: &Question,
        decoding: &Decoding,
    ) -> std::result::Result<String, BoxError>;
}

/// Answers every question the store has no answer for, appending each answer as soon as it
/// is generated (so an interrupted run resumes where it stopped). Returns how many answers
/// were generated.
///
/// # Errors
/// [`Error::Generator`] for the first failing question (answers before it are kept), or a
/// store error.
pub fn generate_missing<G: Generator + ?Sized>(
    store: &mut AnswerStore,
    questions: &[Question],
    generator: &mut G,
    decoding: impl Fn(&Question) -> Decoding,
) -> Result<usize> {
    let pending: Vec<Question> = store.pending(questions).into_iter().cloned().collect();
    tracing::info!(
        pending = pending.len(),
        done = store.len(),
        "generating answers"
    );
    for (i, question) in pending.iter().enumerate() {
        let decoding = decoding(question);
        let answer =
            generator
                .generate(question, &decoding)
                .map_err(|source| Error::Generator {
                    question_id: question.question_id,
                    source,
                })?;
        let model_id = store.model_id().to_owned();
        store.append(AnswerRecord {
            question_id: question.question_id,
            model_id,
            answer,
            decoding,
        })?;
        tracing::debug!(question_id = question.question_id, n = i + 1, "answered");
    }
    Ok(pending.len())
}
