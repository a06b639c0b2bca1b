//! [`launch`]: runs one replica per local device, each on its own thread with its own
//! [`Peer`], and collects their results: the in-process half of a data-parallel run (the other
//! half is one such process per node).

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use burn::prelude::Backend;

use crate::collective::{Group, Peer};
use crate::config::{DistConfig, Rank};
use crate::error::{DistError, Result};

/// burn-collective keeps one local server per backend type per process: two groups joining at
/// once would mix. Launches wait for each other.
static ACTIVE_GROUP: Mutex<()> = Mutex::new(());

fn panic_message(p: &(dyn Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_string())
}

/// Runs `replica` once per device of `devices` (this node's share of the world described by
/// `cfg`), each on its own thread with a joined [`Peer`], and returns their results in device
/// order. With one device and one node it runs on the calling thread without a collective.
///
/// `B` is the inner backend (what burn-collective reduces on); training code builds its
/// autodiff model on `peer.device()`.
///
/// # Errors
/// The root cause when any replica fails: its own error, or [`DistError::RankFailed`] with its
/// panic message. Replicas blocked in a collective when a sibling fails stop waiting at once.
///
/// # Panics
/// If `devices` is empty.
pub fn launch<B, T, F>(cfg: &DistConfig, devices: &[B::Device], replica: F) -> Result<Vec<T>>
where
    B: Backend,
    T: Send,
    F: Fn(&Peer<B>) -> Result<T> + Sync,
{
    assert!(!devices.is_empty(), "launch needs at least one device");
    cfg.validate()?;
    let world = cfg.world_size(devices.len());
    if world == 1 {
        let peer = Peer::solo(devices[0].clone());
        return Ok(vec![replica(&peer)?]);
    }
    let _active = ACTIVE_GROUP.lock().unwrap_or_else(|e| e.into_inner());
    let group = Arc::new(Group::default());
    let results: Vec<Result<T>> = std::thread::scope(|s| {
        let handles: Vec<_> = devices
            .iter()
            .enumerate()
            .map(|(local, device)| {
                let rank = Rank::new(cfg.node_rank, cfg.nodes, local, devices.len());
                let group = Arc::clone(&group);
                let replica = &replica;
                std::thread::Builder::new()
                    .name(format!("rlhf-rank-{}", rank.rank))
                    .spawn_scoped(s, move || {
                        let run = || -> Result<T> {
                            let peer = Peer::join(cfg, rank, device.clone(), Arc::clone(&group))?;
                            let out = replica(&peer)?;
                            peer.finish();
                            Ok(out)
                        };
                        match catch_unwind(AssertUnwindSafe(run)) {
                            Ok(Ok(v)) => Ok(v),
                            Ok(Err(e)) => {
                                group.fail(rank.rank, e.to_string());
                                Err(e)
                            }
                            Err(p) => {
                                let message = panic_message(p.as_ref());
                                group.fail(rank.rank, format!("panicked: {message}"));
                                Err(DistError::RankFailed {
                                    rank: rank.rank,
                                    message: format!("panicked: {message}"),
                                })
                            }
                        }
                    })
                    .expect("spawning a replica thread")
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("replica threads catch their panics"))
            .collect()
    });
    // Report the root cause: the error of the replica that failed first (the group records
    // it), else a replica's own error rather than a sibling's "rank r failed".
    let root = group.failure().map(|(rank, _)| rank);
    let mut first_err = None;
    let mut out = Vec::with_capacity(results.len());
    for (local, r) in results.into_iter().enumerate() {
        match r {
            Ok(v) => out.push(v),
            Err(e) => {
                let rank = Rank::new(cfg.node_rank, cfg.nodes, local, devices.len()).rank;
                let secondary =
                    matches!(e, DistError::RankFailed { .. }) || root.is_some_and(|r| r != rank);
                match &first_err {
                    None => first_err = Some((secondary, e)),
                    Some((true, _)) if !secondary => first_err = Some((false, e)),
                    _ => {}
                }
            }
        }
    }
    match first_err {
        Some((_, e)) => {
            // Forget this group's registrations and pending operations so that a later
            // launch in this process starts clean (burn keeps them in a process-wide server).
            burn::collective::reset_collective::<B>();
            Err(e)
        }
        None => Ok(out),
    }
}

/// This node's part of a data-parallel job: `job` runs once per device of `devices` (see
/// [`crate::replica_devices`]), each on its own thread with a joined [`Peer`] — a
/// `rlhf_train::Collective`, so `job` is a trainer's `train_with` — and local replica 0's
/// result comes back with its rank (global rank 0, `rank.is_main()`, is the process that
/// should evaluate, export and report). The replicas' results are identical by construction.
///
/// # Errors
/// As [`launch`]; a replica's own error is [`DistError::Replica`].
pub fn run_on_node<B, T, E, F>(cfg: &DistConfig, devices: &[B::Device], job: F) -> Result<(Rank, T)>
where
    B: Backend,
    T: Send,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
    F: Fn(&Peer<B>) -> std::result::Result<T, E> + Sync,
{
    let mut outs = launch::<B, _, _>(cfg, devices, |peer| {
        let rank = peer.rank();
        let out = job(peer).map_err(|e| DistError::Replica {
            rank: rank.rank,
            source: e.into(),
        })?;
        Ok((rank.local == 0).then_some((rank, out)))
    })?;
    Ok(outs
        .iter_mut()
        .find_map(Option::take)
        .expect("local replica 0 returns its result"))
}
