//! Candidate responses of controlled quality: content, length style, rudeness, garbling.

use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::lang::Language;
use crate::lexicon;
use crate::record::Style;
use crate::task::{Item, Said};
use crate::world::World;

/// How a disfluent candidate was garbled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Garble {
    /// The last 1–3 words (2–4 characters in Chinese) repeated 3–4 more times.
    Loop,
    /// One word (character) repeated four times in a row.
    Stutter,
    /// Two or three unknown fragments inserted.
    Junk,
    /// Word order (character order in Chinese) shuffled.
    Salad,
}

/// Everything that decides a candidate's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ResponseSpec {
    pub(crate) said: Said,
    pub(crate) style: Style,
    pub(crate) variant: usize,
    pub(crate) pad: usize,
    /// Rude sentence index and whether it goes first.
    pub(crate) rude: Option<(usize, bool)>,
    pub(crate) garble: Option<Garble>,
    /// Written in the other language than the prompt's (the `wrong_language` flaw).
    pub(crate) other_language: bool,
}

impl ResponseSpec {
    /// A clean response saying `said`.
    pub(crate) fn clean(said: Said, style: Style, variant: usize, pad: usize) -> Self {
        Self {
            said,
            style,
            variant,
            pad,
            rude: None,
            garble: None,
            other_language: false,
        }
    }

    /// The language the text is written in, for a prompt in `prompt`.
    pub(crate) fn language(&self, prompt: Language) -> Language {
        if self.other_language {
            prompt.other()
        } else {
            prompt
        }
    }
}

fn join(lang: Language, a: &str, b: &str) -> String {
    match lang {
        Language::Zh => format!("{a}{b}"),
        Language::En => format!("{a} {b}"),
    }
}

/// The text of `spec` without garbling, for a prompt in `lang`.
pub(crate) fn compose_clean(
    item: &Item,
    world: &World,
    lang: Language,
    spec: &ResponseSpec,
) -> String {
    let lang = spec.language(lang);
    let mut text = item.render(
        world,
        lang,
        &spec.said,
        spec.style.is_verbose(),
        spec.variant,
    );
    if spec.style.is_padded() {
        let pad = match lang {
            Language::Zh => lexicon::PADDING_ZH[spec.pad % lexicon::PADDING_ZH.len()],
            Language::En => lexicon::PADDING_EN[spec.pad % lexicon::PADDING_EN.len()],
        };
        text = join(lang, &text, pad);
    }
    if let Some((k, first)) = spec.rude {
        let rude = match lang {
            Language::Zh => lexicon::RUDE_ZH[k % 2],
            Language::En => lexicon::RUDE_EN[k % 2],
        };
        text = if first {
            join(lang, rude, &text)
        } else {
            join(lang, &text, rude)
        };
    }
    text
}

fn strip(w: &str) -> &str {
    w.trim_matches(|c: char| !c.is_alphanumeric())
}

/// Applies `kind` to `text`. Falls back to [`Garble::Loop`] when the text is too short for the
/// requested kind to change it.
pub(crate) fn garble(text: &str, lang: Language, kind: Garble, rng: &mut ChaCha8Rng) -> String {
    match lang {
        Language::En => garble_words(text, kind, rng),
        Language::Zh => garble_chars(text, kind, rng),
    }
}

fn garble_words(text: &str, kind: Garble, rng: &mut ChaCha8Rng) -> String {
    let mut words: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
    let n = words.len();
    let content: Vec<usize> = (0..n).filter(|&i| !strip(&words[i]).is_empty()).collect();
    if content.is_empty() {
        return format!("{text} {text} {text}");
    }
    match kind {
        Garble::Stutter => {
            let i = content[rng.random_range(0..content.len())];
            let w = strip(&words[i]).to_owned();
            for _ in 0..3 {
                words.insert(i + 1, w.clone());
            }
            words.join(" ")
        }
        Garble::Junk => {
            let k = rng.random_range(2..=3);
            for _ in 0..k {
                let j = lexicon::JUNK_EN[rng.random_range(0..lexicon::JUNK_EN.len())];
                let at = rng.random_range(0..=words.len());
                words.insert(at, j.to_owned());
            }
            words.join(" ")
        }
        Garble::Salad if content.len() >= 4 => {
            let original = words.clone();
            for _ in 0..4 {
                words.shuffle(rng);
                if words != original {
                    break;
                }
            }
            words.join(" ")
        }
        Garble::Loop | Garble::Salad => {
            let k = rng.random_range(1..=3).min(content.len());
            let tail: Vec<String> = content[content.len() - k..]
                .iter()
                .map(|&i| strip(&words[i]).to_owned())
                .collect();
            let reps = rng.random_range(3..=4);
            let mut out = words.join(" ");
            for _ in 0..reps {
                out.push(' ');
                out.push_str(&tail.join(" "));
            }
            out
        }
    }
}

fn garble_chars(text: &str, kind: Garble, rng: &mut ChaCha8Rng) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let content: Vec<usize> = (0..chars.len())
        .filter(|&i| chars[i].is_alphanumeric())
        .collect();
    if content.is_empty() {
        return format!("{text}{text}{text}");
    }
    match kind {
        Garble::Stutter => {
            let i = content[rng.random_range(0..content.len())];
            let c = chars[i];
            for _ in 0..3 {
                chars.insert(i + 1, c);
            }
            chars.into_iter().collect()
        }
        Garble::Junk => {
            let k = rng.random_range(2..=3);
            for _ in 0..k {
                let j = lexicon::JUNK_ZH[rng.random_range(0..lexicon::JUNK_ZH.len())];
                let at = rng.random_range(0..=chars.len());
                chars.insert(at, j.chars().next().expect("non-empty"));
            }
            chars.into_iter().collect()
        }
        Garble::Salad if content.len() >= 4 => {
            let original = chars.clone();
            for _ in 0..4 {
                chars.shuffle(rng);
                if chars != original {
                    break;
                }
            }
            chars.into_iter().collect()
        }
        Garble::Loop | Garble::Salad => {
            let k = rng.random_range(2..=4).min(content.len());
            let tail: String = content[content.len() - k..]
                .iter()
                .map(|&i| chars[i])
                .collect();
            let reps = rng.random_range(3..=4);
            let mut out = text.to_owned();
            for _ in 0..reps {
                out.push_str(&tail);
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn loop_repeats_the_tail() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let out = garble("23 + 15 = 38.", Language::En, Garble::Loop, &mut rng);
        assert!(out.starts_with("23 + 15 = 38."));
        assert!(out.matches("38").count() >= 4, "{out}");
        let out = garble("我今年34岁。", Language::Zh, Garble::Loop, &mut rng);
        assert!(out.len() > "我今年34岁。".len() * 2, "{out}");
    }

    #[test]
    fn salad_of_a_short_text_falls_back_to_a_loop() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let out = garble("In Kelford.", Language::En, Garble::Salad, &mut rng);
        assert!(out.starts_with("In Kelford."), "{out}");
        assert!(out.matches("Kelford").count() >= 4, "{out}");
    }
}
