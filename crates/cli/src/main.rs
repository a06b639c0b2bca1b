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
mod check;
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
mod rewards;
mod serve_rm;
mod sft;
mod shape;

use clap::{Parser, Subcommand};

/// The RLHF workspace's command-line tool.
#[derive(Debug, Parser)]
#[command(name = "rlhf", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How trainers show progress: `auto` (burn-train's dashboard when stdout and stderr are
    /// terminals, else a bar on a terminal stderr, else plain lines), `dashboard`, `bar`,
    /// `plain` or `off`. Default: `$RLHF_PROGRESS`, else `auto`.
    #[arg(long, global = true, value_name = "VIEW")]
    progress: Option<rlhf_train::View>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Token log-probs of given sequences (JSON in, JSON out).
    Logprobs(commands::LogprobsArgs),
    /// Generate continuations of prompts.
    Generate(commands::GenerateArgs),
    /// The scalar head's value per row (reward models).
    Score(commands::ScoreArgs),
    /// Serve a reward model over HTTP for `train-ppo`'s remote reward (docs/rewards.md).
    ServeRm(serve_rm::ServeRmArgs),
    /// Benchmarks.
    Bench(bench::BenchArgs),
    /// The HF parity fixtures (`../shared/fixtures`) on any device and dtype: log-probs,
    /// greedy ids and reward scores against transformers' outputs.
    CheckParity(check::CheckParityArgs),
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
        .with_writer(|| rlhf_train::LogWriter)
        .init();
    let cli = Cli::parse();
    match cli.progress.map(Ok).or_else(progress::view_from_env) {
        Some(Ok(v)) => rlhf_train::set_view(v),
        Some(Err(e)) => {
            eprintln!("error: RLHF_PROGRESS: {e}");
            std::process::exit(2);
        }
        None => {}
    }
    let result = match cli.command {
        Command::Logprobs(a) => commands::logprobs(a),
        Command::Generate(a) => commands::generate(a),
        Command::Score(a) => commands::score(a),
        Command::ServeRm(a) => serve_rm::run(a),
        Command::CheckParity(a) => check::check_parity(a),
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
        eprintln!("error: {}", one_line(&e));
        std::process::exit(1);
    }
}

/// An error and its causes joined by `: `, each said once: a cause whose text is already part
/// of what was printed (a library error whose message embeds its `#[source]`) is left out.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::one_line;

    /// Like a `thiserror` variant `#[error("…: {source}")]` with a `#[source]`.
    #[derive(Debug)]
    struct Embeds {
        source: std::io::Error,
    }

    impl std::fmt::Display for Embeds {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "I/O error on x.parquet: {}", self.source)
        }
    }

    impl std::error::Error for Embeds {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    #[test]
    fn each_cause_is_said_once() {
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = anyhow::Error::new(Embeds { source: io() }).context("reading the pairs");
        assert_eq!(
            one_line(&e),
            "reading the pairs: I/O error on x.parquet: no such file"
        );
        // A cause that its wrapper does not repeat is still printed.
        let e = anyhow::Error::new(io()).context("opening x.parquet");
        assert_eq!(one_line(&e), "opening x.parquet: no such file");
    }
}
