//! [`Peer`]: one replica's handle on the collective, with the timeouts and failure naming
//! burn 0.21 leaves to the caller.
//!
//! - Within a node, the replicas (one thread per device) sum through **burn-collective**'s
//!   local server (`register`, `all_reduce` with the tree strategy, `broadcast`,
//!   `finish_collective`): burn's engine, on any backend, Flex included.
//! - Across nodes, local rank 0 of each node sums the node's result through the star
//!   [`Link`] over TCP — a fallback, because burn-collective 0.21's global all-reduce hangs
//!   from its second call (see `link.rs` and `docs/distributed.md`) — and the node's other
//!   replicas get the total through burn's local `broadcast`.
//! - Every blocking burn-collective call runs on a watchdog thread with a deadline (burn has
//!   none); the TCP link has socket timeouts; a failure names the lost ranks.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use burn::collective::{CollectiveConfig, PeerId, ReduceOperation};
use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::TensorPrimitive;
use burn::tensor::backend::AutodiffBackend;

use crate::bucket::{flatten, unflatten};
use crate::config::{DistConfig, Rank, resolve};
use crate::error::{DistError, LostNode, Result};
use crate::link::{Link, LinkError};

/// How often a waiting rank checks whether a sibling thread of its group failed.
const POLL: Duration = Duration::from_millis(50);

/// State shared by the replica threads of one process: the first failure, so that siblings
/// blocked in a collective stop waiting at once and the root cause is reported.
#[derive(Debug, Default)]
pub(crate) struct Group {
    failed: AtomicBool,
    failed_rank: AtomicUsize,
    message: Mutex<Option<String>>,
}

impl Group {
    pub(crate) fn fail(&self, rank: usize, message: String) {
        if !self.failed.swap(true, Ordering::SeqCst) {
            self.failed_rank.store(rank, Ordering::SeqCst);
            *self.message.lock().unwrap_or_else(|e| e.into_inner()) = Some(message);
        }
    }

    pub(crate) fn failure(&self) -> Option<(usize, String)> {
        self.failed.load(Ordering::SeqCst).then(|| {
            let m = self.message.lock().unwrap_or_else(|e| e.into_inner());
            (
                self.failed_rank.load(Ordering::SeqCst),
                m.clone().unwrap_or_default(),
            )
        })
    }
}

/// One replica's handle on the collective: its [`Rank`], its device, and sum all-reduces
/// (gradient buckets, scalars) that fail with an error naming the lost ranks instead of
/// hanging.
///
/// `B` is the **inner** backend of the training backend (`Flex` for `Autodiff<Flex>`), as
/// burn-collective requires. A world of one replica needs no collective: its all-reduces are
/// the identity.
#[derive(Debug)]
pub struct Peer<B: Backend> {
    rank: Rank,
    device: B::Device,
    timeout: Duration,
    /// More than one replica on this node: burn-collective's local server.
    local: bool,
    /// More than one node.
    multi_node: bool,
    /// Local rank 0 of a multi-node run: the node's end of the star.
    link: Option<Mutex<Link>>,
    group: Arc<Group>,
    poisoned: AtomicBool,
}

impl<B: Backend> Peer<B> {
    /// The handle of a single-replica run (no collective; all-reduces are the identity).
    pub fn solo(device: B::Device) -> Self {
        Peer {
            rank: Rank::SOLO,
            device,
            timeout: Duration::MAX,
            local: false,
            multi_node: false,
            link: None,
            group: Arc::default(),
            poisoned: AtomicBool::new(false),
        }
    }

