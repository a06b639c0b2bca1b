//! # rlhf-policy-dpo
//!
//! Offline preference optimisation for the ChatGLM-RLHF reproduction (SPEC §A.4.5): DPO and its
//! variants on human pairs or on pairs labelled by the trained reward model.
//!
//! - [`dpo_loss`]: sigmoid DPO, conservative DPO (label smoothing), robust DPO, hinge, IPO,
//!   SimPO, the RPO NLL term and length normalisation, as pure tensor functions, with a float64
//!   twin ([`dpo_loss_f64`]) the tests hold them to;
//! - [`encode_examples`], [`collate_examples`], [`batch_logps`]: pairs → rows with reply masks →
//!   summed reply log-probs (same encoding and truncation as the reward model);
//! - [`compute_reference`] and a Parquet cache of reference log-probs keyed by a fingerprint of
//!   the reference model and the data ([`write_reference_cache`], [`read_reference_cache`]);
//! - [`train`] / [`train_with`]: the DPO objective on `rlhf_train::fit` (AdamW, warm-up +
//!   cosine, accumulation, clipping, TRL-named metrics, checkpoints with exact resume, stop
//!   flag) in a world of one or a data-parallel one, and [`dpo_step`], what `bench dpo` times;
//! - [`build_rm_pairs`]: the paper's pair construction — k samples per prompt from the SFT
//!   policy, scored by the reward model, best vs worst, pairs under a margin skipped.
#![warn(missing_docs)]

mod bench;
mod config;
mod data;
mod error;
mod loss;
mod metrics;
mod pairs;
mod reference;
mod train;

pub use bench::{DpoBench, bench_dpo_step, synthetic_examples};
pub use config::{DpoTrainConfig, ReferenceMode};
pub use data::{DpoBatch, DpoExample, batch_logps, collate_examples, encode_examples};
pub use error::{DpoError, Result};
pub use loss::{DpoLoss, DpoLossConfig, DpoLossType, PairLogps, dpo_loss, dpo_loss_f64};
pub use metrics::{
    EvalLog, LogEntry, PairStats, TrainLog, Window, append_metrics, eval_log, read_metrics,
    write_metrics,
};
pub use pairs::{PairBuildConfig, PairBuildReport, RmPair, build_rm_pairs};
pub use reference::{
    FINGERPRINT_KEY, ReferenceLogps, cached_fingerprint, compute_reference, examples_fingerprint,
    model_fingerprint, read_reference_cache, write_reference_cache,
};
pub use train::{
    BatchRef, DpoOutcome, DpoState, DpoStepStats, attach_lora, check_vocab, dpo_step,
    evaluate_pairs, prepare_examples, restore_policy, run_fingerprint, train, train_with,
};
