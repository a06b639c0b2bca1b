//! Shared helpers: fixture paths (skipping when `../shared` is absent) and the CPU backend.

use std::path::PathBuf;

pub(crate) type B = rlhf_core::backend::Cpu;

pub(crate) fn device() -> rlhf_core::backend::FlexDevice {
    rlhf_core::backend::FlexDevice
}

/// `../shared/fixtures/<name>` relative to the workspace root, or `None` (with a message) when
/// the shared folder is absent, as in a user's clone.
pub(crate) fn fixture(name: &str) -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures");
    let dir = root.join(name);
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIP: {} not found; the parity tests need ../shared/fixtures next to the repository",
            dir.display()
        );
        None
    }
}

pub(crate) fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
