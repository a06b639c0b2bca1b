//! Reference log-probs, computed once and cached to Parquet, so the frozen reference model
//! need not stay in memory during training.
//!
//! The cache (`reference_logps.parquet`) has one row per pair — `index` (u64), `chosen_logp`,
//! `rejected_logp` (f64, summed over reply tokens), `chosen_tokens`, `rejected_tokens` (u32) —
//! and the file metadata key `rlhf.reference_fingerprint`: a hash of the reference model's
//! parameters and of the encoded pairs. A cache whose fingerprint differs (another model,
//! another data file, another tokenizer or `max_length`) is refused with both fingerprints
//! named, never silently reused.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, Float64Array, UInt32Array, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use rlhf_core::CausalLm;

use crate::data::{DpoExample, batch_logps, collate_examples};
use crate::error::{DpoError, Result};

/// Metadata key of the fingerprint.
pub const FINGERPRINT_KEY: &str = "rlhf.reference_fingerprint";

/// Reference log-probs per example (same order as the examples).
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceLogps {
    /// Summed log π_ref of each chosen reply.
    pub chosen: Vec<f64>,
    /// Summed log π_ref of each rejected reply.
    pub rejected: Vec<f64>,
}

struct Checksum<B: Backend> {
    acc: Vec<(f64, f64)>,
    _b: std::marker::PhantomData<B>,
}

impl<B: Backend> ModuleVisitor<B> for Checksum<B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let x = param.val().cast(burn::tensor::DType::F32);
        let n = x.shape().num_elements().max(1);
        let ramp = Tensor::<B, 1, Int>::arange(0..n as i64, &x.device())
            .float()
            .mul_scalar(1.0 / n as f64)
            .reshape(x.shape());
        let s: f32 = x.clone().sum().into_scalar().elem();
        let w: f32 = (x * ramp).sum().into_scalar().elem();
        self.acc.push((s as f64, w as f64));
    }
}

/// A cheap fingerprint of a model's parameters: per tensor, its sum and a position-weighted
/// sum, hashed with the shapes. Two different checkpoints collide only by accident.
pub fn model_fingerprint<B: Backend, M: Module<B>>(model: &M) -> u64 {
    let mut v = Checksum::<B> {
        acc: Vec::new(),
        _b: std::marker::PhantomData,
    };
    model.visit(&mut v);
    let mut bytes = Vec::with_capacity(v.acc.len() * 16);
    for (s, w) in v.acc {
        // Round so that a recomputation in another thread order still matches.
        bytes.extend(((s * 1e4).round() as i64).to_le_bytes());
        bytes.extend(((w * 1e4).round() as i64).to_le_bytes());
    }
    rlhf_util::fnv1a(0, &bytes)
}

/// A fingerprint of encoded examples (ids and reply lengths).
pub fn examples_fingerprint(examples: &[DpoExample]) -> u64 {
    let mut h = rlhf_util::Fnv1a::new();
    for e in examples {
        for (row, reply) in [(&e.chosen, e.chosen_reply), (&e.rejected, e.rejected_reply)] {
            h.write(&(row.len() as u64).to_le_bytes());
            h.write(&(reply as u64).to_le_bytes());
            for id in row {
                h.write(&id.to_le_bytes());
            }
        }
    }
    h.finish()
}

/// Scores every example with `model` in batches of `batch_pairs` (inference only: call it with
/// a non-autodiff backend or a `.valid()` model). `on_batch` is told how many pairs are done.
pub fn compute_reference<B: Backend>(
    model: &CausalLm<B>,
    examples: &[DpoExample],
    pad_id: u32,
    batch_pairs: usize,
    device: &B::Device,
    mut on_batch: impl FnMut(usize),
) -> ReferenceLogps {
    let mut out = ReferenceLogps {
        chosen: Vec::with_capacity(examples.len()),
        rejected: Vec::with_capacity(examples.len()),
    };
    for chunk in examples.chunks(batch_pairs.max(1)) {
        let refs: Vec<&DpoExample> = chunk.iter().collect();
        let batch = collate_examples(&refs, pad_id);
        let lp = batch_logps(model, &batch, device);
        out.chosen
            .extend(lp.chosen.into_data().iter::<f32>().map(f64::from));
        out.rejected
            .extend(lp.rejected.into_data().iter::<f32>().map(f64::from));
        on_batch(out.chosen.len());
    }
    out
}

