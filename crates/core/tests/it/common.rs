//! Shared helpers: fixture paths (`rlhf_testkit::shared_path`: skipped in a user's clone,
//! required in CI) and the CPU backend.

use std::path::PathBuf;

pub(crate) type B = rlhf_core::backend::Cpu;

pub(crate) fn device() -> rlhf_core::backend::FlexDevice {
    rlhf_core::backend::FlexDevice
}

/// `../shared/fixtures/<name>`, or `None` (with a `SKIP:` line) when the shared folder is
/// absent, as in a user's clone; a panic instead under `CI=true` or `RLHF_REQUIRE_SHARED=1`.
pub(crate) fn fixture(name: &str) -> Option<PathBuf> {
    rlhf_testkit::shared_path(format!("fixtures/{name}"))
}
