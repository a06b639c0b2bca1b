//! Length-bias debiasing, diagnostics and reward shaping for ChatGLM-RLHF (arXiv 2404.00934).
//!
//! Works on plain Rust data (slices of `f32`/`f64`, lengths as `usize`); no tensor library.
//!
//! | module (private) | what | SPEC |
//! | --- | --- | --- |
//! | `length` | bucket-based length balancing of preference pairs: [`balance_lengths`], [`BalanceReport`] | §A.3.3 |
//! | `diagnostics` | score/length correlation and per-bucket pair accuracy of any scorer: [`score_length_correlation`], [`pair_diagnostics`] | §A.3.4 |
//! | `shaping` | PPO reward shaping: [`reference_baseline`], [`RunningMeanStd`], [`clip_rewards`], [`whiten`], [`shape_rewards`] | §A.4.2–A.4.3 |
//! | `config` | [`BalanceConfig`], [`ShapingConfig`] (serde defaults + `validate()`) | §A.8 |
//! | `buckets` | \|Δ\| bucket edges: [`DEFAULT_EDGES`], [`bucket_index`], [`BucketRange`] | §A.3.3 |
//!
//! # Example
//! ```
//! use rlhf_debias::{BalanceConfig, PairLengths, balance_lengths};
//!
//! // Longer responses win 3 of 4 times in the [0, 16) bucket.
//! let pairs = vec![
//!     PairLengths::new(12, 4),
//!     PairLengths::new(9, 2),
//!     PairLengths::new(7, 1),
//!     PairLengths::new(3, 10),
//!     PairLengths::new(5, 5), // tie: always kept
//! ];
//! let out = balance_lengths(&pairs, &BalanceConfig::default())?;
//! assert_eq!(out.kept.len(), 3); // one long-wins, the short-wins, the tie
//! assert_eq!(out.report.buckets[0].longer_wins_fraction_after, Some(0.5));
//! println!("{}", out.report.to_markdown());
//! # Ok::<(), rlhf_debias::Error>(())
//! ```
#![warn(missing_docs)]

mod buckets;
mod config;
mod diagnostics;
mod error;
mod length;
mod num;
mod shaping;

pub use buckets::{BucketRange, DEFAULT_EDGES, bucket_index, validate_edges};
pub use config::{BalanceConfig, BalanceMode, LengthUnit, ShapingConfig};
pub use diagnostics::{
    LengthCorrelation, PairAccuracy, PairDiagnostics, ScoredPair, average_ranks, pair_diagnostics,
    pair_diagnostics_weighted, pearson, score_length_correlation, spearman,
};
pub use error::{Error, Result};
pub use length::{
    BalanceReport, Balanced, BucketStats, CategoryReport, KeptPair, Outcome, OutcomeCounts,
    OutcomeWeights, PairLengths, balance_lengths, balance_report,
};
pub use num::Real;
pub use shaping::{
    RunningMeanStd, clip_rewards, reference_baseline, reference_baseline_indexed, shape_rewards,
    whiten,
};
