//! Candidate pairs (a prompt with two unlabelled responses) and the prompt files they are made
//! from: the Rust types, the Parquet layout, reading and (atomic) writing.
//!
//! A candidate pair is *not* a [`Comparison`](rlhf_prefdata::Comparison): nobody has said which
//! response is better yet, so the responses are stored as `response_a` / `response_b` (the order
//! they were sampled in) and never as chosen/rejected.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead as _, BufReader, Read as _};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, ListArray, StringArray, StringBuilder, StructArray};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use rlhf_prefdata::{Message, PromptQuality, Role};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::util::hex;
use rlhf_util::write_atomic;

/// Column names of the candidate-pair Parquet file, in schema order.
pub mod pair_col {
    /// Unique pair id.
    pub const PAIR_ID: &str = "pair_id";
    /// Where the pair came from (model directory name, data set).
    pub const SOURCE: &str = "source";
    /// Language tag of the prompt.
    pub const LANGUAGE: &str = "language";
    /// Task category.
    pub const CATEGORY: &str = "category";
    /// Earlier turns (`List<Struct<role, content>>`, as in the preference schema).
    pub const HISTORY: &str = "history";
    /// Current user prompt.
    pub const PROMPT: &str = "prompt";
    /// First sampled response.
    pub const RESPONSE_A: &str = "response_a";
    /// Second sampled response.
    pub const RESPONSE_B: &str = "response_b";
    /// Prompt-quality class (paper Table 1), if checked.
    pub const PROMPT_QUALITY: &str = "prompt_quality";
    /// How the responses were generated (model, sampling, seed), free text.
    pub const GENERATOR: &str = "generator";
}

/// One prompt (with its history) and two responses to compare.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CandidatePair {
    /// Unique id within the file.
    pub pair_id: String,
    /// Where the pair came from (e.g. `sft:Qwen2-0.5B-Instruct`).
    pub source: String,
    /// Language tag of the prompt, if known.
    pub language: Option<String>,
    /// Task category, if known.
    pub category: Option<String>,
    /// Earlier turns, oldest first; empty for single-turn prompts.
    pub history: Vec<Message>,
    /// The current user prompt.
    pub prompt: String,
    /// The first response (as sampled; the web page shuffles sides per annotator).
    pub response_a: String,
    /// The second response.
    pub response_b: String,
    /// Prompt-quality class, if the prompt was checked. Pairs whose class is not
    /// `clear_and_answerable` are skipped by a server started with `skip_flagged`.
    pub prompt_quality: Option<PromptQuality>,
    /// How the responses were generated (free text), if recorded.
    pub generator: Option<String>,
}

impl CandidatePair {
    /// `true` when the prompt was checked and is not clear and answerable.
    pub fn is_flagged(&self) -> bool {
        matches!(self.prompt_quality, Some(q) if q != PromptQuality::ClearAndAnswerable)
    }
}

fn message_fields() -> Fields {
    Fields::from(vec![
        Field::new("role", DataType::Utf8, false),
        Field::new("content", DataType::Utf8, false),
    ])
}

fn history_item() -> Arc<Field> {
    Arc::new(Field::new(
        "item",
        DataType::Struct(message_fields()),
        false,
    ))
}

/// The Arrow schema of the candidate-pair file (metadata `rlhf_annotate.pairs_version = "1"`).
pub fn pairs_schema() -> SchemaRef {
    use pair_col::*;
    let fields = vec![
        Field::new(PAIR_ID, DataType::Utf8, false),
        Field::new(SOURCE, DataType::Utf8, false),
        Field::new(LANGUAGE, DataType::Utf8, true),
        Field::new(CATEGORY, DataType::Utf8, true),
        Field::new(HISTORY, DataType::List(history_item()), false),
        Field::new(PROMPT, DataType::Utf8, false),
        Field::new(RESPONSE_A, DataType::Utf8, false),
        Field::new(RESPONSE_B, DataType::Utf8, false),
        Field::new(PROMPT_QUALITY, DataType::Utf8, true),
        Field::new(GENERATOR, DataType::Utf8, true),
    ];
    let metadata: HashMap<String, String> =
        [("rlhf_annotate.pairs_version".to_owned(), "1".to_owned())]
            .into_iter()
            .collect();
    Arc::new(Schema::new_with_metadata(fields, metadata))
}

