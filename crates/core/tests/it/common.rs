//! Shared helpers: fixture paths (`rlhf_testkit::shared_path`: skipped in a user's clone,
//! required in CI), the CPU backend, and running a check on both kernel paths.

use std::path::PathBuf;

use rlhf_core::kernels;

pub(crate) type B = rlhf_core::backend::Cpu;

pub(crate) fn device() -> rlhf_core::backend::FlexDevice {
    rlhf_core::backend::FlexDevice
}

/// `../shared/fixtures/<name>`, or `None` (with a `SKIP:` line) when the shared folder is
/// absent, as in a user's clone; a panic instead under `CI=true` or `RLHF_REQUIRE_SHARED=1`.
pub(crate) fn fixture(name: &str) -> Option<PathBuf> {
    rlhf_testkit::shared_path(format!("fixtures/{name}"))
}

/// Runs `check` twice on this thread: with the fused CPU kernels, then on the generic burn
/// path (`kernels::reference`, what CUDA and bf16 run). `check` gets the path's name for its
/// messages. Asserts each run went down its path: the fused run used the kernels, the generic
/// run never did and sent ops to the generic code.
pub(crate) fn on_both_kernel_paths(what: &str, mut check: impl FnMut(&str)) {
    for fused in [true, false] {
        let path = if fused {
            "fused kernels"
        } else {
            "generic path"
        };
        let before = kernels::thread_calls();
        kernels::with_enabled(fused, || check(path));
        let after = kernels::thread_calls();
        let (f, g) = (after.fused - before.fused, after.generic - before.generic);
        if fused {
            assert!(f > 0, "{what} ({path}): no op used the fused kernels");
        } else {
            assert!(
                f == 0 && g > 0,
                "{what} ({path}): {f} ops used the fused kernels, {g} the generic code"
            );
        }
    }
}
