//! Importer for Anthropic HH-RLHF JSON Lines (`chosen` / `rejected` whole dialogues), plain or gzip.

use std::borrow::Cow;
use std::path::Path;

use serde::Deserialize;

use crate::error::Result;
use crate::import::base::{Ctx, ImportOptions, json_error, required};
use crate::import::source::{RecordError, for_each_record};
use crate::report::{DropReason, ImportReport};
use crate::schema::{Comparison, Message, Role};
use crate::sink::ComparisonSink;

const HUMAN: &str = "\n\nHuman:";
const ASSISTANT: &str = "\n\nAssistant:";

#[derive(Deserialize)]
struct HhLine<'a> {
    #[serde(borrow, default)]
    chosen: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    rejected: Option<Cow<'a, str>>,
}

/// Imports HH-RLHF pairs from `path` (JSON Lines, gzip detected automatically).
///
/// Each line holds two whole dialogues, `chosen` and `rejected`, whose turns start with
/// `\n\nHuman: ` and `\n\nAssistant: `. The context is their longest common prefix, cut at its
/// last `\n\nAssistant:`; what follows in each dialogue is the reply (a few replies themselves
/// contain "Human:" or "Assistant:", and stay whole). The context's last human turn becomes
/// `prompt`, earlier turns `history`. Replies and turns are trimmed.
///
/// Defaults: `source = "hh-rlhf"`, `language = "en"`, ids `<source>:<line>`.
///
/// # Errors
/// [`Error::Io`](crate::Error::Io) if the file cannot be read; in strict mode
/// [`Error::BadRecord`](crate::Error::BadRecord) for the first bad line; any error of `sink`.
pub fn import_hh_rlhf(
    path: impl AsRef<Path>,
    opts: &ImportOptions,
    sink: &mut (impl ComparisonSink + ?Sized),
) -> Result<ImportReport> {
    let path = path.as_ref();
    let mut ctx = Ctx::new(path, opts, "hh-rlhf", Some("en"));
    for_each_record(path, |line, rec| {
        ctx.report.records += 1;
        let parsed = rec.and_then(|text| {
            let l: HhLine<'_> = serde_json::from_str(text).map_err(|e| json_error(&e))?;
            let chosen = required(l.chosen, "chosen")?;
            let rejected = required(l.rejected, "rejected")?;
            let (history, prompt, c, r) = split_hh_pair(&chosen, &rejected)
                .map_err(|m| RecordError::new(DropReason::MalformedDialogue, m))?;
            let mut cmp =
                Comparison::new(format!("{}:{line}", ctx.source), &ctx.source, prompt, c, r);
            cmp.history = history;
            Ok(cmp)
        });
        match parsed {
            Ok(c) => ctx.emit(line, c, sink),
            Err(e) => ctx.bad(line, e),
        }
    })?;
    Ok(ctx.finish())
}