fn pairs_to_batch(rows: &[CandidatePair]) -> Result<RecordBatch> {
    let mut cols: Vec<StringBuilder> = (0..9).map(|_| StringBuilder::new()).collect();
    let mut role = StringBuilder::new();
    let mut content = StringBuilder::new();
    let mut offsets: Vec<i32> = vec![0];
    let mut n_hist: usize = 0;
    for p in rows {
        cols[0].append_value(&p.pair_id);
        cols[1].append_value(&p.source);
        cols[2].append_option(p.language.as_deref());
        cols[3].append_option(p.category.as_deref());
        cols[4].append_value(&p.prompt);
        cols[5].append_value(&p.response_a);
        cols[6].append_value(&p.response_b);
        cols[7].append_option(p.prompt_quality.map(PromptQuality::as_str));
        cols[8].append_option(p.generator.as_deref());
        for m in &p.history {
            role.append_value(m.role.as_str());
            content.append_value(&m.content);
        }
        n_hist += p.history.len();
        offsets.push(i32::try_from(n_hist).map_err(|_| {
            Error::InvalidConfig("more than 2^31 history messages in one file".into())
        })?);
    }
    let values = StructArray::try_new(
        message_fields(),
        vec![
            Arc::new(role.finish()) as ArrayRef,
            Arc::new(content.finish()),
        ],
        None,
    )?;
    let history = ListArray::try_new(
        history_item(),
        OffsetBuffer::new(offsets.into()),
        Arc::new(values),
        None,
    )?;
    let mut f = cols
        .into_iter()
        .map(|mut b| Arc::new(b.finish()) as ArrayRef);
    let mut next = || f.next().expect("nine string columns");
    let (id, source, language, category) = (next(), next(), next(), next());
    let (prompt, a, b, quality, generator) = (next(), next(), next(), next(), next());
    Ok(RecordBatch::try_new(
        pairs_schema(),
        vec![
            id,
            source,
            language,
            category,
            Arc::new(history),
            prompt,
            a,
            b,
            quality,
            generator,
        ],
    )?)
}

/// Writes `rows` to `path` as zstd Parquet, atomically (temporary file + rename).
///
/// # Errors
/// [`Error::InvalidConfig`] for an empty or repeated `pair_id`; encoder or I/O errors.
pub fn write_pairs(path: &Path, rows: &[CandidatePair]) -> Result<()> {
    check_ids(path, rows.iter().map(|p| p.pair_id.as_str()))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_created_by(concat!("rlhf-annotate ", env!("CARGO_PKG_VERSION")).to_owned())
        .build();
    let mut writer = ArrowWriter::try_new(Vec::new(), pairs_schema(), Some(props))?;
    for chunk in rows.chunks(4096) {
        writer.write(&pairs_to_batch(chunk)?)?;
    }
    let bytes = writer.into_inner()?;
    Ok(write_atomic(path, &bytes)?)
}

fn check_ids<'a>(path: &Path, ids: impl Iterator<Item = &'a str>) -> Result<()> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (row, id) in ids.enumerate() {
        if id.is_empty() {
            return Err(Error::bad_file(path, format!("row {row}: empty pair_id")));
        }
        if let Some(first) = seen.insert(id, row) {
            return Err(Error::bad_file(
                path,
                format!(
                    "pair_id {id:?} appears twice (rows {first} and {row}); ids must be unique"
                ),
            ));
        }
    }
    Ok(())
}

fn string_col<'a>(path: &Path, batch: &'a RecordBatch, name: &str) -> Result<&'a StringArray> {
    batch
        .column_by_name(name)
        .ok_or_else(|| Error::bad_file(path, format!("missing column {name:?}")))?
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| Error::bad_file(path, format!("column {name:?} is not Utf8")))
}

fn opt_value(a: Option<&StringArray>, row: usize) -> Option<&str> {
    a.filter(|a| !a.is_null(row)).map(|a| a.value(row))
}

