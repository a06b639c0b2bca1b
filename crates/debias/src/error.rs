//! The crate's error type and `Result` alias.

/// Everything that can go wrong in `rlhf-debias`.
///
/// Variants are structured so callers can react to them without parsing messages.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bucket edges were empty.
    #[error("bucket edges must not be empty")]
    EmptyEdges,
    /// The first bucket edge was not 0.
    #[error("the first bucket edge must be 0, got {got}")]
    FirstEdgeNotZero {
        /// The first edge that was given.
        got: u64,
    },
    /// Bucket edges were not strictly increasing.
    #[error("bucket edges must be strictly increasing: edge {index} ({next}) <= previous ({prev})")]
    EdgesNotIncreasing {
        /// Position of the offending edge.
        index: usize,
        /// The edge before it.
        prev: u64,
        /// The offending edge.
        next: u64,
    },
    /// Two inputs that must be aligned element by element had different lengths.
    #[error("{what}: length mismatch ({left} vs {right})")]
    LengthMismatch {
        /// Which inputs were compared.
        what: &'static str,
        /// Length of the first input.
        left: usize,
        /// Length of the second input.
        right: usize,
    },
    /// A statistic needs more values than were given.
    #[error("{what}: need at least {need} values, got {got}")]
    TooFewValues {
        /// Which statistic.
        what: &'static str,
        /// How many were given.
        got: usize,
        /// How many are needed.
        need: usize,
    },
    /// A correlation is undefined because one input is constant.
    #[error("{what}: input has zero variance")]
    ZeroVariance {
        /// Which input.
        what: &'static str,
    },
    /// An input value was NaN or infinite.
    #[error("{what}: value at index {index} is not finite")]
    NonFinite {
        /// Which input.
        what: &'static str,
        /// Position of the value.
        index: usize,
    },
    /// A weight was negative or not finite.
    #[error("weight at index {index} must be finite and >= 0, got {value}")]
    InvalidWeight {
        /// Position of the weight.
        index: usize,
        /// The weight that was given.
        value: f64,
    },
    /// A numeric hyper-parameter was outside its allowed range.
    #[error("{name} must be {expected}, got {value}")]
    OutOfRange {
        /// Name of the parameter (the config field name).
        name: &'static str,
        /// Human-readable description of the allowed range.
        expected: &'static str,
        /// The value that was given.
        value: f64,
    },
    /// An index pointed past the end of the slice it indexes.
    #[error("index {index} out of range for length {len}")]
    IndexOutOfRange {
        /// The index.
        index: usize,
        /// Length of the indexed slice.
        len: usize,
    },
    /// Reward shaping was asked to subtract the reference reward but got no reference scores.
    #[error("reference_baseline is on but no reference scores were given")]
    MissingReferenceScores,
    /// (De)serialising a report or a state to JSON failed.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
