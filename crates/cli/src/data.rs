//! `rlhf data …`: import preference data into Parquet (with cleaning, prompt-quality labels,
//! splits and token lengths), statistics (the paper's Table 2) and export back to TRL JSONL.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use rlhf_core::io::write_atomic;
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
    /// Replace existing output files (an input is never replaced).
    #[arg(long)]
    force: bool,
}

/// Refuses to write any of `outputs` when it is one of `inputs` (the same file through
/// another path, a symbolic or a hard link included), or, without `force`, when it exists.
fn check_outputs(outputs: &[&Path], inputs: &[&Path], force: bool) -> anyhow::Result<()> {
    for (i, out) in outputs.iter().enumerate() {
        for input in inputs.iter().chain(&outputs[..i]) {
            if same_file(out, input) {
                bail!(
                    "{}: is the same file as the input {}; refusing to overwrite an input",
                    out.display(),
                    input.display()
                );
            }
        }
        if !force && out.symlink_metadata().is_ok() {
            bail!(
                "{}: already exists; pass --force to replace it",
                out.display()
            );
        }
    }
    Ok(())
}

/// Whether `a` and `b` name the same file: equal canonical paths (`.`, `..`, symbolic links
/// resolved) or, on Unix, the same device and inode (hard links).
fn same_file(a: &Path, b: &Path) -> bool {
    if a == b {
        return true;
    }
    if let (Ok(x), Ok(y)) = (a.canonicalize(), b.canonicalize())
        && x == y
    {
        return true;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return x.dev() == y.dev() && x.ino() == y.ino();
        }
    }
    false
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
    let report_md = a.report.as_ref().map(|p| p.with_extension("md"));
    let mut outputs = vec![a.out.as_path()];
    outputs.extend(a.report.as_deref());
    outputs.extend(report_md.as_deref());
    let inputs: Vec<&Path> = a.inputs.iter().map(PathBuf::as_path).collect();
    check_outputs(&outputs, &inputs, a.force)?;
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
        write_atomic(&a.out, text.as_bytes())?;
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
        let tok = CoreTokens(Tokenizer::from_dir(dir)?);
        for c in &mut rows {
            fill_token_lengths(c, &tok);
        }
    }
    write_comparisons(&a.out, rows.iter(), Default::default())?;
    tracing::info!(rows = rows.len(), out = %a.out.display(), "wrote");
    let md = report.to_markdown();
    let json = report.to_json()?;
    if let (Some(path), Some(md_path)) = (&a.report, &report_md) {
        write_atomic(path, json.as_bytes())?;
        write_atomic(md_path, md.as_bytes())?;
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
    /// Replace existing output files.
    #[arg(long)]
    force: bool,
}

const STATS_FILES: [&str; 3] = ["stats.json", "stats.md", "length_diff.svg"];

fn write_stats<C: TokenCounter>(
    rows: &[Comparison],
    counter: C,
    name: &str,
    dir: &Path,
) -> anyhow::Result<String> {
    let (stats, diffs) = compute_stats(rows.iter(), counter, name);
    let json = stats.to_json()?;
    write_atomic(&dir.join("stats.json"), json.as_bytes())?;
    write_atomic(&dir.join("stats.md"), stats.to_markdown().as_bytes())?;
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
    write_atomic(&dir.join("length_diff.svg"), svg.as_bytes())?;
    eprint!("{}", stats.to_markdown());
    Ok(json)
}

fn stats(a: StatsArgs) -> anyhow::Result<()> {
    let dir = match &a.out_dir {
        Some(d) => d.clone(),
        None => a
            .file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| ".".into()),
    };
    let outputs = STATS_FILES.map(|f| dir.join(f));
    let outputs: Vec<&Path> = outputs.iter().map(PathBuf::as_path).collect();
    check_outputs(&outputs, &[a.file.as_path()], a.force)?;
    let rows = read_comparisons(&a.file)?;
    let json = match &a.tokenizer {
        Some(t) => write_stats(
            &rows,
            CoreTokens(Tokenizer::from_dir(t)?),
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
    /// Replace an existing output file (the input is never replaced).
    #[arg(long)]
    force: bool,
}

fn export(a: ExportArgs) -> anyhow::Result<()> {
    check_outputs(&[a.out.as_path()], &[a.file.as_path()], a.force)?;
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

/// A core tokenizer as prefdata's [`TokenCounter`] (prefdata links no burn, so the bridge
/// lives here, at the edge).
struct CoreTokens(Tokenizer);

impl TokenCounter for CoreTokens {
    fn count(&self, text: &str) -> usize {
        self.0.encode(text, false).map(|ids| ids.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlhf_core::tokenizer::{BpeTrainingConfig, train_bpe};

    #[test]
    fn the_core_tokenizer_counts_tokens() {
        let corpus = [
            "What is the capital of France? Paris is the capital.",
            "Tell me a joke. No. 你好 世界",
        ];
        let cfg = BpeTrainingConfig {
            vocab_size: 400,
            min_frequency: 1,
            special_tokens: vec!["<|endoftext|>".into()],
        };
        let tok = CoreTokens(train_bpe(corpus.iter().cycle().take(20), &cfg).unwrap());
        let n = tok.count("What is the capital of France?");
        assert!(n > 0 && n < "What is the capital of France?".len());
    }
}
