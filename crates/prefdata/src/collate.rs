//! Collating comparisons into padded token batches with typed masks (prompt, response, padding),
//! through the model's own chat template (`rlhf-core`).
//!
//! Each comparison becomes two rows, `[history + prompt | chosen]` and
//! `[history + prompt | rejected]`, right-padded. Truncation to `max_len` drops the oldest prompt
//! tokens first (keeping a leading BOS), so the response, the part a reward or policy model is
//! trained on, survives; a response longer than `max_len` on its own keeps its first tokens.

use rlhf_core::tokenizer::{Message as CoreMessage, Tokenizer};
use rlhf_core::{PadSide, TokenBatch};

use crate::error::{Error, Result};
use crate::schema::{Comparison, Message, Role};
use crate::tokens::TokenCounter;

impl TokenCounter for Tokenizer {
    fn count(&self, text: &str) -> usize {
        self.encode(text, false).map(|ids| ids.len()).unwrap_or(0)
    }
}

/// What a token of a collated row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Right padding.
    Pad,
    /// Conversation history, prompt and template markup before the reply.
    Prompt,
    /// The reply: what the model is trained or scored on.
    Response,
}

/// Token rows of `n` comparisons: rows `0..n` hold the chosen replies, rows `n..2n` the rejected
/// ones, in the same order.
#[derive(Debug, Clone)]
pub struct PairBatch {
    /// Ids and padding mask, `2n × seq`.
    pub tokens: TokenBatch,
    /// Kind of every token, `2n × seq`, row-major.
    pub kinds: Vec<TokenKind>,
    /// Number of comparisons.
    pub pairs: usize,
    /// How many rows were truncated to fit `max_len`.
    pub truncated_rows: usize,
}

impl PairBatch {
    /// 1 for response tokens, 0 elsewhere (`2n × seq`).
    pub fn response_mask(&self) -> Vec<u8> {
        self.kinds
            .iter()
            .map(|k| u8::from(*k == TokenKind::Response))
            .collect()
    }

    /// Number of response tokens of each row.
    pub fn response_lengths(&self) -> Vec<usize> {
        self.kinds
            .chunks(self.tokens.seq.max(1))
            .map(|row| row.iter().filter(|k| **k == TokenKind::Response).count())
            .collect()
    }
}

/// Converts a comparison's history and prompt to core chat messages.
pub fn prompt_messages(c: &Comparison) -> Vec<CoreMessage> {
    let conv = |m: &Message| CoreMessage {
        role: match m.role {
            Role::System => rlhf_core::tokenizer::Role::System,
            Role::User => rlhf_core::tokenizer::Role::User,
            Role::Assistant => rlhf_core::tokenizer::Role::Assistant,
        },
        content: m.content.clone(),
    };
    let mut out: Vec<CoreMessage> = c.history.iter().map(conv).collect();
    out.push(CoreMessage::user(c.prompt.clone()));
    out
}

/// Tokens and kinds of one `[prompt | reply]` row, truncated to `max_len`.
fn encode_row(
    tok: &Tokenizer,
    prompt: &[CoreMessage],
    reply: &str,
    max_len: usize,
) -> Result<(Vec<u32>, Vec<TokenKind>, bool)> {
    let enc = if tok.has_chat_template() {
        tok.encode_prompt_response(prompt, reply)
            .map_err(|e| Error::InvalidConfig(format!("chat template: {e}")))?
    } else {
        // No template: "role: content" lines, the reply after "assistant: ".
        let mut text = String::new();
        for m in prompt {
            let role = match m.role {
                rlhf_core::tokenizer::Role::System => "system",
                rlhf_core::tokenizer::Role::User => "user",
                rlhf_core::tokenizer::Role::Assistant => "assistant",
            };
            text.push_str(&format!("{role}: {}\n", m.content));
        }
        text.push_str("assistant: ");
        let mut ids = tok
            .encode(&text, true)
            .map_err(|e| Error::InvalidConfig(format!("tokenizer: {e}")))?;
        let p = ids.len();
        ids.extend(
            tok.encode(reply, false)
                .map_err(|e| Error::InvalidConfig(format!("tokenizer: {e}")))?,
        );
        if let Some(eos) = tok.eos_id() {
            ids.push(eos);
        }
        let trainable = (0..ids.len()).map(|i| i >= p).collect();
        rlhf_core::tokenizer::EncodedChat { ids, trainable }
    };
    let mut ids = enc.ids;
    let mut kinds: Vec<TokenKind> = enc
        .trainable
        .iter()
        .map(|&t| {
            if t {
                TokenKind::Response
            } else {
                TokenKind::Prompt
            }
        })
        .collect();
    let truncated = ids.len() > max_len;
    if truncated {
        let resp_start = kinds
            .iter()
            .position(|k| *k == TokenKind::Response)
            .unwrap_or(ids.len());
        let over = ids.len() - max_len;
        let keep_bos = usize::from(tok.bos_id().is_some() && ids.first() == tok.bos_id().as_ref());
        let droppable = resp_start.saturating_sub(keep_bos);
        let drop = over.min(droppable);
        ids.drain(keep_bos..keep_bos + drop);
        kinds.drain(keep_bos..keep_bos + drop);
        ids.truncate(max_len);
        kinds.truncate(max_len);
    }
    Ok((ids, kinds, truncated))
}

/// Collates comparisons into a [`PairBatch`] (right padding with the tokenizer's pad id).
///
/// # Errors
/// [`Error::InvalidConfig`] when the template or tokenizer fails, or when `max_len` is 0.
pub fn collate_pairs(rows: &[Comparison], tok: &Tokenizer, max_len: usize) -> Result<PairBatch> {
    if max_len == 0 {
        return Err(Error::InvalidConfig("max_len must be > 0".into()));
    }
    let pad = tok.pad_id().unwrap_or(0);
    let mut ids = Vec::with_capacity(2 * rows.len());
    let mut kinds = Vec::with_capacity(2 * rows.len());
    let mut truncated_rows = 0;
    for side in 0..2 {
        for c in rows {
            let prompt = prompt_messages(c);
            let reply = if side == 0 { &c.chosen } else { &c.rejected };
            let (i, k, t) = encode_row(tok, &prompt, reply, max_len)?;
            truncated_rows += usize::from(t);
            ids.push(i);
            kinds.push(k);
        }
    }
    let tokens = TokenBatch::from_rows(&ids, pad, PadSide::Right);
    let seq = tokens.seq;
    let kinds = kinds
        .into_iter()
        .flat_map(|mut k| {
            k.resize(seq, TokenKind::Pad);
            k
        })
        .collect();
    Ok(PairBatch {
        tokens,
        kinds,
        pairs: rows.len(),
        truncated_rows,
    })
}
