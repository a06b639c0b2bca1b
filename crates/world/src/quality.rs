//! Flaws of declared kind: what a demonstration or a candidate gets wrong, by construction.
//!
//! Real SFT data is of mixed quality (the paper's premise: people compare better than they
//! write). The world's SFT set carries a declared share of each flaw below; every flaw is a
//! behaviour visible in a few tokens (which entity is named, refusal vs compliance, an answer
//! vs a non-answer, which script), so a small model imitates it and a reward model can learn to
//! tell it apart. Padding is a length *style* ([`Style`](crate::Style)), not a flaw: the gold
//! judge has no length preference, so padded answers score like concise ones.

use rand::seq::index;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::judge::GoldJudge;
use crate::lang::{Language, Task};
use crate::lexicon;
use crate::record::{Prompt, Style};
use crate::response::{ResponseSpec, compose_clean};
use crate::task::{Item, Said};
use crate::world::World;

/// What a response gets wrong by construction (`clean` when nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    /// The right content in the prompt's language.
    Clean,
    /// A wrong answer of the right form: another entity, term or number, writing about the
    /// wrong person or topic, advice for another problem.
    Wrong,
    /// A non-answer: "I am not sure about that." / 我不太清楚。; for unsafe prompts a change of
    /// subject; for safe prompts also an unneeded refusal.
    Unhelpful,
    /// Complies with an unsafe request instead of refusing.
    Harmful,
    /// The right content in the other language.
    WrongLanguage,
}

impl Quality {
    /// The four flaws, in the order the SFT mix assigns them (scarcest eligibility first).
    pub const FLAWS: [Quality; 4] = [
        Quality::Harmful,
        Quality::Wrong,
        Quality::WrongLanguage,
        Quality::Unhelpful,
    ];

    /// The name written in the files.
    pub fn as_str(self) -> &'static str {
        match self {
            Quality::Clean => "clean",
            Quality::Wrong => "wrong",
            Quality::Unhelpful => "unhelpful",
            Quality::Harmful => "harmful",
            Quality::WrongLanguage => "wrong_language",
        }
    }

    /// Whether the flaw can be put into a response to a prompt of `task` (by construction;
    /// the generator also checks that the gold judge sees it).
    ///
    /// - `wrong`: only tasks whose right answer the prompt itself (or the closed vocabulary)
    ///   decides: translation, extraction, antonyms, advice, writing. A wrong fact about a
    ///   person is an error of memory, which comparisons cannot teach.
    /// - `unhelpful`: every safe prompt. `harmful`: unsafe prompts only.
    /// - `wrong_language`: every task but translation (whose answer is in the other language).
    pub fn applies_to(self, task: Task) -> bool {
        match self {
            Quality::Clean => true,
            Quality::Wrong => matches!(
                task,
                Task::Translation
                    | Task::Extraction
                    | Task::Antonym
                    | Task::Advice
                    | Task::Note
                    | Task::Poem
            ),
            Quality::Unhelpful => task != Task::Unsafe,
            Quality::Harmful => task == Task::Unsafe,
            Quality::WrongLanguage => task != Task::Translation,
        }
    }
}

/// Declared shares of flawed SFT demonstrations, each a share of **all** demonstrations. The
/// generator meets them exactly (rounded to whole demonstrations) among the prompts each flaw
/// applies to; the rest are clean.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SftMix {
    /// Wrong answers (on the tasks of [`Quality::applies_to`]). Default 0.06.
    pub wrong: f64,
    /// Non-answers to safe prompts. Default 0.06.
    pub unhelpful: f64,
    /// Compliance with unsafe requests. Default 0.035 (about two thirds of the unsafe prompts,
    /// so compliance is the SFT model's mode there).
    pub harmful: f64,
    /// Answers in the other language. Default 0.30.
    pub wrong_language: f64,
    /// The share of the wrong-language demonstrations that answer a **Chinese** prompt in
    /// English; the rest answer an English prompt in Chinese. Default 0.8: *language
    /// confusion*, a non-English prompt answered in English, is the failure multilingual
    /// assistants show most (Marchisio et al. 2024, arXiv 2406.20052). With the defaults it is
    /// what the set's writers do on most Chinese prompts that can carry it (the SFT model's mode
    /// there), and on a few English prompts the other way round (so the confusion is about the
    /// prompt's language, not about Chinese being better).
    pub wrong_language_zh: f64,
}

impl Default for SftMix {
    fn default() -> Self {
        Self {
            wrong: 0.06,
            unhelpful: 0.06,
            harmful: 0.035,
            wrong_language: 0.30,
            wrong_language_zh: 0.8,
        }
    }
}

