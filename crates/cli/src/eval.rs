//! `rlhf eval`: AlignBench (generate → judge → aggregate → report), pairwise win/tie/lose
//! with rating sheets (`eval/pairwise.rs`), and response-length tables (ChatGLM-RLHF Tables 4
//! and 6). Argument parsing and wiring only: generation, judging, scoring, lengths and reports
//! are `rlhf_alignbench_eval`'s; the reward model's scores are `rlhf_reward::score_replies`
//! ([`rm_scores`], shared with the pipeline's eval stage).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use burn::tensor::DType;
use clap::{Args, Subcommand};
use rlhf_alignbench_eval as ab;
use rlhf_alignbench_eval::{
    AnswerRecord, AnswerStore, BenchConfig, BoxError, BoxedJudge, Decoding, JudgeAllOptions,
    JudgeTemplate, JudgmentCache, LocalModel, Question, ReferenceOverlapJudge, ResultsTable,
    ScoreFnJudge, ScoreMode,
};
use rlhf_core::backend::DeviceSpec;
use rlhf_core::checkpoint::{LoadOptions, load_causal_lm, load_scalar_model};
use rlhf_core::text::{BYTE_VOCAB, TextCodec};
use rlhf_core::tokenizer::{Message, Tokenizer};
use rlhf_reward::score_replies;
use serde::Serialize;

use crate::device::{parse_device, parse_dtype, with_backend};
use crate::reward::load_tokenizer;

mod pairwise;

/// Printed next to every score from an offline judge.
const NOT_COMPARABLE: &str =
    "offline judge: scores are NOT comparable with GPT-4 (AlignBench) scores";

/// `rlhf eval`.
#[derive(Debug, Args)]
pub(crate) struct EvalArgs {
    #[command(subcommand)]
    command: EvalCommand,
}

#[derive(Debug, Subcommand)]
enum EvalCommand {
    /// Generate answers to AlignBench questions (resumable), judge them, write the report.
    Alignbench(AlignbenchArgs),
    /// Win/tie/lose of answers A against answers B (both orders) plus a human rating sheet.
    Pairwise(pairwise::PairwiseArgs),
    /// Tabulate a filled-in rating sheet.
    Tabulate(pairwise::TabulateArgs),
    /// Response lengths per model and category (the paper's Table 6).
    Lengths(LengthsArgs),
    /// Several models' AlignBench results side by side (Markdown, JSON, bar chart).
    Report(ReportArgs),
}

/// `rlhf eval report`.
#[derive(Debug, Args)]
struct ReportArgs {
    /// `NAME=REPORT_DIR` of an `eval alignbench --out` directory, in table order (e.g. SFT=runs/sft).
    #[arg(long = "run", required = true)]
    runs: Vec<String>,
    /// Where alignbench.md/.json/.svg go.
    #[arg(long)]
    out: PathBuf,
}

fn report(a: ReportArgs) -> anyhow::Result<()> {
    let mut table = ResultsTable::default();
    let mut labels = Vec::new();
    for run in &a.runs {
        let (name, dir) = run
            .split_once('=')
            .with_context(|| format!("--run `{run}`: expected NAME=REPORT_DIR"))?;
        let path = Path::new(dir).join("summary.json");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "reading {} (written by `eval alignbench --out`)",
                path.display()
            )
        })?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{}: invalid JSON", path.display()))?;
        let summary: ab::Summary = serde_json::from_value(v["summary"].clone())
            .with_context(|| format!("{}: no `summary`", path.display()))?;
        labels.push(format!(
            "{name}: judge `{}`",
            v["judge"].as_str().unwrap_or("?")
        ));
        table.push(name.to_string(), summary);
    }
    let mut md = String::from("# AlignBench results\n\n");
    for l in &labels {
        md.push_str(&format!("- {l}\n"));
    }
    md.push('\n');
    write_table(&a.out, md, &table)?;
    println!("{}", table.to_json()?);
    Ok(())
}

