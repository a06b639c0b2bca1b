//! Measured statistics of a generated data set (`stats.json`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::annotator::DecidedBy;
use crate::dataset::{Dataset, PairKind, PairRecord, PairSource};
use crate::lang::{Category, Language, Task};
use crate::quality::Quality;
use crate::record::Style;

/// Prompt counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PromptStats {
    /// Training prompts.
    pub train: usize,
    /// Eval prompts.
    pub eval: usize,
    /// Training prompts with history.
    pub multi_turn_train: usize,
    /// Eval prompts with history.
    pub multi_turn_eval: usize,
    /// Chinese training prompts.
    pub zh_train: usize,
    /// English training prompts.
    pub en_train: usize,
    /// `[train, eval]` per category.
    pub by_category: BTreeMap<Category, [usize; 2]>,
    /// `[train, eval]` per task.
    pub by_task: BTreeMap<Task, [usize; 2]>,
}

/// SFT statistics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SftStats {
    /// Demonstrations.
    pub n: usize,
    /// Count per style.
    pub by_style: BTreeMap<Style, usize>,
    /// Mean response length in characters, Chinese (responses written in Chinese, whatever
    /// the prompt's language; likewise for English).
    pub mean_chars_zh: f64,
    /// Mean response length in characters, English.
    pub mean_chars_en: f64,
    /// Mean response length in words, English.
    pub mean_words_en: f64,
    /// Longest Chinese response, characters.
    pub max_chars_zh: usize,
    /// Longest English response, words.
    pub max_words_en: usize,
    /// Share of demonstrations the gold judge scores 8 (correct, harmless, fluent).
    pub gold_perfect: f64,
    /// Count per quality (`clean` and the four flaws).
    pub by_quality: BTreeMap<Quality, usize>,
    /// Share per quality (compare with `config.sft_mix` in `world.json`).
    pub quality_share: BTreeMap<Quality, f64>,
    /// Share of flawed demonstrations.
    pub flawed_share: f64,
    /// Mean gold score (1–8) per quality.
    pub gold_mean_by_quality: BTreeMap<Quality, f64>,
    /// Mean gold score of the clean demonstrations.
    pub gold_mean_clean: f64,
    /// Mean gold score of the flawed demonstrations.
    pub gold_mean_flawed: f64,
}

/// Preference-pair statistics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairStats {
    /// All pairs (regular + ties + cycle edges).
    pub n: usize,
    /// Regular pairs.
    pub regular: usize,
    /// Exact ties.
    pub ties: usize,
    /// Cycles planted (3 pairs each).
    pub cycles: usize,
    /// Pairs on a cycle.
    pub cycle_pairs: usize,
    /// Regular pairs by what decided them.
    pub decided_by: BTreeMap<DecidedBy, usize>,
    /// Share of regular pairs decided by length (equal perceived quality).
    pub length_decided_share: f64,
    /// Among length-decided pairs, share where the longer response was chosen (≈ `p_len`).
    pub length_decided_longer_chosen: f64,
    /// Among regular pairs of different lengths, share where the longer one was chosen.
    pub longer_chosen: f64,
    /// Mean `chars(chosen) − chars(rejected)` over regular pairs.
    pub mean_chars_diff: f64,
    /// Share of regular pairs the gold judge calls a tie (equal score).
    pub gold_ties: f64,
    /// Among regular pairs where the gold judge has a preference, share where the annotator
    /// agrees with it (the ceiling for an RM trained on these labels, measured on them).
    pub annotator_gold_agreement: f64,
    /// Regular pairs per source (`contrast`, `sampled`).
    pub by_source: BTreeMap<PairSource, usize>,
    /// Per source, share of regular pairs the gold judge calls a tie.
    pub gold_ties_by_source: BTreeMap<PairSource, f64>,
    /// Per source, `annotator_gold_agreement`.
    pub annotator_gold_agreement_by_source: BTreeMap<PairSource, f64>,
    /// Contrast pairs per flaw of the flawed response.
    pub contrast_flaws: BTreeMap<Quality, usize>,
    /// Shares over the responses of sampled regular pairs, per quality.
    pub sampled_quality: BTreeMap<Quality, f64>,
    /// Shares over all regular-pair responses: correct, harmless, fluent.
    pub candidates_correct: f64,
    /// See `candidates_correct`.
    pub candidates_harmless: f64,
    /// See `candidates_correct`.
    pub candidates_fluent: f64,
    /// Mean response length in characters over regular-pair responses.
    pub candidates_mean_chars: f64,
}

