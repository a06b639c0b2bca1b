//! The pipeline's TOML config: every section typed, unknown keys rejected, paths and values
//! checked before any stage starts.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rlhf_policy_dpo::{DpoTrainConfig, PairBuildConfig};
use rlhf_reward::RewardTrainConfig;
use rlhf_sft::SftConfig;
use serde::{Deserialize, Serialize};

/// The embedded default, compiled in so `cargo xtask train` needs no file.
pub(crate) const EMBEDDED_DEFAULT: &str = include_str!("../../../../configs/default.toml");

/// `[run]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RunSection {
    /// Where run directories go.
    pub runs_dir: PathBuf,
    /// A name for the run directory (default: a timestamp).
    pub id: Option<String>,
    /// cpu, cuda or cuda:N.
    pub device: String,
    /// Data parallel over these devices (e.g. `["cuda:0", "cuda:1"]`) for the reward-model,
    /// PPO and DPO stages; empty or one device = no data parallelism. Same kind as `device`.
    pub devices: Vec<String>,
    /// Seed of every stage that samples.
    pub seed: u64,
}

impl Default for RunSection {
    fn default() -> Self {
        RunSection {
            runs_dir: "runs".into(),
            id: None,
            device: "cpu".into(),
            devices: Vec::new(),
            seed: 0,
        }
    }
}

/// `[data]`: the inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DataSection {
    /// Preference pairs (the `rlhf data import` input).
    pub pairs: PathBuf,
    /// Their format: hh, oasst, trl or alignbench.
    #[serde(default = "default_format")]
    pub format: String,
    /// SFT demonstrations (JSON lines; also PPO's next-token-prediction data).
    pub sft: PathBuf,
    /// Training prompts of PPO and DPO pair construction (JSON lines).
    pub prompts: PathBuf,
    /// Held-out prompts of the final evaluation (JSON lines with a reference answer when
    /// the gold judge is used).
    pub eval_prompts: PathBuf,
    /// A directory with the gold judge's knowledge (`world.json`); `None` = no gold judge.
    #[serde(default)]
    pub world: Option<PathBuf>,
    /// Held-out fraction of the preference pairs (by prompt).
    #[serde(default = "default_test_fraction")]
    pub test_fraction: f64,
    /// What PPO's next-token-prediction term (and the compare stage's) learns from:
    /// `"sft"` (default, the paper's: the SFT demonstrations) or `"chosen"` (the chosen
    /// replies of the preference pairs' training split, `data/chosen.jsonl`). The seed runs of
    /// `ntp_limits_forgetting` keep the SFT demonstrations either way.
    #[serde(default)]
    pub ntp_data: NtpData,
    /// What the DPO stage trains on: `"sampled"` (default, the paper's: k samples of the SFT
    /// model per prompt, best vs worst by the RM, the `dpo_pairs` stage) or `"annotator"` (the
    /// preference pairs' training split, `data/pairs.parquet`, held-out split for evaluation;
    /// no `dpo_pairs` stage).
    #[serde(default)]
    pub dpo_data: DpoData,
}

/// The pairs of the DPO stage (`[data].dpo_data`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DpoData {
    /// k samples of the SFT model per RL prompt, best vs worst by the reward model.
    #[default]
    Sampled,
    /// The annotator's training pairs (the RM's training split).
    Annotator,
}

/// The demonstrations of PPO's NTP term (`[data].ntp_data`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum NtpData {
    /// The SFT demonstrations (`[data].sft`).
    #[default]
    Sft,
    /// The chosen replies of the training pairs: when the SFT data carries flaws that the
    /// preferences correct, NTP on them would re-teach the flaws.
    Chosen,
}

impl NtpData {
    /// The file name under the run's `data/` directory.
    pub(crate) fn file_name(self) -> &'static str {
        match self {
            NtpData::Sft => "sft.jsonl",
            NtpData::Chosen => "chosen.jsonl",
        }
    }
}

fn default_format() -> String {
    "trl".into()
}

fn default_test_fraction() -> f64 {
    0.1
}

/// `[model]`: where the SFT start point comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ModelSection {
    /// `"scratch"`: train a tokenizer and a small model on the bundled corpus; or the path of
    /// an HF checkpoint (with its tokenizer) to start from.
    pub base: String,
    /// Scratch only: the tokenizer's vocabulary size.
    pub vocab_size: usize,
    /// Scratch only: the model preset (`small`, `tiny-llama`).
    pub preset: String,
    /// Run SFT on `[data].sft` also when starting from a checkpoint.
    pub sft_from_checkpoint: bool,
}

impl Default for ModelSection {
    fn default() -> Self {
        ModelSection {
            base: "scratch".into(),
            vocab_size: 2048,
            preset: "small".into(),
            sft_from_checkpoint: false,
        }
    }
}

/// `[eval]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct EvalSection {
    /// New tokens per answer (greedy, as the paper).
    pub max_new_tokens: usize,
    /// Prompts per generation batch.
    pub batch: usize,
    /// Evaluate at most this many prompts (`None` = all).
    pub limit: Option<usize>,
}