pub(crate) fn run(a: EvalArgs) -> anyhow::Result<()> {
    match a.command {
        EvalCommand::Alignbench(a) => alignbench(a),
        EvalCommand::Pairwise(a) => pairwise::pairwise(a),
        EvalCommand::Tabulate(a) => pairwise::tabulate(a),
        EvalCommand::Lengths(a) => lengths(a),
        EvalCommand::Report(a) => report(a),
    }
}

fn print(v: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(v)?);
    Ok(())
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    ab::write_atomic(path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

/// Writes `alignbench.md` (`md` followed by the table), `alignbench.json` and `alignbench.svg`.
fn write_table(dir: &Path, mut md: String, table: &ResultsTable) -> anyhow::Result<()> {
    md.push_str(&table.to_markdown());
    write(&dir.join("alignbench.md"), &md)?;
    table.write_json(&dir.join("alignbench.json"))?;
    table.write_svg(&dir.join("alignbench.svg"))?;
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The judge named by `--judge`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum JudgeSpec {
    /// [`ReferenceOverlapJudge`].
    Overlap,
    /// A reward model directory.
    Rm(PathBuf),
    /// An OpenAI-compatible API.
    OpenAi,
}

fn parse_judge(s: &str) -> Result<JudgeSpec, String> {
    match s {
        "overlap" => Ok(JudgeSpec::Overlap),
        "openai" => Ok(JudgeSpec::OpenAi),
        _ => match s.strip_prefix("rm:") {
            Some(dir) if !dir.is_empty() => Ok(JudgeSpec::Rm(PathBuf::from(dir))),
            _ => Err(format!(
                "invalid judge `{s}`: expected overlap, rm:DIR or openai"
            )),
        },
    }
}

/// Flags of the OpenAI-compatible judge (`--judge openai`); the key comes from
/// `OPENAI_API_KEY` and is never printed.
#[derive(Debug, Args)]
struct ApiJudgeArgs {
    /// Base URL of the OpenAI-compatible API (--judge openai); key from OPENAI_API_KEY.
    #[arg(long, default_value = "https://api.openai.com/v1")]
    judge_base_url: String,
    /// Judge model name (--judge openai).
    #[arg(long, default_value = "gpt-4-0613")]
    judge_model: String,
    /// Judge calls in flight at once.
    #[arg(long, default_value_t = 8)]
    judge_concurrency: usize,
}

/// Whether `url`'s host is this machine (`localhost`, `127.0.0.0/8`, `[::1]`).
fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl ApiJudgeArgs {
    /// The client for these flags, with the key from `OPENAI_API_KEY` when it is set. A judge
    /// on this machine (e.g. a local vLLM server) is called directly, never through a proxy
    /// named by the environment.
    fn judge(&self) -> anyhow::Result<ab::OpenAiJudge> {
        let mut cfg = ab::OpenAiJudgeConfig::new(&self.judge_base_url, &self.judge_model);
        cfg.use_system_proxy = !is_loopback_url(&self.judge_base_url);
        match std::env::var("OPENAI_API_KEY") {
            Ok(k) if !k.is_empty() => cfg.api_key = Some(ab::ApiKey::new(k)),
            _ => tracing::warn!("OPENAI_API_KEY is not set: calling the judge without a key"),
        }
        Ok(ab::OpenAiJudge::new(cfg)?)
    }
}

// ---------------------------------------------------------------------------------------
// Text ↔ ids for the model under test, and the reward model's scores.

/// The text codec of the model in `dir`: its `tokenizer.json`, else the byte codec every
/// trainer of this workspace uses (`rlhf_core::text`), which needs a vocabulary of at least
/// `BYTE_VOCAB` ids.
///
/// # Errors
/// A tokenizer that does not load; no tokenizer and a vocabulary too small for bytes.
pub(crate) fn codec_of<'t>(
    dir: &Path,
    tok: Option<&'t Tokenizer>,
    vocab: usize,
) -> anyhow::Result<TextCodec<'t>> {
    match tok {
        Some(t) => Ok(TextCodec::Tokenizer(t)),
        None if vocab >= BYTE_VOCAB => Ok(TextCodec::Bytes),
        None => bail!(
            "{} has no tokenizer.json and a vocabulary of {vocab} ids, too small for the byte \
             codec ({BYTE_VOCAB} ids)",
            dir.display()
        ),
    }
}

