//! Reproduces why `rlhf-distributed` does not use burn-collective 0.21 across nodes: two
//! processes on 127.0.0.1 register with burn's global orchestrator (hosted by node 0) and call
//! `all_reduce` three times. The first call completes; the second never returns, because
//! `SyncService::sync` (`burn-collective-0.21.0/src/global/node/sync.rs`, lines 71–79) clears
//! a *copy* of the list of synced peers, so the list keeps the first call's entries and never
//! again equals the set of nodes.
//!
//! `cargo run -p rlhf-distributed --example burn_global_repro --release`
//!
//! Prints one line per call and node, and exits 0 if all three calls completed on both nodes,
//! 1 otherwise (each call is given 10 s; burn itself has no timeout).

use std::process::{Command, Stdio};
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use burn::backend::Flex;
use burn::backend::flex::FlexDevice;
use burn::prelude::*;
use burn::tensor::TensorPrimitive;
use burn_collective::{CollectiveConfig, PeerId, ReduceOperation};

const CALLS: usize = 3;
const LIMIT: Duration = Duration::from_secs(10);

fn node(rank: usize, port: u16) -> bool {
    if rank == 0 {
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(burn_collective::start_global_orchestrator(port));
        });
    }
    let data_port = port + 1 + rank as u16;
    let address = |p: u16| {
        format!("ws://127.0.0.1:{p}")
            .parse::<burn_communication::Address>()
            .expect("address")
    };
    let config = CollectiveConfig::default()
        .with_num_devices(1)
        .with_num_nodes(2)
        .with_global_address(address(port))
        .with_node_address(address(data_port))
        .with_data_service_port(data_port);
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let r = burn_collective::register::<Flex>(PeerId::from(rank), FlexDevice, config);
        let _ = tx.send(r.is_ok());
        for _ in 0..CALLS {
            let t = Tensor::<Flex, 1>::full([4], (rank + 1) as f32, &FlexDevice);
            let prim = t.into_primitive().tensor();
            let out =
                burn_collective::all_reduce::<Flex>(PeerId::from(rank), prim, ReduceOperation::Sum)
                    .map(|p| {
                        Tensor::<Flex, 1>::from_primitive(TensorPrimitive::Float(p))
                            .into_data()
                            .to_vec::<f32>()
                            .expect("f32")
                    });
            let _ = tx.send(out.is_ok());
        }
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(true) => println!("node {rank}: registered"),
        _ => {
            println!("node {rank}: registration failed or timed out");
            return false;
        }
    }
    for k in 1..=CALLS {
        let t = Instant::now();
        match rx.recv_timeout(LIMIT) {
            Ok(true) => println!("node {rank}: all-reduce {k} completed in {:?}", t.elapsed()),
            Ok(false) => {
                println!("node {rank}: all-reduce {k} returned an error");
                return false;
            }
            Err(_) => {
                println!("node {rank}: all-reduce {k} did not return within {LIMIT:?} (hang)");
                return false;
            }
        }
    }
    true
}

fn main() {
    if let Ok(rank) = std::env::var("REPRO_NODE") {
        let port: u16 = std::env::var("REPRO_PORT")
            .expect("port")
            .parse()
            .expect("port");
        let ok = node(rank.parse().expect("rank"), port);
        std::process::exit(if ok { 0 } else { 1 });
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let exe = std::env::current_exe().expect("exe");
    let kids: Vec<_> = (0..2)
        .map(|r| {
            Command::new(&exe)
                .env("REPRO_NODE", r.to_string())
                .env("REPRO_PORT", port.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let mut all_ok = true;
    for k in kids {
        let out = k.wait_with_output().expect("wait");
        let text = String::from_utf8_lossy(&out.stdout);
        for line in text.lines().filter(|l| l.starts_with("node ")) {
            println!("{line}");
        }
        all_ok &= out.status.success();
    }
    println!(
        "{}",
        if all_ok {
            "all calls completed: burn's global all-reduce works here"
        } else {
            "burn-collective's global all-reduce did not complete every call"
        }
    );
    std::process::exit(if all_ok { 0 } else { 1 });
}