impl Default for EvalSection {
    fn default() -> Self {
        EvalSection {
            max_new_tokens: 64,
            batch: 16,
            limit: None,
        }
    }
}

/// `[ablations]`: the extra runs that reproduce the paper's comparisons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct AblationSection {
    /// Train a second RM without length balancing (to measure what balancing removes).
    pub rm_unbalanced: bool,
    /// Run PPO a second time without the reference reward (Figure 4).
    pub ppo_without_reference_reward: bool,
    /// Seeds of the short PPO ablations behind the findings about curves (the `ppo_seeds`
    /// stage: per seed, PPO with the reference reward and NTP, without the reference reward,
    /// and without NTP). Empty = no such stage; a paired test needs at least 2 (3 or more to
    /// decide anything at α = 0.05).
    pub seeds: Vec<u64>,
    /// PPO iterations of each ablation run.
    pub seed_steps: usize,
    /// NTP coefficient of the ablation arms that keep the NTP term (`ref`, `noref`; the
    /// `nontp` arm has 0). Default: `[ppo].ntp_coef`. Set it when the main PPO run has no NTP
    /// term, so `ntp_limits_forgetting` still compares a positive coefficient with none.
    pub ntp_coef: Option<f64>,
    /// The control of the `sft_chosen` stage: the SFT model trained further, with these
    /// settings, on the chosen replies of the training pairs (`data/chosen.jsonl`), the data
    /// PPO's NTP term and RPO's NLL term learn from. The eval stage compares PPO and DPO with
    /// it (`ppo_beats_sft_on_chosen`, `dpo_beats_sft_on_chosen`): what RL adds beyond
    /// supervised learning on the preferred replies. `None` = no such stage.
    pub sft_on_chosen: Option<SftConfig>,
}

impl Default for AblationSection {
    fn default() -> Self {
        AblationSection {
            rm_unbalanced: true,
            ppo_without_reference_reward: true,
            seeds: Vec::new(),
            seed_steps: 16,
            ntp_coef: None,
            sft_on_chosen: None,
        }
    }
}

/// `[compare]`: critic-free estimators trained beside PPO (the `compare` stage).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct CompareSection {
    /// Estimators to train: `grpo`, `rloo`, `reinforce_pp`, `remax` (empty = no stage).
    pub methods: Vec<String>,
    /// Responses per prompt of the group estimators (GRPO, RLOO); they take
    /// `[ppo].batch_prompts / num_generations` prompts per iteration, so every method samples
    /// as many responses as PPO.
    pub num_generations: usize,
}

impl Default for CompareSection {
    fn default() -> Self {
        CompareSection {
            methods: Vec::new(),
            num_generations: 4,
        }
    }
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PipelineConfig {
    /// Run directory and device.
    #[serde(default)]
    pub run: RunSection,
    /// Inputs.
    pub data: DataSection,
    /// Start point.
    #[serde(default)]
    pub model: ModelSection,
    /// SFT hyper-parameters.
    #[serde(default)]
    pub sft: SftConfig,
    /// Reward-model hyper-parameters (with `[rm.balance]` for length balancing).
    #[serde(default)]
    pub rm: RewardTrainConfig,
    /// PPO config (the `rlhf train-ppo` config file's content; paths are filled in by the
    /// pipeline).
    #[serde(default)]
    pub ppo: toml::Table,
    /// DPO pair construction.
    #[serde(default)]
    pub dpo_pairs: PairBuildConfig,
    /// DPO hyper-parameters.
    #[serde(default)]
    pub dpo: DpoTrainConfig,
    /// Final evaluation.
    #[serde(default)]
    pub eval: EvalSection,
    /// Ablation runs.
    #[serde(default)]
    pub ablations: AblationSection,
    /// Critic-free estimators beside PPO.
    #[serde(default)]
    pub compare: CompareSection,
}

impl PipelineConfig {
    /// Parses TOML text (`origin` names it in errors) and resolves relative data paths against
    /// `base`.
    pub(crate) fn parse(text: &str, origin: &str, base: &Path) -> anyhow::Result<Self> {
        let mut cfg: PipelineConfig =
            toml::from_str(text).with_context(|| format!("config {origin}"))?;
        for p in [
            &mut cfg.data.pairs,
            &mut cfg.data.sft,
            &mut cfg.data.prompts,
            &mut cfg.data.eval_prompts,
        ] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if let Some(w) = &mut cfg.data.world
            && w.is_relative()
        {
            *w = base.join(&*w);
        }
        if cfg.model.base != "scratch" {
            let p = PathBuf::from(&cfg.model.base);
            if p.is_relative() {
                cfg.model.base = base.join(p).display().to_string();
            }
        }
        Ok(cfg)
    }

