//! Writing the data files and reading them back.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::annotator::DecidedBy;
use crate::dataset::{Dataset, PairKind, PairSource, WorldConfig};
use crate::error::{Error, Result};
use crate::lang::{Category, Language, Task};
use crate::lexicon::{self, Word};
use crate::quality::Quality;
use crate::record::{Message, Prompt, SftRecord, Style};
use crate::response::Garble;
use crate::world::World;

/// `world.json`: configuration, entities, word lists, markers and vocabulary.
pub const WORLD_FILE: &str = "world.json";
/// Training prompts.
pub const PROMPTS_FILE: &str = "prompts.jsonl";
/// The RL prompts: the training prompts without an SFT demonstration.
pub const RL_PROMPTS_FILE: &str = "rl_prompts.jsonl";
/// Held-out evaluation prompts.
pub const EVAL_PROMPTS_FILE: &str = "eval_prompts.jsonl";
/// The single-turn eval prompts as an AlignBench question file.
pub const EVAL_ALIGNBENCH_FILE: &str = "eval_alignbench.jsonl";
/// SFT demonstrations.
pub const SFT_FILE: &str = "sft.jsonl";
/// Preference pairs, TRL conversational JSONL.
pub const PAIRS_FILE: &str = "pairs.jsonl";
/// Per-pair annotation details (sidecar of [`PAIRS_FILE`], same order and ids).
pub const PAIRS_META_FILE: &str = "pairs_meta.jsonl";
/// Measured statistics of the generated set.
pub const STATS_FILE: &str = "stats.json";

/// A word of the fixed lists, as written to `world.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WordEntry {
    /// Chinese.
    pub zh: String,
    /// English (singular).
    pub en: String,
}

/// The fixed word lists and markers, as written to `world.json` (for inspection).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LexiconFile {
    /// Colours.
    pub colours: Vec<WordEntry>,
    /// Animals.
    pub animals: Vec<WordEntry>,
    /// Fruits.
    pub fruits: Vec<WordEntry>,
    /// Jobs.
    pub jobs: Vec<WordEntry>,
    /// Regions.
    pub regions: Vec<WordEntry>,
    /// Objects (translation only).
    pub objects: Vec<WordEntry>,
    /// Antonym words; entries `2k` and `2k + 1` are opposites.
    pub antonyms: Vec<WordEntry>,
    /// Advice topics: accepted keywords (English then Chinese).
    pub advice_keywords: Vec<Vec<String>>,
    /// Refusal markers.
    pub refusal_markers: Vec<String>,
    /// Markers that make a response harmful (insults, then unsafe compliance).
    pub harmful_markers: Vec<String>,
}

/// The judge's vocabulary, as written to `world.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VocabularyFile {
    /// Known English words (lowercase; names are terms, not listed here).
    pub en: Vec<String>,
    /// Known Chinese characters, sorted by code point.
    pub zh: String,
}

/// Contents of `world.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorldFile {
    /// Generator name and version.
    pub generator: String,
    /// The configuration (regenerating from it reproduces every file).
    pub config: WorldConfig,
    /// People and cities.
    pub world: World,
    /// Fixed word lists and markers.
    pub lexicon: LexiconFile,
    /// The judge's vocabulary.
    pub vocabulary: VocabularyFile,
}

fn entries(words: &[Word]) -> Vec<WordEntry> {
    words
        .iter()
        .map(|w| WordEntry {
            zh: w.zh.to_owned(),
            en: w.en.to_owned(),
        })
        .collect()
}

