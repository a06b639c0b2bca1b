//! `rlhf`: the command-line front end of the workspace.
//!
//! It is the one place that installs a tracing subscriber (logs go to stderr, filtered by
//! `RUST_LOG`), parses arguments, and chooses a backend from `--device cpu|cuda[:N]`; every
//! command is generic over the backend and dispatched once. stdout carries only the command's
//! JSON result. Errors print one line on stderr and exit with status 1.
//!
//! `cargo xtask <command>` runs this binary in release mode; see the README.

mod annotate;
mod bench;
mod commands;
mod data;
mod device;
mod dist;
mod dpo;
mod eval;
mod pipeline;
mod ppo;
mod progress;
mod reward;
mod sft;

use clap::{Parser, Subcommand};

/// The RLHF workspace's command-line tool.
#[derive(Debug, Parser)]
#[command(name = "rlhf", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Token log-probs of given sequences (JSON in, JSON out).
    Logprobs(commands::LogprobsArgs),
    /// Generate continuations of prompts.
    Generate(commands::GenerateArgs),
    /// The scalar head's value per row (reward models).
    Score(commands::ScoreArgs),
    /// Benchmarks.
    Bench(bench::BenchArgs),
    #[command(flatten)]
    Reward(reward::RewardCommand),
    #[command(flatten)]
    Dpo(dpo::DpoCommand),
    #[command(flatten)]
    Ppo(ppo::PpoCommand),
    #[command(flatten)]
    Sft(sft::SftCommand),
    /// Preference data: import, statistics, export.
    Data(data::DataArgs),
    /// The whole pipeline (what `cargo xtask train` runs): every stage in one run directory.
    Pipeline(pipeline::PipelineArgs),
    /// Evaluation: AlignBench, pairwise win rates, rating sheets, response lengths.
    Eval(eval::EvalArgs),
    /// Human preference collection: candidate pairs, the annotation server, export.
    Annotate(annotate::AnnotateArgs),
}

fn main() {
    rlhf_core::backend::tune_allocator();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Logprobs(a) => commands::logprobs(a),
        Command::Generate(a) => commands::generate(a),
        Command::Score(a) => commands::score(a),
        Command::Bench(a) => bench::run(a),
        Command::Reward(c) => reward::run(c),
        Command::Dpo(c) => dpo::run(c),
        Command::Ppo(c) => ppo::run(c),
        Command::Sft(c) => sft::run(c),
        Command::Data(a) => data::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Annotate(a) => annotate::run(a),
        Command::Pipeline(a) => pipeline::run(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
