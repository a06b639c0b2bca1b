//! Importer for OASST-style ranked replies (`instruction`, `input`, `output: [best first]`, `history`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::import::base::{Ctx, ImportOptions, json_error, required};
use crate::import::source::{RecordError, for_each_record};
use crate::report::{DropReason, ImportReport};
use crate::schema::{Comparison, Message, Role};
use crate::sink::ComparisonSink;

/// Which pairs a ranked record yields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RankedPairs {
    /// Best vs second best only: one pair per record.
    #[default]
    TopTwo,
    /// Every ordered pair `(i, j)` with `i` ranked above `j`: `n(n-1)/2` pairs per record.
    AllPairs,
}

#[derive(Deserialize)]
struct OasstRecord {
    #[serde(default)]
    instruction: Option<String>,
    #[serde(default)]
    input: Option<String>,
    #[serde(default)]
    output: Option<Vec<String>>,
    #[serde(default)]
    history: Option<Vec<Vec<String>>>,
}

/// Imports ranked replies from `path`: one JSON array of records, or JSON Lines (gzip allowed).
///
/// Each record is `{instruction, input, output: [replies, best first], history: [[user,
/// assistant], ...]}`. The prompt is `instruction`, followed by `input` after a blank line
/// when `input` is not empty; `history` becomes alternating user/assistant messages. `pairs`
/// chooses top-1 vs top-2 or all ranked pairs; `margin` is the rank gap `j - i`. A record
/// with fewer than two replies is dropped as `too_few_responses`. Pairs with identical replies
/// are dropped as `tie` when [`ImportOptions::drop_ties`] is set.
///
/// Defaults: `source = "oasst"`, no language, ids `<source>:<line>:<i>-<j>` (0-based ranks).
///
/// # Errors
/// As for [`import_hh_rlhf`](crate::import_hh_rlhf).
pub fn import_oasst(
    path: impl AsRef<Path>,
    opts: &ImportOptions,
    pairs: RankedPairs,
    sink: &mut (impl ComparisonSink + ?Sized),
) -> Result<ImportReport> {
    let path = path.as_ref();
    let mut ctx = Ctx::new(path, opts, "oasst", None);
    for_each_record(path, |line, rec| {
        ctx.report.records += 1;
        let parsed = rec.and_then(|text| {
            let r: OasstRecord = serde_json::from_str(text).map_err(|e| json_error(&e))?;
            let instruction = required(r.instruction, "instruction")?;
            let outputs = required(r.output, "output")?;
            let mut history = Vec::new();
            for (k, turn) in r.history.unwrap_or_default().into_iter().enumerate() {
                let [user, assistant]: [String; 2] =
                    turn.try_into().map_err(|t: Vec<String>| {
                        RecordError::new(
                            DropReason::InvalidValue,
                            format!(
                                "history[{k}] has {} strings, expected [user, assistant]",
                                t.len()
                            ),
                        )
                    })?;
                history.push(Message::new(Role::User, user));
                history.push(Message::new(Role::Assistant, assistant));
            }
            let prompt = match r.input.as_deref().map(str::trim) {
                Some(input) if !input.is_empty() => format!("{instruction}\n\n{input}"),
                _ => instruction,
            };
            Ok((history, prompt, outputs))
        });
        let (history, prompt, outputs) = match parsed {
            Ok(p) => p,
            Err(e) => return ctx.bad(line, e),
        };
        if outputs.len() < 2 {
            ctx.skip(
                line,
                RecordError::new(
                    DropReason::TooFewResponses,
                    format!("{} ranked repl(ies); a pair needs two", outputs.len()),
                ),
            );
            return Ok(());
        }
        let index_pairs: Vec<(usize, usize)> = match pairs {
            RankedPairs::TopTwo => vec![(0, 1)],
            RankedPairs::AllPairs => (0..outputs.len())
                .flat_map(|i| (i + 1..outputs.len()).map(move |j| (i, j)))
                .collect(),
        };
        for (i, j) in index_pairs {
            let mut c = Comparison::new(
                format!("{}:{line}:{i}-{j}", ctx.source),
                &ctx.source,
                prompt.clone(),
                outputs[i].clone(),
                outputs[j].clone(),
            );
            c.history = history.clone();
            c.margin = Some((j - i) as f32);
            ctx.emit(line, c, sink)?;
        }
        Ok(())
    })?;
    Ok(ctx.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str, pairs: RankedPairs) -> (Vec<Comparison>, ImportReport) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.json");
        std::fs::write(&path, text).unwrap();
        let mut out = Vec::new();
        let rep = import_oasst(&path, &ImportOptions::default(), pairs, &mut out).unwrap();
        (out, rep)
    }

    const DATA: &str = r#"[
  {"instruction": "问", "input": "", "output": ["a", "b", "c"], "history": [["早", "早上好"]]},
  {"instruction": "x", "input": "more", "output": ["same", " same "], "history": []},
  {"instruction": "y", "input": "", "output": ["only"], "history": []},
  {"instruction": "z", "input": "", "history": []}
]"#;

    #[test]
    fn top_two_pairs_with_history_ties_and_bad_records() {
        let (out, rep) = run(DATA, RankedPairs::TopTwo);
        assert_eq!(rep.records, 4);
        assert_eq!(rep.generated, 2);
        assert_eq!(rep.kept, 1);
        assert_eq!(rep.dropped_for(DropReason::Tie), 1);
        assert_eq!(rep.dropped_for(DropReason::TooFewResponses), 1);
        assert_eq!(rep.dropped_for(DropReason::MissingField), 1);
        assert_eq!(
            rep.issues
                .iter()
                .find(|i| i.reason == DropReason::MissingField)
                .unwrap()
                .line,
            5
        );
        let c = &out[0];
        assert_eq!(
            (c.prompt.as_str(), c.chosen.as_str(), c.rejected.as_str()),
            ("问", "a", "b")
        );
        assert_eq!(c.history.len(), 2);
        assert_eq!(c.history[1], Message::new(Role::Assistant, "早上好"));
        assert_eq!(c.id, "oasst:2:0-1");
        assert_eq!(c.margin, Some(1.0));
    }

    #[test]
    fn all_pairs_and_input_concatenation() {
        let (out, rep) = run(DATA, RankedPairs::AllPairs);
        assert_eq!(rep.generated, 3 + 1);
        let ids: Vec<_> = out.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["oasst:2:0-1", "oasst:2:0-2", "oasst:2:1-2"]);
        assert_eq!(out[2].margin, Some(1.0));
        assert_eq!(out[1].margin, Some(2.0));

        let (out, _) = run(
            r#"{"instruction": "x", "input": "more", "output": ["p", "q"]}"#,
            RankedPairs::TopTwo,
        );
        assert_eq!(out[0].prompt, "x\n\nmore");
        assert!(out[0].history.is_empty());
    }

    #[test]
    fn malformed_history_is_an_invalid_value() {
        let (out, rep) = run(
            r#"[{"instruction": "x", "output": ["p", "q"], "history": [["only user"]]}]"#,
            RankedPairs::TopTwo,
        );
        assert!(out.is_empty());
        assert_eq!(rep.dropped_for(DropReason::InvalidValue), 1);
    }
}