/// Reads a candidate-pair file written by [`write_pairs`] (columns are looked up by name;
/// `language`, `category`, `history`, `prompt_quality` and `generator` may be absent).
///
/// # Errors
/// [`Error::Io`] / [`Error::Parquet`] for unreadable files; [`Error::BadFile`] naming the
/// column or row for a missing required column, a null required value, an unknown role or
/// prompt-quality class, or a repeated `pair_id`.
pub fn read_pairs(path: &Path) -> Result<Vec<CandidatePair>> {
    use pair_col::*;
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)?
        .with_batch_size(4096)
        .build()?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch?;
        let id = string_col(path, &batch, PAIR_ID)?;
        let source = string_col(path, &batch, SOURCE)?;
        let prompt = string_col(path, &batch, PROMPT)?;
        let a = string_col(path, &batch, RESPONSE_A)?;
        let b = string_col(path, &batch, RESPONSE_B)?;
        let opt = |name| {
            batch
                .column_by_name(name)
                .map(|_| string_col(path, &batch, name))
                .transpose()
        };
        let language = opt(LANGUAGE)?;
        let category = opt(CATEGORY)?;
        let quality = opt(PROMPT_QUALITY)?;
        let generator = opt(GENERATOR)?;
        let history = match batch.column_by_name(HISTORY) {
            None => None,
            Some(c) => {
                let list = c.as_any().downcast_ref::<ListArray>().ok_or_else(|| {
                    Error::bad_file(path, "column \"history\" is not a list of structs")
                })?;
                let items = list
                    .values()
                    .as_any()
                    .downcast_ref::<StructArray>()
                    .ok_or_else(|| Error::bad_file(path, "history items are not structs"))?;
                let child = |n: &str| {
                    items
                        .column_by_name(n)
                        .and_then(|a| a.as_any().downcast_ref::<StringArray>())
                        .ok_or_else(|| {
                            Error::bad_file(path, format!("history items lack Utf8 field {n:?}"))
                        })
                };
                Some((list, child("role")?, child("content")?))
            }
        };
        let base = out.len();
        for row in 0..batch.num_rows() {
            let at = base + row;
            let req = |a: &StringArray, name: &str| -> Result<String> {
                if a.is_null(row) {
                    Err(Error::bad_file(path, format!("row {at}: null {name}")))
                } else {
                    Ok(a.value(row).to_owned())
                }
            };
            let optv = |a| opt_value(a, row);
            let mut hist = Vec::new();
            if let Some((list, role, content)) = &history
                && !list.is_null(row)
            {
                let offs = list.value_offsets();
                for i in offs[row] as usize..offs[row + 1] as usize {
                    let r: Role = role.value(i).parse().map_err(|_| {
                        Error::bad_file(
                            path,
                            format!(
                                "row {at}: history role {:?}, expected system, user or assistant",
                                role.value(i)
                            ),
                        )
                    })?;
                    hist.push(Message::new(r, content.value(i)));
                }
            }
            let prompt_quality = match optv(quality) {
                None => None,
                Some(q) => Some(q.parse::<PromptQuality>().map_err(|_| {
                    Error::bad_file(
                        path,
                        format!(
                            "row {at}: prompt_quality {q:?}, expected one of clear_and_answerable, unclear_intent, unclear_semantics, unanswerable"
                        ),
                    )
                })?),
            };
            out.push(CandidatePair {
                pair_id: req(id, PAIR_ID)?,
                source: req(source, SOURCE)?,
                language: optv(language).map(str::to_owned),
                category: optv(category).map(str::to_owned),
                history: hist,
                prompt: req(prompt, PROMPT)?,
                response_a: req(a, RESPONSE_A)?,
                response_b: req(b, RESPONSE_B)?,
                prompt_quality,
                generator: optv(generator).map(str::to_owned),
            });
        }
    }
    check_ids(path, out.iter().map(|p| p.pair_id.as_str()))?;
    Ok(out)
}

/// SHA-256 of a file's bytes, hex-encoded (identifies the pairs file a journal belongs to).
///
/// # Errors
/// [`Error::Io`] if the file cannot be read.
pub fn file_sha256(path: &Path) -> Result<String> {
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// One prompt to generate a candidate pair for (a line of a prompts file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PromptInput {
    /// Id of the prompt (becomes the pair id).
    pub id: String,
    /// Earlier turns, oldest first.
    pub history: Vec<Message>,
    /// The prompt text.
    pub prompt: String,
    /// Task category, if given.
    pub category: Option<String>,
    /// Language tag, if given.
    pub language: Option<String>,
}

#[derive(Deserialize)]
struct PromptLine {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    question_id: Option<serde_json::Value>,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    question: Option<String>,
    #[serde(default)]
    history: Vec<Message>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    language: Option<String>,
}

