//! AlignBench question files as a prompt set ([`PromptRecord`]).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::import::base::{Ctx, ImportOptions, json_error, required};
use crate::import::source::{RecordError, for_each_record};
use crate::report::{DropReason, ImportReport};

/// One prompt of a prompt set (no replies): an AlignBench question, or a prompt for PPO rollouts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptRecord {
    /// Id within the set (AlignBench: `question_id` as a string).
    pub id: String,
    /// First-level category (AlignBench: one of 8 Chinese names such as `数学计算`).
    pub category: String,
    /// Second-level category, if any.
    pub subcategory: Option<String>,
    /// The prompt text.
    pub prompt: String,
    /// Reference answer, if any.
    pub reference: Option<String>,
}

#[derive(Deserialize)]
struct AlignBenchLine {
    #[serde(default)]
    question_id: Option<serde_json::Value>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    subcategory: Option<String>,
    #[serde(default)]
    question: Option<String>,
    #[serde(default)]
    reference: Option<String>,
}

/// Reads an AlignBench question file (v1.0 or v1.1 JSON Lines) as prompts.
///
/// Uses `question_id` (number or string), `category`, `subcategory`, `question` and
/// `reference`; other keys (`evidences`, stray nested copies) are ignored. Records missing
/// `question_id`, `category` or `question` are reported and skipped (errors in strict mode).
///
/// # Errors
/// As for [`import_hh_rlhf`](crate::import_hh_rlhf).
pub fn import_alignbench(
    path: impl AsRef<Path>,
    opts: &ImportOptions,
) -> Result<(Vec<PromptRecord>, ImportReport)> {
    let path = path.as_ref();
    let mut ctx = Ctx::new(path, opts, "alignbench", Some("zh"));
    let mut out = Vec::new();
    for_each_record(path, |line, rec| {
        ctx.report.records += 1;
        let parsed = rec.and_then(|text| {
            let l: AlignBenchLine = serde_json::from_str(text).map_err(|e| json_error(&e))?;
            let id = match required(l.question_id, "question_id")? {
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::String(s) => s,
                other => {
                    return Err(RecordError::new(
                        DropReason::InvalidValue,
                        format!("question_id must be a number or a string, got {other}"),
                    ));
                }
            };
            Ok(PromptRecord {
                id,
                category: required(l.category, "category")?,
                subcategory: l.subcategory,
                prompt: required(l.question, "question")?,
                reference: l.reference,
            })
        });
        match parsed {
            Ok(p) => {
                ctx.report.generated += 1;
                ctx.report.kept += 1;
                out.push(p);
                Ok(())
            }
            Err(e) => ctx.bad(line, e),
        }
    })?;
    Ok((out, ctx.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_questions_and_ignores_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        std::fs::write(
            &path,
            concat!(
                r#"{"question_id": 1, "category": "数学计算", "subcategory": "初等数学", "question": "1+1=?", "reference": "2", "evidences": []}"#,
                "\n",
                r#"{"question_id": "q2", "category": "角色扮演", "question": "扮演", "extra": {"nested": 1}}"#,
                "\n",
                r#"{"question_id": 3, "question": "no category"}"#,
                "\n"
            ),
        )
        .unwrap();
        let (prompts, rep) = import_alignbench(&path, &ImportOptions::default()).unwrap();
        assert_eq!(prompts.len(), 2);
        assert_eq!(prompts[0].id, "1");
        assert_eq!(prompts[0].reference.as_deref(), Some("2"));
        assert_eq!(prompts[1].id, "q2");
        assert_eq!(prompts[1].subcategory, None);
        assert_eq!(rep.dropped_for(DropReason::MissingField), 1);
        assert_eq!(rep.issues[0].line, 3);
        assert!(import_alignbench(&path, &ImportOptions::strict()).is_err());
    }
}
