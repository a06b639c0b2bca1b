//! `rlhf pipeline` (what `cargo xtask train` runs): every stage of the paper, end to end, in
//! one run directory.
//!
//! Each training stage runs as a child `rlhf` process with its own run directory under
//! `runs/<id>/`, so it keeps its own checkpoints, metrics and Ctrl-C handling; the pipeline
//! records each finished stage (with the child's JSON result) in `runs/<id>/stages.json`.
//! `--resume <id>` skips finished stages and lets an interrupted one resume from its last
//! checkpoint. Ctrl-C reaches the child (same process group), which saves and stops; the
//! pipeline then stops too and prints the resume command.

mod compare;
mod config;
mod eval;
mod findings;
mod gold;
mod report;
mod seeds;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use config::EMBEDDED_DEFAULT;
pub(crate) use config::PipelineConfig;

/// `rlhf pipeline`.
#[derive(Debug, Args)]
pub(crate) struct PipelineArgs {
    /// Pipeline config (TOML); default: the embedded default (`configs/default.toml`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Run only these stages (comma-separated; see the list printed at start).
    #[arg(long, value_delimiter = ',')]
    stages: Vec<String>,
    /// Continue the run `runs/<RUN>`: finished stages are skipped, an interrupted one resumes.
    #[arg(long)]
    resume: Option<String>,
    /// Override `[run].device` (cpu, cuda, cuda:N).
    #[arg(long)]
    device: Option<String>,
    /// Override `[run].devices`: data parallel over these devices in the reward-model, PPO and
    /// DPO stages (e.g. cuda:0,cuda:1).
    #[arg(long, value_delimiter = ',')]
    devices: Option<Vec<String>>,
    /// Override `[run].runs_dir`.
    #[arg(long)]
    runs_dir: Option<PathBuf>,
    /// Name the run (instead of a timestamp).
    #[arg(long, conflicts_with = "resume")]
    run_id: Option<String>,
}

/// The stages, in order, with what they produce.
pub(crate) const STAGES: &[(&str, &str)] = &[
    (
        "data",
        "import, clean, prompt quality, split, statistics (Table 2)",
    ),
    (
        "tokenizer",
        "byte-level BPE trained on the bundled text (scratch start only)",
    ),
    (
        "sft",
        "SFT start point: a small model trained from scratch on the demonstrations",
    ),
    (
        "rm",
        "length balancing + reward model with the score prior; Table 5",
    ),
    (
        "rm_unbalanced",
        "ablation: the same RM without balancing (length preference)",
    ),
    (
        "sft_chosen",
        "control: the SFT model trained further on the training pairs' chosen replies",
    ),
    (
        "ppo",
        "reference responses/rewards, PPO with the reference reward and the NTP term",
    ),
    (
        "ppo_noref",
        "ablation: PPO without the reference reward (Figure 4)",
    ),
    (
        "ppo_seeds",
        "short PPO ablations per seed: with/without the reference reward, without NTP; held-out SFT NLL",
    ),
    (
        "compare",
        "critic-free estimators beside PPO: GRPO, RLOO, REINFORCE++, ReMax (same start, budget)",
    ),
    (
        "dpo_pairs",
        "k samples per prompt from SFT, best vs worst by the RM",
    ),
    (
        "dpo",
        "DPO on the RM-labelled pairs, or on the annotator's ([data].dpo_data)",
    ),
    (
        "eval",
        "SFT/PPO/DPO answers: gold judge per category, RM scores, win/tie/lose, lengths",
    ),
    (
        "report",
        "runs/<id>/report.md and report.html (plots embedded)",
    ),
];

/// `stages.json`: what finished, when, and the stage's result.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct RunState {
    /// Stage name → record.
    pub stages: BTreeMap<String, StageRecord>,
}

/// One finished stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StageRecord {
    /// Wall time of the stage in seconds (of the run that finished it).
    pub seconds: f64,
    /// The stage's JSON result.
    pub result: Value,
}

/// Everything a stage needs.
pub(crate) struct Ctx {
    pub cfg: PipelineConfig,
    pub run_dir: PathBuf,
    pub exe: PathBuf,
    pub stop: Arc<AtomicBool>,
    pub state: RunState,
}