/// Scores `(prompt, answer)` pairs with the reward model in `dir` (raw rewards), encoded the
/// way `rlhf-reward` trains (`score_replies`: the directory's tokenizer, else bytes), each row
/// cut to the model's context; an empty answer is scored as one space. The one copy of RM
/// scoring for `rlhf eval` (the `rm:` judge, pairwise) and the pipeline's eval stage.
pub(crate) fn rm_scores(
    dir: &Path,
    items: &[(&[Message], &str)],
    device: DeviceSpec,
    dtype: DType,
) -> anyhow::Result<Vec<f64>> {
    let tok = load_tokenizer(None, Some(dir))?;
    let enc = tok.as_ref().map_or(TextCodec::Bytes, TextCodec::Tokenizer);
    let items: Vec<(&[Message], &str)> = items
        .iter()
        .map(|&(m, a)| (m, if a.trim().is_empty() { " " } else { a }))
        .collect();
    with_backend!(device, |B, dev| {
        let (rm, cfg) = load_scalar_model::<B>(dir, LoadOptions { dtype }, &dev)
            .with_context(|| format!("loading the reward model {}", dir.display()))?;
        if tok.is_none() && cfg.vocab_size < BYTE_VOCAB {
            bail!(
                "{}: no tokenizer.json, and the reward model's vocabulary ({}) is smaller than \
                 the {BYTE_VOCAB} byte-level ids used without one",
                dir.display(),
                cfg.vocab_size
            );
        }
        let scores = score_replies(&rm, &enc, &items, cfg.max_position_embeddings, 32, &dev)?;
        Ok(scores.into_iter().map(f64::from).collect())
    })
}

// ---------------------------------------------------------------------------------------
// rlhf eval alignbench

