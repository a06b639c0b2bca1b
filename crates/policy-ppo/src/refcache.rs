//! The reference-reward cache (SPEC §A.4.3): before training, the SFT (reference) model writes
//! one response per training prompt, the reward model scores it, and the result is kept in a
//! Parquet file; during PPO the sequence reward is `r(x, y) − r(x, y_ref)`.
//!
//! # Columns (one row per prompt)
//!
//! | column | type | what |
//! |---|---|---|
//! | `prompt_id` | utf8 | the prompt's id |
//! | `prompt_hash` | utf8 | FNV-1a of the prompt's token ids (hex) |
//! | `reference_response` | utf8 | `y_ref`, decoded (special tokens skipped) |
//! | `reference_ids` | list\<uint32\> | `y_ref`'s token ids |
//! | `finished` | bool | whether `y_ref` ended on an EOS |
//! | `reference_score` | float64 | `r(x, y_ref)`, the raw reward-model score |
//! | `policy_fingerprint` | utf8 | the reference model's weights (`module_fingerprint`) |
//! | `reward_fingerprint` | utf8 | the reward model's (`Scorer::fingerprint`) |
//! | `generation` | utf8 | JSON of the decoding settings (sampling, seed, lengths, EOS, batch) |
//!
//! A cache is used only when both fingerprints and the generation settings match the run and
//! it holds every prompt (by id and hash); anything else is refused with
//! [`PpoError::CacheMismatch`] naming what differs (delete the file to rebuild it).

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, ListArray, ListBuilder, StringArray, UInt32Array,
    UInt32Builder,
};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use burn::prelude::*;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rlhf_core::CausalLm;
use rlhf_core::generate::{GenerationConfig, generate};

use crate::data::EncodedPrompt;
use crate::error::{PpoError, Result};
use crate::frozen::{Frozen, ids_hash};
use crate::scorer::Scorer;
use crate::sequences::PackedSequences;

/// One cached reference response.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceEntry {
    /// The prompt's id.
    pub prompt_id: String,
    /// FNV-1a of the prompt's ids.
    pub prompt_hash: String,
    /// `y_ref` as text.
    pub response: String,
    /// `y_ref`'s ids.
    pub response_ids: Vec<u32>,
    /// Whether `y_ref` ended on an EOS.
    pub finished: bool,
    /// `r(x, y_ref)`.
    pub score: f64,
}

/// The whole cache.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceCache {
    /// The reference model's fingerprint.
    pub policy_fingerprint: String,
    /// The reward model's fingerprint.
    pub reward_fingerprint: String,
    /// The decoding settings, as JSON.
    pub generation: String,
    /// One entry per prompt, in prompt order.
    pub entries: Vec<ReferenceEntry>,
}

/// The reference scores aligned with the run's prompts.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceScores {
    /// `r(x_i, y_ref,i)` per prompt.
    pub scores: Vec<f32>,
    /// Whether `y_ref,i` ended on an EOS.
    pub finished: Vec<bool>,
}

/// The settings descriptor stored in the `generation` column.
pub fn generation_descriptor(gen_cfg: &GenerationConfig, batch_prompts: usize) -> String {
    serde_json::json!({
        "sampling": gen_cfg.sampling,
        "seed": gen_cfg.seed,
        "max_new_tokens": gen_cfg.max_new_tokens,
        "eos_ids": gen_cfg.eos_ids,
        "pad_id": gen_cfg.pad_id,
        "batch_prompts": batch_prompts,
    })
    .to_string()
}

