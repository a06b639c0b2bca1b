//! Integration tests of `rlhf-prefdata`: the crate's single test binary.

mod corrupt;
mod quality;
mod real_data;
mod roundtrip;

use std::path::PathBuf;

/// The shared real-data folder, or `None` (with a message) when this checkout lacks it.
pub(crate) fn data_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipping: real data not found at {} (CI provides shared/data; see its README.md)",
            dir.display()
        );
        None
    }
}
