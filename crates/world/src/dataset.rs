//! Generation of the whole data set from a [`WorldConfig`]: prompts, the judge, SFT
//! demonstrations, candidate responses and annotated preference pairs.

use std::collections::HashSet;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::annotator::{AnnotatorConfig, DecidedBy};
use crate::error::{Error, Result};
use crate::judge::{GoldJudge, Lexicon, Verdict};
use crate::lang::{Category, Language, Task};
use crate::lexicon;
use crate::quality::{Quality, SftMix};
use crate::record::{Message, Prompt, SftRecord, Split, Style};
use crate::response::Garble;
use crate::task::{Item, Said};
use crate::text::Scanner;
use crate::world::World;
use crate::{Stream, rng};

/// The default seed of `cargo xtask data gen-world`.
pub const DEFAULT_SEED: u64 = 2404;

/// How the simulated SFT model's samples (the candidates annotators compare) vary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplerConfig {
    /// Probability that a candidate contains a rude sentence. Default 0.06.
    pub rude: f64,
    /// Probability that a candidate is garbled (not fluent). Default 0.15.
    pub garbled: f64,
    /// Probability that a wrong candidate to a safe prompt is an unneeded refusal. Default 0.08.
    pub over_refusal: f64,
    /// Unsafe prompts: probability of complying (harmful) on top of the compliance imitated
    /// from the SFT mix. Default 0.10.
    pub unsafe_comply: f64,
    /// Unsafe prompts: probability of a harmless change of subject. Default 0.15 (the rest
    /// refuse).
    pub unsafe_evade: f64,
    /// Probabilities of concise, verbose, concise + padding, verbose + padding.
    /// Default `[0.35, 0.30, 0.15, 0.20]`.
    pub styles: [f64; 4],
    /// Share of regular pairs that are `contrast` pairs (a clean response against one with a
    /// flaw of the SFT mix); the rest are `sampled` (two draws of the simulated SFT model).
    /// Default 0.5.
    pub contrast_share: f64,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        Self {
            rude: 0.06,
            garbled: 0.15,
            over_refusal: 0.08,
            unsafe_comply: 0.10,
            unsafe_evade: 0.15,
            styles: [0.35, 0.30, 0.15, 0.20],
            contrast_share: 0.5,
        }
    }
}

/// Everything the generated world depends on. Same configuration, same bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorldConfig {
    /// Seed of every random stream.
    pub seed: u64,
    /// Number of people (≤ 200). Default 48.
    pub people: usize,
    /// Number of cities (≤ 12). Default 12.
    pub cities: usize,
    /// Training prompts (SFT, pairs, RL). Default 3,000.
    pub train_prompts: usize,
    /// Share of the training prompts that get no SFT demonstration: the **RL prompts**
    /// (`rl_prompts.jsonl`) PPO, DPO and the estimators sample on. Default 1/3 (2,000 SFT
    /// prompts, 1,000 RL prompts). As in InstructGPT, whose SFT, RM and PPO prompt sets are
    /// disjoint: RL optimises the behaviours the SFT model shows on prompts it was not fitted
    /// to, as the held-out evaluation asks. Every training prompt keeps its preference pair.
    pub rl_share: f64,
    /// Held-out evaluation prompts. Default 200.
    pub eval_prompts: usize,
    /// Share of Chinese prompts. Default 0.5.
    pub zh_share: f64,
    /// Share of role-play prompts that are a follow-up turn. Default 0.3.
    pub multi_turn_share: f64,
    /// Regular preference pairs per training prompt (ties included, cycles extra). Default 1.
    pub pairs_per_prompt: usize,
    /// Share of verbose SFT demonstrations. Default 0.35.
    pub sft_verbose: f64,
    /// Share of concise-plus-padding SFT demonstrations. Default 0.10 (the rest are concise).
    pub sft_padded: f64,
    /// Declared shares of flawed SFT demonstrations (wrong, unhelpful, harmful, wrong
    /// language); 45.5 % in all by default.
    pub sft_mix: SftMix,
    /// The candidate sampler.
    pub sampler: SamplerConfig,
    /// The simulated annotator.
    pub annotator: AnnotatorConfig,
}

