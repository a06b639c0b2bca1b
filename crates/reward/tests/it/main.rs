//! The crate's single integration-test binary: a tiny reward model learns a synthetic
//! preference task, resumes exactly, and shows the effect of the score prior.

mod balance;
mod common;
mod learn;
mod prior;
mod resume;
mod tokenizer;
