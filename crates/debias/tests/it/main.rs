//! Integration tests for `rlhf-debias`: one binary, one module per scenario.

mod scenario;