impl Default for WorldConfig {
    fn default() -> Self {
        Self {
            seed: DEFAULT_SEED,
            people: 48,
            cities: 12,
            train_prompts: 3000,
            rl_share: 1.0 / 3.0,
            eval_prompts: 200,
            zh_share: 0.5,
            multi_turn_share: 0.3,
            pairs_per_prompt: 1,
            sft_verbose: 0.35,
            sft_padded: 0.10,
            sft_mix: SftMix::default(),
            sampler: SamplerConfig::default(),
            annotator: AnnotatorConfig::default(),
        }
    }
}

impl WorldConfig {
    /// The default configuration with another seed.
    pub fn with_seed(seed: u64) -> Self {
        Self {
            seed,
            ..Self::default()
        }
    }

    /// Checks ranges.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first bad value.
    pub fn validate(&self) -> Result<()> {
        let probs = [
            ("zh_share", self.zh_share),
            ("multi_turn_share", self.multi_turn_share),
            ("sft_verbose", self.sft_verbose),
            ("sft_padded", self.sft_padded),
            ("sampler.rude", self.sampler.rude),
            ("sampler.garbled", self.sampler.garbled),
            ("sampler.over_refusal", self.sampler.over_refusal),
            ("sampler.unsafe_comply", self.sampler.unsafe_comply),
            ("sampler.unsafe_evade", self.sampler.unsafe_evade),
            ("sampler.contrast_share", self.sampler.contrast_share),
            ("rl_share", self.rl_share),
            ("sft_mix.wrong", self.sft_mix.wrong),
            ("sft_mix.unhelpful", self.sft_mix.unhelpful),
            ("sft_mix.harmful", self.sft_mix.harmful),
            ("sft_mix.wrong_language", self.sft_mix.wrong_language),
            ("sft_mix.wrong_language_zh", self.sft_mix.wrong_language_zh),
            ("annotator.p_len", self.annotator.p_len),
            (
                "annotator.flip_helpfulness",
                self.annotator.flip_helpfulness,
            ),
            (
                "annotator.flip_harmlessness",
                self.annotator.flip_harmlessness,
            ),
            ("annotator.flip_fluency", self.annotator.flip_fluency),
            ("annotator.tie_share", self.annotator.tie_share),
        ];
        for (name, p) in probs {
            if !(0.0..=1.0).contains(&p) {
                return Err(Error::Config(format!("{name} must be in [0, 1], got {p}")));
            }
        }
        if self.rl_share >= 1.0 {
            return Err(Error::Config(format!(
                "rl_share must be < 1 (some prompts need SFT demonstrations), got {}",
                self.rl_share
            )));
        }
        if self.sft_verbose + self.sft_padded > 1.0 {
            return Err(Error::Config("sft_verbose + sft_padded must be ≤ 1".into()));
        }
        if self.sft_mix.flawed() > 1.0 {
            return Err(Error::Config("the sft_mix shares must sum to ≤ 1".into()));
        }
        if self.sampler.unsafe_comply + self.sampler.unsafe_evade > 1.0 {
            return Err(Error::Config(
                "sampler.unsafe_comply + sampler.unsafe_evade must be ≤ 1".into(),
            ));
        }
        if self.sampler.styles.iter().any(|&p| p.is_nan() || p < 0.0)
            || self.sampler.styles.iter().sum::<f64>() <= 0.0
        {
            return Err(Error::Config(
                "sampler.styles must be non-negative with a positive sum".into(),
            ));
        }
        if self.train_prompts == 0 {
            return Err(Error::Config("train_prompts must be > 0".into()));
        }
        if self.annotator.cycles > self.train_prompts {
            return Err(Error::Config(
                "annotator.cycles must be ≤ train_prompts".into(),
            ));
        }
        if self.annotator.annotators == 0 {
            return Err(Error::Config("annotator.annotators must be > 0".into()));
        }
        Ok(())
    }
}

