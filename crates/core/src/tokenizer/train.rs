//! Training a byte-level BPE tokenizer from text with the `tokenizers` trainer.

use tokenizers::AddedToken;
use tokenizers::models::TrainerWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;

use super::hf::Tokenizer;
use crate::error::{CoreError, Result};

/// What [`train_bpe`] builds.
#[derive(Debug, Clone)]
pub struct BpeTrainingConfig {
    /// Target vocabulary size (including the 256 byte tokens and the specials).
    pub vocab_size: usize,
    /// Minimum pair frequency for a merge.
    pub min_frequency: u64,
    /// Special tokens, in id order starting at 0 (e.g. `<pad>`, `<s>`, `</s>`, role markers).
    pub special_tokens: Vec<String>,
}

/// Trains a byte-level BPE (GPT-2 style: any UTF-8 text, Chinese included, round-trips) on
/// `texts`. The first three special tokens become pad, BOS and EOS when there are at least three.
///
/// # Errors
/// [`CoreError::Tokenizer`] when training fails.
pub fn train_bpe<I, S>(texts: I, cfg: &BpeTrainingConfig) -> Result<Tokenizer>
where
    I: Iterator<Item = S> + Send,
    S: AsRef<str> + Send,
{
    let specials: Vec<AddedToken> = cfg
        .special_tokens
        .iter()
        .map(|s| AddedToken::from(s.clone(), true))
        .collect();
    let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
        .vocab_size(cfg.vocab_size)
        .min_frequency(cfg.min_frequency)
        .special_tokens(specials.clone())
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .show_progress(false)
        .build()
        .into();
    let mut tok = tokenizers::Tokenizer::new(BPE::default());
    tok.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tok.with_decoder(Some(ByteLevel::default()));
    tok.with_post_processor(Some(ByteLevel::new(false, true, true)));
    tok.train(&mut trainer, texts)
        .map_err(|e| CoreError::Tokenizer(format!("BPE training failed: {e}")))?;
    tok.add_special_tokens(&specials);
    let mut out = Tokenizer::from_tokenizer(tok);
    if cfg.special_tokens.len() >= 3 {
        let s = &cfg.special_tokens;
        out.set_special_tokens(Some(&s[1]), Some(&s[2]), Some(&s[0]))?;
    }
    Ok(out)
}
