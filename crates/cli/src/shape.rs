//! `--shape NAME|DIR`: a model of a real checkpoint's shape, randomly initialised — the
//! vocabulary, tied or untied embeddings, grouped-query heads, q/k/v biases and RoPE settings of
//! its `config.json`, without its weights. The named shapes are the published configs in
//! `configs/shapes/` (compiled in, so they work from any directory); a directory is read as an
//! HF checkpoint's `config.json`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rlhf_core::{HfConfig, ModelConfig};

use crate::reward::InitPreset;

/// The shapes `--shape` knows by name: `(name, config.json)`.
pub(crate) const SHAPES: &[(&str, &str)] = &[
    (
        "qwen2-0.5b",
        include_str!("../../../configs/shapes/qwen2-0.5b/config.json"),
    ),
    (
        "qwen2-1.5b",
        include_str!("../../../configs/shapes/qwen2-1.5b/config.json"),
    ),
    (
        "llama-3.2-1b",
        include_str!("../../../configs/shapes/llama-3.2-1b/config.json"),
    ),
    (
        "glm-4-9b",
        include_str!("../../../configs/shapes/glm-4-9b/config.json"),
    ),
];

/// The names of [`SHAPES`], for messages.
fn names() -> String {
    SHAPES
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The model config of `spec`: a name of [`SHAPES`], or a directory holding a `config.json`.
///
/// # Errors
/// An unknown name that is not a directory (listing the names), or the config's own errors
/// naming its file.
pub(crate) fn shape_config(spec: &str) -> anyhow::Result<ModelConfig> {
    if let Some((name, text)) = SHAPES.iter().find(|(n, _)| n.eq_ignore_ascii_case(spec)) {
        let path = PathBuf::from(format!("configs/shapes/{name}/config.json"));
        let hf: HfConfig = serde_json::from_str(text)
            .with_context(|| format!("{}: the compiled-in shape", path.display()))?;
        return Ok(hf.to_model_config(&path)?);
    }
    let dir = Path::new(spec);
    let path = if dir.is_dir() {
        dir.join("config.json")
    } else if dir.is_file() {
        dir.to_path_buf()
    } else {
        anyhow::bail!(
            "--shape {spec}: not a known shape ({}) nor a directory with a config.json",
            names()
        );
    };
    let hf = HfConfig::from_file(&path)?;
    Ok(hf.to_model_config(&path)?)
}

/// The config of a randomly initialised start: `--init PRESET` (sized to the tokenizer's
/// `vocab`) or `--shape NAME|DIR`; `None` when neither is given.
///
/// # Errors
/// [`shape_config`]'s, and a tokenizer whose ids do not fit the shape's vocabulary.
pub(crate) fn random_init(
    init: Option<InitPreset>,
    shape: Option<&str>,
    vocab: usize,
) -> anyhow::Result<Option<ModelConfig>> {
    match (init, shape) {
        (Some(p), _) => Ok(Some(p.config(vocab))),
        (None, Some(s)) => {
            let c = shape_config(s)?;
            if vocab > c.vocab_size {
                bail!(
                    "--shape {s}: the tokenizer's {vocab} ids do not fit the shape's vocabulary of {}",
                    c.vocab_size
                );
            }
            Ok(Some(c))
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parameter counts published with each checkpoint (the model cards and
    /// `model.num_parameters()` of transformers), against our reading of its `config.json`.
    #[test]
    fn every_shape_has_its_published_parameter_count() {
        for (name, params, vocab, tied, kv) in [
            ("qwen2-0.5b", 494_032_768, 151_936, true, 2),
            ("qwen2-1.5b", 1_543_714_304, 151_936, true, 2),
            ("llama-3.2-1b", 1_235_814_400, 128_256, true, 8),
            ("glm-4-9b", 9_399_951_360, 151_552, false, 2),
        ] {
            let c = shape_config(name).unwrap();
            assert_eq!(c.num_params(), params, "{name}");
            assert_eq!(c.vocab_size, vocab, "{name}");
            assert_eq!(c.tie_word_embeddings, tied, "{name}");
            assert_eq!(c.num_kv_heads, kv, "{name}");
        }
        let q = shape_config("qwen2-0.5b").unwrap();
        assert!(q.qkv_bias && q.num_heads == 14 && q.head_dim == 64);
        let g = shape_config("glm-4-9b").unwrap();
        assert_eq!(
            g.rope.rotary_dim, 64,
            "GLM rotates half of each 128-wide head"
        );
    }

    #[test]
    fn a_directory_is_read_and_a_bad_name_lists_the_shapes() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("config.json"), SHAPES[0].1).unwrap();
        let c = shape_config(tmp.path().to_str().unwrap()).unwrap();
        assert_eq!(c.num_params(), 494_032_768);
        let e = shape_config("qwen9-huge").unwrap_err().to_string();
        assert!(e.contains("qwen2-0.5b") && e.contains("glm-4-9b"), "{e}");
    }
}