fn lexicon_file() -> LexiconFile {
    LexiconFile {
        colours: entries(&lexicon::COLOURS),
        animals: entries(&lexicon::ANIMALS),
        fruits: entries(&lexicon::FRUITS),
        jobs: entries(&lexicon::JOBS),
        regions: entries(&lexicon::REGIONS),
        objects: entries(&lexicon::OBJECTS),
        antonyms: entries(&lexicon::ANTONYM_WORDS),
        advice_keywords: lexicon::ADVICE
            .iter()
            .map(|a| {
                a.en_keywords
                    .iter()
                    .chain(a.zh_keywords)
                    .map(|s| (*s).to_owned())
                    .collect()
            })
            .collect(),
        refusal_markers: lexicon::REFUSAL_MARKERS
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        harmful_markers: lexicon::INSULT_MARKERS
            .iter()
            .copied()
            .chain(
                lexicon::UNSAFE
                    .iter()
                    .flat_map(|u| [u.en_marker, u.zh_marker]),
            )
            .map(str::to_owned)
            .collect(),
    }
}

#[derive(Serialize)]
struct TrlLine<'a> {
    id: &'a str,
    prompt: &'a [Message],
    chosen: [Message; 1],
    rejected: [Message; 1],
    category: Category,
    language: Language,
}

/// One line of `pairs_meta.jsonl`: how a pair was made and annotated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairMeta {
    /// Same id as in `pairs.jsonl`.
    pub id: String,
    /// The prompt (in `prompts.jsonl`).
    pub prompt_id: String,
    /// Task.
    pub task: Task,
    /// Simulated annotator.
    pub annotator: String,
    /// Regular, tie or cycle edge.
    pub kind: PairKind,
    /// How the two responses were drawn: `contrast`, `sampled` or `planted` (cycles).
    pub source: PairSource,
    /// Cycle number for cycle edges (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cycle: Option<u32>,
    /// What decided the preference.
    pub decided_by: DecidedBy,
    /// Perceived helpfulness label of chosen vs rejected (`1`, `0`, `-1`).
    pub helpfulness: i8,
    /// Perceived harmlessness label.
    pub harmlessness: i8,
    /// Perceived fluency label.
    pub fluency: i8,
    /// The gold judge's comparison of chosen vs rejected (`1`, `0`, `-1`).
    pub gold: i8,
    /// The chosen response's true quality.
    pub chosen: CandidateMeta,
    /// The rejected response's true quality.
    pub rejected: CandidateMeta,
}

/// True quality and shape of one response of a pair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CandidateMeta {
    /// Gold: correct.
    pub correct: bool,
    /// Gold: harmless.
    pub harmless: bool,
    /// Gold: fluent.
    pub fluent: bool,
    /// Gold score (1–8).
    pub score: u8,
    /// Length style.
    pub style: Style,
    /// The flaw its content was built with (`clean`, `wrong`, `unhelpful`, `harmful`,
    /// `wrong_language`; rudeness and garbling aside).
    pub quality: Quality,
    /// Garbling, if any (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub garble: Option<Garble>,
    /// Length in characters.
    pub chars: usize,
}

#[derive(Serialize)]
struct AlignBenchLine<'a> {
    question_id: usize,
    category: Category,
    subcategory: &'a str,
    question: &'a str,
    reference: &'a str,
    world_id: &'a str,
    language: Language,
}

fn jsonl<T: Serialize>(rows: impl IntoIterator<Item = T>) -> Vec<u8> {
    rlhf_util::to_jsonl(rows).expect("these records serialise (string keys only)")
}

impl Dataset {
    /// The contents of `world.json`.
    pub fn world_file(&self) -> WorldFile {
        let (en, zh) = self.judge().vocabulary();
        WorldFile {
            generator: format!("rlhf-world {}", env!("CARGO_PKG_VERSION")),
            config: self.config.clone(),
            world: self.world.clone(),
            lexicon: lexicon_file(),
            vocabulary: VocabularyFile { en, zh },
        }
    }

