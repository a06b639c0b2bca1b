//! The seeded data cursor: each epoch's order is a Fisher–Yates shuffle driven by a ChaCha8
//! stream seeded from `(seed, epoch)`, so `(seed, epoch)` plus the cursor is the whole state of
//! the data order (the models have no dropout): a resumed run continues on the same samples,
//! and so does a run resumed with another world size.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The data-order generator's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataRngState {
    /// The run's seed.
    pub seed: u64,
    /// The epoch whose permutation is being consumed.
    pub epoch: usize,
    /// Examples of that permutation already consumed.
    pub cursor: usize,
}

impl DataRngState {
    /// The start of a run with `seed`.
    pub fn new(seed: u64) -> Self {
        DataRngState {
            seed,
            epoch: 0,
            cursor: 0,
        }
    }

    /// The next `accumulation` micro-batches of at most `batch` indices into a data set of `n`,
    /// taken in order from `perm` (the permutation of the current epoch, which the caller
    /// keeps); when an epoch runs out the next one starts, and `perm` becomes its permutation
    /// ([`epoch_permutation`] of `seed` and the new epoch).
    pub fn next_batches(
        &mut self,
        n: usize,
        batch: usize,
        accumulation: usize,
        perm: &mut Vec<usize>,
    ) -> Vec<Vec<usize>> {
        (0..accumulation)
            .map(|_| {
                if self.cursor >= n {
                    self.epoch += 1;
                    self.cursor = 0;
                    *perm = epoch_permutation(n, self.seed, self.epoch);
                }
                let end = (self.cursor + batch).min(n);
                let ids = perm[self.cursor..end].to_vec();
                self.cursor = end;
                ids
            })
            .collect()
    }

    /// Epochs done, fractional.
    pub fn epochs(&self, n: usize) -> f64 {
        self.epoch as f64 + self.cursor as f64 / n.max(1) as f64
    }
}

/// The data order of `epoch`: a Fisher–Yates shuffle of `0..n` driven by ChaCha8 seeded with
/// FNV-1a of `(seed, epoch)`.
pub fn epoch_permutation(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut perm: Vec<usize> = (0..n).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(crate::fnv1a(seed, &(epoch as u64).to_le_bytes()));
    perm.shuffle(&mut rng);
    perm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutations_are_seeded_per_epoch() {
        let a = epoch_permutation(50, 1, 0);
        assert_eq!(a, epoch_permutation(50, 1, 0));
        assert_ne!(a, epoch_permutation(50, 1, 1));
        assert_ne!(a, epoch_permutation(50, 2, 0));
        let mut s = a.clone();
        s.sort();
        assert_eq!(s, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn batches_cross_epochs_in_order() {
        let mut st = DataRngState::new(3);
        let mut perm = epoch_permutation(5, 3, 0);
        let first = perm.clone();
        let b = st.next_batches(5, 2, 3, &mut perm);
        assert_eq!(
            b,
            vec![
                first[0..2].to_vec(),
                first[2..4].to_vec(),
                first[4..5].to_vec()
            ]
        );
        let b = st.next_batches(5, 2, 1, &mut perm);
        assert_eq!((st.epoch, st.cursor), (1, 2));
        assert_eq!(b, vec![epoch_permutation(5, 3, 1)[0..2].to_vec()]);
    }
}
