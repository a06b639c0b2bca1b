//! Integration tests of `rlhf-prefdata`: the crate's single test binary.

mod corrupt;
mod quality;
mod real_data;
mod roundtrip;

use std::path::PathBuf;

/// The shared real-data folder `../shared/data` (see its README.md), or `None` (with a
/// `SKIP:` line) in a user's clone that lacks it; a test failure under `CI=true` or
/// `RLHF_REQUIRE_SHARED=1`.
pub(crate) fn data_dir() -> Option<PathBuf> {
    rlhf_testkit::shared_path("data")
}