/// Generates and scores one reference response per prompt, `batch_prompts` prompts at a time
/// (batch `c` uses seed `gen_cfg.seed + c`). `policy_fingerprint` is the reference model's
/// [`module_fingerprint`](crate::module_fingerprint).
///
/// # Errors
/// Generation and decoding errors.
#[allow(clippy::too_many_arguments)]
pub fn build_reference_cache<B: Backend>(
    reference: &mut Frozen<B, CausalLm<B>>,
    scorer: &mut dyn Scorer<B>,
    prompts: &[EncodedPrompt],
    gen_cfg: &GenerationConfig,
    batch_prompts: usize,
    policy_fingerprint: String,
    decode: &dyn Fn(&[u32]) -> rlhf_core::Result<String>,
    device: &B::Device,
) -> Result<ReferenceCache> {
    let mut entries = Vec::with_capacity(prompts.len());
    for (c, chunk) in prompts.chunks(batch_prompts.max(1)).enumerate() {
        let ids: Vec<Vec<u32>> = chunk.iter().map(|p| p.ids.clone()).collect();
        let cfg = GenerationConfig {
            seed: gen_cfg.seed.wrapping_add(c as u64),
            ..gen_cfg.clone()
        };
        let out = reference.with(device, |m| generate(m, &ids, &cfg, device))?;
        let seqs = PackedSequences::new(&ids, &out.new_ids, gen_cfg.pad_id);
        let scores = crate::scorer::checked_scores(scorer, &seqs, device)?;
        for (i, p) in chunk.iter().enumerate() {
            entries.push(ReferenceEntry {
                prompt_id: p.id.clone(),
                prompt_hash: ids_hash(&p.ids),
                response: decode(&out.new_ids[i])?,
                response_ids: out.new_ids[i].clone(),
                finished: out.finished[i],
                score: scores[i] as f64,
            });
        }
        tracing::info!(
            done = entries.len(),
            total = prompts.len(),
            "reference responses"
        );
    }
    Ok(ReferenceCache {
        policy_fingerprint,
        reward_fingerprint: scorer.fingerprint(),
        generation: generation_descriptor(gen_cfg, batch_prompts),
        entries,
    })
}

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("prompt_id", DataType::Utf8, false),
        Field::new("prompt_hash", DataType::Utf8, false),
        Field::new("reference_response", DataType::Utf8, false),
        Field::new(
            "reference_ids",
            DataType::List(Arc::new(Field::new("item", DataType::UInt32, true))),
            false,
        ),
        Field::new("finished", DataType::Boolean, false),
        Field::new("reference_score", DataType::Float64, false),
        Field::new("policy_fingerprint", DataType::Utf8, false),
        Field::new("reward_fingerprint", DataType::Utf8, false),
        Field::new("generation", DataType::Utf8, false),
    ]))
}

fn pq_err(path: &Path, e: impl std::fmt::Display) -> PpoError {
    PpoError::Parquet {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str, path: &Path) -> Result<&'a T> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| pq_err(path, format!("missing or mistyped column `{name}`")))
}

