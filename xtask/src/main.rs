//! `cargo xtask`: the task runner of the workspace (matklad's cargo-xtask pattern).
//!
//! It stays small (clap + anyhow) and never links burn: model work is done by the `rlhf`
//! binary (crate `rlhf-cli`), which xtask builds in release mode and runs, adding
//! `--features cuda` when a `--device cuda…` flag is given. stdout of model commands is the
//! binary's JSON; cargo's build output goes to stderr.
//!
//! ```text
//! cargo xtask train                          # the whole pipeline (stages listed below)
//! cargo xtask train reward --train PAIRS.parquet --run-dir DIR [--config RM.json] [--model DIR | --init tiny-llama]
//! cargo xtask train ppo --config PPO.toml [--run-dir DIR] [--stop-after N] [--device cuda]   (docs/ppo.md)
//! cargo xtask logprobs --model DIR --input FILE.json [--device cpu|cuda[:N]]
//! cargo xtask generate --model DIR (--prompt TEXT | --prompt-ids FILE.json) [--max-new-tokens N]
//!                      [--greedy | --temperature T --top-p P --seed S]
//! cargo xtask score    --model DIR --input FILE.json
//! cargo xtask bench core [--device cuda] [--out FILE.json]
//! cargo xtask data import --format hh|oasst|trl|alignbench IN... --out OUT.parquet [--strict]
//! cargo xtask data gen-world [--seed N] [--out data/world] [--train N] [--eval N] [--check]
//! cargo xtask data stats FILE.parquet [--tokenizer DIR]
//! cargo xtask data export FILE.parquet --out OUT.jsonl
//! cargo xtask annotate pairs --model DIR --prompts FILE.jsonl --out PAIRS.parquet
//! cargo xtask annotate add-annotator --out DIR --name NAME
//! cargo xtask annotate serve --pairs PAIRS.parquet --out DIR [--addr 127.0.0.1:8080]
//! cargo xtask annotate export --dir DIR --out PREFS.parquet
//! ```
//!
//! Set `RLHF_PROFILE=dev` to use the dev profile instead of release (faster to build).

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "Task runner of the RLHF workspace")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Run the RLHF pipeline, or one stage (`cargo xtask train --help` lists the stages).
    #[command(disable_help_flag = true)]
    Train {
        /// Arguments for the pipeline.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Token log-probs of sequences: `--model DIR --input FILE.json`.
    Logprobs {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Generate continuations: `--model DIR --prompt TEXT | --prompt-ids FILE.json`.
    Generate {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Scalar (reward) scores: `--model DIR --input FILE.json`.
    Score {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Preference data: `import --format hh|oasst|trl|alignbench IN... --out OUT`, `stats FILE`, `export FILE --out OUT.jsonl`, `gen-world [--seed N] [--out DIR]`.
    Data {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Evaluation: `alignbench --model DIR --judge overlap|rm:DIR|openai ...`, `pairwise ...`, `tabulate ...`, `lengths ...`.
    Eval {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Human preference collection: `pairs --model DIR --prompts FILE --out PAIRS`, `add-annotator --out DIR --name N`, `serve --pairs PAIRS --out DIR`, `export --dir DIR --out PREFS`.
    Annotate {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Benchmarks: `core`.
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// Stages of the paper's pipeline and whether this build has them.
/// The pipeline's stages (the authoritative list is `rlhf pipeline`'s; this one is for help).
const STAGES: &[(&str, &str)] = &[
    (
        "data",
        "import, clean, prompt quality, split, statistics (Table 2)",
    ),
    (
        "tokenizer",
        "byte-level BPE on the bundled text (scratch start only)",
    ),
    (
        "sft",
        "SFT start point trained from scratch on the demonstrations",
    ),
    (
        "rm",
        "length balancing + reward model with the score prior (Table 5)",
    ),
    ("rm_unbalanced", "ablation: RM without balancing"),
    (
        "sft_chosen",
        "control: SFT trained further on the pairs' chosen replies",
    ),
    ("ppo", "reference reward, PPO with KL and the NTP term"),
    (
        "ppo_noref",
        "ablation: PPO without the reference reward (Figure 4)",
    ),
    (
        "dpo_pairs",
        "k SFT samples per prompt, best vs worst by the RM",
    ),
    (
        "dpo",
        "DPO on the RM-labelled pairs, or on the annotator's ([data].dpo_data)",
    ),
    (
        "eval",
        "gold-judge scores per category, win/tie/lose vs SFT (Table 4), lengths (Table 6)",
    ),
    ("report", "runs/<id>/report.html and report.md"),
];

fn run_rlhf(sub: &str, args: &[String]) -> anyhow::Result<ExitCode> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let cuda = args.iter().any(|a| a.starts_with("cuda"))
        || args.iter().any(|a| a.starts_with("--device=cuda"));
    let mut cmd = Command::new(cargo);
    cmd.arg("run")
        .arg("--quiet")
        .args(["-p", "rlhf-cli", "--bin", "rlhf"]);
    match std::env::var("RLHF_PROFILE").as_deref() {
        Ok("dev") => {}
        _ => {
            cmd.arg("--release");
        }
    }
    if cuda {
        cmd.args(["--features", "cuda"]);
    }
    cmd.arg("--").arg(sub).args(args);
    let status = cmd.status().context("spawning cargo")?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(c) => ExitCode::from(c.clamp(1, 255) as u8),
        None => ExitCode::FAILURE,
    })
}

fn train(args: &[String]) -> anyhow::Result<ExitCode> {
    // One stage on its own: `cargo xtask train <stage> ...`.
    if let Some((stage, rest)) = args.split_first() {
        let cmd = match stage.as_str() {
            "reward" | "rm" => Some("train-reward"),
            "dpo" => Some("train-dpo"),
            "dpo-pairs" => Some("dpo-pairs"),
            "ppo" => Some("train-ppo"),
            "sft" => Some("train-sft"),
            "tokenizer" => Some("train-tokenizer"),
            _ => None,
        };
        if let Some(cmd) = cmd {
            return run_rlhf(cmd, rest);
        }
    }
    if args.iter().any(|a| a == "--help" || a == "-h") {
        eprintln!(
            "cargo xtask train [--config configs/NAME.toml] [--device cuda] [--stages a,b] \
             [--resume RUN] [--run-id ID]\n\n\
             Runs the whole ChatGLM-RLHF pipeline (default: the embedded default on CPU). Stages:"
        );
        for (name, what) in STAGES {
            eprintln!("  {name:<14} {what}");
        }
        eprintln!(
            "\nOne stage on its own: cargo xtask train reward|dpo|dpo-pairs|ppo|sft|tokenizer ... \
             (see --help of each)."
        );
        return Ok(ExitCode::SUCCESS);
    }
    run_rlhf("pipeline", args)
}

/// `cargo xtask data gen-world`: generates the embedded default's assistant world (handled
/// here, not by the `rlhf` binary: it needs no model code).
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask data gen-world",
    about = "Generate the bilingual assistant world (prompts, SFT, pairs, gold judge) from a seed"
)]
struct GenWorld {
    /// Seed of every random stream.
    #[arg(long, default_value_t = rlhf_world::DEFAULT_SEED)]
    seed: u64,
    /// Output directory (default: data/world at the workspace root).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Training prompts.
    #[arg(long, default_value_t = 3000)]
    train: usize,
    /// Held-out evaluation prompts.
    #[arg(long, default_value_t = 200)]
    eval: usize,
    /// Write nothing; fail if the files in the output directory differ from what this seed
    /// generates (for CI: the committed files are up to date).
    #[arg(long)]
    check: bool,
}

fn gen_world(args: &[String]) -> anyhow::Result<ExitCode> {
    let a = GenWorld::try_parse_from(
        std::iter::once("gen-world".to_owned()).chain(args.iter().cloned()),
    )
    .unwrap_or_else(|e| e.exit());
    let out = a.out.unwrap_or_else(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask lives in the workspace root");
        root.join("data").join("world")
    });
    let cfg = rlhf_world::WorldConfig {
        seed: a.seed,
        train_prompts: a.train,
        eval_prompts: a.eval,
        ..rlhf_world::WorldConfig::default()
    };
    let t0 = std::time::Instant::now();
    let data = rlhf_world::Dataset::generate(&cfg).context("generating the world")?;
    if a.check {
        let mut stale = Vec::new();
        for (name, bytes) in data.files() {
            let path = out.join(name);
            match std::fs::read(&path) {
                Ok(on_disk) if on_disk == bytes => {}
                _ => stale.push(path.display().to_string()),
            }
        }
        if !stale.is_empty() {
            bail!(
                "out of date (rerun `cargo xtask data gen-world --seed {}`): {}",
                a.seed,
                stale.join(", ")
            );
        }
        eprintln!("{}: up to date (seed {})", out.display(), a.seed);
        return Ok(ExitCode::SUCCESS);
    }
    let written = data
        .write(&out)
        .with_context(|| format!("writing {}", out.display()))?;
    let total: u64 = written.iter().map(|(_, n)| n).sum();
    for (path, n) in &written {
        eprintln!("  {:>9} B  {}", n, path.display());
    }
    eprintln!(
        "wrote {} files, {total} B, in {:.2} s (seed {})",
        written.len(),
        t0.elapsed().as_secs_f64(),
        a.seed
    );
    println!("{}", data.stats().to_json());
    Ok(ExitCode::SUCCESS)
}

fn data(args: &[String]) -> anyhow::Result<ExitCode> {
    match args.split_first() {
        Some((sub, rest)) if sub == "gen-world" => gen_world(rest),
        _ => run_rlhf("data", args),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Task::Train { args } => train(args),
        Task::Logprobs { args } => run_rlhf("logprobs", args),
        Task::Generate { args } => run_rlhf("generate", args),
        Task::Score { args } => run_rlhf("score", args),
        Task::Bench { args } => run_rlhf("bench", args),
        Task::Data { args } => data(args),
        Task::Eval { args } => run_rlhf("eval", args),
        Task::Annotate { args } => run_rlhf("annotate", args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
