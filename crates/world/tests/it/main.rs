//! Integration tests of the assistant world: determinism, file formats, the gold judge on the
//! whole generated set, and the simulated annotator's statistics.

mod annotator;
mod common;
mod determinism;
mod formats;
mod judge;
mod mix;