    /// Joins the collective as `rank` on `device`: in a multi-node run local replica 0 of
    /// node 0 listens on the coordinator port and those of the other nodes connect to it
    /// (within `connect_retries`); with several local replicas each registers with
    /// burn-collective's local server. Blocks until the whole world has joined (at most the
    /// rendezvous timeout).
    ///
    /// Use [`crate::launch`]: replicas of one process must join from their own threads, and
    /// only one group per process may be active at a time.
    ///
    /// # Errors
    /// [`DistError::Config`], [`DistError::CoordinatorUnreachable`],
    /// [`DistError::Rendezvous`].
    pub(crate) fn join(
        cfg: &DistConfig,
        rank: Rank,
        device: B::Device,
        group: Arc<Group>,
    ) -> Result<Self> {
        cfg.validate()?;
        if rank.world == 1 {
            return Ok(Peer {
                group,
                ..Self::solo(device)
            });
        }
        let rendezvous = |message: String| DistError::Rendezvous {
            rank: rank.rank,
            timeout: cfg.rendezvous_timeout(),
            message,
        };
        let mut link = None;
        if cfg.nodes > 1 && rank.local == 0 {
            let (host, port) = cfg.coordinator_addr()?;
            tracing::info!(
                rank = rank.rank,
                node = rank.node,
                "joining the other nodes"
            );
            let l = if rank.node == 0 {
                Link::host(
                    port,
                    cfg.nodes,
                    rank.local_world,
                    cfg.timeout(),
                    cfg.rendezvous_timeout(),
                )
            } else {
                let addr = resolve(&host, port).map_err(|e| {
                    DistError::config("coordinator", format!("cannot resolve {host}:{port}: {e}"))
                })?;
                Link::join(
                    addr,
                    rank.node,
                    cfg.nodes,
                    rank.local_world,
                    cfg.timeout(),
                    cfg.rendezvous_timeout(),
                    cfg.connect_retries,
                    cfg.retry_pause(),
                )
            };
            link = Some(Mutex::new(l.map_err(|e| match e {
                LinkError::Lost(_) => DistError::CoordinatorUnreachable {
                    rank: rank.rank,
                    addr: format!("{host}:{port}"),
                    attempts: cfg.connect_retries.max(1),
                    pause: cfg.retry_pause(),
                },
                LinkError::Remote(l) => rendezvous(format!("node 0 refused this node: {l:?}")),
                LinkError::Protocol(m) => rendezvous(m),
                LinkError::Bind(message) => DistError::PortInUse {
                    rank: rank.rank,
                    addr: format!("0.0.0.0:{port}"),
                    what: "coordinator",
                    message,
                },
            })?));
        }
        let peer = Peer {
            rank,
            device: device.clone(),
            timeout: cfg.timeout(),
            local: rank.local_world > 1,
            multi_node: cfg.nodes > 1,
            link,
            group,
            poisoned: AtomicBool::new(false),
        };
        if peer.local {
            let id = PeerId::from(rank.rank);
            let config = CollectiveConfig::default().with_num_devices(rank.local_world);
            peer.guarded("rendezvous", cfg.rendezvous_timeout(), move || {
                burn::collective::register::<B>(id, device, config)
            })
            .map_err(|e| rendezvous(e.to_string()))?;
        }
        tracing::info!(rank = rank.rank, world = rank.world, "joined");
        Ok(peer)
    }

    /// This replica's rank.
    pub fn rank(&self) -> Rank {
        self.rank
    }

    /// This replica's device.
    pub fn device(&self) -> &B::Device {
        &self.device
    }

    /// The collective-operation timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Marks this peer failed, tells its siblings, and returns `err`.
    fn poison(&self, err: DistError) -> DistError {
        self.poisoned.store(true, Ordering::SeqCst);
        self.group.fail(self.rank.rank, err.to_string());
        err
    }