    /// The sidecar records of the pairs.
    pub fn pair_meta(&self) -> Vec<PairMeta> {
        let cand = |c: &crate::dataset::Candidate| CandidateMeta {
            correct: c.verdict.correct,
            harmless: c.verdict.harmless,
            fluent: c.verdict.fluent,
            score: c.verdict.score,
            style: c.style,
            quality: c.quality,
            garble: c.garble,
            chars: c.chars(),
        };
        self.pairs
            .iter()
            .map(|p| PairMeta {
                id: p.id.clone(),
                prompt_id: p.prompt_id.clone(),
                task: p.task,
                annotator: p.annotator.clone(),
                kind: p.kind,
                source: p.source,
                cycle: p.cycle,
                decided_by: p.decided_by,
                helpfulness: p.labels[0],
                harmlessness: p.labels[1],
                fluency: p.labels[2],
                gold: p.gold,
                chosen: cand(&p.chosen),
                rejected: cand(&p.rejected),
            })
            .collect()
    }

    /// Every file's name and bytes, in a fixed order (what [`Dataset::write`] writes).
    pub fn files(&self) -> Vec<(&'static str, Vec<u8>)> {
        let mut world = serde_json::to_vec_pretty(&self.world_file()).expect("serialisable");
        world.push(b'\n');
        let mut stats = serde_json::to_vec_pretty(&self.stats()).expect("serialisable");
        stats.push(b'\n');
        let trl = self.pairs.iter().map(|p| TrlLine {
            id: &p.id,
            prompt: &p.messages,
            chosen: [Message::assistant(p.chosen.text.clone())],
            rejected: [Message::assistant(p.rejected.text.clone())],
            category: p.category,
            language: p.language,
        });
        let alignbench = self
            .eval
            .iter()
            .filter(|p| !p.is_multi_turn())
            .enumerate()
            .map(|(i, p)| AlignBenchLine {
                question_id: i + 1,
                category: p.category,
                subcategory: &p.subcategory,
                question: &p.prompt,
                reference: &p.reference,
                world_id: &p.id,
                language: p.language,
            });
        vec![
            (WORLD_FILE, world),
            (PROMPTS_FILE, jsonl(&self.train)),
            (RL_PROMPTS_FILE, jsonl(self.rl_prompts())),
            (EVAL_PROMPTS_FILE, jsonl(&self.eval)),
            (EVAL_ALIGNBENCH_FILE, jsonl(alignbench)),
            (SFT_FILE, jsonl(&self.sft)),
            (PAIRS_FILE, jsonl(trl)),
            (PAIRS_META_FILE, jsonl(self.pair_meta())),
            (STATS_FILE, stats),
        ]
    }

    /// Writes every file into `dir` (created if needed; each file written atomically).
    /// Returns the paths and sizes in bytes.
    ///
    /// # Errors
    /// [`Error::Io`] when `dir` cannot be created, [`Error::Util`] when a file cannot be written.
    pub fn write(&self, dir: &Path) -> Result<Vec<(PathBuf, u64)>> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let mut out = Vec::new();
        for (name, bytes) in self.files() {
            let path = dir.join(name);
            rlhf_util::write_atomic(&path, &bytes)?;
            out.push((path, bytes.len() as u64));
        }
        Ok(out)
    }
}

/// Reads `prompts.jsonl` / `eval_prompts.jsonl`.
///
/// # Errors
/// [`Error::Util`] naming the file (and the line of a bad record).
pub fn read_prompts(path: &Path) -> Result<Vec<Prompt>> {
    Ok(rlhf_util::read_jsonl(path)?)
}

/// Reads `sft.jsonl`.
///
/// # Errors
/// [`Error::Util`] naming the file (and the line of a bad record).
pub fn read_sft(path: &Path) -> Result<Vec<SftRecord>> {
    Ok(rlhf_util::read_jsonl(path)?)
}

/// Reads `pairs_meta.jsonl`.
///
/// # Errors
/// [`Error::Util`] naming the file (and the line of a bad record).
pub fn read_pair_meta(path: &Path) -> Result<Vec<PairMeta>> {
    Ok(rlhf_util::read_jsonl(path)?)
}

/// Reads `world.json`.
///
/// # Errors
/// [`Error::Io`] or [`Error::Json`].
pub fn read_world_file(path: &Path) -> Result<WorldFile> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|source| Error::Json {
        path: path.to_owned(),
        line: 0,
        source,
    })
}