    /// Every check that can fail before work starts: files exist, values in range.
    pub(crate) fn validate(&self, origin: &str) -> anyhow::Result<()> {
        let ctx = |what: &str| format!("config {origin}: {what}");
        for (name, p) in [
            ("data.pairs", &self.data.pairs),
            ("data.sft", &self.data.sft),
            ("data.prompts", &self.data.prompts),
            ("data.eval_prompts", &self.data.eval_prompts),
        ] {
            if !p.is_file() {
                bail!(
                    "{}",
                    ctx(&format!("{name} = {} is not a file", p.display()))
                );
            }
        }
        if let Some(w) = &self.data.world
            && !w.join("world.json").is_file()
        {
            bail!(
                "{}",
                ctx(&format!(
                    "data.world = {}: no world.json there",
                    w.display()
                ))
            );
        }
        if !["hh", "oasst", "trl", "alignbench"].contains(&self.data.format.as_str()) {
            bail!(
                "{}",
                ctx(&format!(
                    "data.format must be hh, oasst, trl or alignbench, got {:?}",
                    self.data.format
                ))
            );
        }
        if !(0.0..1.0).contains(&self.data.test_fraction) {
            bail!("{}", ctx("data.test_fraction must be in [0, 1)"));
        }
        if self.model.base == "scratch" {
            if !(300..=65_536).contains(&self.model.vocab_size) {
                bail!("{}", ctx("model.vocab_size must be in 300..=65536"));
            }
            if !["small", "tiny-llama", "tiny-bench"].contains(&self.model.preset.as_str()) {
                bail!(
                    "{}",
                    ctx(&format!(
                        "model.preset must be small, tiny-llama or tiny-bench, got {:?}",
                        self.model.preset
                    ))
                );
            }
        } else if !Path::new(&self.model.base).join("config.json").is_file() {
            bail!(
                "{}",
                ctx(&format!(
                    "model.base = {}: not \"scratch\" and no config.json there",
                    self.model.base
                ))
            );
        }
        let main = crate::device::parse_device(&self.run.device)
            .map_err(|e| anyhow::anyhow!("{}", ctx(&format!("run.device: {e}"))))?;
        for d in &self.run.devices {
            let d = crate::device::parse_device(d)
                .map_err(|e| anyhow::anyhow!("{}", ctx(&format!("run.devices: {e}"))))?;
            if std::mem::discriminant(&d) != std::mem::discriminant(&main) {
                bail!(
                    "{}",
                    ctx(&format!(
                        "run.devices: {d} is not of run.device's kind ({main})"
                    ))
                );
            }
        }
        self.sft.validate().with_context(|| ctx("[sft]"))?;
        if let Some(c) = &self.ablations.sft_on_chosen {
            c.validate()
                .with_context(|| ctx("[ablations.sft_on_chosen]"))?;
        }
        self.rm.validate().with_context(|| ctx("[rm]"))?;
        self.dpo.validate().with_context(|| ctx("[dpo]"))?;
        if self.dpo_pairs.k < 2 {
            bail!("{}", ctx("dpo_pairs.k must be >= 2"));
        }
        super::validate_ppo_table(&self.ppo).with_context(|| ctx("[ppo]"))?;
        if !self.ablations.seeds.is_empty() && self.ablations.seed_steps < 2 {
            bail!(
                "{}",
                ctx("ablations.seed_steps must be >= 2 (KL is compared over the last half)")
            );
        }
        if let Some(c) = self.ablations.ntp_coef
            && !(c.is_finite() && c > 0.0)
        {
            bail!(
                "{}",
                ctx(&format!(
                    "ablations.ntp_coef must be > 0 (the nontp arm is the one without), got {c}"
                ))
            );
        }
        let ppo_ntp = self
            .ppo
            .get("ntp_coef")
            .and_then(|v| v.as_float().or(v.as_integer().map(|i| i as f64)))
            .unwrap_or(0.0);
        if !self.ablations.seeds.is_empty() && self.ablations.ntp_coef.is_none() && ppo_ntp <= 0.0 {
            bail!(
                "{}",
                ctx(
                    "[ppo] has no NTP term (ntp_coef = 0): set ablations.ntp_coef so the seed \
                     runs of ntp_limits_forgetting compare a positive coefficient with none"
                )
            );
        }
        for m in &self.compare.methods {
            if super::compare::label(m).is_none() {
                bail!(
                    "{}",
                    ctx(&format!(
                        "compare.methods: unknown method {m:?}; expected grpo, rloo, \
                         reinforce_pp or remax (PPO itself is the ppo stage)"
                    ))
                );
            }
        }
        let groups = self
            .compare
            .methods
            .iter()
            .any(|m| m == "grpo" || m == "rloo");
        if groups {
            let bp = self
                .ppo
                .get("batch_prompts")
                .and_then(toml::Value::as_integer)
                .map_or(8, |v| v as usize);
            let k = self.compare.num_generations;
            if k < 2 || !bp.is_multiple_of(k) {
                bail!(
                    "{}",
                    ctx(&format!(
                        "compare.num_generations must be >= 2 and divide ppo.batch_prompts \
                         ({bp}), got {k}"
                    ))
                );
            }
        }
        let mut seen = self.ablations.seeds.clone();
        seen.sort_unstable();
        seen.dedup();
        if seen.len() != self.ablations.seeds.len() {
            bail!("{}", ctx("ablations.seeds must not repeat a seed"));
        }
        if self.eval.max_new_tokens == 0 || self.eval.batch == 0 {
            bail!("{}", ctx("eval.max_new_tokens and eval.batch must be >= 1"));
        }
        Ok(())
    }
}