#[derive(Debug, Args)]
struct AlignbenchArgs {
    /// HF checkpoint directory of the model under test.
    #[arg(long)]
    model: PathBuf,
    /// Name of the model in the answers file and the report (default: the directory name).
    #[arg(long)]
    model_id: Option<String>,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    device: DeviceSpec,
    /// Parameter dtype on the device: f32, bf16 or f16.
    #[arg(long, default_value = "f32", value_parser = parse_dtype)]
    dtype: DType,
    /// AlignBench questions (v1.0 or v1.1 JSONL).
    #[arg(long)]
    questions: PathBuf,
    /// Directory of the judge config files (dimension_set.json, ...).
    #[arg(long)]
    config_dir: PathBuf,
    /// Directory of the answers (`<model-id>.jsonl`, appended; a rerun skips answered
    /// questions) and the judgment cache (`judgments.jsonl`).
    #[arg(long)]
    answers: PathBuf,
    /// Only the first N questions (file order).
    #[arg(long)]
    limit: Option<usize>,
    /// Upper bound on new tokens per answer.
    #[arg(long, default_value_t = 512)]
    max_new_tokens: usize,
    /// Questions generated together.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Greedy decoding (the default; ChatGLM-RLHF evaluated this way).
    #[arg(long, conflicts_with = "per_category_temperature")]
    greedy: bool,
    /// Sample at AlignBench's per-category temperatures (temperature.json).
    #[arg(long)]
    per_category_temperature: bool,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// overlap | rm:RM_DIR | openai.
    #[arg(long, value_parser = parse_judge)]
    judge: JudgeSpec,
    #[command(flatten)]
    api: ApiJudgeArgs,
    /// A judge template file (e.g. the byte-exact original) instead of the built-in wording.
    #[arg(long)]
    judge_template: Option<PathBuf>,
    /// Strict mode: re-ask the judge on unparseable output (twice) and drop remaining
    /// failures from the means, instead of AlignBench's −1.
    #[arg(long)]
    strict: bool,
    /// Report directory (alignbench.md, alignbench.json, alignbench.svg, scores.json).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Serialize)]
struct AlignbenchSummary {
    model: String,
    judge: String,
    comparable_with_gpt4: bool,
    decoding: &'static str,
    questions: usize,
    generated: usize,
    answers_file: PathBuf,
    judged: usize,
    cached_judgments: usize,
    judge_errors: usize,
    mode: ScoreMode,
    report_dir: PathBuf,
    summary: ab::Summary,
}

fn alignbench(a: AlignbenchArgs) -> anyhow::Result<()> {
    let mut questions = ab::load_questions(&a.questions)?;
    if let Some(n) = a.limit {
        questions.truncate(n);
    }
    let config = BenchConfig::load_dir(&a.config_dir)?;
    let template = match &a.judge_template {
        Some(p) => JudgeTemplate::from_file(p)?,
        None => JudgeTemplate::builtin(),
    };
    // Fail on an unknown subcategory before spending time on generation.
    for q in &questions {
        config
            .dimensions_for(q)
            .with_context(|| format!("question {}", q.question_id))?;
    }
    let model_id = match &a.model_id {
        Some(m) => m.clone(),
        None => a
            .model
            .canonicalize()
            .unwrap_or_else(|_| a.model.clone())
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .context("--model has no directory name: give --model-id")?,
    };
    std::fs::create_dir_all(&a.answers)
        .with_context(|| format!("creating {}", a.answers.display()))?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let answers_path = a.answers.join(format!("{model_id}.jsonl"));
    let mut store = AnswerStore::open(&answers_path, &model_id)?;

    // 1. Answers.
    let greedy = !a.per_category_temperature;
    let generated = generate_answers(&a, &questions, &config, &mut store, greedy)?;

    // 2. Judge.
    let jobs = ab::judge_jobs(&questions, store.records(), &template, &config)?;
    let (judge, comparable): (BoxedJudge, bool) = match &a.judge {
        JudgeSpec::Overlap => (Box::new(ReferenceOverlapJudge), false),
        JudgeSpec::Rm(dir) => (
            Box::new(rm_judge(dir, &questions, store.records(), &a)?),
            false,
        ),
        JudgeSpec::OpenAi => (Box::new(a.api.judge()?), true),
    };
    let judge_label = ab::Judge::model_id(&judge).to_owned();
    let cache = JudgmentCache::open(&a.answers.join("judgments.jsonl"))?;
    let options = JudgeAllOptions {
        max_concurrency: a.api.judge_concurrency.max(1),
        strict_reasks: if a.strict { 2 } else { 0 },
    };
    let outcomes = runtime()?.block_on(ab::judge_all(&judge, &jobs, Some(&cache), &options));
    let judge_errors = outcomes.iter().filter(|o| o.result.is_err()).count();
    let cached = outcomes
        .iter()
        .filter(|o| o.result.as_ref().is_ok_and(|t| t.from_cache))
        .count();

    // 3. Aggregate and report.
    let mode = if a.strict {
        ScoreMode::Strict
    } else {
        ScoreMode::Compat
    };
    let (items, summary) = ab::judged_summary(&questions, &outcomes, mode)?;
    let mut table = ResultsTable::default();
    table.push(model_id.clone(), summary.clone());
    let decoding = if greedy {
        "greedy"
    } else {
        "per-category temperature"
    };
    let mut md = format!(
        "# AlignBench: {model_id}\n\nJudge: `{judge_label}`. Decoding: {decoding}, at most {} new tokens. Mode: {mode:?}.\n\n",
        a.max_new_tokens
    );
    if !comparable {
        md.push_str(&format!("**{NOT_COMPARABLE}.**\n\n"));
    }
    write_table(&a.out, md, &table)?;
    let header = serde_json::json!({
        "model": model_id,
        "judge": judge_label,
        "comparable_with_gpt4": comparable,
    });
    for (file, key, value) in [
        ("summary.json", "summary", serde_json::to_value(&summary)?),
        ("scores.json", "items", serde_json::to_value(&items)?),
    ] {
        let mut v = header.clone();
        v[key] = value;
        write(&a.out.join(file), &serde_json::to_string_pretty(&v)?)?;
    }
    print(&AlignbenchSummary {
        model: model_id,
        judge: judge_label,
        comparable_with_gpt4: comparable,
        decoding,
        questions: questions.len(),
        generated,
        answers_file: answers_path,
        judged: items.len(),
        cached_judgments: cached,
        judge_errors,
        mode,
        report_dir: a.out.clone(),
        summary,
    })
}

/// Generates the pending answers in batches (grouped by decoding), appending each answer as
/// soon as its batch is done (`LocalModel::answer_questions`). Returns how many were generated.
fn generate_answers(
    a: &AlignbenchArgs,
    questions: &[Question],
    config: &BenchConfig,
    store: &mut AnswerStore,
    greedy: bool,
) -> anyhow::Result<usize> {
    if store.pending(questions).is_empty() {
        tracing::info!(
            done = store.len(),
            "all answers present: nothing to generate"
        );
        return Ok(0);
    }
    let decoding_of = |q: &Question| {
        let mut d = if greedy {
            Decoding::greedy()
        } else {
            Decoding::alignbench_default(q, config)
        };
        d.max_new_tokens = Some(a.max_new_tokens);
        if !greedy {
            d.seed = Some(a.seed);
        }
        d
    };
    let opts = LoadOptions { dtype: a.dtype };
    with_backend!(a.device, |B, dev| {
        let (model, cfg) = load_causal_lm::<B>(&a.model, opts, &dev)?;
        let tok = load_tokenizer(None, Some(&a.model))?;
        let codec = codec_of(&a.model, tok.as_ref(), cfg.vocab_size)?;
        let lm = LocalModel {
            model: &model,
            config: &cfg,
            codec: &codec,
            device: &dev,
        };
        let n = lm
            .answer_questions(
                store,
                questions,
                decoding_of,
                a.batch_size,
                |done, total, b| {
                    eprintln!(
                        "answered {done}/{total} ({} new tokens in {:.1}s)",
                        b.new_tokens, b.seconds
                    )
                },
            )
            .context("--max-new-tokens and the model's context")?;
        Ok::<usize, anyhow::Error>(n)
    })
}

// ---------------------------------------------------------------------------------------
// Reward-model judge

/// The reward model in `dir` as the judge: every stored answer scored up front
/// ([`rm_scores`]), then judged by `ScoreFnJudge::reward_model` (1–10 through a sigmoid).
fn rm_judge<'a>(
    dir: &Path,
    questions: &[Question],
    answers: impl Iterator<Item = &'a AnswerRecord>,
    a: &AlignbenchArgs,
) -> anyhow::Result<ScoreFnJudge> {
    let by_id: HashMap<u32, &Question> = questions.iter().map(|q| (q.question_id, q)).collect();
    let pairs: Vec<(&Question, &str)> = answers
        .filter_map(|r| Some((*by_id.get(&r.question_id)?, r.answer.as_str())))
        .collect();
    let prompts: Vec<[Message; 1]> = pairs
        .iter()
        .map(|(q, _)| [Message::user(&q.question)])
        .collect();
    let items: Vec<(&[Message], &str)> = prompts
        .iter()
        .zip(&pairs)
        .map(|(m, (_, ans))| (&m[..], *ans))
        .collect();
    let raw = rm_scores(dir, &items, a.device, a.dtype)?;
    let name = dir
        .canonicalize()
        .unwrap_or_else(|_| dir.to_owned())
        .display()
        .to_string();
    let rewards = pairs
        .iter()
        .zip(raw)
        .map(|((q, ans), r)| ((q.question.clone(), (*ans).to_owned()), r));
    Ok(ScoreFnJudge::reward_model(&name, questions, rewards))
}

