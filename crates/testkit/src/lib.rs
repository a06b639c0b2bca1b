//! Test support for the RLHF workspace (a dev-dependency only; no burn).
//!
//! - [`assert_close`] and friends compare float slices and fail on any NaN or infinity on
//!   either side and on a length mismatch, so a test cannot pass on an all-NaN output (a
//!   `fold(0.0, f32::max)` over the differences silently drops NaN).
//! - [`shared_path`] and [`require_program`] find `../shared` fixtures and external programs:
//!   missing, they print `SKIP: …` and give `None` in a user's clone, but panic under
//!   `CI=true` or `RLHF_REQUIRE_SHARED=1`, so CI cannot pass by skipping.

mod close;
mod shared;

pub use close::{
    Diff, assert_close, assert_close_f64, assert_close_rel, assert_differ, assert_finite,
    max_abs_diff, max_abs_diff_f64, max_rel_diff, worst_abs_diff,
};
pub use shared::{
    REQUIRE_ENV, require_program, requirement_from, resolve_program, resolve_shared, shared_dir,
    shared_path, strict,
};
