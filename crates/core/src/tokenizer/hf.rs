//! The HF tokenizer (`tokenizer.json` + `tokenizer_config.json`) and conversation encoding with
//! trainable masks.

use std::path::Path;

use serde_json::Value;

use super::chat::{ChatTemplate, Message, Role};
use crate::error::{CoreError, Result};

/// A tokenizer with its special tokens and (optionally) its chat template.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    bos: Option<(String, u32)>,
    eos: Option<(String, u32)>,
    pad: Option<(String, u32)>,
    template: Option<ChatTemplate>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("pad", &self.pad)
            .field("chat_template", &self.template.is_some())
            .finish()
    }
}

/// Token ids of a conversation and which of them a trainer learns from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedChat {
    /// All tokens of the rendered conversation.
    pub ids: Vec<u32>,
    /// `true` for tokens of assistant turns (including their end-of-turn markers).
    pub trainable: Vec<bool>,
}

impl EncodedChat {
    /// Index of the first trainable token (the prompt length for a single reply).
    pub fn first_trainable(&self) -> Option<usize> {
        self.trainable.iter().position(|&t| t)
    }
}

fn special_from_config(cfg: &Value, key: &str) -> Option<String> {
    match cfg.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

fn tok_err(e: impl std::fmt::Display) -> CoreError {
    CoreError::Tokenizer(e.to_string())
}

impl Tokenizer {
    /// Loads `dir/tokenizer.json` and, when present, `dir/tokenizer_config.json` (special tokens,
    /// `chat_template`, either a string or a list of named templates where `default` wins).
    ///
    /// # Errors
    /// IO/JSON errors naming the file; [`CoreError::ChatTemplate`] if the template fails to compile.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        let bytes = std::fs::read(&path).map_err(|e| CoreError::io(&path, e))?;
        let inner = tokenizers::Tokenizer::from_bytes(&bytes)
            .map_err(|e| CoreError::Tokenizer(format!("{}: {e}", path.display())))?;
        let cfg_path = dir.join("tokenizer_config.json");
        let cfg: Value = if cfg_path.exists() {
            let text =
                std::fs::read_to_string(&cfg_path).map_err(|e| CoreError::io(&cfg_path, e))?;
            serde_json::from_str(&text).map_err(|e| CoreError::Json {
                path: cfg_path.clone(),
                message: e.to_string(),
            })?
        } else {
            Value::Null
        };
        let template = match cfg.get("chat_template") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Array(list)) => list
                .iter()
                .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
                .or_else(|| list.first())
                .and_then(|t| t.get("template"))
                .and_then(Value::as_str)
                .map(str::to_string),
            _ => None,
        };
        let mut tok = Tokenizer::from_tokenizer(inner);
        let set = |key: &str| -> Option<(String, u32)> {
            let s = special_from_config(&cfg, key)?;
            let id = tok.inner.token_to_id(&s)?;
            Some((s, id))
        };
        let (bos, eos, pad) = (set("bos_token"), set("eos_token"), set("pad_token"));
        if bos.is_some() {
            tok.bos = bos;
        }
        if eos.is_some() {
            tok.eos = eos;
        }
        if pad.is_some() {
            tok.pad = pad;
        }
        if let Some(src) = template {
            tok.set_chat_template(&src)?;
        }
        Ok(tok)
    }

    /// Wraps a `tokenizers` tokenizer; special tokens are guessed from common names
    /// (`<s>`/`</s>`, `<|begin_of_text|>`, `<|endoftext|>`, `<pad>`, …) until set explicitly.
    pub fn from_tokenizer(inner: tokenizers::Tokenizer) -> Self {
        let find = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| inner.token_to_id(n).map(|id| (n.to_string(), id)))
        };
        let bos = find(&["<s>", "<|begin_of_text|>", "<bos>", "<|bos|>"]);
        let eos = find(&[
            "</s>",
            "<|eot_id|>",
            "<|im_end|>",
            "<|endoftext|>",
            "<eos>",
            "<|eos|>",
        ]);
        let pad = find(&["<pad>", "<|pad|>", "<|endoftext|>"]);
        Tokenizer {
            inner,
            bos,
            eos,
            pad,
            template: None,
        }
    }

    /// Compiles and installs a chat template.
    ///
    /// # Errors
    /// [`CoreError::ChatTemplate`].
    pub fn set_chat_template(&mut self, source: &str) -> Result<()> {
        let bos = self.bos.as_ref().map_or("", |b| b.0.as_str());
        let eos = self.eos.as_ref().map_or("", |b| b.0.as_str());
        self.template = Some(ChatTemplate::new(source, bos, eos)?);
        Ok(())
    }

    /// Sets the special tokens by name (each must be in the vocabulary).
    ///
    /// # Errors
    /// [`CoreError::Tokenizer`] naming a token that is not in the vocabulary.
    pub fn set_special_tokens(
        &mut self,
        bos: Option<&str>,
        eos: Option<&str>,
        pad: Option<&str>,
    ) -> Result<()> {
        let look = |t: &str| {
            self.inner
                .token_to_id(t)
                .map(|id| (t.to_string(), id))
                .ok_or_else(|| {
                    CoreError::Tokenizer(format!("special token `{t}` is not in the vocabulary"))
                })
        };
        self.bos = bos.map(look).transpose()?;
        self.eos = eos.map(look).transpose()?;
        self.pad = pad.map(look).transpose()?;
        Ok(())
    }

    /// The underlying `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// BOS id.
    pub fn bos_id(&self) -> Option<u32> {
        self.bos.as_ref().map(|b| b.1)
    }

    /// EOS id.
    pub fn eos_id(&self) -> Option<u32> {
        self.eos.as_ref().map(|b| b.1)
    }

    /// Padding id (falls back to EOS, as most chat models do).
    pub fn pad_id(&self) -> Option<u32> {
        self.pad.as_ref().map(|b| b.1).or(self.eos_id())
    }

    /// Id of a token string.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Whether a chat template is installed.
    pub fn has_chat_template(&self) -> bool {
        self.template.is_some()
    }

    /// Encodes plain text (with the tokenizer's post-processor specials when `add_special_tokens`).
    ///
    /// # Errors
    /// [`CoreError::Tokenizer`].
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        Ok(self
            .inner
            .encode(text, add_special_tokens)
            .map_err(tok_err)?
            .get_ids()
            .to_vec())
    }

    /// Decodes ids to text.
    ///
    /// # Errors
    /// [`CoreError::Tokenizer`].
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.inner.decode(ids, skip_special_tokens).map_err(tok_err)
    }

    /// Renders `messages` with the chat template.
    ///
    /// # Errors
    /// [`CoreError::ChatTemplate`], also when the tokenizer has no template.
    pub fn apply_chat_template(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String> {
        self.template
            .as_ref()
            .ok_or_else(|| CoreError::ChatTemplate("the tokenizer has no chat_template".into()))?
            .render(messages, add_generation_prompt)
    }

    /// Tokens of a prompt, rendered up to where the assistant's reply starts.
    ///
    /// The rendered text already holds the template's BOS, so no second BOS is added.
    ///
    /// # Errors
    /// As [`Tokenizer::apply_chat_template`].
    pub fn encode_prompt(&self, messages: &[Message]) -> Result<Vec<u32>> {
        let text = self.apply_chat_template(messages, true)?;
        self.encode(&text, false)
    }

    /// Encodes a whole conversation and marks the tokens of its assistant turns trainable.
    ///
    /// Each assistant turn's span is found by rendering the conversation up to that turn with the
    /// generation prompt and up to its end; the rendered text is tokenised once and a token is
    /// trainable when it starts inside an assistant span. When the conversation ends on an
    /// assistant turn whose tokens hold no EOS (templates such as GLM-4's end turns with the next
    /// role tag), `append_eos` adds one so the model learns to stop.
    ///
    /// # Errors
    /// [`CoreError::ChatTemplate`] when a prefix of the conversation does not render as a prefix
    /// of the whole (the template is not incremental), and tokenizer errors.
    pub fn encode_chat(&self, messages: &[Message], append_eos: bool) -> Result<EncodedChat> {
        let full = self.apply_chat_template(messages, false)?;
        let mut spans = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            if m.role != Role::Assistant {
                continue;
            }
            let before = self.apply_chat_template(&messages[..i], true)?;
            let upto = self.apply_chat_template(&messages[..=i], false)?;
            if !full.starts_with(&upto) || !upto.starts_with(&before) {
                return Err(CoreError::ChatTemplate(format!(
                    "the template does not render turn {i} as a prefix of the conversation; \
                     cannot locate the assistant tokens"
                )));
            }
            spans.push((before.len(), upto.len()));
        }
        let enc = self.inner.encode(full.as_str(), false).map_err(tok_err)?;
        let mut ids = enc.get_ids().to_vec();
        let mut trainable: Vec<bool> = enc
            .get_offsets()
            .iter()
            .map(|&(s, e)| {
                spans
                    .iter()
                    .any(|&(a, b)| s >= a && s < b || (s == e && s > a && s <= b))
            })
            .collect();
        if append_eos
            && messages.last().is_some_and(|m| m.role == Role::Assistant)
            && let Some(eos) = self.eos_id()
            && ids.last() != Some(&eos)
        {
            let tail_has_eos = ids
                .iter()
                .zip(&trainable)
                .rev()
                .take_while(|(_, t)| **t)
                .any(|(id, _)| *id == eos);
            if !tail_has_eos {
                ids.push(eos);
                trainable.push(true);
            }
        }
        Ok(EncodedChat { ids, trainable })
    }

    /// Encodes a prompt conversation and one reply: `[prompt tokens | reply tokens]` with the
    /// reply (and only it) trainable.
    ///
    /// # Errors
    /// As [`Tokenizer::encode_chat`].
    pub fn encode_prompt_response(
        &self,
        prompt: &[Message],
        response: &str,
    ) -> Result<EncodedChat> {
        let mut msgs = prompt.to_vec();
        msgs.push(Message::assistant(response));
        let enc = self.encode_chat(&msgs, true)?;
        // Only the last assistant turn is the response; earlier ones are history.
        let last_start = {
            let before = self.apply_chat_template(prompt, true)?;
            let e = self.inner.encode(before.as_str(), false).map_err(tok_err)?;
            e.get_ids().len()
        };
        let trainable = enc
            .trainable
            .iter()
            .enumerate()
            .map(|(i, &t)| t && i >= last_start.saturating_sub(1))
            .collect();
        Ok(EncodedChat {
            ids: enc.ids,
            trainable,
        })
    }

    /// Saves `tokenizer.json` and a `tokenizer_config.json` holding the special tokens and the
    /// chat template (atomic writes).
    ///
    /// # Errors
    /// IO errors naming the file.
    pub fn save_dir(&self, dir: &Path, chat_template: Option<&str>) -> Result<()> {
        let json = self.inner.to_string(true).map_err(tok_err)?;
        crate::io::write_atomic(&dir.join("tokenizer.json"), json.as_bytes())?;
        let mut cfg = serde_json::Map::new();
        if let Some((s, _)) = &self.bos {
            cfg.insert("bos_token".into(), Value::String(s.clone()));
        }
        if let Some((s, _)) = &self.eos {
            cfg.insert("eos_token".into(), Value::String(s.clone()));
        }
        if let Some((s, _)) = &self.pad {
            cfg.insert("pad_token".into(), Value::String(s.clone()));
        }
        if let Some(t) = chat_template {
            cfg.insert("chat_template".into(), Value::String(t.to_string()));
        }
        cfg.insert(
            "tokenizer_class".into(),
            Value::String("PreTrainedTokenizerFast".into()),
        );
        let text = serde_json::to_string_pretty(&Value::Object(cfg)).expect("serialisable");
        crate::io::write_atomic(&dir.join("tokenizer_config.json"), text.as_bytes())
    }
}
