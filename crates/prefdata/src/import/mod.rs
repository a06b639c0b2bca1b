//! Streaming importers (HH-RLHF, OASST ranked replies, TRL, AlignBench) and the TRL exporter.

mod alignbench;
mod base;
mod hh;
mod oasst;
mod source;
mod trl;

pub use alignbench::{PromptRecord, import_alignbench};
pub use base::ImportOptions;
pub use hh::import_hh_rlhf;
pub use oasst::{RankedPairs, import_oasst};
pub use trl::{TrlFormat, export_trl, import_trl};
