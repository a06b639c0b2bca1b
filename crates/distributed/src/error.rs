//! The error type of `rlhf-distributed` and its `Result` alias. Every variant names the rank
//! that reports it; failures of the collective name the lost rank(s), their address and the
//! timeout that applied.

use std::fmt;
use std::time::Duration;

/// A node found unreachable after a collective operation failed or timed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostNode {
    /// Its node rank.
    pub node: usize,
    /// The global ranks it held.
    pub ranks: std::ops::Range<usize>,
    /// The address it was reached at (`HOST:PORT`: the coordinator for node 0, the address a
    /// member connected from otherwise).
    pub addr: String,
    /// What the probe got (`connection refused`, `timed out`, …).
    pub reason: String,
}

impl fmt::Display for LostNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ranks = if self.ranks.len() == 1 {
            format!("rank {}", self.ranks.start)
        } else {
            format!("ranks {}..{}", self.ranks.start, self.ranks.end)
        };
        write!(
            f,
            "{ranks} (node {} at {}: {})",
            self.node, self.addr, self.reason
        )
    }
}

fn list(lost: &[LostNode]) -> String {
    lost.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Everything that can go wrong in `rlhf-distributed`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DistError {
    /// A field of the distributed config is out of range or inconsistent.
    #[error("invalid distributed config: {field}: {message}")]
    Config {
        /// The field at fault (its CLI flag name without dashes).
        field: &'static str,
        /// What is wrong and what is expected.
        message: String,
    },
    /// The coordinator (node 0's listening socket) did not accept a TCP connection.
    #[error(
        "rank {rank}: coordinator {addr} unreachable after {attempts} attempts {pause:?} apart; \
         is node 0 running with --coordinator {addr}?"
    )]
    CoordinatorUnreachable {
        /// The reporting rank.
        rank: usize,
        /// `HOST:PORT`.
        addr: String,
        /// Connection attempts made.
        attempts: u32,
        /// Pause between attempts.
        pause: Duration,
    },
    /// Node 0 cannot listen on the coordinator port.
    #[error("rank {rank}: cannot listen on {addr} for the {what}: {message}")]
    PortInUse {
        /// The reporting rank.
        rank: usize,
        /// `HOST:PORT`.
        addr: String,
        /// What the port is for.
        what: &'static str,
        /// The OS error.
        message: String,
    },
    /// Not every rank joined the collective within the rendezvous timeout.
    #[error(
        "rank {rank}: rendezvous did not complete within {timeout:?} ({message}); \
         every node must be started with the same --nodes and --devices count"
    )]
    Rendezvous {
        /// The reporting rank.
        rank: usize,
        /// The rendezvous timeout.
        timeout: Duration,
        /// What burn-collective reported, or that it timed out.
        message: String,
    },
    /// Other ranks stopped answering: the lost ones are named.
    #[error(
        "rank {rank}: lost {} during {op} (collective timeout {timeout:?}); restart every node \
         with the same command to resume from the last checkpoint",
        list(lost)
    )]
    PeerLost {
        /// The reporting rank.
        rank: usize,
        /// The nodes found unreachable.
        lost: Vec<LostNode>,
        /// The operation (`gradient all-reduce at step 7`, …).
        op: String,
        /// The collective timeout.
        timeout: Duration,
    },
    /// A collective operation failed or timed out while every peer still answered.
    #[error(
        "rank {rank}: {op} failed: {message} (collective timeout {timeout:?}; every peer \
         address still accepts connections)"
    )]
    Collective {
        /// The reporting rank.
        rank: usize,
        /// The operation.
        op: String,
        /// What burn-collective reported, or `timed out`.
        message: String,
        /// The collective timeout.
        timeout: Duration,
    },
    /// A replica thread of this process panicked or failed.
    #[error("rank {rank} failed: {message}")]
    RankFailed {
        /// The failing rank.
        rank: usize,
        /// Its panic message or error.
        message: String,
    },
    /// An error of the core crate (atomic writes).
    #[error(transparent)]
    Core(#[from] rlhf_core::CoreError),
    /// An error of the training engine (run directory, checkpoints, consistency checks).
    #[error(transparent)]
    Train(#[from] rlhf_train::TrainError),
    /// A replica's own work failed (what [`crate::run_on_node`] runs).
    #[error("{}", replica_message(*rank, source.as_ref()))]
    Replica {
        /// The failing rank.
        rank: usize,
        /// Its error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl DistError {
    /// A [`DistError::Config`].
    pub(crate) fn config(field: &'static str, message: impl Into<String>) -> Self {
        DistError::Config {
            field,
            message: message.into(),
        }
    }
}

/// A replica's error, prefixed with its rank unless it already names it.
fn replica_message(rank: usize, e: &(dyn std::error::Error + Send + Sync)) -> String {
    let m = e.to_string();
    if m.starts_with(&format!("rank {rank}:")) {
        m
    } else {
        format!("rank {rank}: {m}")
    }
}

/// `Result` with [`DistError`].
pub type Result<T> = std::result::Result<T, DistError>;