impl Ctx {
    pub(crate) fn dir(&self, name: &str) -> PathBuf {
        self.run_dir.join(name)
    }

    /// The SFT model directory (trained, or the user's checkpoint).
    pub(crate) fn sft_model(&self) -> PathBuf {
        if self.cfg.model.base == "scratch" || self.cfg.model.sft_from_checkpoint {
            self.dir("sft").join("final")
        } else {
            PathBuf::from(&self.cfg.model.base)
        }
    }

    /// Runs `rlhf <args>` as a child, stderr shown, stdout parsed as the JSON result.
    pub(crate) fn rlhf(&self, args: &[String]) -> anyhow::Result<Value> {
        tracing::info!(command = %args.join(" "), "stage command");
        let out = Command::new(&self.exe)
            .args(args)
            .env("RLHF_PROGRESS", rlhf_train::view().name())
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("starting {}", self.exe.display()))?;
        if !out.status.success() {
            if self.stop.load(Ordering::SeqCst) {
                bail!("interrupted");
            }
            bail!(
                "`rlhf {}` failed ({})",
                args.first().map(String::as_str).unwrap_or(""),
                out.status
            );
        }
        let v: Value = serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "`rlhf {}` printed no JSON result",
                args.first().map(String::as_str).unwrap_or("")
            )
        })?;
        if v.get("status").and_then(Value::as_str) == Some("Stopped") {
            bail!("interrupted");
        }
        Ok(v)
    }
}

pub(crate) fn s(p: impl AsRef<Path>) -> String {
    p.as_ref().display().to_string()
}

fn timestamp_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Civil date from days since the epoch (Howard Hinnant's algorithm), UTC.
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

fn write_state(run_dir: &Path, st: &RunState) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(st)?;
    rlhf_core::io::write_atomic(&run_dir.join("stages.json"), text.as_bytes())?;
    Ok(())
}