impl ReferenceCache {
    /// Writes the cache to `path` (atomically).
    ///
    /// # Errors
    /// Arrow/Parquet and IO errors naming the file.
    pub fn write(&self, path: &Path) -> Result<()> {
        let n = self.entries.len();
        let strings = |f: &dyn Fn(&ReferenceEntry) -> String| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(self.entries.iter().map(f)))
        };
        let mut ids = ListBuilder::new(UInt32Builder::new());
        for e in &self.entries {
            ids.values().append_slice(&e.response_ids);
            ids.append(true);
        }
        let repeat = |s: &str| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(s, n)))
        };
        let batch = RecordBatch::try_new(
            schema(),
            vec![
                strings(&|e| e.prompt_id.clone()),
                strings(&|e| e.prompt_hash.clone()),
                strings(&|e| e.response.clone()),
                Arc::new(ids.finish()),
                Arc::new(BooleanArray::from_iter(
                    self.entries.iter().map(|e| Some(e.finished)),
                )),
                Arc::new(Float64Array::from_iter_values(
                    self.entries.iter().map(|e| e.score),
                )),
                repeat(&self.policy_fingerprint),
                repeat(&self.reward_fingerprint),
                repeat(&self.generation),
            ],
        )
        .map_err(|e| pq_err(path, e))?;
        let mut buf = Vec::new();
        let mut w = ArrowWriter::try_new(&mut buf, schema(), None).map_err(|e| pq_err(path, e))?;
        w.write(&batch).map_err(|e| pq_err(path, e))?;
        w.close().map_err(|e| pq_err(path, e))?;
        rlhf_core::io::write_atomic(path, &buf)?;
        Ok(())
    }

    /// Reads a cache written by [`write`](Self::write).
    ///
    /// # Errors
    /// IO and format errors naming the file; an empty file is an error.
    pub fn read(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| PpoError::io(path, e))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| pq_err(path, e))?
            .build()
            .map_err(|e| pq_err(path, e))?;
        let mut cache: Option<ReferenceCache> = None;
        for batch in reader {
            let batch = batch.map_err(|e| pq_err(path, e))?;
            let id = column::<StringArray>(&batch, "prompt_id", path)?;
            let hash = column::<StringArray>(&batch, "prompt_hash", path)?;
            let resp = column::<StringArray>(&batch, "reference_response", path)?;
            let ids = column::<ListArray>(&batch, "reference_ids", path)?;
            let fin = column::<BooleanArray>(&batch, "finished", path)?;
            let score = column::<Float64Array>(&batch, "reference_score", path)?;
            let pf = column::<StringArray>(&batch, "policy_fingerprint", path)?;
            let rf = column::<StringArray>(&batch, "reward_fingerprint", path)?;
            let g = column::<StringArray>(&batch, "generation", path)?;
            for r in 0..batch.num_rows() {
                let c = cache.get_or_insert_with(|| ReferenceCache {
                    policy_fingerprint: pf.value(r).to_string(),
                    reward_fingerprint: rf.value(r).to_string(),
                    generation: g.value(r).to_string(),
                    entries: Vec::new(),
                });
                if pf.value(r) != c.policy_fingerprint
                    || rf.value(r) != c.reward_fingerprint
                    || g.value(r) != c.generation
                {
                    return Err(pq_err(
                        path,
                        format!("row {r}: fingerprints differ between rows"),
                    ));
                }
                let list = ids.value(r);
                let list = list
                    .as_any()
                    .downcast_ref::<UInt32Array>()
                    .ok_or_else(|| pq_err(path, "reference_ids items are not uint32"))?;
                c.entries.push(ReferenceEntry {
                    prompt_id: id.value(r).to_string(),
                    prompt_hash: hash.value(r).to_string(),
                    response: resp.value(r).to_string(),
                    response_ids: list.values().to_vec(),
                    finished: fin.value(r),
                    score: score.value(r),
                });
            }
        }
        cache.ok_or_else(|| pq_err(path, "the cache is empty"))
    }

    /// The cached scores for `prompts`, after checking the cache belongs to this run.
    ///
    /// # Errors
    /// [`PpoError::CacheMismatch`] when a fingerprint or the generation settings differ, or a
    /// prompt is missing (by id) or changed (by hash).
    pub fn scores_for(
        &self,
        path: &Path,
        policy_fingerprint: &str,
        reward_fingerprint: &str,
        generation: &str,
        prompts: &[EncodedPrompt],
    ) -> Result<ReferenceScores> {
        let mismatch = |message: String| PpoError::CacheMismatch {
            path: path.to_path_buf(),
            message,
        };
        if self.reward_fingerprint != reward_fingerprint {
            return Err(mismatch(format!(
                "built with reward model {}, this run uses {reward_fingerprint}",
                self.reward_fingerprint
            )));
        }
        if self.policy_fingerprint != policy_fingerprint {
            return Err(mismatch(format!(
                "built with reference (SFT) model {}, this run uses {policy_fingerprint}",
                self.policy_fingerprint
            )));
        }
        if self.generation != generation {
            return Err(mismatch(format!(
                "built with generation settings {}, this run uses {generation}",
                self.generation
            )));
        }
        let by_id: HashMap<&str, &ReferenceEntry> = self
            .entries
            .iter()
            .map(|e| (e.prompt_id.as_str(), e))
            .collect();
        let mut out = ReferenceScores {
            scores: Vec::with_capacity(prompts.len()),
            finished: Vec::with_capacity(prompts.len()),
        };
        for p in prompts {
            let e = by_id
                .get(p.id.as_str())
                .ok_or_else(|| mismatch(format!("no entry for prompt `{}`", p.id)))?;
            if e.prompt_hash != ids_hash(&p.ids) {
                return Err(mismatch(format!(
                    "prompt `{}` changed since the cache was built",
                    p.id
                )));
            }
            out.scores.push(e.score as f32);
            out.finished.push(e.finished);
        }
        Ok(out)
    }
}