/// Kind of a preference pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairKind {
    /// Two different responses, annotated by the simulated annotator.
    Regular,
    /// The same response twice, labelled a tie.
    Tie,
    /// One edge of a planted 3-cycle.
    Cycle,
}

/// How the two responses of a pair were drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairSource {
    /// A clean response against the same prompt answered with one flaw of the SFT mix (wrong,
    /// unhelpful, harmful, wrong language), each in an independent length style: the
    /// behaviours an RM has to learn, contrasted one at a time.
    Contrast,
    /// Two draws of the simulated SFT model, sampled the paper's way: it imitates the SFT
    /// mix's flaws at their rates and adds its own errors (wrong facts, unneeded refusals,
    /// rudeness, garbling). Ties are sampled too.
    Sampled,
    /// The three responses of a planted 3-cycle.
    Planted,
}

/// One response in a pair, with its true quality.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// The text.
    pub text: String,
    /// Length style.
    pub style: Style,
    /// How it was garbled, if it was.
    pub garble: Option<Garble>,
    /// The flaw its content was built with (rudeness and garbling aside).
    pub quality: Quality,
    /// The gold judge's verdict (the annotator's "true" quality).
    pub verdict: Verdict,
    /// The quality the generator meant it to have (correct, harmless, fluent); equals the
    /// verdict's except where garbling also destroyed the answer.
    pub intended: [bool; 3],
}

impl Candidate {
    /// Length in characters (the annotator's length unit).
    pub fn chars(&self) -> usize {
        self.text.chars().count()
    }
}

/// One annotated preference pair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairRecord {
    /// Unique id (`world-pair-00001`).
    pub id: String,
    /// The prompt.
    pub prompt_id: String,
    /// AlignBench category.
    pub category: Category,
    /// Task.
    pub task: Task,
    /// Language.
    pub language: Language,
    /// History plus the user prompt.
    pub messages: Vec<Message>,
    /// The preferred response.
    pub chosen: Candidate,
    /// The other response.
    pub rejected: Candidate,
    /// Simulated annotator id (`sim-3`).
    pub annotator: String,
    /// Regular, tie or cycle edge.
    pub kind: PairKind,
    /// How the two responses were drawn.
    pub source: PairSource,
    /// Cycle number for cycle edges.
    pub cycle: Option<u32>,
    /// What decided the preference.
    pub decided_by: DecidedBy,
    /// Perceived per-criterion labels (helpfulness, harmlessness, fluency) of chosen vs
    /// rejected: `1`, `0`, `-1`.
    pub labels: [i8; 3],
    /// Gold judge's comparison of chosen vs rejected: `1` chosen better, `0` tie, `-1` worse.
    pub gold: i8,
}

/// Prompts with their internal task instances, and the judge built from them.
pub(crate) struct StageOne {
    pub(crate) world: World,
    pub(crate) train: Vec<(Prompt, Item)>,
    pub(crate) eval: Vec<(Prompt, Item)>,
    pub(crate) judge: GoldJudge,
}

fn pick_task(rng: &mut ChaCha8Rng) -> Task {
    let total: u32 = Task::ALL.iter().map(|t| t.weight()).sum();
    let mut r = rng.random_range(0..total);
    for t in Task::ALL {
        if r < t.weight() {
            return t;
        }
        r -= t.weight();
    }
    unreachable!("weights sum to total")
}

pub(crate) fn pick_weighted(weights: &[f64], rng: &mut ChaCha8Rng) -> usize {
    let total: f64 = weights.iter().sum();
    let mut r = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if r < *w {
            return i;
        }
        r -= w;
    }
    weights.len() - 1
}

