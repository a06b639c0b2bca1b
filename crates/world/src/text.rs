//! Reading free text: term mentions, numbers, words, CJK characters, sentence breaks.

use std::collections::HashMap;

use crate::lang::{Language, TermRef};
use crate::world::World;

/// One unit of a response as the gold judge reads it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Unit {
    /// A mention of a term of the world (name, city, colour, ...), in some language.
    Term(TermRef, Language),
    /// A run of ASCII digits (saturating at `u64::MAX`).
    Num(u64),
    /// A lowercased run of non-CJK letters.
    Word(String),
    /// One CJK character.
    Cjk(char),
    /// Sentence-ending punctuation (`. ! ? 。 ！ ？ ; ；`).
    Break,
}

impl Unit {
    pub(crate) fn is_break(&self) -> bool {
        matches!(self, Unit::Break)
    }
}

pub(crate) fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FFFF)
}

/// A character that continues a Latin word (CJK characters do not: `英文是apple` holds the
/// word `apple`).
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() && !is_cjk(c)
}

fn is_break(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '。' | '！' | '？' | ';' | '；')
}

#[derive(Clone, Debug)]
struct Entry {
    /// Lowercased surface.
    surface: String,
    term: TermRef,
    lang: Language,
    /// Latin surfaces need word boundaries on both sides.
    latin: bool,
}

/// Finds term mentions: surfaces indexed by their first (lowercased) character, longest first.
#[derive(Clone, Debug, Default)]
pub(crate) struct Scanner {
    index: HashMap<char, Vec<Entry>>,
}

/// A term mention at a byte range of the (ASCII-lowercased) text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mention {
    pub(crate) end: usize,
    pub(crate) term: TermRef,
    pub(crate) lang: Language,
}

impl Scanner {
    pub(crate) fn new(world: &World) -> Self {
        let mut index: HashMap<char, Vec<Entry>> = HashMap::new();
        for (term, lang, surface) in world.surfaces() {
            let surface = surface.to_ascii_lowercase();
            let first = surface.chars().next().expect("non-empty surface");
            let latin = surface.is_ascii();
            index.entry(first).or_default().push(Entry {
                surface,
                term,
                lang,
                latin,
            });
        }
        for v in index.values_mut() {
            v.sort_by(|a, b| {
                b.surface
                    .len()
                    .cmp(&a.surface.len())
                    .then_with(|| a.surface.cmp(&b.surface))
            });
        }
        Self { index }
    }

    /// The longest mention starting at byte `i` of `lower`, whose previous char is `prev`.
    pub(crate) fn match_at(&self, lower: &str, i: usize, prev: Option<char>) -> Option<Mention> {
        let rest = &lower[i..];
        let first = rest.chars().next()?;
        let entries = self.index.get(&first)?;
        for e in entries {
            if !rest.starts_with(e.surface.as_str()) {
                continue;
            }
            let end = i + e.surface.len();
            if e.latin {
                let before_ok = prev.is_none_or(|c| !is_word_char(c));
                let after_ok = lower[end..].chars().next().is_none_or(|c| !is_word_char(c));
                if !(before_ok && after_ok) {
                    continue;
                }
            }
            return Some(Mention {
                end,
                term: e.term,
                lang: e.lang,
            });
        }
        None
    }

