//! [`DistConfig`]: the world of a data-parallel run (nodes, this node's rank, the coordinator,
//! timeouts and retries) and [`Rank`], one replica's place in it.
//!
//! A run has `nodes` processes (one per machine, launched like `torchrun`: the same command
//! with `--node-rank 0..nodes`), each driving `devices` local replicas (one thread per device).
//! The global rank of local replica `l` on node `n` is `n × devices + l`; the world size is
//! `nodes × devices`. Node 0 listens on the coordinator address; the other nodes connect to
//! it.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use burn::prelude::Backend;
use burn::tensor::backend::Device as _;
use serde::{Deserialize, Serialize};

use crate::error::{DistError, Result};

/// The distributed part of a run's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DistConfig {
    /// Processes (machines) in the run, ≥ 1 (torchrun `--nnodes`). Default 1.
    pub nodes: usize,
    /// This process's node rank in `0..nodes` (torchrun `--node-rank`). Default 0.
    pub node_rank: usize,
    /// `HOST:PORT` of the coordinator: node 0 listens on that port (all interfaces), the other
    /// nodes connect to it (torchrun `--rdzv-endpoint`). Required when `nodes > 1`.
    pub coordinator: Option<String>,
    /// Longest wait for one collective operation (an all-reduce), in seconds; a node whose
    /// process dies is noticed at once (its connection closes), a silent one after this long,
    /// and named in the error. It must exceed the longest time one rank can spend between two
    /// all-reduces while the others wait (a step, rank 0 writing a checkpoint). Default 120.
    pub timeout_secs: f64,
    /// Longest wait for every rank to join (rendezvous), in seconds. Default 300.
    pub rendezvous_timeout_secs: f64,
    /// Connection attempts to the coordinator before giving up (nodes other than 0). Default 60.
    pub connect_retries: u32,
    /// Pause between connection attempts, in seconds. Default 1.
    pub retry_pause_secs: f64,
}

impl Default for DistConfig {
    fn default() -> Self {
        DistConfig {
            nodes: 1,
            node_rank: 0,
            coordinator: None,
            timeout_secs: 120.0,
            rendezvous_timeout_secs: 300.0,
            connect_retries: 60,
            retry_pause_secs: 1.0,
        }
    }
}

/// Splits `HOST:PORT` (the port is the part after the last `:`).
pub(crate) fn split_host_port(s: &str, field: &'static str) -> Result<(String, u16)> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| DistError::config(field, format!("expected HOST:PORT, got `{s}`")))?;
    let port: u16 = port
        .parse()
        .map_err(|_| DistError::config(field, format!("bad port in `{s}`")))?;
    if host.is_empty() {
        return Err(DistError::config(field, format!("empty host in `{s}`")));
    }
    Ok((host.to_string(), port))
}

impl DistConfig {
    /// A single-process config: `nodes = 1`, everything else at its default.
    pub fn single() -> Self {
        Self::default()
    }

    /// A multi-node config for node `node_rank` of `nodes`, coordinated at `coordinator`.
    pub fn multi_node(nodes: usize, node_rank: usize, coordinator: impl Into<String>) -> Self {
        DistConfig {
            nodes,
            node_rank,
            coordinator: Some(coordinator.into()),
            ..Self::default()
        }
    }

    /// Sets both timeouts and the retry pause (tests use short ones).
    pub fn with_timeouts(mut self, op: Duration, rendezvous: Duration) -> Self {
        self.timeout_secs = op.as_secs_f64();
        self.rendezvous_timeout_secs = rendezvous.as_secs_f64();
        self
    }

