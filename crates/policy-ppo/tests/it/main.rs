//! Integration tests of `rlhf-policy-ppo` (the crate's one test binary): rollouts against fresh
//! forward passes, where rewards are read, the reference-reward cache and the prompt filter,
//! fused ≡ unfused steps, resume ≡ uninterrupted, a short end-to-end run that learns, and the
//! remote reward model against a local server.

mod cache;
mod common;
mod estimators;
mod learn;
mod remote;
mod resume;
mod rollout;
mod step;
