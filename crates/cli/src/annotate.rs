//! `rlhf annotate …`: pairwise human-preference collection (issue #9).
//!
//! - `pairs`: two sampled responses per prompt from an SFT checkpoint (the core's batched
//!   generation), with the prompt-quality label, written as a candidate-pair Parquet file;
//! - `add-annotator`: creates an account and prints its token (stored hashed);
//! - `serve`: the local annotation web page (`rlhf-annotate`'s axum server);
//! - `export`: the vote journal compacted into the preference-data schema, with agreement
//!   and per-annotator statistics.
//!
//! Generation lives here because it needs burn; the `rlhf-annotate` crate itself never calls it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use burn::tensor::DType;
use clap::{Args, Subcommand};
use rlhf_annotate::{CandidatePair, ExportOptions, PromptInput, ServeConfig};
use rlhf_core::backend::DeviceSpec;
use rlhf_core::checkpoint::{LoadOptions, load_causal_lm};
use rlhf_core::generate::{GenerationConfig, Sampling, generate};
use rlhf_core::tokenizer::{Message as CoreMessage, Tokenizer};
use rlhf_prefdata::{Message, PromptClassifier as _, PromptQuality, Role, RuleBasedClassifier};

use crate::device::{parse_device, parse_dtype, with_backend};

/// `rlhf annotate`.
#[derive(Debug, Args)]
pub(crate) struct AnnotateArgs {
    #[command(subcommand)]
    command: AnnotateCommand,
}