    /// Splits `text` into units (see [`Unit`]).
    pub(crate) fn units(&self, text: &str) -> Vec<Unit> {
        let lower = text.to_ascii_lowercase();
        let mut out = Vec::new();
        let mut i = 0;
        let mut prev: Option<char> = None;
        while i < lower.len() {
            let c = lower[i..].chars().next().expect("in bounds");
            if let Some(m) = self.match_at(&lower, i, prev) {
                out.push(Unit::Term(m.term, m.lang));
                prev = lower[..m.end].chars().next_back();
                i = m.end;
                continue;
            }
            if c.is_ascii_digit() {
                let start = i;
                while i < lower.len() && lower.as_bytes()[i].is_ascii_digit() {
                    i += 1;
                }
                let v = lower[start..i].parse::<u64>().unwrap_or(u64::MAX);
                out.push(Unit::Num(v));
                prev = lower[..i].chars().next_back();
                continue;
            }
            if c.is_alphabetic() && !is_cjk(c) {
                let start = i;
                while let Some(d) = lower[i..].chars().next() {
                    if d.is_alphabetic() && !is_cjk(d) {
                        i += d.len_utf8();
                    } else {
                        break;
                    }
                }
                out.push(Unit::Word(lower[start..i].to_owned()));
                prev = lower[..i].chars().next_back();
                continue;
            }
            if is_cjk(c) {
                out.push(Unit::Cjk(c));
            } else if is_break(c) && !matches!(out.last(), Some(Unit::Break) | None) {
                out.push(Unit::Break);
            }
            prev = Some(c);
            i += c.len_utf8();
        }
        if matches!(out.last(), Some(Unit::Break)) {
            out.pop();
        }
        out
    }
}

/// Lowercases ASCII and reads curly apostrophes as straight ones (for marker look-ups).
pub(crate) fn marker_text(text: &str) -> String {
    text.to_ascii_lowercase()
        .replace(['\u{2019}', '\u{2018}'], "'")
}

/// Whether `marker` occurs in `lower` (already [`marker_text`]); ASCII markers need word
/// boundaries on both sides.
pub(crate) fn contains_marker(lower: &str, marker: &str) -> bool {
    if !marker.is_ascii() {
        return lower.contains(marker);
    }
    let mut from = 0;
    while let Some(pos) = lower[from..].find(marker) {
        let start = from + pos;
        let end = start + marker.len();
        let before_ok = lower[..start]
            .chars()
            .next_back()
            .is_none_or(|c| !is_word_char(c));
        let after_ok = lower[end..].chars().next().is_none_or(|c| !is_word_char(c));
        if before_ok && after_ok {
            return true;
        }
        from = start + 1;
        while !lower.is_char_boundary(from) {
            from += 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::TermClass;

    fn world() -> World {
        World::generate(7, 24, 6).unwrap()
    }

    #[test]
    fn splits_numbers_words_cjk_and_terms() {
        let w = world();
        let s = Scanner::new(&w);
        let p = w.people[3].clone();
        let text = format!("{} is 34. {}今年34岁。", p.en, p.zh);
        let u = s.units(&text);
        let t = TermRef::new(TermClass::Person, 3);
        assert_eq!(
            u,
            vec![
                Unit::Term(t, Language::En),
                Unit::Word("is".into()),
                Unit::Num(34),
                Unit::Break,
                Unit::Term(t, Language::Zh),
                Unit::Cjk('今'),
                Unit::Cjk('年'),
                Unit::Num(34),
                Unit::Cjk('岁'),
            ]
        );
    }

    #[test]
    fn latin_terms_need_word_boundaries_and_plurals_match() {
        let w = world();
        let s = Scanner::new(&w);
        assert_eq!(s.units("catalog")[0], Unit::Word("catalog".into()));
        assert_eq!(
            s.units("Cherries!")[0],
            Unit::Term(TermRef::new(TermClass::Fruit, 6), Language::En)
        );
        // "dishonest" is its own antonym term, not "honest" inside a word.
        assert_eq!(
            s.units("dishonest"),
            vec![Unit::Term(
                TermRef::new(TermClass::Antonym, 27),
                Language::En
            )]
        );
    }

    #[test]
    fn latin_terms_next_to_cjk_are_found() {
        let w = world();
        let s = Scanner::new(&w);
        let apple = Unit::Term(TermRef::new(TermClass::Fruit, 0), Language::En);
        assert!(s.units("英文是apple。").contains(&apple));
        assert!(s.units("apple就是苹果").contains(&apple));
        assert!(contains_marker("我觉得你应该rest一下", "rest"));
    }

    #[test]
    fn markers_respect_boundaries() {
        assert!(contains_marker(
            &marker_text("Sorry, I Can’t help."),
            "i can't help"
        ));
        assert!(!contains_marker("stupidity", "stupid"));
        assert!(contains_marker("这个问题真蠢。", "真蠢"));
    }
}
