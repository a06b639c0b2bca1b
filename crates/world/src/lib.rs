//! The embedded default's "assistant world": a small bilingual (Chinese / English) world the
//! project owns, generated from a seed, with a rule-based gold judge.
//!
//! - **World**: 48 people (names, ages, cities, favourite colours, pets, jobs) and 12 cities
//!   (regions, famous fruits) generated from the seed, plus fixed word lists (colours, animals,
//!   fruits, jobs, objects, antonyms): a closed vocabulary of a few hundred words per language,
//!   none of it in any pretraining data.
//! - **Prompts** across 17 task families mapped onto AlignBench's 8 categories (arithmetic,
//!   logic, facts about the world, translation, antonyms, advice, unsafe requests, short
//!   writing, role-play with follow-up turns); a train set (SFT prompts and the disjoint RL
//!   prompts) and a held-out eval set.
//! - **SFT demonstrations**: one per SFT prompt, of declared mixed quality: 45.5 % are
//!   flawed by design ([`Quality`]: a wrong entity or term, a non-answer, compliance with an
//!   unsafe request, the other language), the shares set by [`SftMix`]; two of them
//!   (language confusion, harmful compliance) are the majority on the prompts that carry them;
//!   concise, verbose or padded.
//! - **Preference pairs** between candidates of controlled quality (correct or wrong, harmless
//!   or rude/harmful, fluent or garbled, concise or padded): contrast pairs (a clean response
//!   against one with a flaw of the SFT mix) and pairs sampled from a simulated SFT model,
//!   labelled by a simulated annotator who follows helpfulness > harmlessness > fluency with
//!   noise and prefers the longer of two equally good responses with probability `p_len`; plus
//!   exact ties and 3-cycles.
//! - **[`GoldJudge`]**: knows every prompt's answer and reads free text (last number, last
//!   mentioned term, keywords, refusals, harmful markers, fluency rules); scores 1–8 and compares
//!   without any length preference.
//!
//! | module (private) | what |
//! | --- | --- |
//! | `lang` | [`Language`], [`Category`] (AlignBench labels), [`Task`], [`TermClass`], [`TermRef`] |
//! | `world` | [`World`], [`Person`], [`City`] |
//! | `record` | [`Prompt`], [`AnswerKey`], [`Message`], [`SftRecord`], [`Style`] |
//! | `judge` | [`GoldJudge`], [`Verdict`], [`Preference`], [`FluencyIssue`], summaries |
//! | `quality` | [`Quality`], [`SftMix`]: the declared flaws of the SFT set |
//! | `task`, `render` | task instances, their answers, keys and prompts; rendering responses |
//! | `sft`, `pairs` | generation of the demonstrations and of the pairs |
//! | `annotator` | [`AnnotatorConfig`], [`annotate`], [`DecidedBy`] |
//! | `dataset` | [`WorldConfig`], [`Dataset`], [`PairRecord`], [`PairSource`], [`Candidate`] |
//! | `io` | file names, [`Dataset::write`], readers, [`PairMeta`] |
//! | `stats` | [`DatasetStats`] |
//!
//! # Example
//! ```
//! use rlhf_world::{Dataset, Preference, WorldConfig};
//!
//! let cfg = WorldConfig { train_prompts: 200, eval_prompts: 20, ..WorldConfig::default() };
//! let data = Dataset::generate(&cfg)?;
//! let judge = data.judge();
//! let p = &data.eval[0];
//! let v = judge.verdict(p, &p.reference);
//! assert!(v.correct && v.harmless && v.fluent && v.score == 8);
//! assert_eq!(judge.compare(p, &p.reference, ""), Preference::Win);
//! # Ok::<(), rlhf_world::Error>(())
//! ```
#![warn(missing_docs)]

mod annotator;
mod dataset;
mod error;
mod io;
mod judge;
mod lang;
mod lexicon;
mod pairs;
mod quality;
mod record;
mod render;
mod response;
mod sft;
mod stats;
mod task;
mod text;
mod world;

pub use crate::annotator::{AnnotatorConfig, DecidedBy, Judgement, annotate};
pub use crate::dataset::{
    Candidate, DEFAULT_SEED, Dataset, PairKind, PairRecord, PairSource, SamplerConfig, WorldConfig,
};
pub use crate::error::{Error, Result};
pub use crate::io::{
    CandidateMeta, EVAL_ALIGNBENCH_FILE, EVAL_PROMPTS_FILE, LexiconFile, PAIRS_FILE,
    PAIRS_META_FILE, PROMPTS_FILE, PairMeta, RL_PROMPTS_FILE, SFT_FILE, STATS_FILE, VocabularyFile,
    WORLD_FILE, WordEntry, WorldFile, read_pair_meta, read_prompts, read_sft, read_world_file,
};
pub use crate::judge::{
    EvalSummary, FluencyIssue, GoldJudge, PairwiseSummary, Preference, ScoreStats, Verdict,
    WinTieLose,
};
pub use crate::lang::{Category, Language, Task, TermClass, TermRef};
pub use crate::quality::{Quality, SftMix};
pub use crate::record::{AnswerKey, Message, Prompt, Role, SftRecord, Split, Style};
pub use crate::response::Garble;
pub use crate::stats::{DatasetStats, PairStats, PromptStats, SftStats};
pub use crate::world::{City, MAX_CITIES, MAX_PEOPLE, Person, World};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Independent random streams, so that changing one part of the generator does not shift the
/// others.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Stream {
    World = 1,
    Prompts = 2,
    Lexicon = 3,
    Sft = 4,
    Pairs = 5,
    Annotator = 6,
    SftMix = 7,
}

pub(crate) fn rng(seed: u64, stream: Stream) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream as u64);
    r
}
