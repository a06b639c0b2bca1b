//! `rlhf data …`: import preference data into Parquet (with cleaning, prompt-quality labels,
//! splits and token lengths), statistics (the paper's Table 2) and export back to TRL JSONL.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use rlhf_core::tokenizer::Tokenizer;
use rlhf_prefdata::{
    CharCounter, CleanOptions, Comparison, HistogramOptions, ImportOptions, RankedPairs,
    RuleBasedClassifier, RuleConfig, SplitConfig, TokenCounter, TrlFormat, assign_splits,
    clean_comparisons, compute_stats, export_trl, fill_token_lengths, filter_prompts,
    import_alignbench, import_hh_rlhf, import_oasst, import_trl, label_prompt_quality,
    length_diff_histogram_svg, read_comparisons, write_comparisons,
};

/// `rlhf data`.
#[derive(Debug, Args)]
pub(crate) struct DataArgs {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(Debug, Subcommand)]
enum DataCommand {
    /// Import files into a cleaned, labelled, split Parquet file.
    Import(ImportArgs),
    /// Statistics of a Parquet file (Markdown, JSON and a length-difference histogram).
    Stats(StatsArgs),
    /// Export a Parquet file to TRL-style JSONL.
    Export(ExportArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// Anthropic HH-RLHF JSONL(.gz) with full `chosen`/`rejected` dialogues.
    Hh,
    /// OASST-style ranked replies (`instruction`, `output: [best first]`, `history`).
    Oasst,
    /// TRL JSONL: `prompt`/`chosen`/`rejected` as strings or message lists.
    Trl,
    /// AlignBench question files (a prompt set, written as JSONL).
    Alignbench,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Pairs {
    /// Best vs second best.
    Top2,
    /// Every ordered pair of ranked replies.
    All,
}

#[derive(Debug, Args)]
struct ImportArgs {
    /// Input format.
    #[arg(long, value_enum)]
    format: Format,
    /// Input files.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Output file (`.parquet`; `.jsonl` for `--format alignbench`).
    #[arg(long)]
    out: PathBuf,
    /// Fail on the first bad record instead of reporting and skipping it.
    #[arg(long)]
    strict: bool,
    /// OASST: which pairs to build from ranked replies.
    #[arg(long, value_enum, default_value = "top2")]
    pairs: Pairs,
    /// Keep everything: no tie/duplicate/cycle/empty cleaning.
    #[arg(long)]
    no_clean: bool,
    /// Drop comparisons whose prompt is not rated clear and answerable.
    #[arg(long)]
    filter_prompts: bool,
    /// train,valid,test fractions of the prompt-hash split.
    #[arg(long, default_value = "0.8,0.1,0.1")]
    split: String,
    /// Seed of the split.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Directory with tokenizer.json, to fill the token-length columns.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Source name stored in each row (defaults to the format's).
    #[arg(long)]
    source: Option<String>,
    /// Language stored in each row.
    #[arg(long)]
    language: Option<String>,
    /// Where to write the import report (JSON; Markdown goes next to it as .md).
    #[arg(long)]
    report: Option<PathBuf>,
}

fn parse_split(s: &str, seed: u64) -> anyhow::Result<SplitConfig> {
    let parts: Vec<f64> = s
        .split(',')
        .map(|p| p.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .with_context(|| format!("--split `{s}`: expected three numbers like 0.8,0.1,0.1"))?;
    if parts.len() != 3 {
        bail!("--split `{s}`: expected three numbers like 0.8,0.1,0.1");
    }
    let cfg = SplitConfig {
        seed,
        train: parts[0],
        valid: parts[1],
        test: parts[2],
    };
    cfg.validate().with_context(|| format!("--split `{s}`"))?;
    Ok(cfg)
}

fn import(a: ImportArgs) -> anyhow::Result<()> {
    for p in &a.inputs {
        if !p.exists() {
            bail!("{}: no such file", p.display());
        }
    }
    let opts = ImportOptions {
        strict: a.strict,
        source: a.source.clone(),
        language: a.language.clone(),
        ..ImportOptions::default()
    };
    if let Format::Alignbench = a.format {
        let mut all = Vec::new();
        let mut report = None::<rlhf_prefdata::ImportReport>;
        for p in &a.inputs {
            let (rows, r) = import_alignbench(p, &opts)?;
            checked(&r, a.strict)?;
            all.extend(rows);
            match &mut report {
                Some(acc) => acc.merge(r),
                None => report = Some(r),
            }
        }
        let mut text = String::new();
        for r in &all {
            text.push_str(&serde_json::to_string(r)?);
            text.push('\n');
        }
        rlhf_core::io::write_atomic(&a.out, text.as_bytes())?;
        let report = report.expect("at least one input");
        eprint!("{}", report.to_markdown());
        println!("{}", report.to_json()?);
        return Ok(());
    }
    let split = parse_split(&a.split, a.seed)?;
    let mut rows: Vec<Comparison> = Vec::new();
    let mut report: Option<rlhf_prefdata::ImportReport> = None;
    for p in &a.inputs {
        let r = match a.format {
            Format::Hh => import_hh_rlhf(p, &opts, &mut rows)?,
            Format::Oasst => {
                let pairs = match a.pairs {
                    Pairs::Top2 => RankedPairs::TopTwo,
                    Pairs::All => RankedPairs::AllPairs,
                };
                import_oasst(p, &opts, pairs, &mut rows)?
            }
            Format::Trl => import_trl(p, &opts, &mut rows)?,
            Format::Alignbench => unreachable!("handled above"),
        };
        checked(&r, a.strict)?;
        match &mut report {
            Some(acc) => acc.merge(r),
            None => report = Some(r),
        }
    }
    let mut report = report.expect("at least one input");
    if !a.no_clean {
        let (kept, clean) = clean_comparisons(rows, &CleanOptions::default());
        report.absorb_clean(&clean);
        rows = kept;
    }
    let classifier = RuleBasedClassifier::new(RuleConfig::default());
    label_prompt_quality(&mut rows, &classifier);
    if a.filter_prompts {
        let (kept, q) = filter_prompts(rows, &classifier);
        report.absorb_quality(&q);
        rows = kept;
    }
    // Everything may still go in cleaning or the prompt filter.
    report.ensure_kept(a.strict)?;
    assign_splits(&mut rows, &split)?;
    if let Some(dir) = &a.tokenizer {
        let tok = Tokenizer::from_dir(dir)?;
        for c in &mut rows {
            fill_token_lengths(c, &tok);
        }
    }
    write_comparisons(&a.out, rows.iter(), Default::default())?;
    tracing::info!(rows = rows.len(), out = %a.out.display(), "wrote");
    let md = report.to_markdown();
    let json = report.to_json()?;
    if let Some(path) = &a.report {
        rlhf_core::io::write_atomic(path, json.as_bytes())?;
        rlhf_core::io::write_atomic(&path.with_extension("md"), md.as_bytes())?;
    }
    eprint!("{md}");
    println!("{json}");
    Ok(())
}

/// One input file's report, checked: an input with records but no pair kept is an error, and
/// so is an empty one with `strict`; an empty one without it is only logged.
fn checked(r: &rlhf_prefdata::ImportReport, strict: bool) -> anyhow::Result<()> {
    r.ensure_kept(strict)?;
    if r.records == 0 {
        tracing::warn!(files = %r.files.join(", "), "no records in the input (empty file)");
    }
    Ok(())
}

#[derive(Debug, Args)]
struct StatsArgs {
    /// A Parquet file written by `data import`.
    file: PathBuf,
    /// Directory with tokenizer.json (default: characters).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Where to write stats.md, stats.json and length_diff.svg (default: next to the file).
    #[arg(long)]
    out_dir: Option<PathBuf>,
}

fn write_stats<C: TokenCounter>(
    rows: &[Comparison],
    counter: C,
    name: &str,
    dir: &Path,
) -> anyhow::Result<String> {
    let (stats, diffs) = compute_stats(rows.iter(), counter, name);
    let json = stats.to_json()?;
    rlhf_core::io::write_atomic(&dir.join("stats.json"), json.as_bytes())?;
    rlhf_core::io::write_atomic(&dir.join("stats.md"), stats.to_markdown().as_bytes())?;
    let unit = if name == "characters" {
        "characters"
    } else {
        "tokens"
    };
    let opts = HistogramOptions {
        x_label: format!("{unit} (chosen - rejected)"),
        ..HistogramOptions::default()
    };
    let svg = length_diff_histogram_svg(&diffs, &opts)?;
    rlhf_core::io::write_atomic(&dir.join("length_diff.svg"), svg.as_bytes())?;
    eprint!("{}", stats.to_markdown());
    Ok(json)
}

fn stats(a: StatsArgs) -> anyhow::Result<()> {
    let rows = read_comparisons(&a.file)?;
    let dir = match &a.out_dir {
        Some(d) => d.clone(),
        None => a
            .file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| ".".into()),
    };
    let json = match &a.tokenizer {
        Some(t) => write_stats(
            &rows,
            Tokenizer::from_dir(t)?,
            &t.display().to_string(),
            &dir,
        )?,
        None => write_stats(&rows, CharCounter, "characters", &dir)?,
    };
    println!("{json}");
    Ok(())
}

#[derive(Debug, Args)]
struct ExportArgs {
    /// A Parquet file written by `data import`.
    file: PathBuf,
    /// Output JSONL.
    #[arg(long)]
    out: PathBuf,
    /// String prompts instead of message lists.
    #[arg(long)]
    strings: bool,
}

fn export(a: ExportArgs) -> anyhow::Result<()> {
    let rows = read_comparisons(&a.file)?;
    let format = if a.strings {
        TrlFormat::Standard
    } else {
        TrlFormat::Conversational
    };
    let n = export_trl(&a.out, rows.iter(), format)?;
    println!("{}", serde_json::json!({ "written": n, "out": a.out }));
    Ok(())
}

pub(crate) fn run(a: DataArgs) -> anyhow::Result<()> {
    match a.command {
        DataCommand::Import(a) => import(a),
        DataCommand::Stats(a) => stats(a),
        DataCommand::Export(a) => export(a),
    }
}
