//! TRL-style preference JSON Lines: import (string and message-list forms) and export.

use std::borrow::Cow;
use std::fmt;
use std::io::{BufWriter, Write};
use std::path::Path;

use rlhf_util::AtomicFile;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::import::base::{Ctx, ImportOptions, json_error};
use crate::import::source::{RecordError, for_each_record};
use crate::report::{DropReason, ImportReport};
use crate::schema::{Comparison, Message, Role};
use crate::sink::ComparisonSink;

#[derive(Deserialize)]
struct RawMessage<'a> {
    #[serde(borrow)]
    role: Cow<'a, str>,
    #[serde(borrow)]
    content: Cow<'a, str>,
}

/// A TRL field: plain text or a list of `{role, content}` messages.
enum TextOrMessages<'a> {
    Text(Cow<'a, str>),
    Messages(Vec<RawMessage<'a>>),
}

impl<'de: 'a, 'a> Deserialize<'de> for TextOrMessages<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = TextOrMessages<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of {role, content} messages")
            }
            fn visit_borrowed_str<E: de::Error>(
                self,
                v: &'de str,
            ) -> std::result::Result<Self::Value, E> {
                Ok(TextOrMessages::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
                Ok(TextOrMessages::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> std::result::Result<Self::Value, E> {
                Ok(TextOrMessages::Text(Cow::Owned(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(2));
                while let Some(m) = seq.next_element::<RawMessage<'a>>()? {
                    v.push(m);
                }
                Ok(TextOrMessages::Messages(v))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct TrlLine<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    prompt: Option<TextOrMessages<'a>>,
    #[serde(borrow, default)]
    chosen: Option<TextOrMessages<'a>>,
    #[serde(borrow, default)]
    rejected: Option<TextOrMessages<'a>>,
    #[serde(borrow, default)]
    category: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    language: Option<Cow<'a, str>>,
    #[serde(default)]
    margin: Option<f32>,
}

fn invalid(msg: impl Into<String>) -> RecordError {
    RecordError::new(DropReason::InvalidValue, msg)
}

fn missing(name: &str) -> RecordError {
    RecordError::new(DropReason::MissingField, format!("missing field `{name}`"))
}

fn to_messages(raw: Vec<RawMessage<'_>>) -> std::result::Result<Vec<Message>, RecordError> {
    raw.into_iter()
        .map(|m| {
            let role = m
                .role
                .parse::<Role>()
                .map_err(|_| invalid(format!("unknown role {:?}", m.role)))?;
            Ok(Message::new(role, m.content))
        })
        .collect()
}

/// The one assistant message of a `chosen` / `rejected` completion.
fn completion(field: &str, v: TextOrMessages<'_>) -> std::result::Result<String, RecordError> {
    match v {
        TextOrMessages::Text(t) => Ok(t.into_owned()),
        TextOrMessages::Messages(m) => {
            let mut m = to_messages(m)?;
            match (m.len(), m.first().map(|x| x.role)) {
                (1, Some(Role::Assistant)) => Ok(m.remove(0).content),
                (n, _) => Err(invalid(format!(
                    "`{field}` must hold exactly one assistant message, found {n} message(s)"
                ))),
            }
        }
    }
}

/// Splits prompt messages into (history, prompt): the last message must be the user's.
fn split_prompt(
    mut msgs: Vec<Message>,
) -> std::result::Result<(Vec<Message>, String), RecordError> {
    match msgs.pop() {
        Some(last) if last.role == Role::User => Ok((msgs, last.content)),
        Some(last) => Err(invalid(format!(
            "the prompt must end with a user message, not {}",
            last.role
        ))),
        None => Err(invalid("the prompt message list is empty")),
    }
}

type Parsed = (Vec<Message>, String, String, String);

fn parse_line(l: TrlLine<'_>) -> std::result::Result<Parsed, RecordError> {
    let chosen = l.chosen.ok_or_else(|| missing("chosen"))?;
    let rejected = l.rejected.ok_or_else(|| missing("rejected"))?;
    match l.prompt {
        Some(TextOrMessages::Text(p)) => Ok((
            Vec::new(),
            p.into_owned(),
            completion("chosen", chosen)?,
            completion("rejected", rejected)?,
        )),
        Some(TextOrMessages::Messages(p)) => {
            let (history, prompt) = split_prompt(to_messages(p)?)?;
            Ok((
                history,
                prompt,
                completion("chosen", chosen)?,
                completion("rejected", rejected)?,
            ))
        }
        None => {
            // Implicit prompt: the shared leading messages of `chosen` and `rejected`.
            let (TextOrMessages::Messages(c), TextOrMessages::Messages(r)) = (chosen, rejected)
            else {
                return Err(missing("prompt"));
            };
            let mut c = to_messages(c)?;
            let mut r = to_messages(r)?;
            let shared = c.iter().zip(&r).take_while(|(a, b)| a == b).count();
            // Identical conversations share everything but still need a reply each.
            let shared = if shared == c.len() || shared == r.len() {
                shared.saturating_sub(1)
            } else {
                shared
            };
            let c_tail = c.split_off(shared);
            let r_tail = r.split_off(shared);
            let one = |field: &str, mut tail: Vec<Message>| match tail.len() {
                1 if tail[0].role == Role::Assistant => Ok(tail.remove(0).content),
                _ => Err(invalid(format!(
                    "implicit prompt: `{field}` must end with exactly one assistant message after the shared prompt"
                ))),
            };
            let chosen = one("chosen", c_tail)?;
            let rejected = one("rejected", r_tail)?;
            let (history, prompt) = split_prompt(c)?;
            Ok((history, prompt, chosen, rejected))
        }
    }
}

/// Imports TRL-style preference JSON Lines from `path` (gzip allowed).
///
/// Accepted per line (TRL's preference formats):
/// - standard: `{"prompt": str, "chosen": str, "rejected": str}`;
/// - conversational: `prompt` a list of `{role, content}` messages ending with a user message
///   (earlier ones become `history`), `chosen` / `rejected` lists of exactly one assistant
///   message (strings are accepted too);
/// - implicit prompt: no `prompt`, `chosen` / `rejected` whole conversations whose shared
///   leading messages are the prompt.
///
/// Optional extra keys `id`, `category`, `language` and `margin` fill those columns (this is
/// what [`export_trl`] writes). Defaults: `source = "trl"`, ids `<source>:<line>`.
///
/// # Errors
/// As for [`import_hh_rlhf`](crate::import_hh_rlhf).
pub fn import_trl(
    path: impl AsRef<Path>,
    opts: &ImportOptions,
    sink: &mut (impl ComparisonSink + ?Sized),
) -> Result<ImportReport> {
    let path = path.as_ref();
    let mut ctx = Ctx::new(path, opts, "trl", None);
    for_each_record(path, |line, rec| {
        ctx.report.records += 1;
        let parsed = rec.and_then(|text| {
            let l: TrlLine<'_> = serde_json::from_str(text).map_err(|e| json_error(&e))?;
            let id = l.id.as_deref().map(str::to_owned);
            let category = l.category.as_deref().map(str::to_owned);
            let language = l.language.as_deref().map(str::to_owned);
            let margin = l.margin;
            let (history, prompt, chosen, rejected) = parse_line(l)?;
            let mut c = Comparison::new(
                id.unwrap_or_else(|| format!("{}:{line}", ctx.source)),
                &ctx.source,
                prompt,
                chosen,
                rejected,
            );
            c.history = history;
            c.category = category;
            c.language = language;
            c.margin = margin;
            Ok(c)
        });
        match parsed {
            Ok(c) => ctx.emit(line, c, sink),
            Err(e) => ctx.bad(line, e),
        }
    })?;
    Ok(ctx.finish())
}

/// Shape of exported TRL records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrlFormat {
    /// `prompt` is a message list (history + the user prompt); `chosen` / `rejected` are
    /// one-message assistant lists. Lossless.
    #[default]
    Conversational,
    /// `prompt`, `chosen`, `rejected` are strings. History, if any, is flattened into the
    /// prompt as an HH-style transcript (`Human: …\n\nAssistant: …\n\nHuman: <prompt>`).
    Standard,
}

#[derive(Serialize)]
struct OutMessage<'a> {
    role: &'a str,
    content: &'a str,
}

#[derive(Serialize)]
#[serde(untagged)]
enum OutField<'a> {
    Text(Cow<'a, str>),
    Messages(Vec<OutMessage<'a>>),
}

#[derive(Serialize)]
struct OutLine<'a> {
    id: &'a str,
    prompt: OutField<'a>,
    chosen: OutField<'a>,
    rejected: OutField<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    category: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    language: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    margin: Option<f32>,
}

fn one_assistant(t: &str) -> Vec<OutMessage<'_>> {
    vec![OutMessage {
        role: "assistant",
        content: t,
    }]
}

fn out_line(c: &Comparison, format: TrlFormat) -> OutLine<'_> {
    let (prompt, chosen, rejected) = match format {
        TrlFormat::Conversational => {
            let mut p: Vec<OutMessage<'_>> = c
                .history
                .iter()
                .map(|m| OutMessage {
                    role: m.role.as_str(),
                    content: &m.content,
                })
                .collect();
            p.push(OutMessage {
                role: "user",
                content: &c.prompt,
            });
            (
                OutField::Messages(p),
                OutField::Messages(one_assistant(&c.chosen)),
                OutField::Messages(one_assistant(&c.rejected)),
            )
        }
        TrlFormat::Standard => {
            let prompt = if c.history.is_empty() {
                Cow::Borrowed(c.prompt.as_str())
            } else {
                let mut s = String::new();
                for m in &c.history {
                    let who = match m.role {
                        Role::System => "System",
                        Role::User => "Human",
                        Role::Assistant => "Assistant",
                    };
                    s.push_str(&format!("{who}: {}\n\n", m.content));
                }
                s.push_str(&format!("Human: {}", c.prompt));
                Cow::Owned(s)
            };
            (
                OutField::Text(prompt),
                OutField::Text(Cow::Borrowed(&c.chosen)),
                OutField::Text(Cow::Borrowed(&c.rejected)),
            )
        }
    };
    OutLine {
        id: &c.id,
        prompt,
        chosen,
        rejected,
        category: c.category.as_deref(),
        language: c.language.as_deref(),
        margin: c.margin,
    }
}