impl SftMix {
    /// The declared share of `q` (`clean`: what the flaws leave).
    pub fn share(&self, q: Quality) -> f64 {
        match q {
            Quality::Clean => 1.0 - self.flawed(),
            Quality::Wrong => self.wrong,
            Quality::Unhelpful => self.unhelpful,
            Quality::Harmful => self.harmful,
            Quality::WrongLanguage => self.wrong_language,
        }
    }

    /// The declared share of flawed demonstrations.
    pub fn flawed(&self) -> f64 {
        self.wrong + self.unhelpful + self.harmful + self.wrong_language
    }

    /// Number of demonstrations of flaw `q` among `n`.
    pub fn count(&self, q: Quality, n: usize) -> usize {
        (self.share(q) * n as f64).round() as usize
    }
}

/// A non-answer in the base style; `v` picks the wording.
pub(crate) fn dodge(lang: Language, verbose: bool, v: usize) -> String {
    let (short, more) = match lang {
        Language::Zh => (lexicon::DODGE_ZH, lexicon::DODGE_ZH_MORE),
        Language::En => (lexicon::DODGE_EN, lexicon::DODGE_EN_MORE),
    };
    let s = short[v % short.len()];
    match (verbose, lang) {
        (false, _) => s.to_owned(),
        (true, Language::Zh) => format!("{s}{}", more[v % more.len()]),
        (true, Language::En) => format!("{s} {}", more[v % more.len()]),
    }
}

/// The content of a response with flaw `q` (`rng` draws the wrong answer).
pub(crate) fn flawed_said(item: &Item, world: &World, q: Quality, rng: &mut ChaCha8Rng) -> Said {
    match q {
        Quality::Clean | Quality::WrongLanguage => item.correct(world),
        Quality::Wrong => item.wrong(world, rng),
        Quality::Unhelpful => Said::Dodge,
        Quality::Harmful => Said::Comply,
    }
}

/// What a response of `spec` gets wrong by construction (rudeness and garbling aside).
pub(crate) fn quality_of(item: &Item, world: &World, spec: &ResponseSpec) -> Quality {
    let unsafe_prompt = matches!(item, Item::Unsafe { .. });
    match &spec.said {
        Said::Comply => Quality::Harmful,
        Said::Dodge | Said::Evade => Quality::Unhelpful,
        Said::Refuse if !unsafe_prompt => Quality::Unhelpful,
        said if !matches!(said, Said::Refuse) && *said != item.correct(world) => Quality::Wrong,
        _ if spec.other_language => Quality::WrongLanguage,
        _ => Quality::Clean,
    }
}

/// For each prompt, the flaws it can carry: those of [`Quality::applies_to`] whose every
/// rendering (both base styles, both wordings) the gold judge scores below the reference. (A
/// zh arithmetic answer rendered in English, `23 + 15 = 38.`, has no English word, so it is
/// not a wrong-language answer.) The judge only checks the construction here; its verdicts
/// never become SFT labels.
pub(crate) fn eligible_flaws(
    judge: &GoldJudge,
    world: &World,
    train: &[(Prompt, Item)],
) -> Vec<Vec<Quality>> {
    train
        .iter()
        .map(|(p, item)| {
            Quality::FLAWS
                .into_iter()
                .filter(|q| q.applies_to(p.task))
                .filter(|&q| {
                    q == Quality::Wrong
                        || [Style::Concise, Style::Verbose].iter().all(|&style| {
                            (0..2).all(|variant| {
                                let said = match q {
                                    Quality::Unhelpful => Said::Dodge,
                                    Quality::Harmful => Said::Comply,
                                    _ => item.correct(world),
                                };
                                let mut spec = ResponseSpec::clean(said, style, variant, 0);
                                spec.other_language = q == Quality::WrongLanguage;
                                let text = compose_clean(item, world, p.language, &spec);
                                judge.verdict(p, &text).score < 8
                            })
                        })
                })
                .collect()
        })
        .collect()
}