    /// The collective-operation timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout_secs)
    }

    /// The rendezvous timeout.
    pub fn rendezvous_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.rendezvous_timeout_secs)
    }

    /// The pause between connection attempts.
    pub fn retry_pause(&self) -> Duration {
        Duration::from_secs_f64(self.retry_pause_secs)
    }

    /// Checks ranges and that the multi-node fields are given when needed.
    ///
    /// # Errors
    /// [`DistError::Config`] naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        if self.nodes == 0 {
            return Err(DistError::config("nodes", "must be >= 1"));
        }
        if self.node_rank >= self.nodes {
            return Err(DistError::config(
                "node-rank",
                format!("must be < nodes ({}), got {}", self.nodes, self.node_rank),
            ));
        }
        for (field, v) in [
            ("timeout", self.timeout_secs),
            ("rendezvous-timeout", self.rendezvous_timeout_secs),
            ("retry-pause", self.retry_pause_secs),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(DistError::config(field, format!("must be > 0 s, got {v}")));
            }
        }
        if self.nodes > 1 {
            let (host, port) = self.coordinator_addr()?;
            resolve(&host, port).map_err(|e| {
                DistError::config("coordinator", format!("cannot resolve {host}:{port}: {e}"))
            })?;
        }
        Ok(())
    }

    /// The coordinator's `(host, port)`.
    ///
    /// # Errors
    /// Missing or malformed `coordinator`.
    pub fn coordinator_addr(&self) -> Result<(String, u16)> {
        let c = self.coordinator.as_deref().ok_or_else(|| {
            DistError::config("coordinator", "HOST:PORT is required when nodes > 1")
        })?;
        split_host_port(c, "coordinator")
    }

    /// The world size for `devices` local replicas per node.
    pub fn world_size(&self, devices: usize) -> usize {
        self.nodes * devices
    }
}

/// The devices of replicas `indices` of the kind of `base`: `cuda:0` with `[0, 1]` gives
/// `cuda:0, cuda:1`; a backend with a single device (Flex) gives `base` again for each index,
/// i.e. several CPU replicas sharing the cores.
pub fn replica_devices<B: Backend>(base: &B::Device, indices: &[usize]) -> Vec<B::Device> {
    indices
        .iter()
        .map(|&i| {
            let mut id = base.to_id();
            id.index_id = u16::try_from(i).expect("device index fits in u16");
            B::Device::from_id(id)
        })
        .collect()
}

/// Resolves `host:port` to a socket address (the first one).
pub(crate) fn resolve(host: &str, port: u16) -> std::io::Result<SocketAddr> {
    (host, port).to_socket_addrs()?.next().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{host}:{port} resolves to no address"),
        )
    })
}

/// One replica's place in the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rank {
    /// Global rank in `0..world` (burn-collective's `PeerId`).
    pub rank: usize,
    /// Replicas in the run.
    pub world: usize,
    /// Index of the replica among its node's devices.
    pub local: usize,
    /// Replicas per node.
    pub local_world: usize,
    /// Node rank.
    pub node: usize,
}

impl Rank {
    /// The only replica of a single-device, single-node run.
    pub const SOLO: Rank = Rank {
        rank: 0,
        world: 1,
        local: 0,
        local_world: 1,
        node: 0,
    };

    /// Local replica `local` of `devices` on node `node`.
    pub fn new(node: usize, nodes: usize, local: usize, devices: usize) -> Self {
        Rank {
            rank: node * devices + local,
            world: nodes * devices,
            local,
            local_world: devices,
            node,
        }
    }

    /// Whether this is global rank 0: the one that writes checkpoints, metrics and reports.
    pub fn is_main(&self) -> bool {
        self.rank == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_fields_are_named() {
        let e = DistConfig::multi_node(2, 2, "127.0.0.1:1").validate();
        assert!(e.unwrap_err().to_string().contains("node-rank"));
        let e = DistConfig {
            nodes: 2,
            ..DistConfig::default()
        }
        .validate();
        assert!(e.unwrap_err().to_string().contains("coordinator"));
        let e = DistConfig::multi_node(2, 0, "127.0.0.1:x").validate();
        assert!(e.unwrap_err().to_string().contains("bad port"));
        let e = DistConfig {
            timeout_secs: 0.0,
            ..DistConfig::default()
        }
        .validate();
        assert!(e.unwrap_err().to_string().contains("timeout"));
    }

    #[test]
    fn ranks_are_node_major() {
        let r = Rank::new(1, 2, 1, 3);
        assert_eq!((r.rank, r.world), (4, 6));
        assert!(!r.is_main());
        assert!(Rank::new(0, 2, 0, 3).is_main());
    }
}