/// Reads an answers file: its model id (from the first record) and its records.
fn read_answers(path: &Path) -> anyhow::Result<(String, Vec<AnswerRecord>)> {
    if !path.is_file() {
        bail!("{}: answers file not found", path.display());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .with_context(|| format!("{}: no answers", path.display()))?;
    let rec: AnswerRecord = serde_json::from_str(first)
        .with_context(|| format!("{}: line 1 is not an answer record", path.display()))?;
    let store = AnswerStore::open(path, &rec.model_id)?;
    Ok((rec.model_id, store.records().cloned().collect()))
}

// ---------------------------------------------------------------------------------------
// rlhf eval lengths

#[derive(Debug, Args)]
struct LengthsArgs {
    /// Answers files (one per model).
    #[arg(long, num_args = 1.., required = true)]
    answers: Vec<PathBuf>,
    /// AlignBench questions, for the categories.
    #[arg(long)]
    questions: PathBuf,
    /// A tokenizer directory (tokenizer.json): also count tokens.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Also write lengths.md and lengths.json here.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn lengths(a: LengthsArgs) -> anyhow::Result<()> {
    let questions = ab::load_questions(&a.questions)?;
    let tok = a
        .tokenizer
        .as_deref()
        .map(Tokenizer::from_dir)
        .transpose()?;
    let count = tok
        .as_ref()
        .map(|tok| move |t: &str| -> Result<usize, BoxError> { Ok(tok.encode(t, false)?.len()) });
    let counter = count.as_ref().map(|c| c as ab::TokenCount<'_>);
    let mut models = Vec::new();
    for path in &a.answers {
        let (model, records) = read_answers(path)?;
        models.push(
            ab::answer_lengths(&model, path.clone(), &records, &questions, counter).with_context(
                || {
                    format!(
                        "{} (questions from {})",
                        path.display(),
                        a.questions.display()
                    )
                },
            )?,
        );
    }
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        write(&dir.join("lengths.md"), &ab::lengths_markdown(&models))?;
        write(
            &dir.join("lengths.json"),
            &serde_json::to_string_pretty(&models)?,
        )?;
    }
    print(&models)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlhf_alignbench_eval::AnswerCodec;

    #[test]
    fn judge_flag_and_the_byte_codec() {
        assert_eq!(parse_judge("overlap"), Ok(JudgeSpec::Overlap));
        assert_eq!(parse_judge("rm:/x"), Ok(JudgeSpec::Rm(PathBuf::from("/x"))));
        assert!(parse_judge("rm:").is_err());
        assert!(parse_judge("gpt").is_err());
        // The model under test reads prompts as the trainers wrote them: the byte codec's
        // transcript (BOS, bytes + 3), and its replies stop at EOS 2.
        let dir = Path::new("model");
        let bytes = codec_of(dir, None, 512).unwrap();
        let ids = AnswerCodec::encode_prompt(&bytes, &[Message::user("hi")]).unwrap();
        let mut want = vec![1u32];
        want.extend(b"User: hi\nAssistant: ".map(|b| u32::from(b) + 3));
        assert_eq!(ids, want);
        let reply = [
            u32::from(b'y') + 3,
            u32::from(b'o') + 3,
            2,
            u32::from(b'z') + 3,
        ];
        assert_eq!(AnswerCodec::decode(&bytes, &reply).unwrap(), "yo");
        assert_eq!(AnswerCodec::eos_ids(&bytes), vec![2]);
        assert_eq!(AnswerCodec::pad_id(&bytes), Some(0));
        let small = codec_of(dir, None, 200).unwrap_err().to_string();
        assert!(small.contains("too small for the byte codec"), "{small}");
    }

    #[test]
    fn loopback_judge_urls() {
        for url in [
            "http://127.0.0.1:8000/v1",
            "http://localhost/v1",
            "https://LOCALHOST:443",
            "http://[::1]:9/v1",
            "http://user:pw@127.1.2.3/v1",
            "127.0.0.1:80",
        ] {
            assert!(is_loopback_url(url), "{url}");
        }
        for url in [
            "https://api.openai.com/v1",
            "http://10.0.0.1:8000/v1",
            "http://localhost.example.com/v1",
            "http://[2001:db8::1]/v1",
            "",
        ] {
            assert!(!is_loopback_url(url), "{url}");
        }
    }
}
