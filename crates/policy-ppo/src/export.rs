//! Export of the trained actor in the HuggingFace `*ForCausalLM` layout (`config.json` +
//! `model.safetensors`, plus the tokenizer and its chat template when given), loadable by
//! `rlhf_core::checkpoint::load_causal_lm`, transformers and vLLM.

use std::path::Path;

use burn::prelude::*;
use rlhf_core::checkpoint::{SaveDtype, save_causal_lm};
use rlhf_core::tokenizer::Tokenizer;
use rlhf_core::{CausalLm, ModelConfig};

use crate::error::Result;

/// Writes `actor` to `dir` in HF layout (atomically, through `rlhf_core`), with the tokenizer
/// when given.
///
/// # Errors
/// IO errors naming the file.
pub fn export_actor<B: Backend>(
    actor: &CausalLm<B>,
    cfg: &ModelConfig,
    dir: &Path,
    dtype: SaveDtype,
    tokenizer: Option<(&Tokenizer, Option<&str>)>,
) -> Result<()> {
    save_causal_lm(actor, cfg, dir, dtype)?;
    if let Some((tok, template)) = tokenizer {
        tok.save_dir(dir, template)?;
    }
    Ok(())
}