/// Writes the cache atomically (temp file + rename).
///
/// # Errors
/// IO and Parquet errors naming the file.
pub fn write_reference_cache(
    path: &Path,
    fingerprint: &str,
    examples: &[DpoExample],
    logps: &ReferenceLogps,
) -> Result<()> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("index", DataType::UInt64, false),
        Field::new("chosen_logp", DataType::Float64, false),
        Field::new("rejected_logp", DataType::Float64, false),
        Field::new("chosen_tokens", DataType::UInt32, false),
        Field::new("rejected_tokens", DataType::UInt32, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(UInt64Array::from_iter_values(
                examples.iter().map(|e| e.index as u64),
            )),
            Arc::new(Float64Array::from(logps.chosen.clone())),
            Arc::new(Float64Array::from(logps.rejected.clone())),
            Arc::new(UInt32Array::from_iter_values(
                examples.iter().map(|e| e.chosen_reply as u32),
            )),
            Arc::new(UInt32Array::from_iter_values(
                examples.iter().map(|e| e.rejected_reply as u32),
            )),
        ],
    )
    .map_err(|e| DpoError::parquet(path, e))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| DpoError::io(dir, e))?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|f| f.to_str()).unwrap_or("cache")
    ));
    let file = File::create(&tmp).map_err(|e| DpoError::io(&tmp, e))?;
    let props = WriterProperties::builder()
        .set_key_value_metadata(Some(vec![KeyValue::new(
            FINGERPRINT_KEY.to_string(),
            fingerprint.to_string(),
        )]))
        .build();
    let mut w =
        ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| DpoError::parquet(path, e))?;
    w.write(&batch).map_err(|e| DpoError::parquet(path, e))?;
    let file = w.into_inner().map_err(|e| DpoError::parquet(path, e))?;
    file.sync_all().map_err(|e| DpoError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| DpoError::io(path, e))?;
    Ok(())
}

/// The fingerprint a cache file was written for, if the file exists.
///
/// # Errors
/// IO and Parquet errors other than "not found".
pub fn cached_fingerprint(path: &Path) -> Result<Option<String>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(DpoError::io(path, e)),
    };
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| DpoError::parquet(path, e))?;
    Ok(builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == FINGERPRINT_KEY))
        .and_then(|k| k.value.clone()))
}

/// Reads a cache written for `fingerprint` and `examples`; refuses one written for anything
/// else.
///
/// # Errors
/// [`DpoError::Cache`] on a fingerprint or row mismatch, Parquet and IO errors.
pub fn read_reference_cache(
    path: &Path,
    fingerprint: &str,
    examples: &[DpoExample],
) -> Result<ReferenceLogps> {
    let cache_err = |message: String| DpoError::Cache {
        path: path.to_path_buf(),
        message,
    };
    let file = File::open(path).map_err(|e| DpoError::io(path, e))?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| DpoError::parquet(path, e))?;
    let found = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == FINGERPRINT_KEY))
        .and_then(|k| k.value.clone());
    match found {
        Some(f) if f == fingerprint => {}
        Some(f) => {
            return Err(cache_err(format!(
                "written for reference fingerprint {f}, this run needs {fingerprint} (another \
                 reference model, data file, tokenizer or max_length); delete it to recompute"
            )));
        }
        None => return Err(cache_err(format!("no `{FINGERPRINT_KEY}` metadata"))),
    }
    let reader = builder.build().map_err(|e| DpoError::parquet(path, e))?;
    let mut out = ReferenceLogps {
        chosen: Vec::new(),
        rejected: Vec::new(),
    };
    let mut indices = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| DpoError::parquet(path, e))?;
        let col = |name: &str| {
            batch
                .column_by_name(name)
                .ok_or_else(|| cache_err(format!("missing column `{name}`")))
        };
        let idx = col("index")?
            .as_any()
            .downcast_ref::<UInt64Array>()
            .ok_or_else(|| cache_err("`index` is not u64".into()))?;
        let c = col("chosen_logp")?
            .as_any()
            .downcast_ref::<Float64Array>()
            .ok_or_else(|| cache_err("`chosen_logp` is not f64".into()))?;
        let r = col("rejected_logp")?
            .as_any()
            .downcast_ref::<Float64Array>()
            .ok_or_else(|| cache_err("`rejected_logp` is not f64".into()))?;
        if idx.null_count() + c.null_count() + r.null_count() > 0 {
            return Err(cache_err("null values".into()));
        }
        indices.extend(idx.values().iter().map(|&i| i as usize));
        out.chosen.extend(c.values().iter());
        out.rejected.extend(r.values().iter());
    }
    if indices.len() != examples.len() || indices.iter().zip(examples).any(|(&i, e)| i != e.index) {
        return Err(cache_err(format!(
            "{} rows do not match the {} training pairs",
            indices.len(),
            examples.len()
        )));
    }
    Ok(out)
}