fn read_state(run_dir: &Path) -> anyhow::Result<RunState> {
    let p = run_dir.join("stages.json");
    match std::fs::read_to_string(&p) {
        Ok(t) => serde_json::from_str(&t).with_context(|| format!("{}", p.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RunState::default()),
        Err(e) => Err(e).with_context(|| format!("{}", p.display())),
    }
}

/// Which stages run for this config (scratch vs checkpoint start, ablations).
fn applicable(cfg: &PipelineConfig, name: &str) -> bool {
    match name {
        "tokenizer" => cfg.model.base == "scratch",
        "sft" => cfg.model.base == "scratch" || cfg.model.sft_from_checkpoint,
        "rm_unbalanced" => cfg.ablations.rm_unbalanced,
        "ppo_noref" => cfg.ablations.ppo_without_reference_reward,
        "ppo_seeds" => !cfg.ablations.seeds.is_empty(),
        "dpo_pairs" => cfg.data.dpo_data == config::DpoData::Sampled,
        "sft_chosen" => cfg.ablations.sft_on_chosen.is_some(),
        "compare" => !cfg.compare.methods.is_empty(),
        _ => true,
    }
}

pub(crate) fn run(a: PipelineArgs) -> anyhow::Result<()> {
    let cwd = std::env::current_dir()?;
    // Relative paths in a config are relative to the directory the command runs in (the
    // repository root for `cargo xtask train`).
    let (text, origin) = match &a.config {
        Some(p) => (
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
            p.display().to_string(),
        ),
        None => (
            EMBEDDED_DEFAULT.to_string(),
            "(embedded default)".to_string(),
        ),
    };
    let base = cwd;
    let mut cfg = PipelineConfig::parse(&text, &origin, &base)?;
    if let Some(d) = &a.device {
        cfg.run.device = d.clone();
    }
    if let Some(d) = &a.devices {
        cfg.run.devices = d.clone();
    }
    if let Some(r) = &a.runs_dir {
        cfg.run.runs_dir = r.clone();
    }
    cfg.validate(&origin)?;
    for st in &a.stages {
        if !STAGES.iter().any(|(n, _)| n == st) {
            bail!(
                "unknown stage {st:?}; stages: {}",
                STAGES
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let id = match (&a.resume, &a.run_id, &cfg.run.id) {
        (Some(r), _, _) => r.clone(),
        (None, Some(i), _) | (None, None, Some(i)) => i.clone(),
        _ => timestamp_id(),
    };
    let run_dir = cfg.run.runs_dir.join(&id);
    if a.resume.is_some() && !run_dir.join("stages.json").is_file() {
        bail!("--resume {id}: {} holds no run", run_dir.display());
    }
    if a.resume.is_none() && run_dir.join("stages.json").is_file() {
        bail!(
            "{} already holds a run; continue it with --resume {id}",
            run_dir.display()
        );
    }
    std::fs::create_dir_all(&run_dir).with_context(|| format!("{}", run_dir.display()))?;
    if a.resume.is_some() {
        let saved = run_dir.join("config.toml");
        let old = std::fs::read_to_string(&saved).unwrap_or_default();
        let old: Option<PipelineConfig> = toml::from_str(&old).ok();
        if let Some(old) = old
            && old != cfg
        {
            bail!(
                "--resume {id}: the config differs from the run's ({}); resume with the same \
                 config or start a new run",
                saved.display()
            );
        }
    }
    rlhf_core::io::write_atomic(
        &run_dir.join("config.toml"),
        toml::to_string(&cfg)?.as_bytes(),
    )?;
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&stop))
        .context("installing the Ctrl-C handler")?;
    let mut ctx = Ctx {
        cfg,
        exe: std::env::current_exe().context("locating the rlhf binary")?,
        state: read_state(&run_dir)?,
        run_dir: run_dir.clone(),
        stop,
    };
    let todo: Vec<&str> = STAGES
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| applicable(&ctx.cfg, n))
        .filter(|n| a.stages.is_empty() || a.stages.iter().any(|s| s == n))
        .collect();
    eprintln!(
        "run {} ({} stages) in {}",
        id,
        todo.len(),
        run_dir.display()
    );
    let started = Instant::now();
    for (i, name) in todo.iter().enumerate() {
        if ctx.state.stages.contains_key(*name) {
            eprintln!("[{}/{}] {name}: done earlier, skipped", i + 1, todo.len());
            continue;
        }
        let what = STAGES
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, w)| w);
        eprintln!("[{}/{}] {name}: {what}", i + 1, todo.len());
        let t = Instant::now();
        let result = match run_stage(&mut ctx, name) {
            Ok(v) => v,
            Err(e) if ctx.stop.load(Ordering::SeqCst) || e.to_string() == "interrupted" => {
                eprintln!(
                    "stopped during {name}; continue with: cargo xtask train --resume {id}{}",
                    a.config
                        .as_ref()
                        .map(|c| format!(" --config {}", c.display()))
                        .unwrap_or_default()
                );
                std::process::exit(130);
            }
            Err(e) => return Err(e.context(format!("stage {name}"))),
        };
        let secs = t.elapsed().as_secs_f64();
        eprintln!("[{}/{}] {name}: finished in {secs:.1} s", i + 1, todo.len());
        ctx.state.stages.insert(
            name.to_string(),
            StageRecord {
                seconds: secs,
                result,
            },
        );
        write_state(&run_dir, &ctx.state)?;
    }
    let total = started.elapsed().as_secs_f64();
    let out = json!({
        "run_dir": run_dir,
        "seconds": total,
        "report": run_dir.join("report.html"),
        "stages": ctx.state.stages.iter().map(|(k, v)| (k.clone(), v.seconds)).collect::<BTreeMap<_, _>>(),
    });
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}

