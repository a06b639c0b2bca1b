//! Buckets over the absolute length difference |Δ|, shared by balancing and diagnostics.
//!
//! Edges are the *lower* bounds of the buckets: `[0, 16, 32]` means `[0, 16)`, `[16, 32)` and
//! `[32, ∞)`. The last bucket is always unbounded, so every |Δ| falls in exactly one bucket and
//! the edges serialise to JSON without an infinity.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// Default lower edges on |Δ| (SPEC §A.3.3 \[I\]): `[0,16) [16,32) [32,64) [64,128) [128,256)
/// [256,512) [512,∞)`.
pub const DEFAULT_EDGES: [u64; 7] = [0, 16, 32, 64, 128, 256, 512];

/// Checks that `edges` is non-empty, starts at 0 and is strictly increasing.
///
/// # Errors
/// [`Error::EmptyEdges`], [`Error::FirstEdgeNotZero`] or [`Error::EdgesNotIncreasing`].
pub fn validate_edges(edges: &[u64]) -> Result<()> {
    let first = *edges.first().ok_or(Error::EmptyEdges)?;
    if first != 0 {
        return Err(Error::FirstEdgeNotZero { got: first });
    }
    for (i, w) in edges.windows(2).enumerate() {
        if w[1] <= w[0] {
            return Err(Error::EdgesNotIncreasing {
                index: i + 1,
                prev: w[0],
                next: w[1],
            });
        }
    }
    Ok(())
}

/// Index of the bucket holding `abs_delta`.
///
/// # Panics
/// Debug builds assert that `edges` is valid (see [`validate_edges`]); callers validate first.
pub fn bucket_index(edges: &[u64], abs_delta: u64) -> usize {
    debug_assert!(
        validate_edges(edges).is_ok(),
        "invalid bucket edges {edges:?}"
    );
    // Number of edges <= abs_delta, minus one; edges[0] == 0 so this is >= 1.
    edges.partition_point(|&e| e <= abs_delta).saturating_sub(1)
}

/// The half-open range `[lower, upper)` of one bucket; `upper` is `None` for the last one (∞).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketRange {
    /// Inclusive lower bound on |Δ|.
    pub lower: u64,
    /// Exclusive upper bound on |Δ|; `None` means unbounded.
    pub upper: Option<u64>,
}

impl BucketRange {
    /// The range covering every |Δ|, used for totals.
    pub const ALL: BucketRange = BucketRange {
        lower: 0,
        upper: None,
    };

    /// The range of bucket `index` under `edges`.
    ///
    /// # Panics
    /// If `index >= edges.len()`.
    pub fn of(edges: &[u64], index: usize) -> BucketRange {
        BucketRange {
            lower: edges[index],
            upper: edges.get(index + 1).copied(),
        }
    }

    /// All bucket ranges of `edges`, in order.
    pub fn all(edges: &[u64]) -> Vec<BucketRange> {
        (0..edges.len())
            .map(|i| BucketRange::of(edges, i))
            .collect()
    }

    /// Whether `abs_delta` lies in this range.
    pub fn contains(&self, abs_delta: u64) -> bool {
        abs_delta >= self.lower && self.upper.is_none_or(|u| abs_delta < u)
    }
}

impl std::fmt::Display for BucketRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.upper {
            Some(u) => write!(f, "[{}, {})", self.lower, u),
            None => write!(f, "[{}, ∞)", self.lower),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_edges_are_valid() {
        validate_edges(&DEFAULT_EDGES).unwrap();
    }

    #[test]
    fn rejects_bad_edges() {
        assert!(matches!(validate_edges(&[]), Err(Error::EmptyEdges)));
        assert!(matches!(
            validate_edges(&[1, 2]),
            Err(Error::FirstEdgeNotZero { got: 1 })
        ));
        assert!(matches!(
            validate_edges(&[0, 8, 8]),
            Err(Error::EdgesNotIncreasing {
                index: 2,
                prev: 8,
                next: 8
            })
        ));
        assert!(matches!(
            validate_edges(&[0, 8, 4]),
            Err(Error::EdgesNotIncreasing { .. })
        ));
    }

    #[test]
    fn indexes_half_open_buckets() {
        let e = DEFAULT_EDGES;
        assert_eq!(bucket_index(&e, 0), 0);
        assert_eq!(bucket_index(&e, 15), 0);
        assert_eq!(bucket_index(&e, 16), 1);
        assert_eq!(bucket_index(&e, 511), 5);
        assert_eq!(bucket_index(&e, 512), 6);
        assert_eq!(bucket_index(&e, u64::MAX), 6);
        assert_eq!(bucket_index(&[0], 12345), 0);
        for v in [0, 1, 15, 16, 17, 100, 511, 512, 10_000] {
            let i = bucket_index(&e, v);
            assert!(BucketRange::of(&e, i).contains(v));
        }
    }

    #[test]
    fn displays_ranges() {
        assert_eq!(BucketRange::of(&DEFAULT_EDGES, 0).to_string(), "[0, 16)");
        assert_eq!(BucketRange::of(&DEFAULT_EDGES, 6).to_string(), "[512, ∞)");
        assert_eq!(BucketRange::all(&DEFAULT_EDGES).len(), 7);
    }
}