/// Splits an HH-RLHF pair into `(history, prompt, chosen reply, rejected reply)`.
fn split_hh_pair(
    chosen: &str,
    rejected: &str,
) -> std::result::Result<(Vec<Message>, String, String, String), String> {
    let mut common = chosen
        .bytes()
        .zip(rejected.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    while !chosen.is_char_boundary(common) {
        common -= 1;
    }
    let cut = chosen[..common]
        .rfind(ASSISTANT)
        .ok_or("the two dialogues share no `\\n\\nAssistant:` turn")?;
    let context = &chosen[..cut];
    let reply_start = cut + ASSISTANT.len();
    let mut turns = split_turns(context)?;
    let last = turns
        .pop()
        .ok_or("the dialogue has no human turn before the reply")?;
    if last.role != Role::User {
        return Err("the turn before the reply is not a human turn".into());
    }
    Ok((
        turns,
        last.content,
        chosen[reply_start..].trim().to_owned(),
        rejected[reply_start..].trim().to_owned(),
    ))
}

/// Splits a transcript into turns at `\n\nHuman:` and `\n\nAssistant:` markers.
fn split_turns(text: &str) -> std::result::Result<Vec<Message>, String> {
    let next_marker = |from: usize| -> Option<(usize, Role, usize)> {
        let h = text[from..]
            .find(HUMAN)
            .map(|i| (from + i, Role::User, HUMAN.len()));
        let a = text[from..]
            .find(ASSISTANT)
            .map(|i| (from + i, Role::Assistant, ASSISTANT.len()));
        match (h, a) {
            (Some(h), Some(a)) => Some(if h.0 < a.0 { h } else { a }),
            (h, a) => h.or(a),
        }
    };
    let Some(mut cur) = next_marker(0) else {
        return Err("no `\\n\\nHuman:` turn found".into());
    };
    if !text[..cur.0].trim().is_empty() {
        return Err("text before the first `\\n\\nHuman:` turn".into());
    }
    let mut turns = Vec::new();
    loop {
        let body_start = cur.0 + cur.2;
        let next = next_marker(body_start);
        let body_end = next.map_or(text.len(), |n| n.0);
        turns.push(Message::new(cur.1, text[body_start..body_end].trim()));
        match next {
            Some(n) => cur = n,
            None => return Ok(turns),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_turn_pair() {
        let (h, p, c, r) = split_hh_pair(
            "\n\nHuman: hi there\n\nAssistant: Hello!",
            "\n\nHuman: hi there\n\nAssistant: Go away.",
        )
        .unwrap();
        assert!(h.is_empty());
        assert_eq!(
            (p.as_str(), c.as_str(), r.as_str()),
            ("hi there", "Hello!", "Go away.")
        );
    }

    #[test]
    fn multi_turn_pair_keeps_history() {
        let base = "\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssistant:";
        let (h, p, c, r) = split_hh_pair(&format!("{base} yes"), &format!("{base} no")).unwrap();
        assert_eq!(
            h,
            vec![
                Message::new(Role::User, "a"),
                Message::new(Role::Assistant, "b")
            ]
        );
        assert_eq!((p.as_str(), c.as_str(), r.as_str()), ("c", "yes", "no"));
    }

    #[test]
    fn replies_sharing_a_prefix_or_containing_markers_stay_whole() {
        // Both replies start alike: the cut is still the last shared `\n\nAssistant:`.
        let base = "\n\nHuman: q\n\nAssistant:";
        let (_, p, c, r) = split_hh_pair(
            &format!("{base} Sure. Step one"),
            &format!("{base} Sure. Never"),
        )
        .unwrap();
        assert_eq!(
            (p.as_str(), c.as_str(), r.as_str()),
            ("q", "Sure. Step one", "Sure. Never")
        );
        // A reply that contains a marker of its own (as 5 HH replies do).
        let (h, p, c, _) = split_hh_pair(
            &format!("{base} No.  Human: why?\n\nAssistant: because"),
            &format!("{base} Yes."),
        )
        .unwrap();
        assert!(h.is_empty());
        assert_eq!(p, "q");
        assert_eq!(c, "No.  Human: why?\n\nAssistant: because");
    }

    #[test]
    fn identical_dialogues_split_at_the_last_reply() {
        let d = "\n\nHuman: q\n\nAssistant: same";
        let (_, p, c, r) = split_hh_pair(d, d).unwrap();
        assert_eq!((p.as_str(), c.as_str(), r.as_str()), ("q", "same", "same"));
    }

    #[test]
    fn malformed_dialogues_are_rejected() {
        assert!(split_hh_pair("hello", "hello there").is_err());
        assert!(
            split_hh_pair(
                "junk\n\nHuman: q\n\nAssistant: a",
                "junk\n\nHuman: q\n\nAssistant: b"
            )
            .is_err()
        );
        assert!(
            split_hh_pair(
                "\n\nHuman: q\n\nAssistant: a\n\nAssistant: b",
                "\n\nHuman: q\n\nAssistant: a\n\nAssistant: c"
            )
            .is_err()
        );
    }

    #[test]
    fn multibyte_text_does_not_split_inside_a_char() {
        let (_, p, c, r) = split_hh_pair(
            "\n\nHuman: 你好\n\nAssistant: 好的",
            "\n\nHuman: 你好\n\nAssistant: 好吗",
        )
        .unwrap();
        assert_eq!(
            (p.as_str(), c.as_str(), r.as_str()),
            ("你好", "好的", "好吗")
        );
    }
}