fn run_stage(ctx: &mut Ctx, name: &str) -> anyhow::Result<Value> {
    let c = ctx.cfg.clone();
    let dev = c.run.device.clone();
    // `--devices a,b` for the data-parallel trainers, when more than one device is named.
    let dp: Vec<String> = if c.run.devices.len() > 1 {
        vec!["--devices".into(), c.run.devices.join(",")]
    } else {
        Vec::new()
    };
    let seed = c.run.seed.to_string();
    match name {
        "data" => {
            let out = ctx.dir("data");
            std::fs::create_dir_all(&out)?;
            let tf = c.data.test_fraction;
            let split = format!("{},0,{}", 1.0 - tf, tf);
            let import = ctx.rlhf(&[
                "data".into(),
                "import".into(),
                "--format".into(),
                c.data.format.clone(),
                s(&c.data.pairs),
                "--out".into(),
                s(out.join("pairs.parquet")),
                "--split".into(),
                split,
                "--seed".into(),
                seed,
                "--report".into(),
                s(out.join("import.json")),
                // The run directory is the pipeline's own: a rerun replaces its files.
                "--force".into(),
            ])?;
            let stats = ctx.rlhf(&[
                "data".into(),
                "stats".into(),
                s(out.join("pairs.parquet")),
                "--out-dir".into(),
                s(&out),
                "--force".into(),
            ])?;
            let canonical = canonical_inputs(ctx)?;
            Ok(json!({"import": import, "stats": stats, "inputs": canonical}))
        }
        "tokenizer" => ctx.rlhf(&[
            "train-tokenizer".into(),
            "--input".into(),
            s(&c.data.sft),
            s(&c.data.pairs),
            s(&c.data.prompts),
            "--vocab-size".into(),
            c.model.vocab_size.to_string(),
            "--out".into(),
            s(ctx.dir("tokenizer")),
        ]),
        "sft" => {
            let cfg_path = ctx.dir("sft.toml");
            rlhf_core::io::write_atomic(&cfg_path, toml::to_string(&c.sft)?.as_bytes())?;
            let mut args: Vec<String> = vec![
                "train-sft".into(),
                "--train".into(),
                s(ctx.dir("data").join("sft.jsonl")),
                "--config".into(),
                s(&cfg_path),
                "--run-dir".into(),
                s(ctx.dir("sft")),
                "--device".into(),
                dev,
            ];
            if c.model.base == "scratch" {
                args.extend([
                    "--init".into(),
                    c.model.preset.clone(),
                    "--tokenizer".into(),
                    s(ctx.dir("tokenizer")),
                    "--init-seed".into(),
                    seed,
                ]);
            } else {
                args.extend(["--model".into(), c.model.base.clone()]);
            }
            ctx.rlhf(&args)
        }
        "rm" | "rm_unbalanced" => {
            let mut rm = c.rm.clone();
            if name == "rm_unbalanced" {
                rm.balance = None;
            }
            let cfg_path = ctx.dir(&format!("{name}.json"));
            rlhf_core::io::write_atomic(&cfg_path, serde_json::to_string_pretty(&rm)?.as_bytes())?;
            let mut args: Vec<String> = vec![
                "train-reward".into(),
                "--train".into(),
                s(ctx.dir("data").join("pairs.parquet")),
                "--file-splits".into(),
                "--config".into(),
                s(&cfg_path),
                "--model".into(),
                s(ctx.sft_model()),
                "--run-dir".into(),
                s(ctx.dir(name)),
                "--device".into(),
                dev,
            ];
            args.extend(dp);
            ctx.rlhf(&args)
        }
        "sft_chosen" => {
            let Some(sc) = &c.ablations.sft_on_chosen else {
                bail!("[ablations.sft_on_chosen] is not set");
            };
            let cfg_path = ctx.dir("sft_chosen.toml");
            rlhf_core::io::write_atomic(&cfg_path, toml::to_string(sc)?.as_bytes())?;
            ctx.rlhf(&[
                "train-sft".into(),
                "--train".into(),
                s(ctx.dir("data").join("chosen.jsonl")),
                "--config".into(),
                s(&cfg_path),
                "--model".into(),
                s(ctx.sft_model()),
                "--run-dir".into(),
                s(ctx.dir("sft_chosen")),
                "--device".into(),
                dev,
            ])
        }
        "ppo" | "ppo_noref" => ppo_stage(ctx, name),
        "ppo_seeds" => seeds::run(ctx),
        "compare" => compare::run(ctx),
        "dpo_pairs" => {
            let cfg_path = ctx.dir("dpo_pairs.json");
            let mut pc = c.dpo_pairs.clone();
            pc.seed = c.run.seed;
            rlhf_core::io::write_atomic(&cfg_path, serde_json::to_string_pretty(&pc)?.as_bytes())?;
            std::fs::create_dir_all(ctx.dir("dpo"))?;
            ctx.rlhf(&[
                "dpo-pairs".into(),
                "--policy".into(),
                s(ctx.sft_model()),
                "--rm".into(),
                s(ctx.dir("rm").join("final")),
                "--prompts".into(),
                s(ctx.dir("data").join("prompts.jsonl")),
                "--out".into(),
                s(ctx.dir("dpo_pairs.jsonl")),
                "--config".into(),
                s(&cfg_path),
                "--device".into(),
                dev,
            ])
        }
        "dpo" => {
            let cfg_path = ctx.dir("dpo.toml");
            rlhf_core::io::write_atomic(&cfg_path, toml::to_string(&c.dpo)?.as_bytes())?;
            let mut args: Vec<String> = vec!["train-dpo".into(), "--train".into()];
            match c.data.dpo_data {
                config::DpoData::Sampled => args.push(s(ctx.dir("dpo_pairs.jsonl"))),
                // The RM's split: the held-out pairs evaluate DPO too.
                config::DpoData::Annotator => args.extend([
                    s(ctx.dir("data").join("pairs.parquet")),
                    "--file-splits".into(),
                ]),
            }
            args.extend([
                "--config".into(),
                s(&cfg_path),
                "--model".into(),
                s(ctx.sft_model()),
                "--run-dir".into(),
                s(ctx.dir("dpo")),
                "--device".into(),
                dev,
            ]);
            args.extend(dp);
            ctx.rlhf(&args)
        }
        "eval" => eval::run(ctx),
        "report" => report::run(ctx),
        other => bail!("unknown stage {other}"),
    }
}

