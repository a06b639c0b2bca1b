//! Tokenizers and chat templates.
//!
//! - [`Tokenizer`]: an HF `tokenizer.json` (the `tokenizers` crate) plus the special tokens and
//!   `chat_template` of `tokenizer_config.json`;
//! - [`ChatTemplate`]: the model's own Jinja chat template rendered with minijinja, as
//!   transformers' `apply_chat_template` does (`trim_blocks`, `lstrip_blocks`, Python string
//!   methods, `raise_exception`);
//! - [`EncodedChat`]: token ids with a typed trainable mask: the tokens of assistant turns, and
//!   only they, are trainable;
//! - [`train_bpe`]: a byte-level BPE trained from text, for models trained from scratch.

mod chat;
mod hf;
mod train;

pub use chat::{ChatTemplate, Message, Role};
pub use hf::{EncodedChat, Tokenizer};
pub use train::{BpeTrainingConfig, train_bpe};
