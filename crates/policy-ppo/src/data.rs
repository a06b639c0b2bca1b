//! PPO's inputs: RL prompts and the SFT (prompt, response) pairs of the NTP regulariser, read
//! from JSON lines or an `rlhf-prefdata` Parquet file, and encoded to token ids with the same
//! rules as the reward model (`rlhf_core::text::TextCodec`), so the reward model sees
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
use rlhf_core::text::{EncodedRow, TextCodec, truncate_row};
use rlhf_core::tokenizer::Message;
use rlhf_reward::read_pairs;
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

/// Encodes and truncates every prompt.
///
/// # Errors
/// Tokenizer errors; [`PpoError::Data`] for a prompt that encodes to no token.
pub fn encode_prompts(
    encoder: &TextCodec<'_>,
    prompts: &[Prompt],
    max_len: usize,
) -> Result<Vec<EncodedPrompt>> {
    prompts
        .iter()
        .map(|p| {
            let ids = encoder.encode_prompt(&p.messages)?;
            if ids.is_empty() {
                return Err(PpoError::Data(format!(
                    "prompt `{}` encodes to nothing",
                    p.id
                )));
            }
            Ok(EncodedPrompt {
                id: p.id.clone(),
                ids: rlhf_core::text::truncate_prompt(&ids, max_len, encoder.bos_id()),
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
    encoder: &TextCodec<'_>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sft_rows_mark_the_response_after_truncation() {
        let enc = TextCodec::Bytes;
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
