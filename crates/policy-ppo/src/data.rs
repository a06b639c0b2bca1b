//! PPO's inputs: RL prompts and the SFT (prompt, response) pairs of the NTP regulariser, read
//! from JSON lines or an `rlhf-prefdata` Parquet file, and encoded to token ids with the same
//! rules as the reward model (`rlhf_reward::TextEncoder`), so the reward model sees
//! `prompt ++ response` exactly as it was trained on.
//!
//! - Prompts: `{"id"?, "category"?, "prompt": "text" | [{"role", "content"}, ...]}` per line;
//!   from Parquet, the distinct conversations (history + prompt) of the preference rows.
//! - SFT pairs: `{"prompt": "text" | [messages], "response": "text"}` per line; from Parquet,
//!   each preference row's prompt and *chosen* reply.

use std::collections::HashSet;
use std::io::BufRead;
use std::path::Path;

use rlhf_core::TokenBatch;
use rlhf_core::tokenizer::Message;
use rlhf_reward::{EncodedRow, TextEncoder, plain_prompt, read_pairs, truncate_row};
use serde::Deserialize;

use crate::error::{PpoError, Result};

/// One RL prompt (a conversation ending with the user turn to answer).
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    /// A stable id (the reference-reward cache and the filter report name prompts by it).
    pub id: String,
    /// The conversation.
    pub messages: Vec<Message>,
}

/// One SFT example for the NTP regulariser.
#[derive(Debug, Clone, PartialEq)]
pub struct SftExample {
    /// The conversation before the reply.
    pub prompt: Vec<Message>,
    /// The reference reply.
    pub response: String,
}

/// A prompt as token ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedPrompt {
    /// The prompt's id.
    pub id: String,
    /// Token ids (at most `max_prompt_length`).
    pub ids: Vec<u32>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawPrompt {
    Text(String),
    Messages(Vec<Message>),
}

