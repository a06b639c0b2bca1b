//! The two items of this crate that need `rlhf-core` (and so link burn): core's tokenizer as a
//! [`TokenCounter`], and a comparison's conversation as core chat messages.
//!
//! Both have callers elsewhere (`rlhf data import/stats --tokenizer` in the CLI, and
//! `PreferencePair: From<&Comparison>` in `rlhf-reward`); once those build the conversion
//! themselves this module and the `rlhf-core` dependency can go, and `rlhf-prefdata` (with
//! `rlhf-annotate`) no longer links burn.

use rlhf_core::tokenizer::{Message as CoreMessage, Role as CoreRole, Tokenizer};

use crate::schema::{Comparison, Message, Role};
use crate::tokens::TokenCounter;

impl TokenCounter for Tokenizer {
    fn count(&self, text: &str) -> usize {
        self.encode(text, false).map(|ids| ids.len()).unwrap_or(0)
    }
}

/// Converts a comparison's history and prompt to core chat messages (the prompt last, as a
/// user turn).
pub fn prompt_messages(c: &Comparison) -> Vec<CoreMessage> {
    let conv = |m: &Message| CoreMessage {
        role: match m.role {
            Role::System => CoreRole::System,
            Role::User => CoreRole::User,
            Role::Assistant => CoreRole::Assistant,
        },
        content: m.content.clone(),
    };
    let mut out: Vec<CoreMessage> = c.history.iter().map(conv).collect();
    out.push(CoreMessage::user(c.prompt.clone()));
    out
}
