//! `rlhf eval`: AlignBench (generate → judge → aggregate → report), pairwise win/tie/lose
//! with rating sheets, and response-length tables (ChatGLM-RLHF Tables 4 and 6).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use burn::tensor::DType;
use clap::{Args, Subcommand};
use rlhf_alignbench_eval as ab;
use rlhf_alignbench_eval::{
    AnswerRecord, AnswerStore, BenchConfig, BoxedJudge, Category, CombineRule, Decoding,
    JudgeAllOptions, JudgeTemplate, JudgmentCache, PairItem, Preference, Question,
    ReferenceOverlapJudge, ResultsTable, ScoreFnJudge, ScoreMode,
};
use rlhf_core::backend::DeviceSpec;
use rlhf_core::checkpoint::{LoadOptions, load_causal_lm, load_scalar_model};
use rlhf_core::generate::{GenerationConfig, Sampling, generate as run_generate};
use rlhf_core::tokenizer::{Message, Tokenizer};
use rlhf_core::{PadSide, TokenBatch};
use serde::Serialize;

use crate::device::{parse_device, parse_dtype, with_backend};

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
    Pairwise(PairwiseArgs),
    /// Tabulate a filled-in rating sheet.
    Tabulate(TabulateArgs),
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
        EvalCommand::Pairwise(a) => pairwise(a),
        EvalCommand::Tabulate(a) => tabulate(a),
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
// Text ↔ ids for the model under test and the reward model.

/// A tokenizer, or (for checkpoints without `tokenizer.json`, such as test fixtures) a byte
/// codec: UTF-8 bytes clipped to the vocabulary, decoded back as lossy UTF-8.
enum Codec {
    Tok(Box<Tokenizer>),
    Bytes { vocab: usize },
}

impl Codec {
    fn load(dir: &Path, vocab: usize) -> anyhow::Result<Self> {
        if dir.join("tokenizer.json").exists() {
            Ok(Codec::Tok(Box::new(Tokenizer::from_dir(dir)?)))
        } else {
            tracing::warn!(
                dir = %dir.display(),
                "no tokenizer.json: encoding text as bytes clipped to the vocabulary (test fixtures only)"
            );
            Ok(Codec::Bytes { vocab })
        }
    }

    fn bytes(text: &str, vocab: usize) -> Vec<u32> {
        let top = u32::try_from(vocab.saturating_sub(1)).unwrap_or(u32::MAX);
        text.bytes().map(|b| u32::from(b).min(top)).collect()
    }

    /// One user message through the chat template (or the plain text when there is none).
    fn prompt(&self, question: &str) -> anyhow::Result<Vec<u32>> {
        Ok(match self {
            Codec::Tok(t) if t.has_chat_template() => {
                t.encode_prompt(&[Message::user(question)])?
            }
            Codec::Tok(t) => t.encode(question, true)?,
            Codec::Bytes { vocab } => Self::bytes(question, *vocab),
        })
    }

    /// Question and answer as a scored conversation.
    fn prompt_response(&self, question: &str, answer: &str) -> anyhow::Result<Vec<u32>> {
        Ok(match self {
            Codec::Tok(t) if t.has_chat_template() => {
                t.encode_prompt_response(&[Message::user(question)], answer)?
                    .ids
            }
            Codec::Tok(t) => t.encode(&format!("{question}\n{answer}"), true)?,
            Codec::Bytes { vocab } => Self::bytes(&format!("{question}\n{answer}"), *vocab),
        })
    }

    fn decode(&self, ids: &[u32]) -> anyhow::Result<String> {
        Ok(match self {
            Codec::Tok(t) => t.decode(ids, true)?,
            Codec::Bytes { .. } => {
                let bytes: Vec<u8> = ids.iter().filter_map(|&i| u8::try_from(i).ok()).collect();
                String::from_utf8_lossy(&bytes).into_owned()
            }
        })
    }

    fn eos_id(&self) -> Option<u32> {
        match self {
            Codec::Tok(t) => t.eos_id(),
            Codec::Bytes { .. } => None,
        }
    }

    fn pad_id(&self) -> Option<u32> {
        match self {
            Codec::Tok(t) => t.pad_id(),
            Codec::Bytes { .. } => None,
        }
    }
}

