//! Export of a trained reward model in HF `*ForSequenceClassification` layout (`config.json`
//! with `num_labels = 1`, `model.safetensors` with `score.weight`), plus its tokenizer.

use std::path::Path;

use burn::prelude::*;
use rlhf_core::checkpoint::{SaveDtype, save_scalar_model};
use rlhf_core::tokenizer::Tokenizer;
use rlhf_core::{ModelConfig, ScalarModel};

use crate::error::Result;

/// Writes `model` to `dir` as an HF sequence-classification checkpoint (through
/// `rlhf_core::checkpoint::save_scalar_model`, atomically) and, when given, the tokenizer with
/// its chat template (`tokenizer.json`, `tokenizer_config.json`). The directory loads back with
/// `rlhf_core::checkpoint::load_scalar_model` and in transformers'
/// `AutoModelForSequenceClassification`.
///
/// # Errors
/// IO errors naming the file.
pub fn export_hf<B: Backend>(
    model: &ScalarModel<B>,
    cfg: &ModelConfig,
    dir: &Path,
    dtype: SaveDtype,
    tokenizer: Option<(&Tokenizer, Option<&str>)>,
) -> Result<()> {
    save_scalar_model(model, cfg, dir, dtype)?;
    if let Some((tok, template)) = tokenizer {
        tok.save_dir(dir, template)?;
    }
    Ok(())
}
