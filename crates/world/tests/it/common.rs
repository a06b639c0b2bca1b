//! The default data set, generated once per test binary.

use std::sync::OnceLock;

use rlhf_world::{Dataset, WorldConfig};

/// The default world (seed 2404, 2,000 + 200 prompts), as `cargo xtask data gen-world` makes it.
pub(crate) fn default_set() -> &'static Dataset {
    static D: OnceLock<Dataset> = OnceLock::new();
    D.get_or_init(|| Dataset::generate(&WorldConfig::default()).expect("generates"))
}