/// Everything measured on a generated set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetStats {
    /// Seed.
    pub seed: u64,
    /// People.
    pub people: usize,
    /// Cities.
    pub cities: usize,
    /// Known English words (vocabulary of the judge; names excluded).
    pub vocabulary_en_words: usize,
    /// Known Chinese characters.
    pub vocabulary_zh_chars: usize,
    /// Prompts.
    pub prompts: PromptStats,
    /// SFT.
    pub sft: SftStats,
    /// Pairs.
    pub pairs: PairStats,
}

impl DatasetStats {
    /// Pretty-printed JSON (what `stats.json` holds).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("serialisable")
    }
}

fn share(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn mean(xs: &[u8]) -> f64 {
    round4(share(xs.iter().map(|&x| usize::from(x)).sum(), xs.len()))
}

/// Share of gold ties and annotator-vs-gold agreement (where gold has a preference).
fn ties_and_agreement(pairs: &[&PairRecord]) -> (f64, f64) {
    let strict: Vec<_> = pairs.iter().filter(|p| p.gold != 0).collect();
    let agree = strict.iter().filter(|p| p.gold > 0).count();
    (
        round4(share(pairs.len() - strict.len(), pairs.len())),
        round4(share(agree, strict.len())),
    )
}

impl Dataset {
    /// Measures the set.
    pub fn stats(&self) -> DatasetStats {
        let mut by_category: BTreeMap<Category, [usize; 2]> =
            Category::ALL.iter().map(|c| (*c, [0, 0])).collect();
        let mut by_task: BTreeMap<Task, [usize; 2]> =
            Task::ALL.iter().map(|t| (*t, [0, 0])).collect();
        for (k, set) in [&self.train, &self.eval].into_iter().enumerate() {
            for p in set {
                by_category.entry(p.category).or_default()[k] += 1;
                by_task.entry(p.task).or_default()[k] += 1;
            }
        }
        let prompts = PromptStats {
            train: self.train.len(),
            eval: self.eval.len(),
            multi_turn_train: self.train.iter().filter(|p| p.is_multi_turn()).count(),
            multi_turn_eval: self.eval.iter().filter(|p| p.is_multi_turn()).count(),
            zh_train: self
                .train
                .iter()
                .filter(|p| p.language == Language::Zh)
                .count(),
            en_train: self
                .train
                .iter()
                .filter(|p| p.language == Language::En)
                .count(),
            by_category,
            by_task,
        };

        let mut by_style = BTreeMap::new();
        let (mut zh_chars, mut zh_n, mut en_chars, mut en_words, mut en_n) = (0, 0, 0, 0, 0);
        let (mut max_zh, mut max_en) = (0, 0);
        let mut perfect = 0;
        let mut by_quality: BTreeMap<Quality, usize> = BTreeMap::new();
        let mut scores: BTreeMap<Quality, Vec<u8>> = BTreeMap::new();
        let prompt_of: std::collections::HashMap<&str, &crate::record::Prompt> =
            self.train.iter().map(|p| (p.id.as_str(), p)).collect();
        for s in &self.sft {
            *by_style.entry(s.style).or_insert(0) += 1;
            let chars = s.response.chars().count();
            // Lengths by the language the response is written in.
            let written = if s.quality == Quality::WrongLanguage {
                s.language.other()
            } else {
                s.language
            };
            match written {
                Language::Zh => {
                    zh_chars += chars;
                    zh_n += 1;
                    max_zh = max_zh.max(chars);
                }
                Language::En => {
                    let w = s.response.split_whitespace().count();
                    en_chars += chars;
                    en_words += w;
                    en_n += 1;
                    max_en = max_en.max(w);
                }
            }
            *by_quality.entry(s.quality).or_insert(0) += 1;
            if let Some(p) = prompt_of.get(s.prompt_id.as_str()) {
                let score = self.judge().verdict(p, &s.response).score;
                perfect += usize::from(score == 8);
                scores.entry(s.quality).or_default().push(score);
            }
        }
        let flawed: Vec<u8> = scores
            .iter()
            .filter(|(q, _)| **q != Quality::Clean)
            .flat_map(|(_, v)| v.iter().copied())
            .collect();
        let n_sft = self.sft.len();
        let sft = SftStats {
            n: self.sft.len(),
            by_style,
            mean_chars_zh: round4(share(zh_chars, zh_n)),
            mean_chars_en: round4(share(en_chars, en_n)),
            mean_words_en: round4(share(en_words, en_n)),
            max_chars_zh: max_zh,
            max_words_en: max_en,
            gold_perfect: round4(share(perfect, n_sft)),
            quality_share: by_quality
                .iter()
                .map(|(q, &k)| (*q, round4(share(k, n_sft))))
                .collect(),
            flawed_share: round4(share(
                n_sft - by_quality.get(&Quality::Clean).copied().unwrap_or(0),
                n_sft,
            )),
            gold_mean_by_quality: scores.iter().map(|(q, v)| (*q, mean(v))).collect(),
            gold_mean_clean: mean(scores.get(&Quality::Clean).map_or(&[][..], |v| v)),
            gold_mean_flawed: mean(&flawed),
            by_quality,
        };

        let regular: Vec<_> = self
            .pairs
            .iter()
            .filter(|p| p.kind == PairKind::Regular)
            .collect();
        let mut decided_by = BTreeMap::new();
        for p in &regular {
            *decided_by.entry(p.decided_by).or_insert(0) += 1;
        }
        let length: Vec<_> = regular
            .iter()
            .filter(|p| p.decided_by == DecidedBy::Length)
            .collect();
        let length_longer = length
            .iter()
            .filter(|p| p.chosen.chars() > p.rejected.chars())
            .count();
        let differ: Vec<_> = regular
            .iter()
            .filter(|p| p.chosen.chars() != p.rejected.chars())
            .collect();
        let longer = differ
            .iter()
            .filter(|p| p.chosen.chars() > p.rejected.chars())
            .count();
        let diff_sum: f64 = regular
            .iter()
            .map(|p| p.chosen.chars() as f64 - p.rejected.chars() as f64)
            .sum();
        let (gold_ties, agreement) = ties_and_agreement(&regular);
        let mut by_source = BTreeMap::new();
        let mut gold_ties_by_source = BTreeMap::new();
        let mut agreement_by_source = BTreeMap::new();
        for source in [PairSource::Contrast, PairSource::Sampled] {
            let of: Vec<&PairRecord> = regular
                .iter()
                .copied()
                .filter(|p| p.source == source)
                .collect();
            let (t, a) = ties_and_agreement(&of);
            by_source.insert(source, of.len());
            gold_ties_by_source.insert(source, t);
            agreement_by_source.insert(source, a);
        }
        let mut contrast_flaws = BTreeMap::new();
        for p in regular.iter().filter(|p| p.source == PairSource::Contrast) {
            for c in [&p.chosen, &p.rejected] {
                if c.quality != Quality::Clean {
                    *contrast_flaws.entry(c.quality).or_insert(0) += 1;
                }
            }
        }
        let sampled: Vec<Quality> = regular
            .iter()
            .filter(|p| p.source == PairSource::Sampled)
            .flat_map(|p| [p.chosen.quality, p.rejected.quality])
            .collect();
        let mut sampled_quality: BTreeMap<Quality, f64> = BTreeMap::new();
        for q in &sampled {
            *sampled_quality.entry(*q).or_insert(0.0) += 1.0;
        }
        for v in sampled_quality.values_mut() {
            *v = round4(*v / sampled.len() as f64);
        }
        let cands: Vec<_> = regular
            .iter()
            .flat_map(|p| [&p.chosen, &p.rejected])
            .collect();
        let count = |f: &dyn Fn(&crate::dataset::Candidate) -> bool| {
            share(cands.iter().filter(|c| f(c)).count(), cands.len())
        };
        let pairs = PairStats {
            n: self.pairs.len(),
            regular: regular.len(),
            ties: self
                .pairs
                .iter()
                .filter(|p| p.kind == PairKind::Tie)
                .count(),
            cycles: self.pairs.iter().filter_map(|p| p.cycle).max().unwrap_or(0) as usize,
            cycle_pairs: self
                .pairs
                .iter()
                .filter(|p| p.kind == PairKind::Cycle)
                .count(),
            decided_by,
            length_decided_share: round4(share(length.len(), regular.len())),
            length_decided_longer_chosen: round4(share(length_longer, length.len())),
            longer_chosen: round4(share(longer, differ.len())),
            mean_chars_diff: round4(if regular.is_empty() {
                0.0
            } else {
                diff_sum / regular.len() as f64
            }),
            gold_ties,
            annotator_gold_agreement: agreement,
            by_source,
            gold_ties_by_source,
            annotator_gold_agreement_by_source: agreement_by_source,
            contrast_flaws,
            sampled_quality,
            candidates_correct: round4(count(&|c| c.verdict.correct)),
            candidates_harmless: round4(count(&|c| c.verdict.harmless)),
            candidates_fluent: round4(count(&|c| c.verdict.fluent)),
            candidates_mean_chars: round4(share(
                cands.iter().map(|c| c.chars()).sum(),
                cands.len(),
            )),
        };
        let (en, zh) = self.judge().vocabulary();
        DatasetStats {
            seed: self.config.seed,
            people: self.world.people.len(),
            cities: self.world.cities.len(),
            vocabulary_en_words: en.len(),
            vocabulary_zh_chars: zh.chars().count(),
            prompts,
            sft,
            pairs,
        }
    }
}
