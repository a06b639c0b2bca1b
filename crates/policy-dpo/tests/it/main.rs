//! The crate's single integration-test binary: the losses against a float64 reference and
//! against values computed independently in numpy from TRL's definitions, the reference cache,
//! batch log-probs, training (learning, resume, stop), and RM-labelled pairs.

mod common;
mod golden;
mod losses;
mod pairs;
mod reference;
mod training;
