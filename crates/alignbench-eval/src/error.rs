//! The crate's error type and `Result` alias.

use std::path::PathBuf;
use std::time::Duration;

/// Result alias used by every fallible function of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Boxed error produced by user-supplied code (answer generators, score functions).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong while loading data, judging, scoring or reporting.
///
/// No variant ever carries the judge API key: HTTP error bodies are scrubbed of it before
/// they are stored here.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// One line of a JSONL file is not a valid record.
    #[error("{}:{line}: invalid record: {source}", path.display())]
    JsonLine {
        /// The JSONL file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// A JSON file (a config file) is not valid.
    #[error("{}: invalid JSON: {source}", path.display())]
    Json {
        /// The JSON file.
        path: PathBuf,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// Serialising a value to JSON failed.
    #[error("serialising JSON: {0}")]
    Serialize(#[source] serde_json::Error),
    /// Two records of a question file share one `question_id`.
    #[error("{}:{line}: duplicate question_id {id}", path.display())]
    DuplicateQuestionId {
        /// The question file.
        path: PathBuf,
        /// 1-based line number of the second occurrence.
        line: usize,
        /// The repeated id.
        id: u32,
    },
    /// A string is not one of the eight AlignBench main-category labels.
    #[error("unknown AlignBench category {0:?}")]
    UnknownCategory(String),
    /// A subcategory has no entry in `subcategory_question_mapping.json`.
    #[error("subcategory {0:?} has no answer type in the config")]
    UnknownSubcategory(String),
    /// An answer type has no entry in `dimension_set.json`.
    #[error("answer type {0:?} has no dimension set in the config")]
    UnknownAnswerType(String),
    /// A dimension has no entry in `dimension_definition.json`.
    #[error("dimension {0:?} has no definition in the config")]
    UnknownDimension(String),
    /// A judgment refers to a question id that is not in the question set.
    #[error("question {0} is not in the question set")]
    UnknownQuestion(u32),
    /// A judge prompt template is invalid.
    #[error("judge template: {0}")]
    Template(String),
    /// A prompt lacks the AlignBench payload markers an offline judge needs.
    #[error("prompt has no AlignBench payload: {0}")]
    PromptPayload(String),
    /// The judge answered with an HTTP error status.
    #[error("judge returned HTTP {status}: {body}")]
    HttpStatus {
        /// The status code.
        status: u16,
        /// The start of the response body (scrubbed of the API key).
        body: String,
        /// The server's `Retry-After`, when it sent one in seconds.
        retry_after: Option<Duration>,
    },
    /// The judge request did not finish within the client timeout.
    #[error("judge request timed out")]
    Timeout,
    /// The connection to the judge failed.
    #[error("judge transport error: {0}")]
    Transport(String),
    /// The judge answered 2xx with a body that is not a chat completion.
    #[error("malformed judge response: {0}")]
    MalformedResponse(String),
    /// The judge kept failing with retryable errors.
    #[error("judge gave up after {attempts} attempts; last error: {last}")]
    RetriesExhausted {
        /// How many requests were made.
        attempts: u32,
        /// The last error seen.
        last: Box<Error>,
    },
    /// No answer got a judgment: the judge failed on every job, or there was none to judge.
    #[error("{}", nothing_judged(*jobs, *failed, first_failure.as_ref()))]
    NothingJudged {
        /// Judge jobs run.
        jobs: usize,
        /// Jobs whose judgment failed.
        failed: usize,
        /// The first failure: (job key, error message).
        first_failure: Option<(String, String)>,
    },
    /// A judge implementation failed for a reason of its own.
    #[error("judge failed: {0}")]
    Judge(String),
    /// An answer generator failed.
    #[error("generating the answer to question {question_id}: {source}")]
    Generator {
        /// The question being answered.
        question_id: u32,
        /// The generator's error.
        #[source]
        source: BoxError,
    },
    /// An atomic write failed (the message names the file, once).
    #[error(transparent)]
    Util(#[from] rlhf_util::Error),
    /// An answer store already holds an answer to this question.
    #[error("{}: question {question_id} is already answered", path.display())]
    DuplicateAnswer {
        /// The answers file.
        path: PathBuf,
        /// The question id.
        question_id: u32,
    },
    /// An answers file holds records of another model.
    #[error("{}:{line}: record is for model {found:?}, this store is for {expected:?}", path.display())]
    ModelMismatch {
        /// The answers file.
        path: PathBuf,
        /// 1-based line number (0 for a record passed to `append`).
        line: usize,
        /// The store's model id.
        expected: String,
        /// The record's model id.
        found: String,
    },
    /// A CSV sheet could not be read or written.
    #[error("CSV: {0}")]
    Csv(#[source] csv::Error),
    /// A row of a filled-in rating sheet is invalid.
    #[error("rating sheet row {row}: {message}")]
    Sheet {
        /// 1-based data row (the header is row 0).
        row: usize,
        /// What is wrong.
        message: String,
    },
    /// Drawing a chart failed.
    #[error("plotting: {0}")]
    Plot(String),
    /// An argument is out of range or inconsistent.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The model's text codec failed to encode a prompt or decode a reply.
    #[error("text codec: {0}")]
    Codec(#[source] BoxError),
    /// The model under test failed (generation).
    #[error(transparent)]
    Core(#[from] rlhf_core::CoreError),
}

fn nothing_judged(jobs: usize, failed: usize, first: Option<&(String, String)>) -> String {
    match first {
        _ if jobs == 0 => "nothing was judged: there is no answer to judge".to_owned(),
        Some((key, error)) => format!(
            "nothing was judged: the judge failed on {failed} of {jobs} answers (first, question {key}: {error})"
        ),
        None => format!("nothing was judged: none of the {jobs} judge jobs gave a judgment"),
    }
}

impl Error {
    /// Wraps an IO error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