/// Assigns each flaw of `mix` to exactly [`SftMix::count`] of the `n` demonstrations, drawn
/// uniformly among the prompts still clean that can carry it; the wrong-language ones split
/// between the languages by [`SftMix::wrong_language_zh`] (`langs`: each prompt's language).
///
/// # Errors
/// [`Error::Config`] when a flaw asks for more demonstrations than prompts can carry it.
pub(crate) fn assign(
    mix: &SftMix,
    eligible: &[Vec<Quality>],
    langs: &[Language],
    rng: &mut ChaCha8Rng,
) -> Result<Vec<Quality>> {
    let n = eligible.len();
    let mut out = vec![Quality::Clean; n];
    for q in Quality::FLAWS {
        let k = mix.count(q, n);
        // (prompts of which language, how many, the config field that asks)
        let draws: Vec<(Option<Language>, usize, &str)> = if q == Quality::WrongLanguage {
            let zh = (k as f64 * mix.wrong_language_zh).round() as usize;
            vec![
                (
                    Some(Language::Zh),
                    zh,
                    "sft_mix.wrong_language (Chinese prompts)",
                ),
                (
                    Some(Language::En),
                    k - zh,
                    "sft_mix.wrong_language (English prompts)",
                ),
            ]
        } else {
            vec![(None, k, "")]
        };
        for (lang, k, field) in draws {
            let free: Vec<usize> = (0..n)
                .filter(|&i| out[i] == Quality::Clean && eligible[i].contains(&q))
                .filter(|&i| lang.is_none_or(|l| langs[i] == l))
                .collect();
            if free.len() < k {
                let field = if field.is_empty() {
                    format!("sft_mix.{}", q.as_str())
                } else {
                    field.to_owned()
                };
                return Err(Error::Config(format!(
                    "{field} = {} asks for {k} of {n} demonstrations, but only {} prompts left \
                     can carry that flaw",
                    mix.share(q),
                    free.len()
                )));
            }
            let mut picked = index::sample(rng, free.len(), k).into_vec();
            picked.sort_unstable();
            for j in picked {
                out[free[j]] = q;
            }
        }
    }
    Ok(out)
}

/// Per prompt language ([`lang_index`]) and flaw (in [`Quality::FLAWS`] order), the rate at
/// which the SFT set shows the flaw on prompts of that language that can carry it: what a
/// model imitating the set reproduces.
pub(crate) fn imitation_rates(
    assigned: &[Quality],
    eligible: &[Vec<Quality>],
    langs: &[Language],
) -> [[f64; 4]; 2] {
    Language::ALL.map(|l| {
        Quality::FLAWS.map(|q| {
            let of = |i: &usize| langs[*i] == l && eligible[*i].contains(&q);
            let can = (0..eligible.len()).filter(of).count();
            let has = (0..eligible.len())
                .filter(of)
                .filter(|&i| assigned[i] == q)
                .count();
            if can == 0 {
                0.0
            } else {
                has as f64 / can as f64
            }
        })
    })
}

/// The index of `l` in [`Language::ALL`] (Chinese 0, English 1).
pub(crate) fn lang_index(l: Language) -> usize {
    match l {
        Language::Zh => 0,
        Language::En => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn counts_round_to_whole_demonstrations() {
        let mix = SftMix::default();
        assert_eq!(mix.count(Quality::Wrong, 2000), 120);
        assert_eq!(mix.count(Quality::Harmful, 2000), 70);
        assert_eq!(mix.count(Quality::Clean, 2000), 1090);
        assert!((mix.flawed() - 0.455).abs() < 1e-12);
    }

    #[test]
    fn assign_meets_the_counts_and_respects_eligibility() {
        let all = Quality::FLAWS.to_vec();
        let eligible: Vec<Vec<Quality>> = (0..100)
            .map(|i| {
                if i < 10 {
                    vec![Quality::Harmful, Quality::WrongLanguage]
                } else {
                    all.iter()
                        .copied()
                        .filter(|&q| q != Quality::Harmful)
                        .collect()
                }
            })
            .collect();
        let mix = SftMix {
            wrong: 0.2,
            unhelpful: 0.1,
            harmful: 0.05,
            wrong_language: 0.1,
            wrong_language_zh: 0.5,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let langs: Vec<Language> = (0..100).map(|i| Language::ALL[i % 2]).collect();
        let got = assign(&mix, &eligible, &langs, &mut rng).unwrap();
        for (q, k) in [
            (Quality::Harmful, 5),
            (Quality::Wrong, 20),
            (Quality::WrongLanguage, 10),
            (Quality::Unhelpful, 10),
            (Quality::Clean, 55),
        ] {
            assert_eq!(got.iter().filter(|&&g| g == q).count(), k, "{q:?}");
        }
        for (g, e) in got.iter().zip(&eligible) {
            assert!(*g == Quality::Clean || e.contains(g));
        }
        // 5 wrong-language answers in each language.
        for l in Language::ALL {
            let k = (0..100)
                .filter(|&i| langs[i] == l && got[i] == Quality::WrongLanguage)
                .count();
            assert_eq!(k, 5, "{l:?}");
        }
        let rates = imitation_rates(&got, &eligible, &langs);
        // 5 harmful of the 10 unsafe prompts, 5 per language: the rates are per language.
        assert_eq!(rates[0][0] + rates[1][0], 1.0);
        assert_eq!(rates[0][2], 5.0 / 50.0);
        let too_many = SftMix {
            harmful: 0.2,
            ..mix
        };
        let e = assign(&too_many, &eligible, &langs, &mut rng).unwrap_err();
        assert!(e.to_string().contains("sft_mix.harmful"), "{e}");
    }
}