impl RawPrompt {
    fn into_messages(self) -> Vec<Message> {
        match self {
            RawPrompt::Text(t) => vec![Message::user(t)],
            RawPrompt::Messages(m) => m,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PromptLine {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    category: Option<String>,
    prompt: RawPrompt,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SftLine {
    prompt: RawPrompt,
    response: String,
}

fn is_parquet(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "parquet")
}

fn jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<(usize, T)>> {
    let file = std::fs::File::open(path).map_err(|e| PpoError::io(path, e))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| PpoError::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let v = serde_json::from_str(&line).map_err(|e| PpoError::Json {
            path: path.to_path_buf(),
            message: format!("line {}: {e}", i + 1),
        })?;
        out.push((i + 1, v));
    }
    Ok(out)
}

/// Reads RL prompts (see the module docs). Duplicate conversations in Parquet input are read
/// once; ids must be unique.
///
/// # Errors
/// IO and format errors naming the file and line; [`PpoError::Data`] for an empty file, an
/// empty conversation or a duplicate id.
pub fn read_prompts(path: &Path) -> Result<Vec<Prompt>> {
    let prompts: Vec<Prompt> = if is_parquet(path) {
        let mut seen = HashSet::new();
        read_pairs(path, None)?
            .into_iter()
            .filter(|p| seen.insert(serde_json::to_string(&p.prompt).expect("serialisable")))
            .map(|p| Prompt {
                id: p.id,
                messages: p.prompt,
            })
            .collect()
    } else {
        jsonl::<PromptLine>(path)?
            .into_iter()
            .map(|(line, p)| Prompt {
                id: p.id.unwrap_or_else(|| format!("line-{line}")),
                messages: p.prompt.into_messages(),
            })
            .collect()
    };
    if prompts.is_empty() {
        return Err(PpoError::Data(format!("{}: no prompts", path.display())));
    }
    let mut ids = HashSet::new();
    for p in &prompts {
        if p.messages.is_empty() {
            return Err(PpoError::Data(format!(
                "{}: prompt `{}` has no message",
                path.display(),
                p.id
            )));
        }
        if !ids.insert(p.id.as_str()) {
            return Err(PpoError::Data(format!(
                "{}: duplicate prompt id `{}`",
                path.display(),
                p.id
            )));
        }
    }
    Ok(prompts)
}

/// Reads SFT pairs for the NTP regulariser (see the module docs).
///
/// # Errors
/// IO and format errors naming the file and line; [`PpoError::Data`] for an empty file or an
/// empty response.
pub fn read_sft(path: &Path) -> Result<Vec<SftExample>> {
    let out: Vec<SftExample> = if is_parquet(path) {
        read_pairs(path, None)?
            .into_iter()
            .map(|p| SftExample {
                prompt: p.prompt,
                response: p.chosen,
            })
            .collect()
    } else {
        jsonl::<SftLine>(path)?
            .into_iter()
            .map(|(_, s)| SftExample {
                prompt: s.prompt.into_messages(),
                response: s.response,
            })
            .collect()
    };
    if out.is_empty() {
        return Err(PpoError::Data(format!("{}: no SFT pairs", path.display())));
    }
    if let Some(i) = out.iter().position(|s| s.response.is_empty()) {
        return Err(PpoError::Data(format!(
            "{}: SFT pair #{} has an empty response",
            path.display(),
            i + 1
        )));
    }
    Ok(out)
}

/// The ids the policy continues from: the chat template's prompt with the generation header,
/// or (no template / byte-level) BOS + the plain transcript ending in `Assistant: ` — the
/// prompt part of what `TextEncoder::encode` produces for the reward model.
///
/// # Errors
/// Tokenizer and chat-template errors.
pub fn encode_prompt(encoder: &TextEncoder<'_>, messages: &[Message]) -> Result<Vec<u32>> {
    Ok(match encoder {
        TextEncoder::Tokenizer(tok) if tok.has_chat_template() => tok.encode_prompt(messages)?,
        TextEncoder::Tokenizer(tok) => {
            let mut ids: Vec<u32> = tok.bos_id().into_iter().collect();
            ids.extend(tok.encode(&plain_prompt(messages), false)?);
            ids
        }
        TextEncoder::Bytes => {
            let mut ids = vec![1u32];
            ids.extend(plain_prompt(messages).bytes().map(|b| b as u32 + 3));
            ids
        }
    })
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

/// Encodes and truncates every prompt.
///
/// # Errors
/// Tokenizer errors; [`PpoError::Data`] for a prompt that encodes to no token.
pub fn encode_prompts(
    encoder: &TextEncoder<'_>,
    prompts: &[Prompt],
    max_len: usize,
) -> Result<Vec<EncodedPrompt>> {
    prompts
        .iter()
        .map(|p| {
            let ids = encode_prompt(encoder, &p.messages)?;
            if ids.is_empty() {
                return Err(PpoError::Data(format!(
                    "prompt `{}` encodes to nothing",
                    p.id
                )));
            }
            Ok(EncodedPrompt {
                id: p.id.clone(),
                ids: truncate_prompt(&ids, max_len, encoder.bos_id()),
            })
        })
        .collect()
}

/// Encodes SFT pairs as `prompt ++ response (+ EOS)` and truncates them to `max_len` with the
/// reward model's rule (the prompt loses its oldest tokens first); `response_start` is moved
/// with the truncation.
///
/// # Errors
/// Tokenizer errors.
pub fn encode_sft(
    encoder: &TextEncoder<'_>,
    examples: &[SftExample],
    max_len: usize,
) -> Result<Vec<EncodedRow>> {
    examples
        .iter()
        .map(|e| {
            let row = encoder.encode(&e.prompt, &e.response)?;
            let resp = row.ids.len() - row.response_start;
            let ids = truncate_row(&row, max_len, encoder.bos_id());
            let bos = encoder.bos_id();
            let keep_bos = usize::from(
                bos.is_some() && row.ids.first() == bos.as_ref() && row.response_start > 0,
            );
            let response_start = if ids.len() == row.ids.len() {
                row.response_start
            } else if resp + keep_bos <= max_len {
                ids.len() - resp
            } else {
                keep_bos
            };
            Ok(EncodedRow {
                ids,
                response_start,
            })
        })
        .collect()
}

/// A right-padded NTP batch and its target mask (`[rows, seq]`, 1.0 on response tokens: the
/// positions whose token is predicted and counted).
pub fn ntp_batch(rows: &[&EncodedRow], pad_id: u32) -> (TokenBatch, Vec<f32>) {
    let ids: Vec<Vec<u32>> = rows.iter().map(|r| r.ids.clone()).collect();
    let batch = TokenBatch::from_rows(&ids, pad_id, rlhf_core::PadSide::Right);
    let mut target = vec![0.0f32; batch.batch * batch.seq];
    for (r, row) in rows.iter().enumerate() {
        for t in row.response_start..row.ids.len() {
            target[r * batch.seq + t] = 1.0;
        }
    }
    (batch, target)
}

/// Token ids back to text (special tokens skipped; byte ids as UTF-8, lossily).
///
/// # Errors
/// Tokenizer errors.
pub fn decode(encoder: &TextEncoder<'_>, ids: &[u32]) -> Result<String> {
    Ok(match encoder {
        TextEncoder::Tokenizer(tok) => tok.decode(ids, true)?,
        TextEncoder::Bytes => {
            let bytes: Vec<u8> = ids
                .iter()
                .filter(|&&i| (3..259).contains(&i))
                .map(|&i| (i - 3) as u8)
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_prompts_match_the_reward_models_rows() {
        let enc = TextEncoder::Bytes;
        let msgs = vec![Message::user("hi")];
        let p = encode_prompt(&enc, &msgs).unwrap();
        let full = enc.encode(&msgs, "yo").unwrap();
        assert_eq!(&full.ids[..full.response_start], p.as_slice());
        assert_eq!(
            decode(&enc, &full.ids[full.response_start..]).unwrap(),
            "yo"
        );
    }

    #[test]
    fn prompt_truncation_keeps_bos_and_the_end() {
        assert_eq!(truncate_prompt(&[1, 5, 6, 7, 8], 3, Some(1)), vec![1, 7, 8]);
        assert_eq!(truncate_prompt(&[5, 6, 7, 8], 3, Some(1)), vec![6, 7, 8]);
        assert_eq!(truncate_prompt(&[5, 6], 3, Some(1)), vec![5, 6]);
    }

    #[test]
    fn sft_rows_mark_the_response_after_truncation() {
        let enc = TextEncoder::Bytes;
        let ex = SftExample {
            prompt: vec![Message::user("a long question here")],
            response: "ok".into(),
        };
        let full = encode_sft(&enc, std::slice::from_ref(&ex), 512)
            .unwrap()
            .remove(0);
        assert_eq!(full.ids.len() - full.response_start, 3); // "ok" + EOS
        let cut = encode_sft(&enc, &[ex], 8).unwrap().remove(0);
        assert_eq!(cut.ids.len(), 8);
        assert_eq!(cut.ids[0], 1);
        assert_eq!(
            &cut.ids[cut.response_start..],
            &full.ids[full.response_start..]
        );
        let (batch, target) = ntp_batch(&[&cut, &full], 0);
        assert_eq!(target[..8].iter().sum::<f32>(), 3.0);
        assert_eq!(batch.batch, 2);
    }
}
