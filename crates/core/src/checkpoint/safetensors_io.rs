//! Reading and writing safetensors files: single files and sharded checkpoints
//! (`model.safetensors.index.json`), F32/F16/BF16 on disk, memory-mapped, converted per tensor.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::tensor::{Dtype, Metadata, TensorView};

use crate::error::{CoreError, Result};

struct Shard {
    path: PathBuf,
    mmap: Mmap,
    data_start: usize,
    meta: Metadata,
}

/// The tensors of a checkpoint directory, possibly spread over several shards.
pub struct TensorFiles {
    dir: PathBuf,
    shards: Vec<Shard>,
    index: HashMap<String, usize>,
}

impl std::fmt::Debug for TensorFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TensorFiles")
            .field("dir", &self.dir)
            .field(
                "shards",
                &self.shards.iter().map(|s| &s.path).collect::<Vec<_>>(),
            )
            .field("tensors", &self.index.len())
            .finish()
    }
}

fn open_shard(path: &Path) -> Result<Shard> {
    let file = File::open(path).map_err(|e| CoreError::io(path, e))?;
    // SAFETY: the file is opened read-only and not modified while mapped by this process.
    let mmap = unsafe { Mmap::map(&file) }.map_err(|e| CoreError::io(path, e))?;
    let (n, meta) =
        safetensors::SafeTensors::read_metadata(&mmap).map_err(|e| CoreError::Safetensors {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    Ok(Shard {
        path: path.to_path_buf(),
        mmap,
        data_start: 8 + n,
        meta,
    })
}

impl TensorFiles {
    /// Opens `dir/model.safetensors`, or the shards listed in `dir/model.safetensors.index.json`.
    ///
    /// # Errors
    /// IO, JSON and format errors, naming the file.
    pub fn open(dir: &Path) -> Result<Self> {
        let single = dir.join("model.safetensors");
        let index_path = dir.join("model.safetensors.index.json");
        let mut shards = Vec::new();
        let mut index = HashMap::new();
        if index_path.exists() {
            let text =
                std::fs::read_to_string(&index_path).map_err(|e| CoreError::io(&index_path, e))?;
            let v: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| CoreError::Json {
                    path: index_path.clone(),
                    message: e.to_string(),
                })?;
            let map = v
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| CoreError::Json {
                    path: index_path.clone(),
                    message: "missing object `weight_map`".into(),
                })?;
            let mut file_ids: HashMap<String, usize> = HashMap::new();
            let mut names: Vec<(&String, &serde_json::Value)> = map.iter().collect();
            names.sort_by(|a, b| a.0.cmp(b.0));
            for (name, file) in names {
                let file = file.as_str().ok_or_else(|| CoreError::Json {
                    path: index_path.clone(),
                    message: format!("weight_map[`{name}`] is not a file name"),
                })?;
                let id = match file_ids.get(file) {
                    Some(&id) => id,
                    None => {
                        shards.push(open_shard(&dir.join(file))?);
                        file_ids.insert(file.to_string(), shards.len() - 1);
                        shards.len() - 1
                    }
                };
                index.insert(name.clone(), id);
            }
        } else if single.exists() {
            let shard = open_shard(&single)?;
            for name in shard.meta.tensors().keys() {
                index.insert(name.clone(), 0);
            }
            shards.push(shard);
        } else {
            return Err(CoreError::io(
                &single,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no model.safetensors or model.safetensors.index.json in the directory",
                ),
            ));
        }
        Ok(TensorFiles {
            dir: dir.to_path_buf(),
            shards,
            index,
        })
    }

    /// Whether the checkpoint holds `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// All tensor names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.index.keys().cloned().collect();
        v.sort();
        v
    }

    /// Reads `name` as f32, checking its shape.
    ///
    /// # Errors
    /// [`CoreError::MissingTensor`], [`CoreError::TensorShape`] or [`CoreError::TensorDtype`]
    /// naming the tensor and the file.
    pub fn read_f32(&self, name: &str, expected: &[usize]) -> Result<Vec<f32>> {
        let &shard_id = self
            .index
            .get(name)
            .ok_or_else(|| CoreError::MissingTensor {
                path: self.dir.clone(),
                name: name.to_string(),
                expected: expected.to_vec(),
            })?;
        let shard = &self.shards[shard_id];
        let info = shard
            .meta
            .info(name)
            .ok_or_else(|| CoreError::MissingTensor {
                path: shard.path.clone(),
                name: name.to_string(),
                expected: expected.to_vec(),
            })?;
        if info.shape != expected {
            return Err(CoreError::TensorShape {
                path: shard.path.clone(),
                name: name.to_string(),
                expected: expected.to_vec(),
                actual: info.shape.clone(),
            });
        }
        let (a, b) = info.data_offsets;
        let bytes = shard
            .mmap
            .get(shard.data_start + a..shard.data_start + b)
            .ok_or_else(|| CoreError::Safetensors {
                path: shard.path.clone(),
                message: format!("tensor `{name}` points past the end of the file"),
            })?;
        let out: Vec<f32> = match info.dtype {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|c| half::bf16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32())
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|c| half::f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32())
                .collect(),
            other => {
                return Err(CoreError::TensorDtype {
                    path: shard.path.clone(),
                    name: name.to_string(),
                    dtype: format!("{other:?}"),
                });
            }
        };
        Ok(out)
    }

    /// Reads an integer tensor (I64 or I32) as i64 with its shape (for reference files).
    ///
    /// # Errors
    /// As [`TensorFiles::read_f32`].
    pub fn read_i64(&self, name: &str) -> Result<(Vec<i64>, Vec<usize>)> {
        let &shard_id = self
            .index
            .get(name)
            .ok_or_else(|| CoreError::MissingTensor {
                path: self.dir.clone(),
                name: name.to_string(),
                expected: vec![],
            })?;
        let shard = &self.shards[shard_id];
        let info = shard.meta.info(name).expect("indexed");
        let (a, b) = info.data_offsets;
        let bytes = &shard.mmap[shard.data_start + a..shard.data_start + b];
        let v = match info.dtype {
            Dtype::I64 => bytes
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
            Dtype::I32 => bytes
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes(c.try_into().expect("4 bytes")) as i64)
                .collect(),
            other => {
                return Err(CoreError::TensorDtype {
                    path: shard.path.clone(),
                    name: name.to_string(),
                    dtype: format!("{other:?}"),
                });
            }
        };
        Ok((v, info.shape.clone()))
    }

    /// The shape of `name`, if present.
    pub fn shape(&self, name: &str) -> Option<Vec<usize>> {
        let &id = self.index.get(name)?;
        self.shards[id].meta.info(name).map(|i| i.shape.clone())
    }
}

