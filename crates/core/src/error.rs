//! The error type of `rlhf-core`: every failure names the file, tensor or value at fault.

use std::path::PathBuf;

/// Everything that can go wrong in `rlhf-core`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file at fault.
        path: PathBuf,
        /// The underlying IO error.
        source: std::io::Error,
    },
    /// A JSON file did not parse or lacked a field.
    #[error("{path}: invalid JSON: {message}")]
    Json {
        /// The file at fault.
        path: PathBuf,
        /// What the parser said (with line and column).
        message: String,
    },
    /// A `config.json` describes a model this crate cannot run.
    #[error("{path}: {message}")]
    UnsupportedModel {
        /// The `config.json` at fault.
        path: PathBuf,
        /// What is unsupported and what is.
        message: String,
    },
    /// A config value is impossible (for example heads that do not divide the hidden size).
    #[error("invalid model config: {0}")]
    InvalidConfig(String),
    /// A checkpoint lacks a tensor the model needs.
    #[error("{path}: missing tensor `{name}` (expected shape {expected:?})")]
    MissingTensor {
        /// The checkpoint (file or directory).
        path: PathBuf,
        /// The HF tensor name.
        name: String,
        /// The shape the model expects.
        expected: Vec<usize>,
    },
    /// A checkpoint holds tensors the model its config.json describes does not use.
    #[error(
        "{path}: {count} tensor(s) that the model described by config.json does not use \
         ({}{}); does config.json match the checkpoint (num_hidden_layers, biases, \
         model_type)?",
        names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "),
        if *count > names.len() { ", …" } else { "" }
    )]
    UnusedTensors {
        /// The checkpoint directory.
        path: PathBuf,
        /// How many tensors are unused.
        count: usize,
        /// The first few of them, sorted.
        names: Vec<String>,
    },
    /// A checkpoint tensor has the wrong shape.
    #[error("{path}: tensor `{name}` has shape {actual:?}, expected {expected:?}")]
    TensorShape {
        /// The checkpoint file.
        path: PathBuf,
        /// The HF tensor name.
        name: String,
        /// The shape the model expects.
        expected: Vec<usize>,
        /// The shape in the file.
        actual: Vec<usize>,
    },
    /// A checkpoint tensor has a dtype this crate cannot read.
    #[error("{path}: tensor `{name}` has dtype {dtype}, expected F32, F16 or BF16")]
    TensorDtype {
        /// The checkpoint file.
        path: PathBuf,
        /// The HF tensor name.
        name: String,
        /// The dtype in the file.
        dtype: String,
    },
    /// A safetensors file is malformed.
    #[error("{path}: invalid safetensors file: {message}")]
    Safetensors {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The tokenizer failed to load, encode or decode.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A chat template failed to compile or render.
    #[error("chat template: {0}")]
    ChatTemplate(String),
    /// A token id is outside the vocabulary.
    #[error("token id {id} at row {row}, position {pos} is outside the vocabulary (size {vocab})")]
    TokenOutOfVocab {
        /// The offending id.
        id: i64,
        /// Row of the batch.
        row: usize,
        /// Position in the row.
        pos: usize,
        /// Vocabulary size.
        vocab: usize,
    },
    /// Input tensors or lists have inconsistent shapes.
    #[error("bad input: {0}")]
    BadInput(String),
    /// A sequence would exceed the model's maximum length.
    #[error("sequence length {actual} exceeds the model's maximum of {max} positions")]
    SequenceTooLong {
        /// The requested length.
        actual: usize,
        /// `max_position_embeddings`.
        max: usize,
    },
    /// An atomic write failed (the message names the file or directory, once).
    #[error(transparent)]
    Util(#[from] rlhf_util::Error),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, CoreError>;

impl CoreError {
    /// Wraps an IO error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CoreError::Io {
            path: path.into(),
            source,
        }
    }
}
