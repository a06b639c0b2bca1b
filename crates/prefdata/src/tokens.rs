//! Token counting behind a small trait, so this crate needs no tokenizer.

use crate::schema::Comparison;

/// Counts the tokens of a text.
///
/// The real Hugging Face tokenizer implements this in the core crate; [`CharCounter`] is the
/// dependency-free stand-in used in tests and when no tokenizer is at hand.
pub trait TokenCounter {
    /// Number of tokens in `text` (no special tokens, no chat template).
    fn count(&self, text: &str) -> usize;
}

impl<T: TokenCounter + ?Sized> TokenCounter for &T {
    fn count(&self, text: &str) -> usize {
        (**self).count(text)
    }
}

/// Counts Unicode scalar values (`char`s): one "token" per character.
///
/// For Chinese this is close to what CJK-aware tokenizers produce; for English it
/// overestimates by roughly 4×.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CharCounter;

impl TokenCounter for CharCounter {
    fn count(&self, text: &str) -> usize {
        text.chars().count()
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Fills the derived `*_tokens` columns of `c` with `counter`.
///
/// `history_tokens` is the sum over history message contents; role markers and template
/// tokens are not counted, because they depend on the chat template. Counts saturate at
/// `u32::MAX`.
pub fn fill_token_lengths(c: &mut Comparison, counter: &(impl TokenCounter + ?Sized)) {
    c.prompt_tokens = Some(to_u32(counter.count(&c.prompt)));
    c.chosen_tokens = Some(to_u32(counter.count(&c.chosen)));
    c.rejected_tokens = Some(to_u32(counter.count(&c.rejected)));
    c.history_tokens = Some(to_u32(
        c.history.iter().map(|m| counter.count(&m.content)).sum(),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Message, Role};

    #[test]
    fn char_counter_counts_chars_not_bytes() {
        assert_eq!(CharCounter.count("你好"), 2);
        assert_eq!(CharCounter.count("abc"), 3);
        assert_eq!(CharCounter.count(""), 0);
    }

    #[test]
    fn fill_sets_every_length_column() {
        let mut c = Comparison::new("i", "s", "问题", "abc", "de");
        c.history = vec![
            Message::new(Role::User, "12"),
            Message::new(Role::Assistant, "345"),
        ];
        fill_token_lengths(&mut c, &CharCounter);
        assert_eq!(
            (
                c.prompt_tokens,
                c.chosen_tokens,
                c.rejected_tokens,
                c.history_tokens
            ),
            (Some(2), Some(3), Some(2), Some(5))
        );
        // Works through a trait object too.
        let dynamic: &dyn TokenCounter = &CharCounter;
        fill_token_lengths(&mut c, dynamic);
        assert_eq!(c.history_tokens, Some(5));
    }
}
