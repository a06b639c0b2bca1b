//! The integration tests of `rlhf-distributed` (one binary): data-parallel steps equal the
//! single-worker step on the whole batch, in process (two Flex "devices" on two threads) and
//! across two processes over 127.0.0.1 (the inter-node link); a killed worker is named
//! by the survivor within the timeout, and a restart resumes and completes the run.
//!
//! The multi-process tests spawn this test binary itself as the workers (`RLHF_DIST_CHILD`
//! selects the worker role inside the same test function).

mod common;
mod dpo_loop;
mod engine;
mod inprocess;
mod multiprocess;
mod ppo;