/// Writes `rows` as TRL-style JSON Lines to `path` (atomically: temp file + rename).
/// Returns the number of lines written. Written through [`rlhf_util::AtomicFile`]: a new file
/// gets mode 0644, a replaced file keeps its mode.
///
/// # Errors
/// [`Error::Io`] on write failure; [`Error::Json`] never in practice.
pub fn export_trl<'a>(
    path: impl AsRef<Path>,
    rows: impl IntoIterator<Item = &'a Comparison>,
    format: TrlFormat,
) -> Result<u64> {
    let path = path.as_ref();
    let mut w = BufWriter::new(AtomicFile::create(path)?);
    let mut n = 0u64;
    for c in rows {
        serde_json::to_writer(&mut w, &out_line(c, format))?;
        w.write_all(b"\n").map_err(|e| Error::io(path, e))?;
        n += 1;
    }
    w.into_inner()
        .map_err(|e| Error::io(path, e.into_error()))?
        .commit()?;
    tracing::info!(path = %path.display(), rows = n, "TRL JSONL exported");
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> (Vec<Comparison>, ImportReport) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        std::fs::write(&path, text).unwrap();
        let mut out = Vec::new();
        let rep = import_trl(&path, &ImportOptions::default(), &mut out).unwrap();
        (out, rep)
    }

    #[test]
    fn standard_form_with_escapes() {
        let (out, rep) = run(r#"{"prompt": "q \"x\"", "chosen": "a\n", "rejected": "b"}"#);
        assert_eq!(rep.kept, 1);
        assert_eq!(out[0].prompt, "q \"x\"");
        assert_eq!(out[0].chosen, "a\n");
        assert_eq!(out[0].id, "trl:1");
    }

    #[test]
    fn conversational_form_with_history() {
        let (out, _) = run(
            r#"{"prompt": [{"role": "system", "content": "s"}, {"role": "user", "content": "u1"}, {"role": "assistant", "content": "a1"}, {"role": "user", "content": "u2"}], "chosen": [{"role": "assistant", "content": "c"}], "rejected": [{"role": "assistant", "content": "r"}]}"#,
        );
        let c = &out[0];
        assert_eq!(c.history.len(), 3);
        assert_eq!(c.history[0].role, Role::System);
        assert_eq!(
            (c.prompt.as_str(), c.chosen.as_str(), c.rejected.as_str()),
            ("u2", "c", "r")
        );
    }

    #[test]
    fn implicit_prompt_form() {
        let (out, rep) = run(
            r#"{"chosen": [{"role": "user", "content": "u1"}, {"role": "assistant", "content": "a1"}, {"role": "user", "content": "u2"}, {"role": "assistant", "content": "good"}], "rejected": [{"role": "user", "content": "u1"}, {"role": "assistant", "content": "a1"}, {"role": "user", "content": "u2"}, {"role": "assistant", "content": "bad"}]}"#,
        );
        assert_eq!(rep.kept, 1, "{rep:?}");
        let c = &out[0];
        assert_eq!(c.history.len(), 2);
        assert_eq!(
            (c.prompt.as_str(), c.chosen.as_str(), c.rejected.as_str()),
            ("u2", "good", "bad")
        );
    }

    #[test]
    fn bad_shapes_are_reported() {
        let text = [
            r#"{"prompt": "p", "chosen": "c"}"#,
            r#"{"prompt": 3, "chosen": "c", "rejected": "r"}"#,
            r#"{"prompt": [{"role": "assistant", "content": "x"}], "chosen": "c", "rejected": "r"}"#,
            r#"{"prompt": "p", "chosen": [{"role": "user", "content": "x"}], "rejected": "r"}"#,
            r#"{"chosen": "c", "rejected": "r"}"#,
            r#"{"prompt": "p", "chosen": "c", "rejected": "r""#,
            r#"{"prompt": [{"role": "wizard", "content": "x"}], "chosen": "c", "rejected": "r"}"#,
        ]
        .join("\n");
        let (out, rep) = run(&text);
        assert!(out.is_empty());
        assert_eq!(rep.records, 7);
        assert_eq!(rep.dropped_for(DropReason::MissingField), 2);
        assert_eq!(rep.dropped_for(DropReason::InvalidValue), 4);
        assert_eq!(rep.dropped_for(DropReason::InvalidJson), 1);
        let lines: Vec<u64> = rep.issues.iter().map(|i| i.line).collect();
        assert_eq!(lines, [1, 2, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn export_then_import_round_trips_in_both_formats() {
        let dir = tempfile::tempdir().unwrap();
        let mut multi = Comparison::new("m", "trl", "u2", "c", "r");
        multi.history = vec![
            Message::new(Role::User, "u1"),
            Message::new(Role::Assistant, "a1"),
        ];
        multi.category = Some("cat".into());
        multi.margin = Some(2.0);
        let single = Comparison::new("s", "trl", "p", "c\n\"quoted\"", "r");
        let rows = vec![multi.clone(), single.clone()];

        let path = dir.path().join("conv.jsonl");
        assert_eq!(
            export_trl(&path, &rows, TrlFormat::Conversational).unwrap(),
            2
        );
        let mut back = Vec::new();
        import_trl(&path, &ImportOptions::default(), &mut back).unwrap();
        assert_eq!(back, rows);

        let path = dir.path().join("std.jsonl");
        export_trl(&path, &rows, TrlFormat::Standard).unwrap();
        let mut back = Vec::new();
        import_trl(&path, &ImportOptions::default(), &mut back).unwrap();
        assert_eq!(back[1], single);
        assert!(back[0].history.is_empty());
        assert_eq!(back[0].prompt, "Human: u1\n\nAssistant: a1\n\nHuman: u2");
    }
}
