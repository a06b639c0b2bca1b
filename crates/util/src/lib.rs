//! Small helpers shared across the workspace, in one copy and without burn.
//!
//! | module (private) | what |
//! | --- | --- |
//! | `hash` | [`fnv1a`] / [`Fnv1a`]: 64-bit FNV-1a, stable across platforms and Rust releases (unlike `DefaultHasher`); [`splitmix64`], its usual bit mixer |
//! | `fs` | [`AtomicFile`] (streaming), [`write_atomic`], [`write_atomic_mode`]: temp file in the same directory, fsync, rename; new files 0644, replaced ones keep their mode |
//! | `stale` | temporary-file names; the first write into a directory removes those a killed process left there |
//! | `jsonl` | JSON-lines files: [`append_jsonl`], [`write_jsonl`] (atomic), [`read_jsonl`] (errors name file and line), [`to_jsonl`] |
//! | `plot` (public) | [`plot::Chart`]: line charts, grouped bar charts and histograms as SVG strings, [`plot::panels_svg`] for figures of several panels, [`plot::bin_counts`] |
//! | `stats` (public) | [`stats`]: exact binomial, sign, McNemar and permutation tests, Student's t (one-sample, paired, TOST), bootstrap and Wilson intervals, effect sizes; pure, `None` on degenerate input |
//! | `error` | [`Error`]: every file variant names the file at fault, once |
//!
//! # Example
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("log.jsonl");
//! rlhf_util::write_jsonl(&path, [1u32, 2])?;
//! rlhf_util::append_jsonl(&path, &3u32)?;
//! assert_eq!(rlhf_util::read_jsonl::<u32>(&path)?, vec![1, 2, 3]);
//! assert_eq!(rlhf_util::fnv1a(0, b"a"), 0xaf63_dc4c_8601_ec8c);
//! # Ok::<(), rlhf_util::Error>(())
//! ```
#![warn(missing_docs)]

mod error;
mod fs;
mod hash;
mod jsonl;
pub mod plot;
mod stale;
pub mod stats;

pub use crate::error::{Error, Result};
pub use crate::fs::{AtomicFile, write_atomic, write_atomic_mode};
pub use crate::hash::{FNV_OFFSET, FNV_PRIME, Fnv1a, fnv1a, splitmix64};
pub use crate::jsonl::{append_jsonl, read_jsonl, to_jsonl, write_jsonl};