/// The `[ppo]` table with the pipeline's paths filled in (as a `train-ppo` config object).
pub(crate) fn ppo_object(ctx: &Ctx, name: &str) -> anyhow::Result<serde_json::Map<String, Value>> {
    let mut obj = match serde_json::to_value(&ctx.cfg.ppo)? {
        Value::Object(o) => o,
        _ => serde_json::Map::new(),
    };
    obj.insert("policy".into(), json!(s(ctx.sft_model())));
    obj.insert("reward_model".into(), json!(s(ctx.dir("rm").join("final"))));
    obj.insert(
        "prompts".into(),
        json!(s(ctx.dir("data").join("prompts.jsonl"))),
    );
    obj.insert(
        "sft_data".into(),
        json!(s(ctx.dir("data").join(ctx.cfg.data.ntp_data.file_name()))),
    );
    obj.insert("run_dir".into(), json!(s(ctx.dir(name))));
    obj.entry("seed").or_insert(json!(ctx.cfg.run.seed));
    if name == "ppo_noref" {
        let shaping = obj.entry("shaping").or_insert(json!({}));
        if let Value::Object(m) = shaping {
            m.insert("reference_baseline".into(), json!(false));
        }
    }
    Ok(obj)
}

fn ppo_stage(ctx: &mut Ctx, name: &str) -> anyhow::Result<Value> {
    let obj = ppo_object(ctx, name)?;
    let path = ctx.dir(&format!("{name}.json"));
    train_ppo(ctx, &path, &obj)
}

/// Writes the `train-ppo` config `obj` to `path` and runs it on the run's device (data
/// parallel over `[run].devices` when it names more than one); the child's JSON result.
pub(crate) fn train_ppo(
    ctx: &Ctx,
    path: &Path,
    obj: &serde_json::Map<String, Value>,
) -> anyhow::Result<Value> {
    rlhf_core::io::write_atomic(path, serde_json::to_string_pretty(obj)?.as_bytes())?;
    let mut args: Vec<String> = vec![
        "train-ppo".into(),
        "--config".into(),
        s(path),
        "--device".into(),
        ctx.cfg.run.device.clone(),
    ];
    if ctx.cfg.run.devices.len() > 1 {
        args.extend(["--devices".into(), ctx.cfg.run.devices.join(",")]);
    }
    ctx.rlhf(&args)
}

/// Checks the `[ppo]` table against the PPO config type (with placeholder paths).
pub(crate) fn validate_ppo_table(t: &toml::Table) -> anyhow::Result<()> {
    let mut obj = match serde_json::to_value(t)? {
        Value::Object(o) => o,
        _ => serde_json::Map::new(),
    };
    for k in ["policy", "reward_model", "prompts", "sft_data", "run_dir"] {
        if obj.contains_key(k) {
            bail!("`{k}` is set by the pipeline; remove it from [ppo]");
        }
        obj.insert(k.into(), json!("-"));
    }
    crate::ppo::parse_ppo_value(Value::Object(obj))?;
    Ok(())
}