/// Reads a prompts file: JSON Lines, one object per line with `prompt` (or AlignBench's
/// `question`), and optionally `id` (or `question_id`; string or number; default `line-N`),
/// `history` (`[{"role": "user"|"assistant"|"system", "content": "..."}]`), `category` and
/// `language`. Other keys are ignored, so AlignBench question files work as they are. Blank
/// lines are skipped.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::BadLine`] naming the file and line for
/// invalid JSON, a missing or empty prompt, or a repeated id.
pub fn read_prompts(path: &Path) -> Result<Vec<PromptInput>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut out: Vec<PromptInput> = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let n = i as u64 + 1;
        let line = line.map_err(|e| Error::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: String| Error::BadLine {
            file: path.to_path_buf(),
            line: n,
            message,
        };
        let l: PromptLine = serde_json::from_str(&line).map_err(|e| {
            bad(format!(
                "invalid JSON ({e}); expected an object with \"prompt\" and optional \"id\", \"history\", \"category\", \"language\""
            ))
        })?;
        let prompt = l
            .prompt
            .or(l.question)
            .filter(|p| !p.trim().is_empty())
            .ok_or_else(|| bad("missing or empty \"prompt\" (or \"question\")".into()))?;
        let id = match l.id.or(l.question_id) {
            None => format!("line-{n}"),
            Some(serde_json::Value::String(s)) => s,
            Some(serde_json::Value::Number(x)) => x.to_string(),
            Some(other) => return Err(bad(format!("id {other} is not a string or a number"))),
        };
        if let Some(first) = seen.insert(id.clone(), n) {
            return Err(bad(format!("id {id:?} already used on line {first}")));
        }
        out.push(PromptInput {
            id,
            history: l.history,
            prompt,
            category: l.category,
            language: l.language,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(id: &str) -> CandidatePair {
        CandidatePair {
            pair_id: id.into(),
            source: "test".into(),
            prompt: format!("prompt {id}"),
            response_a: "a".into(),
            response_b: "b".into(),
            ..CandidatePair::default()
        }
    }

    #[test]
    fn pairs_round_trip_through_parquet() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pairs.parquet");
        let mut full = pair("p1");
        full.language = Some("zh".into());
        full.category = Some("写作".into());
        full.history = vec![
            Message::new(Role::User, "你好"),
            Message::new(Role::Assistant, "<b>hi</b>"),
        ];
        full.prompt_quality = Some(PromptQuality::UnclearIntent);
        full.generator = Some("model=x seed=1".into());
        let rows = vec![full, pair("p2"), pair("p3")];
        write_pairs(&path, &rows).unwrap();
        assert_eq!(read_pairs(&path).unwrap(), rows);
        assert!(rows[0].is_flagged() && !rows[1].is_flagged());
        assert_eq!(file_sha256(&path).unwrap().len(), 64);
    }

    #[test]
    fn repeated_ids_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pairs.parquet");
        let err = write_pairs(&path, &[pair("x"), pair("y"), pair("x")]).unwrap_err();
        assert!(err.to_string().contains("rows 0 and 2"), "{err}");
    }

    #[test]
    fn prompts_file_accepts_both_shapes_and_names_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.jsonl");
        std::fs::write(
            &path,
            "{\"id\": \"a\", \"prompt\": \"Hi there, explain X\", \"history\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", \"content\": \"r\"}]}\n\n{\"question_id\": 7, \"question\": \"1+1?\", \"category\": \"数学\", \"reference\": \"2\"}\n{\"prompt\": \"third\"}\n",
        )
        .unwrap();
        let p = read_prompts(&path).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].history.len(), 2);
        assert_eq!(p[1].id, "7");
        assert_eq!(p[1].category.as_deref(), Some("数学"));
        assert_eq!(p[2].id, "line-4");

        std::fs::write(&path, "{\"prompt\": \"ok\"}\n{\"id\": 1}\n").unwrap();
        let err = read_prompts(&path).unwrap_err().to_string();
        assert!(
            err.contains("p.jsonl:2:") && err.contains("prompt"),
            "{err}"
        );
        std::fs::write(&path, "{\"prompt\": \"ok\"\n").unwrap();
        let err = read_prompts(&path).unwrap_err().to_string();
        assert!(err.contains(":1: invalid JSON"), "{err}");
    }
}