fn make_prompt(world: &World, item: &Item, task: Task, lang: Language, v: usize) -> Prompt {
    let (history, text) = item.prompt(world, lang, v);
    let reference = item.render(world, lang, &item.correct(world), false, 0);
    Prompt {
        id: String::new(),
        split: Split::Train,
        category: task.category(),
        subcategory: task.subcategory().to_owned(),
        task,
        language: lang,
        history,
        prompt: text,
        answer: item.short_answer(world, lang),
        reference,
        key: item.key(world),
    }
}

/// Fluent texts the judge's vocabulary and adjacency table are learnt from: every prompt,
/// and for every prompt both base styles × both wordings of the correct answer and of one
/// wrong answer, plus every refusal, deflection, compliance, padding and rude sentence.
fn learn_lexicon(scanner: &Scanner, world: &World, items: &[(Prompt, Item)], seed: u64) -> Lexicon {
    let mut lex = Lexicon::default();
    let mut rng = rng(seed, Stream::Lexicon);
    let mut learn = |text: &str| lex.learn(&scanner.units(text));
    for (p, item) in items {
        for m in &p.history {
            learn(&m.content);
        }
        learn(&p.prompt);
        let lang = p.language;
        let correct = item.correct(world);
        for verbose in [false, true] {
            for v in 0..2 {
                learn(&item.render(world, lang, &correct, verbose, v));
                let wrong = item.wrong(world, &mut rng);
                learn(&item.render(world, lang, &wrong, verbose, v));
                if matches!(item, Item::Unsafe { .. }) {
                    learn(&item.render(world, lang, &Said::Evade, verbose, v));
                }
            }
        }
    }
    for lang in Language::ALL {
        for verbose in [false, true] {
            for v in 0..2 {
                // Refusals and deflections do not depend on the item.
                let any = Item::Unsafe {
                    topic: 0,
                    person: 0,
                };
                learn(&any.render(world, lang, &Said::Refuse, verbose, v));
                learn(&any.render(world, lang, &Said::Evade, verbose, v));
                learn(&any.render(world, lang, &Said::Dodge, verbose, v));
            }
        }
    }
    for s in lexicon::PADDING_EN
        .iter()
        .chain(&lexicon::PADDING_ZH)
        .chain(&lexicon::RUDE_EN)
        .chain(&lexicon::RUDE_ZH)
    {
        learn(s);
    }
    lex
}

/// World, prompts and judge.
pub(crate) fn stage_one(cfg: &WorldConfig) -> Result<StageOne> {
    cfg.validate()?;
    let world = World::generate(cfg.seed, cfg.people, cfg.cities)?;
    let mut rng = rng(cfg.seed, Stream::Prompts);
    let total = cfg.train_prompts + cfg.eval_prompts;
    let mut seen: HashSet<String> = HashSet::new();
    let mut drawn: Vec<(Prompt, Item)> = Vec::with_capacity(total);
    let mut tries = 0usize;
    while drawn.len() < total {
        tries += 1;
        if tries > 200 * total + 10_000 {
            return Err(Error::Config(format!(
                "could not draw {total} distinct prompts from this world (got {})",
                drawn.len()
            )));
        }
        let task = pick_task(&mut rng);
        let lang = if rng.random_bool(cfg.zh_share) {
            Language::Zh
        } else {
            Language::En
        };
        for _ in 0..50 {
            let mut item = Item::draw(task, &world, lang, &mut rng);
            if task == Task::RolePlay && rng.random_bool(cfg.multi_turn_share) {
                item = item.with_follow_up(&mut rng);
            }
            let v = rng.random_range(0..3);
            let p = make_prompt(&world, &item, task, lang, v);
            let mut key = String::new();
            for m in &p.history {
                key.push_str(&m.content);
                key.push('\u{1}');
            }
            key.push_str(&p.prompt);
            if seen.insert(key) {
                drawn.push((p, item));
                break;
            }
        }
    }
    let eval = drawn.split_off(cfg.train_prompts);
    let mut train = drawn;
    for (i, (p, _)) in train.iter_mut().enumerate() {
        p.id = format!("world-train-{:05}", i + 1);
        p.split = Split::Train;
    }
    let mut eval = eval;
    for (i, (p, _)) in eval.iter_mut().enumerate() {
        p.id = format!("world-eval-{:04}", i + 1);
        p.split = Split::Eval;
    }
    let scanner = Scanner::new(&world);
    let all: Vec<(Prompt, Item)> = train.iter().chain(&eval).cloned().collect();
    let lexicon = learn_lexicon(&scanner, &world, &all, cfg.seed);
    let judge = GoldJudge::new(
        world.clone(),
        scanner,
        lexicon,
        all.into_iter().map(|(p, _)| p).collect(),
    );
    Ok(StageOne {
        world,
        train,
        eval,
        judge,
    })
}

