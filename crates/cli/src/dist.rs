//! The data-parallel flags shared by the trainers (`--devices`, `--nodes`, `--node-rank`,
//! `--coordinator`) and their translation into a `rlhf_distributed` world.

use anyhow::bail;
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use rlhf_core::backend::DeviceSpec;
use rlhf_train::{Collective, Solo};

use crate::device::parse_device;

/// `--devices/--nodes/--node-rank/--coordinator` (see docs/distributed.md).
#[derive(Debug, Clone, Args)]
pub(crate) struct DistArgs {
    /// Data parallel over these devices of this node, one replica each (e.g. cuda:0,cuda:1;
    /// on CPU, `cpu,cpu` runs two replicas as threads). See docs/distributed.md.
    #[arg(long, value_delimiter = ',', value_parser = parse_device)]
    pub(crate) devices: Vec<DeviceSpec>,
    /// Nodes (one process per machine) of a multi-node run.
    #[arg(long, default_value_t = 1)]
    pub(crate) nodes: usize,
    /// This node's rank in 0..nodes; node 0 writes checkpoints, metrics and the export.
    #[arg(long, default_value_t = 0)]
    pub(crate) node_rank: usize,
    /// HOST:PORT node 0 listens on and the other nodes connect to.
    #[arg(long)]
    pub(crate) coordinator: Option<String>,
}

impl DistArgs {
    /// Whether the flags ask for more than one replica.
    pub(crate) fn is_distributed(&self) -> bool {
        self.devices.len() > 1 || self.nodes > 1
    }

    /// The world config and this node's replica devices (all of `device`'s kind).
    ///
    /// # Errors
    /// When `--devices` mixes kinds with `--device`.
    pub(crate) fn world<A: AutodiffBackend>(
        &self,
        device: DeviceSpec,
        dev: &A::Device,
    ) -> anyhow::Result<(rlhf_distributed::DistConfig, Vec<A::Device>)> {
        let dist = rlhf_distributed::DistConfig {
            nodes: self.nodes,
            node_rank: self.node_rank,
            coordinator: self.coordinator.clone(),
            ..Default::default()
        };
        if self
            .devices
            .iter()
            .any(|d| std::mem::discriminant(d) != std::mem::discriminant(&device))
        {
            bail!("--devices must all be of the --device kind ({device})");
        }
        let idx: Vec<usize> = self
            .devices
            .iter()
            .enumerate()
            .map(|(k, d)| match d {
                DeviceSpec::Cpu => k,
                DeviceSpec::Cuda(i) => *i,
            })
            .collect();
        let idx = if idx.is_empty() { vec![0] } else { idx };
        Ok((dist, rlhf_distributed::replica_devices::<A>(dev, &idx)))
    }
}

/// What a trainer command runs in its world: the trainer's `train_with`, on [`Solo`] or on a
/// data-parallel `rlhf_distributed::Peer` alike.
pub(crate) trait WorldJob<A: AutodiffBackend>: Sync {
    /// What the job returns (identical on every replica).
    type Out: Send;

    /// Builds this replica's model on `world.device()` and trains it in `world`.
    ///
    /// # Errors
    /// The trainer's.
    fn run<C: Collective<A>>(&self, world: &C) -> anyhow::Result<Self::Out>;
}

impl DistArgs {
    /// Runs `job` in the world the flags describe — the one place the CLI picks [`Solo`] or
    /// this node's data-parallel replicas — and returns its output with whether this process
    /// holds global rank 0 (the one that evaluates, exports and reports).
    ///
    /// # Errors
    /// The job's errors, the world's (a lost rank, a bad `--devices`).
    pub(crate) fn run_job<A: AutodiffBackend, J: WorldJob<A>>(
        &self,
        device: DeviceSpec,
        dev: &A::Device,
        job: &J,
    ) -> anyhow::Result<(bool, J::Out)> {
        if !self.is_distributed() {
            return Ok((true, job.run(&Solo::<A>::new(dev.clone()))?));
        }
        let (dist, devices) = self.world::<A>(device, dev)?;
        let (rank, out) =
            rlhf_distributed::run_on_node::<A::InnerBackend, _, _, _>(&dist, &devices, |peer| {
                job.run(peer)
            })?;
        Ok((rank.is_main(), out))
    }
}
