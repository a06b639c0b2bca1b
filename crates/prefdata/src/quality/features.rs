//! Character and word statistics of a prompt (the rule-based classifier's inputs).

use serde::{Deserialize, Serialize};

use crate::normalize::normalize_text;

/// Character and word statistics of a prompt, the inputs of [`RuleBasedClassifier`](crate::RuleBasedClassifier).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PromptFeatures {
    /// Non-whitespace characters (after NFKC normalisation).
    pub chars: usize,
    /// CJK ideographs, kana and hangul.
    pub cjk: usize,
    /// Alphabetic characters of other scripts (Latin, Cyrillic, ...).
    pub letters: usize,
    /// Numeric characters.
    pub digits: usize,
    /// Punctuation, symbols and emoji.
    pub symbols: usize,
    /// Longest run of one repeated character.
    pub max_run: usize,
    /// Distinct non-whitespace characters.
    pub distinct: usize,
    /// Changes of class (letter, CJK, digit) between neighbouring non-symbol characters, over
    /// their number minus one.
    pub class_switch_ratio: f32,
    /// Latin words of at least 3 letters that are not acronyms.
    pub latin_words: usize,
    /// Of those, words that look like keyboard mashing (five or more letters without a vowel,
    /// six consonants in a row, or four keys of one keyboard row).
    pub gibberish_words: usize,
    /// `true` when the text contains an arithmetic expression (`17 * 23`, `x^2+1=0`).
    pub has_math: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Cjk,
    Letter,
    Digit,
    Symbol,
}

fn class_of(c: char) -> Option<Class> {
    if c.is_whitespace() {
        None
    } else if is_cjk(c) {
        Some(Class::Cjk)
    } else if c.is_alphabetic() {
        Some(Class::Letter)
    } else if c.is_numeric() {
        Some(Class::Digit)
    } else {
        Some(Class::Symbol)
    }
}

pub(crate) fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{4e00}'..='\u{9fff}'
        | '\u{3400}'..='\u{4dbf}'
        | '\u{f900}'..='\u{faff}'
        | '\u{20000}'..='\u{2ebef}'
        | '\u{3040}'..='\u{30ff}'
        | '\u{ac00}'..='\u{d7af}')
}

const KEYBOARD_ROWS: [&str; 3] = ["qwertyuiop", "asdfghjkl", "zxcvbnm"];

fn is_gibberish_word(w: &str) -> bool {
    let lower = w.to_ascii_lowercase();
    let vowels = lower.chars().filter(|c| "aeiouy".contains(*c)).count();
    // Short vowel-less words are usually lower-case acronyms (php, sql, css, hmm).
    if vowels == 0 && lower.len() >= 5 {
        return true;
    }
    let mut run = 0;
    for c in lower.chars() {
        if "aeiouy".contains(c) {
            run = 0;
        } else {
            run += 1;
            if run >= 6 {
                return true;
            }
        }
    }
    // Four or more consecutive keys of one keyboard row ("asdf", "uiop"); "erty" is left out
    // because English has it (property, liberty).
    let b = lower.as_bytes();
    b.windows(4).any(|win| {
        let s = std::str::from_utf8(win).unwrap_or("");
        s != "erty" && KEYBOARD_ROWS.iter().any(|row| row.contains(s))
    })
}

/// Finds `<operand> <op> <operand>` with an arithmetic operator between and an ASCII digit on
/// at least one side; operands are letters, digits, CJK (`3的a次方=125`) or brackets.
fn has_math(text: &str) -> bool {
    let chars: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    chars.windows(3).any(|w| {
        let operand = |c: char| c.is_alphanumeric() || c == ')' || c == '(';
        "+-*/×÷^=<>".contains(w[1])
            && operand(w[0])
            && operand(w[2])
            && (w[0].is_ascii_digit() || w[2].is_ascii_digit())
    })
}

impl PromptFeatures {
    /// Computes the features of `text` (normalised first).
    pub fn extract(text: &str) -> Self {
        let norm = normalize_text(text);
        let mut f = PromptFeatures {
            has_math: has_math(&norm),
            ..Self::default()
        };
        let mut seen = std::collections::HashSet::new();
        let (mut prev_char, mut run) = (None, 0usize);
        let mut prev_class = None;
        let mut switches = 0usize;
        for c in norm.chars() {
            let Some(class) = class_of(c) else { continue };
            f.chars += 1;
            seen.insert(c);
            match class {
                Class::Cjk => f.cjk += 1,
                Class::Letter => f.letters += 1,
                Class::Digit => f.digits += 1,
                Class::Symbol => f.symbols += 1,
            }
            run = if prev_char == Some(c) { run + 1 } else { 1 };
            f.max_run = f.max_run.max(run);
            prev_char = Some(c);
            // Punctuation between clauses is normal; only letter/CJK/digit switches count.
            if class != Class::Symbol {
                if prev_class.is_some_and(|p| p != class) {
                    switches += 1;
                }
                prev_class = Some(class);
            }
        }
        f.distinct = seen.len();
        let non_symbol = f.chars - f.symbols;
        f.class_switch_ratio = if non_symbol > 1 {
            switches as f32 / (non_symbol - 1) as f32
        } else {
            0.0
        };
        for w in norm.split(|c: char| !c.is_ascii_alphabetic()) {
            let acronym = w.len() <= 6 && w.chars().all(|c| c.is_ascii_uppercase());
            if w.len() >= 3 && !acronym {
                f.latin_words += 1;
                if is_gibberish_word(w) {
                    f.gibberish_words += 1;
                }
            }
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_count_character_classes() {
        let f = PromptFeatures::extract("ab 你好 12 !!");
        assert_eq!(
            (f.chars, f.letters, f.cjk, f.digits, f.symbols),
            (8, 2, 2, 2, 2)
        );
        assert_eq!(f.max_run, 2);
        assert!(!f.has_math);
        assert!(PromptFeatures::extract("what is 3 * 4").has_math);
        let g = PromptFeatures::extract("asdf hello NASA xkcdq");
        assert_eq!((g.latin_words, g.gibberish_words), (3, 2));
    }
}
