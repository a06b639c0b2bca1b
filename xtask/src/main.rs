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
//! cargo xtask logprobs --model DIR --input FILE.json [--device cpu|cuda[:N]]
//! cargo xtask generate --model DIR (--prompt TEXT | --prompt-ids FILE.json) [--max-new-tokens N]
//!                      [--greedy | --temperature T --top-p P --seed S]
//! cargo xtask score    --model DIR --input FILE.json
//! cargo xtask bench core [--device cuda] [--out FILE.json]
//! cargo xtask data import --format hh|oasst|trl|alignbench IN... --out OUT.parquet [--strict]
//! cargo xtask data stats FILE.parquet [--tokenizer DIR]
//! cargo xtask data export FILE.parquet --out OUT.jsonl
//! ```
//!
//! Set `RLHF_PROFILE=dev` to use the dev profile instead of release (faster to build).

use std::process::{Command, ExitCode};

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "Task runner of the RLHF workspace")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Run the RLHF pipeline (see `cargo xtask train --help`).
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
    /// Preference data: `import --format hh|oasst|trl|alignbench IN... --out OUT`, `stats FILE`, `export FILE --out OUT.jsonl`.
    Data {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Evaluation: `alignbench --model DIR --judge overlap|rm:DIR|openai ...`, `pairwise ...`, `tabulate ...`, `lengths ...`.
    Eval {
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
const STAGES: &[(&str, &str, bool)] = &[
    (
        "data",
        "import, clean, prompt quality, statistics (Table 2)",
        false,
    ),
    (
        "sft",
        "tokenizer + SFT start point for the embedded default",
        false,
    ),
    (
        "rm",
        "length balancing + Bradley-Terry reward model with the score prior (Table 5)",
        false,
    ),
    (
        "ppo",
        "reference reward, PPO with KL and NTP loss, ablation (Figure 4)",
        false,
    ),
    ("dpo", "RM-labelled pairs, DPO", false),
    (
        "eval",
        "judge scores, pairwise win/tie/lose (Table 4), lengths (Table 6)",
        false,
    ),
    ("report", "report.html and report.md", false),
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
    // Stages that already run on their own.
    if let Some((stage, rest)) = args.split_first() {
        match stage.as_str() {
            "reward" | "rm" => return run_rlhf("train-reward", rest),
            _ => {}
        }
    }
    if args.iter().any(|a| a == "--help" || a == "-h") || args.is_empty() {
        eprintln!("cargo xtask train: the ChatGLM-RLHF pipeline, stage by stage.\n");
    }
    eprintln!("stages:");
    for (name, what, done) in STAGES {
        eprintln!(
            "  {name:<7} {} {what}",
            if *done { "[ready]  " } else { "[pending]" }
        );
    }
    eprintln!(
        "\nReady as separate commands today:\n  \
         cargo xtask data import|stats|export ...   preference data (Parquet)\n  \
         cargo xtask train reward ...               reward model (see --help of `rlhf train-reward`)\n  \
         cargo xtask generate|logprobs|score ...    any HF Llama/Qwen2/GLM-4 checkpoint\n\
         The one-command pipeline on the embedded default lands with the stages above; see README.md."
    );
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Task::Train { args } => train(args),
        Task::Logprobs { args } => run_rlhf("logprobs", args),
        Task::Generate { args } => run_rlhf("generate", args),
        Task::Score { args } => run_rlhf("score", args),
        Task::Bench { args } => run_rlhf("bench", args),
        Task::Data { args } => run_rlhf("data", args),
        Task::Eval { args } => run_rlhf("eval", args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