/// Opens a single safetensors file (e.g. a reference-output file).
///
/// # Errors
/// As [`TensorFiles::open`].
pub fn open_file(path: &Path) -> Result<TensorFiles> {
    let shard = open_shard(path)?;
    let index = shard
        .meta
        .tensors()
        .keys()
        .map(|k| (k.clone(), 0))
        .collect();
    Ok(TensorFiles {
        dir: path.to_path_buf(),
        shards: vec![shard],
        index,
    })
}

/// On-disk dtype of saved weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveDtype {
    /// 32-bit floats.
    F32,
    /// bfloat16.
    Bf16,
}

/// Writes `tensors` (name, shape, f32 values) to `path` atomically (temp file + rename).
///
/// # Errors
/// IO errors naming the file.
pub fn write_safetensors(
    path: &Path,
    tensors: &[(String, Vec<usize>, Vec<f32>)],
    dtype: SaveDtype,
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, v)| match dtype {
            SaveDtype::F32 => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            SaveDtype::Bf16 => v
                .iter()
                .flat_map(|x| half::bf16::from_f32(*x).to_bits().to_le_bytes())
                .collect(),
        })
        .collect();
    let st_dtype = match dtype {
        SaveDtype::F32 => Dtype::F32,
        SaveDtype::Bf16 => Dtype::BF16,
    };
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), b)| {
            let view = TensorView::new(st_dtype, shape.clone(), b).map_err(|e| {
                CoreError::Safetensors {
                    path: path.to_path_buf(),
                    message: format!("tensor `{name}`: {e}"),
                }
            })?;
            Ok((name.clone(), view))
        })
        .collect::<Result<_>>()?;
    let data = safetensors::serialize(views, metadata).map_err(|e| CoreError::Safetensors {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    crate::io::write_atomic(path, &data)
}