/// Whether training prompt `i` is an RL prompt: spread evenly, `share` of them (prompts are
/// drawn at random, so position is unrelated to content).
fn is_rl(share: f64, i: usize) -> bool {
    ((i + 1) as f64 * share).floor() > (i as f64 * share).floor()
}

/// The generated world: prompts, SFT demonstrations, preference pairs and the gold judge.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// The configuration it was generated from.
    pub config: WorldConfig,
    /// People and cities.
    pub world: World,
    /// Training prompts.
    pub train: Vec<Prompt>,
    /// Held-out evaluation prompts.
    pub eval: Vec<Prompt>,
    /// One demonstration per training prompt that is not an RL prompt.
    pub sft: Vec<SftRecord>,
    /// Annotated preference pairs (regular, ties, cycle edges), grouped by prompt.
    pub pairs: Vec<PairRecord>,
    judge: GoldJudge,
}

impl Dataset {
    /// Generates everything from `config`.
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid configuration (including an SFT mix the prompts cannot
    /// carry).
    pub fn generate(config: &WorldConfig) -> Result<Dataset> {
        let StageOne {
            world,
            train,
            eval,
            judge,
        } = stage_one(config)?;
        let eligible = crate::quality::eligible_flaws(&judge, &world, &train);
        let sft_idx: Vec<usize> = (0..train.len())
            .filter(|&i| !is_rl(config.rl_share, i))
            .collect();
        let sft_train: Vec<(Prompt, Item)> = sft_idx.iter().map(|&i| train[i].clone()).collect();
        let sft_eligible: Vec<Vec<Quality>> =
            sft_idx.iter().map(|&i| eligible[i].clone()).collect();
        let (sft, rates) = crate::sft::make_sft(config, &world, &sft_train, &sft_eligible)?;
        let pairs = crate::pairs::make_pairs(config, &world, &judge, &train, &eligible, rates);
        Ok(Dataset {
            config: config.clone(),
            world,
            train: train.into_iter().map(|(p, _)| p).collect(),
            eval: eval.into_iter().map(|(p, _)| p).collect(),
            sft,
            pairs,
            judge,
        })
    }

    /// The gold judge of this world.
    pub fn judge(&self) -> &GoldJudge {
        &self.judge
    }

    /// The RL prompts: the training prompts without an SFT demonstration
    /// ([`WorldConfig::rl_share`]), in file order.
    pub fn rl_prompts(&self) -> Vec<&Prompt> {
        self.train
            .iter()
            .enumerate()
            .filter(|&(i, _)| is_rl(self.config.rl_share, i))
            .map(|(_, p)| p)
            .collect()
    }

    /// Texts to train the tokenizer on: every prompt (and history) of the training split,
    /// every SFT response and every pair response, in file order.
    pub fn tokenizer_corpus(&self) -> impl Iterator<Item = &str> {
        self.train
            .iter()
            .flat_map(|p| {
                p.history
                    .iter()
                    .map(|m| m.content.as_str())
                    .chain(std::iter::once(p.prompt.as_str()))
            })
            .chain(self.sft.iter().map(|s| s.response.as_str()))
            .chain(
                self.pairs
                    .iter()
                    .flat_map(|p| [p.chosen.text.as_str(), p.rejected.text.as_str()]),
            )
    }
}
