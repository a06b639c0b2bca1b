//! Deterministic train/valid/test split keyed on the normalised context (history + prompt).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::normalize::{context_key, stable_hash};
use crate::schema::{Comparison, Message, Split};

/// Target split fractions and the hash seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitConfig {
    /// Seed mixed into the hash; another seed gives another (equally deterministic) split.
    pub seed: u64,
    /// Fraction of contexts in the training split.
    pub train: f64,
    /// Fraction in the validation split.
    pub valid: f64,
    /// Fraction in the test split.
    pub test: f64,
}

impl Default for SplitConfig {
    /// 90 / 5 / 5 with seed 0.
    fn default() -> Self {
        Self {
            seed: 0,
            train: 0.90,
            valid: 0.05,
            test: 0.05,
        }
    }
}

impl SplitConfig {
    /// Checks that the fractions are in `[0, 1]` and sum to 1 (within 1e-6).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] otherwise.
    pub fn validate(&self) -> Result<()> {
        let parts = [self.train, self.valid, self.test];
        if parts.iter().any(|p| !(0.0..=1.0).contains(p)) {
            return Err(Error::InvalidConfig(format!(
                "split fractions must be in [0, 1], got {parts:?}"
            )));
        }
        let sum: f64 = parts.iter().sum();
        if (sum - 1.0).abs() > 1e-6 {
            return Err(Error::InvalidConfig(format!(
                "split fractions must sum to 1, got {sum}"
            )));
        }
        Ok(())
    }

    /// The split of a context. Every comparison with the same normalised history and prompt
    /// lands in the same split, whatever its replies, so a prompt never crosses splits.
    pub fn split_of(&self, history: &[Message], prompt: &str) -> Split {
        let h = stable_hash(context_key(history, prompt).as_bytes(), self.seed);
        // Top 53 bits as a uniform number in [0, 1).
        let u = (h >> 11) as f64 / (1u64 << 53) as f64;
        if u < self.train {
            Split::Train
        } else if u < self.train + self.valid {
            Split::Valid
        } else {
            Split::Test
        }
    }
}

/// Rows per split after [`assign_splits`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitCounts {
    /// Training rows.
    pub train: u64,
    /// Validation rows.
    pub valid: u64,
    /// Test rows.
    pub test: u64,
}

impl SplitCounts {
    /// Count for one split.
    pub fn get(&self, s: Split) -> u64 {
        match s {
            Split::Train => self.train,
            Split::Valid => self.valid,
            Split::Test => self.test,
        }
    }

    /// All rows.
    pub fn total(&self) -> u64 {
        self.train + self.valid + self.test
    }
}

/// Sets the `split` column of every row from [`SplitConfig::split_of`].
///
/// # Errors
/// [`Error::InvalidConfig`] if `cfg` does not validate.
pub fn assign_splits(rows: &mut [Comparison], cfg: &SplitConfig) -> Result<SplitCounts> {
    cfg.validate()?;
    let mut counts = SplitCounts::default();
    for c in rows {
        let s = cfg.split_of(&c.history, &c.prompt);
        c.split = Some(s);
        match s {
            Split::Train => counts.train += 1,
            Split::Valid => counts.valid += 1,
            Split::Test => counts.test += 1,
        }
    }
    tracing::info!(
        train = counts.train,
        valid = counts.valid,
        test = counts.test,
        "splits assigned"
    );
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synthetic(n: usize) -> Vec<Comparison> {
        (0..n)
            .map(|i| Comparison::new(i.to_string(), "t", format!("prompt number {i}"), "a", "b"))
            .collect()
    }

    #[test]
    fn proportions_follow_the_config() {
        let mut rows = synthetic(20_000);
        let cfg = SplitConfig {
            seed: 7,
            train: 0.8,
            valid: 0.1,
            test: 0.1,
        };
        let counts = assign_splits(&mut rows, &cfg).unwrap();
        assert_eq!(counts.total(), 20_000);
        for (s, want) in [(Split::Train, 0.8), (Split::Valid, 0.1), (Split::Test, 0.1)] {
            let got = counts.get(s) as f64 / 20_000.0;
            assert!((got - want).abs() < 0.01, "{s}: {got} vs {want}");
        }
    }

    #[test]
    fn same_context_same_split_and_seed_changes_assignment() {
        let cfg = SplitConfig::default();
        let a = cfg.split_of(&[], "What is  rust?");
        assert_eq!(a, cfg.split_of(&[], " What is rust? "));
        let other = SplitConfig {
            seed: 1,
            ..SplitConfig::default()
        };
        let rows = synthetic(2_000);
        let moved = rows
            .iter()
            .filter(|c| cfg.split_of(&[], &c.prompt) != other.split_of(&[], &c.prompt))
            .count();
        assert!(moved > 50, "{moved}");
        // Deterministic across calls.
        let again: Vec<_> = rows.iter().map(|c| cfg.split_of(&[], &c.prompt)).collect();
        let once: Vec<_> = rows.iter().map(|c| cfg.split_of(&[], &c.prompt)).collect();
        assert_eq!(again, once);
    }

    #[test]
    fn bad_fractions_are_rejected() {
        let bad = SplitConfig {
            train: 0.9,
            valid: 0.2,
            test: 0.0,
            seed: 0,
        };
        assert!(bad.validate().is_err());
        let neg = SplitConfig {
            train: 1.1,
            valid: -0.1,
            test: 0.0,
            seed: 0,
        };
        assert!(assign_splits(&mut synthetic(1), &neg).is_err());
        let all_train = SplitConfig {
            train: 1.0,
            valid: 0.0,
            test: 0.0,
            seed: 3,
        };
        let counts = assign_splits(&mut synthetic(500), &all_train).unwrap();
        assert_eq!(counts.train, 500);
    }
}