#[derive(Debug, Subcommand)]
enum AnnotateCommand {
    /// Serve the annotation page (binds to localhost).
    Serve(ServeArgs),
    /// Sample two responses per prompt from an SFT model into a candidate-pair file.
    Pairs(PairsArgs),
    /// Create an annotator account (or rotate its token) and print the token once.
    AddAnnotator(AddAnnotatorArgs),
    /// Compact the vote journal into preference data (Parquet) plus agreement statistics.
    Export(ExportArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Candidate pairs (from `annotate pairs`).
    #[arg(long)]
    pairs: PathBuf,
    /// Session directory: vote journal, accounts, server key.
    #[arg(long, visible_alias = "dir")]
    out: PathBuf,
    /// Address to listen on (loopback unless --allow-remote).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Annotators per pair (N).
    #[arg(long, default_value_t = 3)]
    per_pair: usize,
    /// Skip pairs whose prompt is not clear and answerable (prompt-quality check).
    #[arg(long)]
    skip_flagged: bool,
    /// Seconds a shown pair stays reserved for its annotator.
    #[arg(long, default_value_t = 900)]
    lease_secs: u64,
    /// Session lifetime in hours.
    #[arg(long, default_value_t = 12)]
    session_hours: u64,
    /// Allow a non-loopback --addr (plain HTTP: put a TLS proxy in front).
    #[arg(long)]
    allow_remote: bool,
}

#[derive(Debug, Args)]
struct AddAnnotatorArgs {
    /// Session directory.
    #[arg(long, visible_alias = "dir")]
    out: PathBuf,
    /// Login name (A-Z a-z 0-9 _ . -, at most 64).
    #[arg(long)]
    name: String,
    /// Issue a new token for an existing annotator (the old one stops working).
    #[arg(long)]
    rotate: bool,
}

#[derive(Debug, Args)]
struct ExportArgs {
    /// Session directory (as given to `serve --out`).
    #[arg(long)]
    dir: PathBuf,
    /// Output Parquet file (prefdata schema); the report goes next to it.
    #[arg(long)]
    out: PathBuf,
    /// Pairs file, if it moved since it was served (must have the same SHA-256).
    #[arg(long)]
    pairs: Option<PathBuf>,
    /// Pairs with fewer live votes are left out.
    #[arg(long, default_value_t = 1)]
    min_votes: usize,
    /// Shared items an annotator pair needs to enter the Cohen's-kappa average.
    #[arg(long, default_value_t = 2)]
    min_shared: usize,
}

#[derive(Debug, Args)]
struct PairsArgs {
    /// SFT checkpoint directory (config.json, safetensors, tokenizer.json).
    #[arg(long)]
    model: PathBuf,
    /// Prompts, JSON Lines: `prompt` (or AlignBench `question`), optional `id`, `history`,
    /// `category`, `language`.
    #[arg(long)]
    prompts: PathBuf,
    /// Output candidate-pair Parquet file.
    #[arg(long)]
    out: PathBuf,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    device: DeviceSpec,
    /// Parameter dtype on the device: f32, bf16 or f16.
    #[arg(long, default_value = "f32", value_parser = parse_dtype)]
    dtype: DType,
    /// Upper bound on new tokens per response.
    #[arg(long, default_value_t = 512)]
    max_new_tokens: usize,
    /// Sampling temperature.
    #[arg(long, default_value_t = 0.9)]
    temperature: f32,
    /// Nucleus sampling threshold (1 = off).
    #[arg(long, default_value_t = 0.95)]
    top_p: f32,
    /// Top-k sampling (off unless given).
    #[arg(long)]
    top_k: Option<usize>,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Prompts per generation batch (two rows each).
    #[arg(long, default_value_t = 4)]
    batch_size: usize,
    /// Extra attempts when both samples of a prompt come out identical.
    #[arg(long, default_value_t = 2)]
    max_resamples: usize,
    /// Use only the first N prompts.
    #[arg(long)]
    limit: Option<usize>,
}

pub(crate) fn run(a: AnnotateArgs) -> anyhow::Result<()> {
    match a.command {
        AnnotateCommand::Serve(s) => serve(s),
        AnnotateCommand::Pairs(p) => pairs(p),
        AnnotateCommand::AddAnnotator(x) => {
            let token = rlhf_annotate::add_annotator(&x.out, &x.name, x.rotate)
                .with_context(|| format!("adding annotator to {}", x.out.display()))?;
            println!(
                "{}",
                serde_json::json!({"name": x.name, "token": token, "dir": x.out,
                    "note": "give this token to the annotator; only its hash is stored"})
            );
            Ok(())
        }
        AnnotateCommand::Export(e) => export(e),
    }
}

fn serve(s: ServeArgs) -> anyhow::Result<()> {
    let cfg = ServeConfig {
        pairs: s.pairs,
        dir: s.out,
        addr: s.addr,
        annotators_per_pair: s.per_pair,
        skip_flagged: s.skip_flagged,
        lease_secs: s.lease_secs,
        session_hours: s.session_hours,
        allow_remote: s.allow_remote,
    };
    let stats = rlhf_annotate::serve_blocking(cfg, |info| {
        eprintln!(
            "annotation server: open {} ({} pairs, {} skipped, {} per pair, {} votes so far, {} annotators); Ctrl-C stops it",
            info.url,
            info.pairs,
            info.skipped,
            info.annotators_per_pair,
            info.votes_replayed,
            info.annotators
        );
    })?;
    println!(
        "{}",
        serde_json::json!({"stopped": true, "journal_lines_written": stats.lines, "fsyncs": stats.syncs})
    );
    Ok(())
}

fn export(e: ExportArgs) -> anyhow::Result<()> {
    let opts = ExportOptions {
        min_votes: e.min_votes,
        min_shared: e.min_shared,
        ..ExportOptions::default()
    };
    let rep = rlhf_annotate::export(&e.dir, e.pairs.as_deref(), &e.out, &opts)
        .with_context(|| format!("exporting {}", e.dir.display()))?;
    eprintln!("{}", rep.to_markdown());
    println!("{}", serde_json::to_string(&rep)?);
    Ok(())
}

fn core_messages(history: &[Message], prompt: &str) -> Vec<CoreMessage> {
    let mut m: Vec<CoreMessage> = history
        .iter()
        .map(|h| match h.role {
            Role::System => CoreMessage::system(h.content.clone()),
            Role::User => CoreMessage::user(h.content.clone()),
            Role::Assistant => CoreMessage::assistant(h.content.clone()),
        })
        .collect();
    m.push(CoreMessage::user(prompt));
    m
}

/// The prompt's token ids: through the chat template when the tokenizer has one, else as
/// `Human: …\n\nAssistant: …` text.
fn encode(tok: &Tokenizer, p: &PromptInput) -> anyhow::Result<Vec<u32>> {
    if tok.has_chat_template() {
        return Ok(tok.encode_prompt(&core_messages(&p.history, &p.prompt))?);
    }
    let mut text = String::new();
    for h in &p.history {
        let who = match h.role {
            Role::System => "System",
            Role::User => "Human",
            Role::Assistant => "Assistant",
        };
        text.push_str(&format!("{who}: {}\n\n", h.content));
    }
    text.push_str(&format!("Human: {}\n\nAssistant:", p.prompt));
    Ok(tok.encode(&text, true)?)
}

fn pairs(a: PairsArgs) -> anyhow::Result<()> {
    if a.batch_size == 0 {
        bail!("--batch-size must be > 0");
    }
    let mut prompts = rlhf_annotate::read_prompts(&a.prompts)?;
    if let Some(n) = a.limit {
        prompts.truncate(n);
    }
    if prompts.is_empty() {
        bail!("{}: no prompts", a.prompts.display());
    }
    if !a.model.join("tokenizer.json").is_file() {
        bail!(
            "{}: no tokenizer.json; `annotate pairs` needs the model's tokenizer to read prompts and write responses",
            a.model.display()
        );
    }
    let tok = Tokenizer::from_dir(&a.model)?;
    let sampling = Sampling::Sample {
        temperature: a.temperature,
        top_k: a.top_k,
        top_p: (a.top_p < 1.0).then_some(a.top_p),
    };
    let model_name = a.model.file_name().map_or_else(
        || a.model.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let generator = format!(
        "model={model_name} temperature={} top_p={} top_k={:?} max_new_tokens={} seed={}",
        a.temperature, a.top_p, a.top_k, a.max_new_tokens, a.seed
    );
    let opts = LoadOptions { dtype: a.dtype };
    let (rows, summary) = with_backend!(a.device, |B, dev| {
        let (model, cfg) = load_causal_lm::<B>(&a.model, opts, &dev)?;
        let mut eos = cfg.eos_token_ids.clone();
        if let Some(e) = tok.eos_id()
            && !eos.contains(&e)
        {
            eos.push(e);
        }
        let pad_id = cfg.pad_token_id.or(tok.pad_id()).unwrap_or(0);
        // Encode every prompt; those too long for the position table are skipped.
        let mut encoded = Vec::new();
        let mut too_long = Vec::new();
        for p in &prompts {
            let ids = encode(&tok, p).with_context(|| format!("prompt {:?}", p.id))?;
            if ids.is_empty() || ids.len() + a.max_new_tokens > cfg.max_position_embeddings {
                too_long.push(p.id.clone());
            } else {
                encoded.push((p, ids));
            }
        }
        if !too_long.is_empty() {
            tracing::warn!(
                count = too_long.len(),
                first = %too_long[0],
                "prompts skipped: empty or longer than max_position_embeddings - max_new_tokens"
            );
        }
        let mut rows = Vec::with_capacity(encoded.len());
        let (mut resampled, mut identical) = (0usize, 0usize);
        for (b, chunk) in encoded.chunks(a.batch_size).enumerate() {
            let mut texts: Vec<Option<(String, String)>> = vec![None; chunk.len()];
            for attempt in 0..=a.max_resamples {
                let todo: Vec<usize> = (0..chunk.len())
                    .filter(|&i| match &texts[i] {
                        None => true,
                        Some((x, y)) => attempt > 0 && rlhf_prefdata::normalized_eq(x, y),
                    })
                    .collect();
                if todo.is_empty() {
                    break;
                }
                if attempt > 0 {
                    resampled += todo.len();
                }
                let batch: Vec<Vec<u32>> = todo
                    .iter()
                    .flat_map(|&i| [chunk[i].1.clone(), chunk[i].1.clone()])
                    .collect();
                let gen_cfg = GenerationConfig {
                    max_new_tokens: a.max_new_tokens,
                    sampling,
                    seed: a
                        .seed
                        .wrapping_add((b as u64) << 16)
                        .wrapping_add(attempt as u64),
                    eos_ids: eos.clone(),
                    pad_id,
                };
                let out = generate(&model, &batch, &gen_cfg, &dev)?;
                for (k, &i) in todo.iter().enumerate() {
                    let x = tok.decode(&out.new_ids[2 * k], true)?;
                    let y = tok.decode(&out.new_ids[2 * k + 1], true)?;
                    texts[i] = Some((x.trim().to_owned(), y.trim().to_owned()));
                }
            }
            for ((p, _), t) in chunk.iter().zip(texts) {
                let (x, y) = t.expect("every prompt was generated");
                if rlhf_prefdata::normalized_eq(&x, &y) {
                    identical += 1;
                }
                rows.push(CandidatePair {
                    pair_id: p.id.clone(),
                    source: format!("sft:{model_name}"),
                    language: p.language.clone(),
                    category: p.category.clone(),
                    history: p.history.clone(),
                    prompt: p.prompt.clone(),
                    response_a: x,
                    response_b: y,
                    prompt_quality: None,
                    generator: Some(generator.clone()),
                });
            }
            tracing::info!(done = rows.len(), of = encoded.len(), "pairs generated");
        }
        anyhow::Ok((rows, (too_long.len(), resampled, identical)))
    })?;
    let mut rows = rows;
    let classifier = RuleBasedClassifier::default();
    let mut flagged = 0;
    for r in &mut rows {
        let q = classifier.classify_in_context(&r.history, &r.prompt);
        flagged += usize::from(q != PromptQuality::ClearAndAnswerable);
        r.prompt_quality = Some(q);
    }
    write_out(&a.out, &rows)?;
    let (skipped_too_long, resampled, identical) = summary;
    println!(
        "{}",
        serde_json::json!({
            "out": a.out,
            "pairs": rows.len(),
            "skipped_too_long": skipped_too_long,
            "resampled": resampled,
            "identical_after_resampling": identical,
            "flagged_prompts": flagged,
            "generator": generator,
        })
    );
    Ok(())
}

fn write_out(path: &Path, rows: &[CandidatePair]) -> anyhow::Result<()> {
    rlhf_annotate::write_pairs(path, rows).with_context(|| format!("writing {}", path.display()))
}