/// Keeps the last `max` ids (the end of a chat prompt holds the generation marker).
fn clip_left(mut ids: Vec<u32>, max: usize, what: &str) -> Vec<u32> {
    if ids.len() > max {
        tracing::warn!(
            len = ids.len(),
            max,
            "{what} longer than the model allows: keeping its last tokens"
        );
        ids.drain(..ids.len() - max);
    }
    ids
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

/// Generates the pending answers in batches (grouped by decoding) and appends each answer
/// as soon as its batch is done. Returns how many were generated.
fn generate_answers(
    a: &AlignbenchArgs,
    questions: &[Question],
    config: &BenchConfig,
    store: &mut AnswerStore,
    greedy: bool,
) -> anyhow::Result<usize> {
    let pending: Vec<Question> = store.pending(questions).into_iter().cloned().collect();
    if pending.is_empty() {
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
    // Group by decoding (greedy: one group), keeping file order inside a group.
    let mut groups: Vec<(Decoding, Vec<&Question>)> = Vec::new();
    for q in &pending {
        let d = decoding_of(q);
        match groups.iter_mut().find(|(g, _)| *g == d) {
            Some((_, qs)) => qs.push(q),
            None => groups.push((d, vec![q])),
        }
    }
    let opts = LoadOptions { dtype: a.dtype };
    let model_id = store.model_id().to_owned();
    let mut generated = 0usize;
    with_backend!(a.device, |B, dev| {
        let (model, cfg) = load_causal_lm::<B>(&a.model, opts, &dev)?;
        let codec = Codec::load(&a.model, cfg.vocab_size)?;
        if a.max_new_tokens >= cfg.max_position_embeddings {
            bail!(
                "--max-new-tokens {} leaves no room for the prompt (max_position_embeddings {})",
                a.max_new_tokens,
                cfg.max_position_embeddings
            );
        }
        let max_prompt = cfg.max_position_embeddings - a.max_new_tokens;
        let mut eos = cfg.eos_token_ids.clone();
        if let Some(e) = codec.eos_id()
            && !eos.contains(&e)
        {
            eos.push(e);
        }
        let pad_id = cfg.pad_token_id.or(codec.pad_id()).unwrap_or(0);
        let total = pending.len();
        for (decoding, qs) in &groups {
            let sampling = match decoding.temperature {
                Some(t) if !decoding.greedy && t > 0.0 => Sampling::Sample {
                    temperature: t as f32,
                    top_k: decoding.top_k,
                    top_p: decoding.top_p.map(|p| p as f32),
                },
                _ => Sampling::Greedy,
            };
            for (b, chunk) in qs.chunks(a.batch_size.max(1)).enumerate() {
                let prompts = chunk
                    .iter()
                    .map(|q| Ok(clip_left(codec.prompt(&q.question)?, max_prompt, "prompt")))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let gen_cfg = GenerationConfig {
                    max_new_tokens: a.max_new_tokens,
                    sampling,
                    seed: a.seed.wrapping_add(b as u64),
                    eos_ids: eos.clone(),
                    pad_id,
                };
                let started = std::time::Instant::now();
                let out = run_generate(&model, &prompts, &gen_cfg, &dev)?;
                let new_tokens: usize = out.new_ids.iter().map(Vec::len).sum();
                for (q, ids) in chunk.iter().zip(&out.new_ids) {
                    let ids: Vec<u32> = ids.iter().copied().filter(|i| !eos.contains(i)).collect();
                    store.append(AnswerRecord {
                        question_id: q.question_id,
                        model_id: model_id.clone(),
                        answer: codec.decode(&ids)?,
                        decoding: decoding.clone(),
                    })?;
                }
                generated += chunk.len();
                eprintln!(
                    "answered {generated}/{total} ({} new tokens in {:.1}s)",
                    new_tokens,
                    started.elapsed().as_secs_f64()
                );
            }
        }
        Ok::<(), anyhow::Error>(())
    })?;
    Ok(generated)
}

// ---------------------------------------------------------------------------------------
// Reward-model judge

/// Raw reward → 1..10: `1 + 9 · sigmoid(r)`.
fn reward_to_score(r: f64) -> f64 {
    1.0 + 9.0 / (1.0 + (-r).exp())
}

/// Scores `(question, answer)` pairs with the reward model in `dir`.
fn rm_scores(
    dir: &Path,
    pairs: &[(&str, &str)],
    device: DeviceSpec,
    dtype: DType,
) -> anyhow::Result<Vec<f64>> {
    let opts = LoadOptions { dtype };
    with_backend!(device, |B, dev| {
        let (model, cfg) = load_scalar_model::<B>(dir, opts, &dev)?;
        let codec = Codec::load(dir, cfg.vocab_size)?;
        let pad = cfg.pad_token_id.or(codec.pad_id());
        // Without a pad id the pooling position is the last one: score rows one by one.
        let batch = if pad.is_some() { 8 } else { 1 };
        let mut out = Vec::with_capacity(pairs.len());
        for chunk in pairs.chunks(batch) {
            let rows = chunk
                .iter()
                .map(|(q, a)| {
                    Ok(clip_left(
                        codec.prompt_response(q, a)?,
                        cfg.max_position_embeddings,
                        "scored conversation",
                    ))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let tokens = TokenBatch::from_rows(&rows, pad.unwrap_or(0), PadSide::Right);
            let r: Vec<f32> = model
                .rewards(&tokens, pad, &dev)
                .into_data()
                .convert::<f32>()
                .into_vec()
                .expect("f32");
            out.extend(r.into_iter().map(f64::from));
        }
        Ok(out)
    })
}

/// A [`ScoreFnJudge`] over precomputed reward-model scores of every stored answer.
fn rm_judge<'a>(
    dir: &Path,
    questions: &[Question],
    answers: impl Iterator<Item = &'a AnswerRecord>,
    a: &AlignbenchArgs,
) -> anyhow::Result<ScoreFnJudge> {
    let by_id: HashMap<u32, &Question> = questions.iter().map(|q| (q.question_id, q)).collect();
    let pairs: Vec<(&str, &str)> = answers
        .filter_map(|r| {
            by_id
                .get(&r.question_id)
                .map(|q| (q.question.as_str(), r.answer.as_str()))
        })
        .collect();
    let raw = rm_scores(dir, &pairs, a.device, a.dtype)?;
    let table: HashMap<(String, String), f64> = pairs
        .iter()
        .zip(raw)
        .map(|(&(q, ans), r)| ((q.to_owned(), ans.to_owned()), r))
        .collect();
    let name = dir
        .canonicalize()
        .unwrap_or_else(|_| dir.to_owned())
        .display()
        .to_string();
    let score: ab::ScoreFn = Box::new(move |q: &Question, answer: &str| {
        table
            .get(&(q.question.clone(), answer.to_owned()))
            .map_or(f64::NAN, |&r| reward_to_score(r))
    });
    Ok(ScoreFnJudge::new(
        format!("rm:{name}+sigmoid-1to10-v1 (not comparable with GPT-4)"),
        questions,
        score,
    ))
}

// ---------------------------------------------------------------------------------------
// rlhf eval pairwise / tabulate

#[derive(Debug, Args)]
struct PairwiseArgs {
    /// Answers of model A (an answers JSONL file).
    #[arg(long)]
    a: PathBuf,
    /// Answers of model B.
    #[arg(long)]
    b: PathBuf,
    /// AlignBench questions (JSONL).
    #[arg(long)]
    questions: PathBuf,
    /// overlap | rm:RM_DIR | openai (an LLM judge asked in both orders, verdicts cached in
    /// OUT/judgments.jsonl).
    #[arg(long, value_parser = parse_judge)]
    judge: JudgeSpec,
    #[command(flatten)]
    api: ApiJudgeArgs,
    /// LLM judge: re-ask up to twice while a verdict cannot be parsed (remaining failures
    /// still count as a tie vote).
    #[arg(long)]
    strict: bool,
    /// Scores closer than this are a tie (rm judge; the overlap judge ties on equal 1–10 scores).
    #[arg(long, default_value_t = 0.0)]
    tie_margin: f64,
    /// `consistent` (win only if preferred in both orders) or `sum`.
    #[arg(long, default_value = "consistent", value_parser = parse_rule)]
    rule: CombineRule,
    /// Seed of the left/right order in the rating sheet (keep it for `tabulate`).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// cpu, cuda or cuda:N (rm judge).
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    device: DeviceSpec,
    /// Output directory (pairwise.md, pairwise.json, rating_sheet.csv; judgments.jsonl for
    /// the LLM judge).
    #[arg(long)]
    out: PathBuf,
}

fn parse_rule(s: &str) -> Result<CombineRule, String> {
    match s {
        "consistent" => Ok(CombineRule::Consistent),
        "sum" => Ok(CombineRule::Sum),
        _ => Err(format!("invalid rule `{s}`: expected consistent or sum")),
    }
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

#[derive(Debug, Serialize)]
struct PairwiseSummary<'a> {
    judge: String,
    comparable_with_gpt4: bool,
    items: usize,
    only_in_one_file: usize,
    net_win_rate: Option<f64>,
    tally: &'a ab::PairwiseTally,
    rating_sheet: PathBuf,
    seed: u64,
    /// LLM judge only: verdicts that could not be parsed (each voted for a tie).
    #[serde(skip_serializing_if = "Option::is_none")]
    parse_failures: Option<usize>,
    /// LLM judge only: items left out because a judge call failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    judge_errors: Option<usize>,
    /// LLM judge only: judgments read from OUT/judgments.jsonl.
    #[serde(skip_serializing_if = "Option::is_none")]
    cached_judgments: Option<usize>,
    /// LLM judge only: how the judge used the two positions.
    #[serde(skip_serializing_if = "Option::is_none")]
    position: Option<ab::PositionStats>,
}

fn pairwise(a: PairwiseArgs) -> anyhow::Result<()> {
    let questions = ab::load_questions(&a.questions)?;
    let (model_a, ans_a) = read_answers(&a.a)?;
    let (model_b, ans_b) = read_answers(&a.b)?;
    if model_a == model_b {
        tracing::warn!(model = %model_a, "both answer files carry the same model id");
    }
    let b_by_id: HashMap<u32, &AnswerRecord> = ans_b.iter().map(|r| (r.question_id, r)).collect();
    let a_by_id: HashMap<u32, &AnswerRecord> = ans_a.iter().map(|r| (r.question_id, r)).collect();
    let mut items = Vec::new();
    for q in &questions {
        if let (Some(x), Some(y)) = (a_by_id.get(&q.question_id), b_by_id.get(&q.question_id)) {
            items.push(PairItem {
                id: q.question_id.to_string(),
                category: q.category.label().to_owned(),
                prompt: q.question.clone(),
                answer_a: x.answer.clone(),
                answer_b: y.answer.clone(),
                reference: Some(q.reference.clone()),
            });
        }
    }
    let only_in_one = a_by_id.len() + b_by_id.len() - 2 * items.len();
    if items.is_empty() {
        bail!("no question is answered in both files");
    }
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let (report, llm, judge_label) = match &a.judge {
        JudgeSpec::OpenAi => {
            let judge = a.api.judge()?;
            let cache = JudgmentCache::open(&a.out.join("judgments.jsonl"))?;
            let options = JudgeAllOptions {
                max_concurrency: a.api.judge_concurrency.max(1),
                strict_reasks: if a.strict { 2 } else { 0 },
            };
            let llm = runtime()?.block_on(ab::evaluate_pairwise_llm(
                &judge,
                &model_a,
                &model_b,
                &items,
                a.rule,
                Some(&cache),
                &options,
            ))?;
            if let Some(first) = llm.judge_errors.first() {
                if llm.report.items.is_empty() {
                    bail!(
                        "the judge failed on every item (first, question {}: {})",
                        first.id,
                        first.error
                    );
                }
                tracing::warn!(
                    failed = llm.judge_errors.len(),
                    "items left out after judge errors; rerun to retry them"
                );
            }
            let label = llm.judge_model.clone();
            (llm.report.clone(), Some(llm), label)
        }
        JudgeSpec::Overlap => {
            let (report, label) = score_pairwise(&a, None, &questions, &items, &model_a, &model_b)?;
            (report, None, label)
        }
        JudgeSpec::Rm(dir) => {
            let (report, label) =
                score_pairwise(&a, Some(dir), &questions, &items, &model_a, &model_b)?;
            (report, None, label)
        }
    };
    let mut md = format!(
        "# Pairwise: {model_a} vs {model_b}\n\nJudge: `{judge_label}` (both orders, rule {:?}).",
        a.rule
    );
    match &llm {
        None => md.push_str(&format!(" **{NOT_COMPARABLE}.**\n\n")),
        Some(l) => md.push_str(&format!(
            " LLM judge with the built-in pairwise prompt (`[[A]]`/`[[B]]`/`[[C]]`).\n\n\
             Unparseable verdicts (counted as a tie vote): {}. Items left out after judge errors: {}. \
             Verdicts for the first / second position / tie: {} / {} / {}; items whose verdict \
             changed when the answers were swapped: {}.\n\n",
            l.parse_failures,
            l.judge_errors.len(),
            l.position.first,
            l.position.second,
            l.position.tie,
            l.position.inconsistent_items
        )),
    }
    md.push_str(&report.tally.to_markdown());
    write(&a.out.join("pairwise.md"), &md)?;
    let json = match &llm {
        Some(l) => serde_json::to_string_pretty(l)?,
        None => serde_json::to_string_pretty(&report)?,
    };
    write(&a.out.join("pairwise.json"), &json)?;
    let sheet = a.out.join("rating_sheet.csv");
    ab::write_rating_sheet(&sheet, &items, a.seed)?;
    print(&PairwiseSummary {
        judge: judge_label,
        comparable_with_gpt4: llm.is_some(),
        items: report.items.len(),
        only_in_one_file: only_in_one,
        net_win_rate: report.tally.overall.net_win_rate(),
        tally: &report.tally,
        rating_sheet: sheet,
        seed: a.seed,
        parse_failures: llm.as_ref().map(|l| l.parse_failures),
        judge_errors: llm.as_ref().map(|l| l.judge_errors.len()),
        cached_judgments: llm.as_ref().map(|l| l.cached),
        position: llm.as_ref().map(|l| l.position),
    })
}

/// Pairwise verdicts from pointwise scores (the reward model in `rm`, else the overlap
/// judge): the higher score wins, scores within `--tie-margin` tie.
fn score_pairwise(
    a: &PairwiseArgs,
    rm: Option<&Path>,
    questions: &[Question],
    items: &[PairItem],
    model_a: &str,
    model_b: &str,
) -> anyhow::Result<(ab::PairwiseReport, String)> {
    let q_by_id: HashMap<String, &Question> = questions
        .iter()
        .map(|q| (q.question_id.to_string(), q))
        .collect();
    // Pointwise scores of every (item, answer text).
    let mut scores: HashMap<(String, String), f64> = HashMap::new();
    let judge_label = match rm {
        None => {
            for it in items {
                let reference = &q_by_id[&it.id].reference;
                for ans in [&it.answer_a, &it.answer_b] {
                    let s = f64::from(ReferenceOverlapJudge::score(ans, reference));
                    scores.insert((it.id.clone(), ans.clone()), s);
                }
            }
            ReferenceOverlapJudge::MODEL_ID.to_owned()
        }
        Some(dir) => {
            let pairs: Vec<(&str, &str)> = items
                .iter()
                .flat_map(|it| {
                    [
                        (it.prompt.as_str(), it.answer_a.as_str()),
                        (it.prompt.as_str(), it.answer_b.as_str()),
                    ]
                })
                .collect();
            let raw = rm_scores(dir, &pairs, a.device, DType::F32)?;
            for (i, r) in raw.into_iter().enumerate() {
                let it = &items[i / 2];
                let ans = if i % 2 == 0 {
                    &it.answer_a
                } else {
                    &it.answer_b
                };
                scores.insert((it.id.clone(), ans.clone()), r);
            }
            format!("rm:{} (raw reward)", dir.display())
        }
    };
    let margin = a.tie_margin;
    let report = ab::evaluate_pairwise(model_a, model_b, items, a.rule, |query| {
        let get = |t: &str| scores[&(query.id.clone(), t.to_owned())];
        let (x, y) = (get(&query.first), get(&query.second));
        Ok(if (x - y).abs() <= margin {
            Preference::Tie
        } else if x > y {
            Preference::First
        } else {
            Preference::Second
        })
    })?;
    Ok((report, judge_label))
}

#[derive(Debug, Args)]
struct TabulateArgs {
    /// A rating sheet filled in by a rater (verdict column: left, right or tie).
    #[arg(long)]
    sheet: PathBuf,
    /// Name of model A (as in the pairwise run).
    #[arg(long, default_value = "A")]
    model_a: String,
    /// Name of model B.
    #[arg(long, default_value = "B")]
    model_b: String,
    /// The seed the sheet was made with.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also write tabulated.md and tabulated.json here.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn tabulate(a: TabulateArgs) -> anyhow::Result<()> {
    let t = ab::read_rating_sheet(&a.sheet, &a.model_a, &a.model_b, a.seed)?;
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        write(
            &dir.join("tabulated.md"),
            &format!(
                "# Human ratings\n\n{}\nUnrated rows: {}\n",
                t.tally.to_markdown(),
                t.unrated
            ),
        )?;
        write(
            &dir.join("tabulated.json"),
            &serde_json::to_string_pretty(&t)?,
        )?;
    }
    print(&serde_json::json!({
        "net_win_rate": t.tally.overall.net_win_rate(),
        "unrated": t.unrated,
        "tally": t.tally,
    }))
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

#[derive(Debug, Clone, Copy, Serialize)]
struct Stat {
    n: usize,
    mean: f64,
    median: f64,
}

fn stat(mut v: Vec<usize>) -> Option<Stat> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let n = v.len();
    let mean = v.iter().sum::<usize>() as f64 / n as f64;
    let median = if n % 2 == 1 {
        v[n / 2] as f64
    } else {
        (v[n / 2 - 1] + v[n / 2]) as f64 / 2.0
    };
    Some(Stat { n, mean, median })
}

#[derive(Debug, Serialize)]
struct LengthRow {
    category: String,
    chars: Option<Stat>,
    tokens: Option<Stat>,
}

#[derive(Debug, Serialize)]
struct ModelLengths {
    model: String,
    file: PathBuf,
    /// Per category (published column order), then `overall`.
    rows: Vec<LengthRow>,
}

fn lengths(a: LengthsArgs) -> anyhow::Result<()> {
    let questions = ab::load_questions(&a.questions)?;
    let cat: HashMap<u32, Category> = questions
        .iter()
        .map(|q| (q.question_id, q.category))
        .collect();
    let tok = a
        .tokenizer
        .as_deref()
        .map(Tokenizer::from_dir)
        .transpose()?;
    let mut models = Vec::new();
    for path in &a.answers {
        let (model, records) = read_answers(path)?;
        let mut chars: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        let mut tokens: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for r in &records {
            let c = cat.get(&r.question_id).with_context(|| {
                format!(
                    "{}: question {} is not in {}",
                    path.display(),
                    r.question_id,
                    a.questions.display()
                )
            })?;
            let col = Category::ALL.iter().position(|x| x == c).unwrap_or(0);
            let n_chars = r.answer.chars().count();
            chars.entry(col).or_default().push(n_chars);
            chars.entry(usize::MAX).or_default().push(n_chars);
            if let Some(t) = &tok {
                let n = t.encode(&r.answer, false)?.len();
                tokens.entry(col).or_default().push(n);
                tokens.entry(usize::MAX).or_default().push(n);
            }
        }
        let rows = chars
            .iter()
            .map(|(&col, v)| LengthRow {
                category: if col == usize::MAX {
                    "overall".to_owned()
                } else {
                    Category::ALL[col].label().to_owned()
                },
                chars: stat(v.clone()),
                tokens: tokens.get(&col).and_then(|t| stat(t.clone())),
            })
            .collect();
        models.push(ModelLengths {
            model,
            file: path.clone(),
            rows,
        });
    }
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        write(&dir.join("lengths.md"), &lengths_markdown(&models))?;
        write(
            &dir.join("lengths.json"),
            &serde_json::to_string_pretty(&models)?,
        )?;
    }
    print(&models)
}

fn lengths_markdown(models: &[ModelLengths]) -> String {
    let f = |s: Option<Stat>, pick: fn(Stat) -> f64| {
        s.map_or("–".to_owned(), |s| format!("{:.1}", pick(s)))
    };
    let mut md = String::from(
        "# Response lengths\n\n| model | category | n | mean chars | median chars | mean tokens | median tokens |\n|---|---|---:|---:|---:|---:|---:|\n",
    );
    for m in models {
        for r in &m.rows {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                m.model,
                r.category,
                r.chars.map_or(0, |s| s.n),
                f(r.chars, |s| s.mean),
                f(r.chars, |s| s.median),
                f(r.tokens, |s| s.mean),
                f(r.tokens, |s| s.median),
            ));
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judge_flag_and_helpers() {
        assert_eq!(parse_judge("overlap"), Ok(JudgeSpec::Overlap));
        assert_eq!(parse_judge("rm:/x"), Ok(JudgeSpec::Rm(PathBuf::from("/x"))));
        assert!(parse_judge("rm:").is_err());
        assert!(parse_judge("gpt").is_err());
        assert!((reward_to_score(0.0) - 5.5).abs() < 1e-12);
        assert!(reward_to_score(-50.0) >= 1.0 && reward_to_score(50.0) <= 10.0);
        let s = stat(vec![3, 1, 2, 10]).unwrap();
        assert_eq!((s.n, s.mean, s.median), (4, 4.0, 2.5));
        assert!(stat(vec![]).is_none());
        assert_eq!(clip_left(vec![1, 2, 3, 4], 2, "x"), vec![3, 4]);
        assert_eq!(Codec::bytes("a\u{e9}", 200), vec![97, 195, 169]);
        assert_eq!(Codec::bytes("\u{e9}", 190), vec![189, 169]);
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