/// Writes the pipeline's canonical inputs: prompts and SFT demonstrations as JSON lines with
/// the whole conversation in `prompt` (history included), which every stage reads the same way.
fn canonical_inputs(ctx: &Ctx) -> anyhow::Result<Value> {
    let out = ctx.dir("data");
    let prompts = crate::dpo::read_prompts(&ctx.cfg.data.prompts)?;
    let mut text = String::new();
    for (id, cat, msgs) in &prompts {
        text.push_str(&serde_json::to_string(
            &json!({"id": id, "category": cat, "prompt": msgs}),
        )?);
        text.push('\n');
    }
    rlhf_core::io::write_atomic(&out.join("prompts.jsonl"), text.as_bytes())?;
    let sft = rlhf_sft::read_sft(&ctx.cfg.data.sft)?;
    let mut text = String::new();
    for r in &sft {
        // The NTP reader of PPO takes exactly these two keys.
        text.push_str(&serde_json::to_string(&json!({
            "prompt": r.prompt, "response": r.response
        }))?);
        text.push('\n');
    }
    rlhf_core::io::write_atomic(&out.join("sft.jsonl"), text.as_bytes())?;
    let chosen = write_chosen(&out.join("pairs.parquet"), &out.join("chosen.jsonl"))?;
    Ok(json!({"prompts": prompts.len(), "sft": sft.len(), "chosen": chosen}))
}

/// Writes the chosen replies of the training split of `pairs` (conversation in `prompt`, as
/// `sft.jsonl`) to `out`: the NTP data of `[data].ntp_data = "chosen"`. Their number.
fn write_chosen(pairs: &Path, out: &Path) -> anyhow::Result<usize> {
    let rows = rlhf_prefdata::read_comparisons(pairs)
        .with_context(|| format!("reading {}", pairs.display()))?;
    let mut text = String::new();
    let mut n = 0;
    for c in rows
        .iter()
        .filter(|c| c.split == Some(rlhf_prefdata::Split::Train))
    {
        text.push_str(&serde_json::to_string(&json!({
            "prompt": rlhf_reward::prompt_messages(c), "response": c.chosen
        }))?);
        text.push('\n');
        n += 1;
    }
    rlhf_core::io::write_atomic(out, text.as_bytes())?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlhf_prefdata::{Comparison, Message, Role, Split, WriterOptions};

    #[test]
    fn chosen_ntp_data_is_the_training_splits_chosen_replies_with_their_history() {
        let tmp = tempfile::tempdir().unwrap();
        let mut a = Comparison::new("a", "t", "And the colour?", "Blue.", "Red.");
        a.history = vec![
            Message::new(Role::User, "Who are you?"),
            Message::new(Role::Assistant, "A baker."),
        ];
        a.split = Some(Split::Train);
        let mut b = Comparison::new("b", "t", "held out", "kept out", "no");
        b.split = Some(Split::Test);
        let mut c = Comparison::new("c", "t", "2+2?", "4", "5");
        c.split = Some(Split::Train);
        let pairs = tmp.path().join("pairs.parquet");
        rlhf_prefdata::write_comparisons(&pairs, [&a, &b, &c], WriterOptions::default()).unwrap();
        let out = tmp.path().join("chosen.jsonl");
        assert_eq!(write_chosen(&pairs, &out).unwrap(), 2);
        // PPO's NTP reader reads it back: the whole conversation before the reply.
        let ex = rlhf_policy_ppo::read_sft(&out).unwrap();
        assert_eq!(ex.len(), 2);
        let turns: Vec<String> = ex[0]
            .prompt
            .iter()
            .map(|m| format!("{:?}: {}", m.role, m.content))
            .collect();
        assert_eq!(
            turns,
            [
                "User: Who are you?",
                "Assistant: A baker.",
                "User: And the colour?"
            ]
        );
        assert_eq!(ex[0].response, "Blue.");
        assert_eq!(ex[1].response, "4");
        assert!(ex.iter().all(|e| e.response != "kept out"));
    }
}
