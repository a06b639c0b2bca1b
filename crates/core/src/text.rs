//! The one text codec of the workspace: how a conversation and a reply become token ids and
//! how generated ids become text again, for every stage (SFT, reward model, DPO, PPO,
//! evaluation), with one byte mapping.
//!
//! - With an HF tokenizer that has a chat template, a row is
//!   [`Tokenizer::encode_prompt_response`] and a prompt [`Tokenizer::encode_prompt`].
//! - With a tokenizer and no template, the plain transcript ([`plain_prompt`]) is encoded, BOS
//!   prepended and EOS appended when the tokenizer has them.
//! - Without a tokenizer ([`TextCodec::Bytes`]), the plain transcript as UTF-8 bytes: pad 0,
//!   BOS 1, EOS 2, byte `b` → `b + 3` ([`BYTE_VOCAB`] = 259 ids, the vocabulary of
//!   `ModelConfig::tiny_llama(BYTE_VOCAB)` and of every byte-level model this workspace trains).
//!
//! # Truncation rule
//!
//! A row is `[prompt | response]`. When it is longer than `max_length` ([`truncate_row`]):
//! 1. a leading BOS (the codec's `bos_id`, when the row starts with it) is always kept;
//! 2. prompt tokens are dropped **from the left** (the oldest history goes first) until the row
//!    fits, so the end of the prompt (the latest user turn and the assistant header) and the
//!    whole response stay;
//! 3. only when the response alone does not fit is the prompt dropped entirely and the response
//!    cut on the right, **keeping its last token** (the end-of-turn / EOS token a reward model's
//!    score is read at).
//!
//! A prompt for generation keeps its last tokens and its BOS ([`truncate_prompt`]).

use crate::error::Result;
use crate::tokenizer::{Message, Role, Tokenizer};

/// Byte-level ids of the no-tokenizer codec: pad 0, BOS 1, EOS 2, byte `b` → `b + 3`.
pub const BYTE_VOCAB: usize = 259;

/// How text becomes token ids, and back.
#[derive(Debug, Clone, Copy)]
pub enum TextCodec<'a> {
    /// An HF tokenizer (with or without a chat template).
    Tokenizer(&'a Tokenizer),
    /// No tokenizer: the plain transcript as UTF-8 bytes (`b + 3`), BOS 1 first, EOS 2 last.
    Bytes,
}

/// One encoded row: `ids[..response_start]` is the prompt, the rest the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedRow {
    /// Token ids.
    pub ids: Vec<u32>,
    /// Index of the first reply token.
    pub response_start: usize,
}

/// The plain transcript of the fallback codecs: one `Role: content` line per message, then
/// `Assistant: ` where the reply begins.
pub fn plain_prompt(prompt: &[Message]) -> String {
    let mut s = String::new();
    for m in prompt {
        let role = match m.role {
            Role::System => "System",
            Role::User => "User",
            Role::Assistant => "Assistant",
        };
        s.push_str(role);
        s.push_str(": ");
        s.push_str(&m.content);
        s.push('\n');
    }
    s.push_str("Assistant: ");
    s
}

fn bytes(text: &str) -> impl Iterator<Item = u32> + '_ {
    text.bytes().map(|b| u32::from(b) + 3)
}

impl TextCodec<'_> {
    /// The padding id: the tokenizer's (falling back to its EOS, then 0), or 0 for bytes.
    pub fn pad_id(&self) -> u32 {
        match self {
            TextCodec::Tokenizer(t) => t.pad_id().unwrap_or(0),
            TextCodec::Bytes => 0,
        }
    }

    /// The BOS id that truncation never drops.
    pub fn bos_id(&self) -> Option<u32> {
        match self {
            TextCodec::Tokenizer(t) => t.bos_id(),
            TextCodec::Bytes => Some(1),
        }
    }

    /// The ids that end a reply.
    pub fn eos_ids(&self) -> Vec<u32> {
        match self {
            TextCodec::Tokenizer(t) => t.eos_id().into_iter().collect(),
            TextCodec::Bytes => vec![2],
        }
    }

    /// Vocabulary size (ids are below it).
    pub fn vocab_size(&self) -> usize {
        match self {
            TextCodec::Tokenizer(t) => t.vocab_size(),
            TextCodec::Bytes => BYTE_VOCAB,
        }
    }

    /// Encodes `prompt` + `response` (not truncated).
    ///
    /// # Errors
    /// Tokenizer and chat-template errors.
    pub fn encode(&self, prompt: &[Message], response: &str) -> Result<EncodedRow> {
        match self {
            TextCodec::Tokenizer(tok) if tok.has_chat_template() => {
                let enc = tok.encode_prompt_response(prompt, response)?;
                let start = enc.first_trainable().unwrap_or(enc.ids.len());
                Ok(EncodedRow {
                    ids: enc.ids,
                    response_start: start,
                })
            }
            _ => {
                let mut ids = self.encode_prompt(prompt)?;
                let start = ids.len();
                match self {
                    TextCodec::Tokenizer(tok) => {
                        ids.extend(tok.encode(response, false)?);
                        ids.extend(tok.eos_id());
                    }
                    TextCodec::Bytes => {
                        ids.extend(bytes(response));
                        ids.push(2);
                    }
                }
                Ok(EncodedRow {
                    ids,
                    response_start: start,
                })
            }
        }
    }

    /// Encodes the prompt a reply is generated after: exactly the prompt part of
    /// [`TextCodec::encode`]'s rows.
    ///
    /// # Errors
    /// Tokenizer and chat-template errors.
    pub fn encode_prompt(&self, prompt: &[Message]) -> Result<Vec<u32>> {
        Ok(match self {
            TextCodec::Tokenizer(t) if t.has_chat_template() => t.encode_prompt(prompt)?,
            TextCodec::Tokenizer(t) => {
                let mut ids: Vec<u32> = t.bos_id().into_iter().collect();
                ids.extend(t.encode(&plain_prompt(prompt), false)?);
                ids
            }
            TextCodec::Bytes => {
                let mut ids = vec![1u32];
                ids.extend(bytes(&plain_prompt(prompt)));
                ids
            }
        })
    }

    /// The text of generated ids, up to (not including) the first EOS; special tokens are
    /// skipped (for bytes: every id outside `3..259`).
    ///
    /// # Errors
    /// Tokenizer errors.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let eos = self.eos_ids();
        let end = ids
            .iter()
            .position(|i| eos.contains(i))
            .unwrap_or(ids.len());
        let ids = &ids[..end];
        Ok(match self {
            TextCodec::Tokenizer(t) => t.decode(ids, true)?,
            TextCodec::Bytes => {
                let b: Vec<u8> = ids
                    .iter()
                    .filter(|&&i| (3..BYTE_VOCAB as u32).contains(&i))
                    .map(|&i| (i - 3) as u8)
                    .collect();
                String::from_utf8_lossy(&b).into_owned()
            }
        })
    }
}