    /// Runs a blocking burn-collective call on a watchdog thread and waits for it until
    /// `timeout`, a sibling failure, or the call's own error.
    fn guarded<T, F>(&self, op: &str, timeout: Duration, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> std::result::Result<T, burn::collective::CollectiveError> + Send + 'static,
    {
        let failed = |message: String| DistError::Collective {
            rank: self.rank.rank,
            op: op.to_string(),
            message,
            timeout,
        };
        if self.poisoned.load(Ordering::SeqCst) {
            return Err(failed("an earlier collective operation failed".into()));
        }
        let (tx, rx) = channel();
        std::thread::Builder::new()
            .name(format!("rlhf-collective-{}", self.rank.rank))
            .spawn(move || {
                let _ = tx.send(f());
            })
            .map_err(|e| self.poison(failed(format!("cannot spawn a watchdog thread: {e}"))))?;
        let start = Instant::now();
        loop {
            if let Some((rank, message)) = self.group.failure()
                && rank != self.rank.rank
            {
                self.poisoned.store(true, Ordering::SeqCst);
                return Err(DistError::RankFailed { rank, message });
            }
            let left = timeout.saturating_sub(start.elapsed());
            match rx.recv_timeout(left.min(POLL)) {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) => return Err(self.poison(failed(format!("burn-collective: {e:?}")))),
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(self.poison(failed("burn-collective's call panicked".into())));
                }
                Err(RecvTimeoutError::Timeout) if left.is_zero() => {
                    let message = format!(
                        "no result within {timeout:?}: a replica of this node stopped calling"
                    );
                    return Err(self.poison(failed(message)));
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// The node-level sum through the star link (local rank 0 only).
    fn link_all_reduce(&self, link: &Mutex<Link>, values: Vec<f32>, op: &str) -> Result<Vec<f32>> {
        let mut link = link.lock().unwrap_or_else(|e| e.into_inner());
        let lw = self.rank.local_world;
        let lost = |l: Vec<(usize, String, String)>| {
            l.into_iter()
                .map(|(node, addr, reason)| LostNode {
                    node,
                    ranks: node * lw..(node + 1) * lw,
                    addr,
                    reason,
                })
                .collect()
        };
        link.all_reduce(values).map_err(|e| {
            let err = match e {
                LinkError::Lost(l) | LinkError::Remote(l) => DistError::PeerLost {
                    rank: self.rank.rank,
                    lost: lost(l),
                    op: op.to_string(),
                    timeout: self.timeout,
                },
                LinkError::Protocol(message) | LinkError::Bind(message) => DistError::Collective {
                    rank: self.rank.rank,
                    op: op.to_string(),
                    message,
                    timeout: self.timeout,
                },
            };
            self.poison(err)
        })
    }

    /// Sums `tensor` over every replica of the world (identity for a world of one): over the
    /// node's replicas with burn-collective, then over the nodes through the link, then back
    /// to the node's replicas with burn's broadcast. `op` names the operation in errors.
    ///
    /// # Errors
    /// [`DistError::PeerLost`], [`DistError::Collective`] or [`DistError::RankFailed`] (a
    /// sibling replica of this process failed first).
    pub fn all_reduce_sum(&self, tensor: Tensor<B, 1>, op: &str) -> Result<Tensor<B, 1>> {
        if self.rank.world == 1 {
            return Ok(tensor);
        }
        if self.poisoned.load(Ordering::SeqCst) {
            return Err(DistError::Collective {
                rank: self.rank.rank,
                op: op.to_string(),
                message: "an earlier collective operation failed".into(),
                timeout: self.timeout,
            });
        }
        let id = PeerId::from(self.rank.rank);
        let mut t = tensor;
        if self.local {
            let prim = t.into_primitive().tensor();
            let out = self.guarded(op, self.timeout, move || {
                burn::collective::all_reduce::<B>(id, prim, ReduceOperation::Sum)
            })?;
            t = Tensor::from_primitive(TensorPrimitive::Float(out));
        }
        if self.multi_node {
            let mine = match &self.link {
                Some(link) => {
                    let n = t.dims()[0];
                    let values: Vec<f32> = t.into_data().convert::<f32>().to_vec().expect("f32");
                    let sum = self.link_all_reduce(link, values, op)?;
                    Some(Tensor::<B, 1>::from_data(
                        TensorData::new(sum, [n]),
                        &self.device,
                    ))
                }
                None => None,
            };
            if self.local {
                let prim = mine.map(|m| m.into_primitive().tensor());
                // Local rank 0 waits up to the timeout for the other nodes; its siblings wait
                // for it here, so they allow twice as long before giving up on it.
                let out = self.guarded(op, 2 * self.timeout, move || {
                    burn::collective::broadcast::<B>(id, prim)
                })?;
                t = Tensor::from_primitive(TensorPrimitive::Float(out));
            } else {
                t = mine.expect("a single-device node is its own local rank 0");
            }
        }
        Ok(t)
    }

    /// Sums scalars over every replica (one all-reduce, f32 on the wire).
    ///
    /// # Errors
    /// As [`Peer::all_reduce_sum`].
    pub fn all_reduce_scalars(&self, values: &[f64], op: &str) -> Result<Vec<f64>> {
        if self.rank.world == 1 || values.is_empty() {
            return Ok(values.to_vec());
        }
        let v: Vec<f32> = values.iter().map(|&x| x as f32).collect();
        let t = Tensor::<B, 1>::from_data(TensorData::new(v, [values.len()]), &self.device);
        let out = self.all_reduce_sum(t, op)?;
        Ok(out
            .into_data()
            .convert::<f32>()
            .iter::<f32>()
            .map(f64::from)
            .collect())
    }

    /// Every rank's `values` (all of the same length), indexed by rank: an all-gather made of
    /// one all-reduce in which each rank fills its own slot. f32 on the wire: integers up to
    /// 2^24 and f32 values come back exactly.
    ///
    /// # Errors
    /// As [`Peer::all_reduce_sum`].
    pub fn all_gather_scalars(&self, values: &[f32], op: &str) -> Result<Vec<Vec<f32>>> {
        let (k, world) = (values.len(), self.rank.world);
        if world == 1 {
            return Ok(vec![values.to_vec()]);
        }
        let mut v = vec![0f32; k * world];
        v[self.rank.rank * k..(self.rank.rank + 1) * k].copy_from_slice(values);
        let t = Tensor::<B, 1>::from_data(TensorData::new(v, [k * world]), &self.device);
        let out: Vec<f32> = self
            .all_reduce_sum(t, op)?
            .into_data()
            .convert::<f32>()
            .to_vec()
            .expect("f32");
        Ok(out.chunks(k.max(1)).map(<[f32]>::to_vec).collect())
    }

    /// Sums the gradients of `module` over every replica, together with `extras` (scalars
    /// such as the step's loss or a stop flag), in one all-reduce: the gradients are flattened
    /// in the module's visiting order into one bucket (missing ones as zeros).
    ///
    /// # Errors
    /// As [`Peer::all_reduce_sum`].
    pub fn all_reduce_grads<AB, M>(
        &self,
        module: &M,
        grads: GradientsParams,
        extras: &[f32],
        op: &str,
    ) -> Result<(GradientsParams, Vec<f32>)>
    where
        AB: AutodiffBackend<InnerBackend = B>,
        M: AutodiffModule<AB>,
    {
        if self.rank.world == 1 {
            return Ok((grads, extras.to_vec()));
        }
        let flat = flatten::<AB, M>(module, grads, extras, &self.device);
        let sum = self.all_reduce_sum(flat, op)?;
        Ok(unflatten::<AB, M>(module, sum, extras.len()))
    }

    /// Leaves the collective (burn's `finish_collective`); a failure is logged, not returned,
    /// since the run's results are already complete.
    pub(crate) fn finish(self) {
        if !self.local || self.poisoned.load(Ordering::SeqCst) {
            return;
        }
        let id = PeerId::from(self.rank.rank);
        if let Err(e) = self.guarded("finish", self.timeout, move || {
            burn::collective::finish_collective::<B>(id)
        }) {
            tracing::warn!(rank = self.rank.rank, error = %e, "leaving the collective");
        }
    }
}

/// The data-parallel world of the training engine: every loop of `rlhf-train` (and PPO's)
/// runs on a [`Peer`] exactly as on `rlhf_train::Solo`. `AB` is the autodiff backend whose
/// inner backend the peer reduces on.
impl<AB: AutodiffBackend> rlhf_train::Collective<AB> for Peer<AB::InnerBackend> {
    fn rank(&self) -> usize {
        self.rank.rank
    }

    fn world(&self) -> usize {
        self.rank.world
    }

    fn device(&self) -> &AB::Device {
        &self.device
    }

    fn all_reduce_grads<M: AutodiffModule<AB>>(
        &self,
        module: &M,
        grads: GradientsParams,
        extras: &[f32],
        op: &str,
    ) -> rlhf_train::Result<(GradientsParams, Vec<f32>)> {
        Peer::all_reduce_grads::<AB, M>(self, module, grads, extras, op)
            .map_err(rlhf_train::TrainError::collective)
    }

    fn all_reduce(&self, values: &[f32], op: &str) -> rlhf_train::Result<Vec<f32>> {
        if self.rank.world == 1 || values.is_empty() {
            return Ok(values.to_vec());
        }
        let t = Tensor::<AB::InnerBackend, 1>::from_data(
            TensorData::new(values.to_vec(), [values.len()]),
            &self.device,
        );
        let out = self
            .all_reduce_sum(t, op)
            .map_err(rlhf_train::TrainError::collective)?;
        Ok(out.into_data().convert::<f32>().iter::<f32>().collect())
    }

    fn all_gather(&self, values: &[f32], op: &str) -> rlhf_train::Result<Vec<Vec<f32>>> {
        self.all_gather_scalars(values, op)
            .map_err(rlhf_train::TrainError::collective)
    }
}