/// Applies the truncation rule (module docs) to one row.
///
/// # Panics
/// If `max_length < 2` or `response_start > ids.len()`.
pub fn truncate_row(row: &EncodedRow, max_length: usize, bos: Option<u32>) -> Vec<u32> {
    assert!(max_length >= 2, "max_length must be >= 2");
    let ids = &row.ids;
    let start = row.response_start;
    assert!(start <= ids.len(), "response_start past the row");
    if ids.len() <= max_length {
        return ids.clone();
    }
    let keep_bos = usize::from(bos.is_some() && ids.first() == bos.as_ref() && start > 0);
    let response = &ids[start..];
    let mut out: Vec<u32> = ids[..keep_bos].to_vec();
    let room = max_length - keep_bos;
    if response.len() <= room {
        let prompt_keep = room - response.len();
        out.extend_from_slice(&ids[start - prompt_keep..start]);
        out.extend_from_slice(response);
    } else {
        out.extend_from_slice(&response[..room - 1]);
        out.push(*response.last().expect("response longer than room"));
    }
    debug_assert_eq!(out.len(), max_length);
    out
}

/// Keeps the last `max_len` tokens of a prompt (and its leading BOS, when it has one).
pub fn truncate_prompt(ids: &[u32], max_len: usize, bos: Option<u32>) -> Vec<u32> {
    if ids.len() <= max_len {
        return ids.to_vec();
    }
    let keep_bos = bos.is_some() && ids.first() == bos.as_ref() && max_len > 1;
    let mut out = Vec::with_capacity(max_len);
    if keep_bos {
        out.push(ids[0]);
    }
    out.extend_from_slice(&ids[ids.len() - (max_len - out.len())..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_rows_are_bos_transcript_reply_eos_and_decode_back() {
        let msgs = vec![Message::user("hi")];
        let row = TextCodec::Bytes.encode(&msgs, "yo").unwrap();
        // "User: hi\nAssistant: " = 20 bytes, each b + 3, after BOS 1.
        assert_eq!(row.ids[0], 1);
        assert_eq!(row.ids[1], u32::from(b'U') + 3);
        assert_eq!(row.response_start, 21);
        assert_eq!(
            &row.ids[21..],
            &[u32::from(b'y') + 3, u32::from(b'o') + 3, 2]
        );
        let prompt = TextCodec::Bytes.encode_prompt(&msgs).unwrap();
        assert_eq!(prompt.as_slice(), &row.ids[..row.response_start]);
        // Decoding stops at EOS and skips specials.
        let mut out = row.ids[21..].to_vec();
        out.extend([u32::from(b'z') + 3, 0, 0]);
        assert_eq!(TextCodec::Bytes.decode(&out).unwrap(), "yo");
        assert_eq!(TextCodec::Bytes.decode(&[1, 0, 259, 300]).unwrap(), "");
    }

    #[test]
    fn truncation_keeps_bos_the_prompt_end_and_the_last_reply_token() {
        let row = EncodedRow {
            ids: vec![1, 10, 11, 12, 13, 20, 21, 2],
            response_start: 5,
        };
        assert_eq!(truncate_row(&row, 8, Some(1)), row.ids);
        assert_eq!(truncate_row(&row, 6, Some(1)), vec![1, 12, 13, 20, 21, 2]);
        assert_eq!(truncate_row(&row, 4, Some(1)), vec![1, 20, 21, 2]);
        assert_eq!(truncate_row(&row, 3, Some(1)), vec![1, 20, 2]);
        assert_eq!(truncate_row(&row, 3, None), vec![20, 21, 2]);
        assert_eq!(truncate_prompt(&[1, 5, 6, 7], 3, Some(1)), vec![1, 6, 7]);
        assert_eq!(truncate_prompt(&[5, 6, 7], 2, Some(1)), vec![6, 7]);
        assert_eq!(truncate_prompt(&[1, 5, 6, 7, 8], 3, Some(1)), vec![1, 7, 8]);
        assert_eq!(truncate_prompt(&[5, 6, 7, 8], 3, Some(1)), vec![6, 7, 8]);
        assert_eq!(truncate_prompt(&[5, 6], 3, Some(1)), vec![5, 6]);
    }
}
