//! Multi-node data parallelism: two processes over 127.0.0.1, node 0 listening on the
//! coordinator port. The workers are this test binary itself, started with `RLHF_DIST_CHILD` set
//! and filtered to the calling test, so each test function holds both roles.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rlhf_core::backend::{Flex, FlexDevice};
use rlhf_distributed::{DistConfig, launch};
use rlhf_train::TrainStatus;
use serde_json::json;

use rlhf_testkit::assert_close;

use crate::common::{TOL, dpo_dp, dpo_single, reward_dp, reward_single, train_run};

/// The collective timeout of the multi-process tests.
const TIMEOUT: Duration = Duration::from_secs(8);

/// When this process is a worker spawned by a test, runs its role and exits.
fn run_child_role() {
    let Ok(role) = std::env::var("RLHF_DIST_CHILD") else {
        return;
    };
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"));
    let node: usize = var("RLHF_DIST_NODE_RANK").parse().expect("node rank");
    let port: u16 = var("RLHF_DIST_PORT").parse().expect("port");
    let dir = PathBuf::from(var("RLHF_DIST_DIR"));
    let cfg = DistConfig {
        retry_pause_secs: 0.2,
        connect_retries: 150,
        ..DistConfig::multi_node(2, node, format!("127.0.0.1:{port}"))
            .with_timeouts(TIMEOUT, Duration::from_secs(60))
    };
    let res = match role.as_str() {
        "equiv" => equiv_role(&cfg, node, &dir, 1),
        "equiv4" => equiv_role(&cfg, node, &dir, 2),
        "train" => train_role(&cfg, node, &dir),
        other => panic!("unknown role {other}"),
    };
    match res {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

fn equiv_role(
    cfg: &DistConfig,
    node: usize,
    dir: &Path,
    devices: usize,
) -> rlhf_distributed::Result<()> {
    let out = launch::<Flex, _, _>(cfg, &vec![FlexDevice; devices], |peer| {
        Ok((reward_dp(peer)?, dpo_dp(peer)?))
    })?;
    assert!(
        out.windows(2).all(|w| w[0] == w[1]),
        "local replicas diverged"
    );
    let (reward, dpo) = &out[0];
    let v = json!({"reward": reward, "dpo": dpo});
    std::fs::write(dir.join(format!("equiv-{node}.json")), v.to_string()).expect("write");
    Ok(())
}

fn train_role(cfg: &DistConfig, node: usize, dir: &Path) -> rlhf_distributed::Result<()> {
    let (status, step, resumed, params) = &train_run(cfg, &[FlexDevice], &dir.join("run"))?;
    let v = json!({
        "finished": *status == TrainStatus::Finished,
        "step": step,
        "resumed_from": resumed,
        "params": params,
    });
    std::fs::write(dir.join(format!("train-{node}.json")), v.to_string()).expect("write");
    Ok(())
}

/// A free port for the coordinator.
fn free_port() -> u16 {
    TcpListener::bind("0.0.0.0:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn spawn(test: &str, role: &str, node: usize, port: u16, dir: &Path, tag: &str) -> Child {
    let log =
        |kind: &str| File::create(dir.join(format!("{tag}-{node}.{kind}"))).expect("log file");
    Command::new(std::env::current_exe().expect("test binary"))
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("RLHF_DIST_CHILD", role)
        .env("RLHF_DIST_NODE_RANK", node.to_string())
        .env("RLHF_DIST_PORT", port.to_string())
        .env("RLHF_DIST_DIR", dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log("out")))
        .stderr(Stdio::from(log("err")))
        .spawn()
        .expect("spawning a worker")
}

fn wait(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("{what} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stderr_of(dir: &Path, tag: &str, node: usize) -> String {
    std::fs::read_to_string(dir.join(format!("{tag}-{node}.err"))).unwrap_or_default()
}

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("json")
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

/// Runs the two workers of `role` to completion and checks they both succeed.
fn run_pair(test: &str, role: &str, port: u16, dir: &Path, tag: &str) {
    let mut kids: Vec<Child> = (0..2)
        .map(|n| spawn(test, role, n, port, dir, tag))
        .collect();
    for (n, k) in kids.iter_mut().enumerate() {
        let s = wait(k, Duration::from_secs(120), &format!("{tag} worker {n}"));
        assert!(
            s.success(),
            "{tag} worker {n}: {s}\n{}",
            stderr_of(dir, tag, n)
        );
    }
}

fn check_equivalence(test: &str, role: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    run_pair(test, role, free_port(), dir.path(), role);
    let r0 = read_json(&dir.path().join("equiv-0.json"));
    let r1 = read_json(&dir.path().join("equiv-1.json"));
    let (reward0, dpo0) = (floats(&r0["reward"]), floats(&r0["dpo"]));
    assert_eq!(reward0, floats(&r1["reward"]), "reward replicas diverged");
    assert_eq!(dpo0, floats(&r1["dpo"]), "DPO replicas diverged");
    let d_reward = assert_close(
        &format!("{role}: reward, 2 processes vs 1 worker"),
        &reward0,
        &reward_single(),
        TOL,
    );
    let d_dpo = assert_close(
        &format!("{role}: DPO, 2 processes vs 1 worker"),
        &dpo0,
        &dpo_single(),
        TOL,
    );
    eprintln!("{role}: two processes max |Δθ|: reward {d_reward:e}, DPO {d_dpo:e}");
}

#[test]
fn two_processes_match_one_worker_on_the_whole_batch() {
    run_child_role();
    check_equivalence(
        "multiprocess::two_processes_match_one_worker_on_the_whole_batch",
        "equiv",
    );
}

/// 2 processes × 2 replica threads (world 4, uneven shards of 1 and 2 pairs): burn-collective
/// within each process, the link between them, burn's broadcast back to the second thread.
#[test]
fn two_processes_of_two_devices_match_one_worker() {
    run_child_role();
    check_equivalence(
        "multiprocess::two_processes_of_two_devices_match_one_worker",
        "equiv4",
    );
}

fn latest_step(run_dir: &Path) -> usize {
    std::fs::read_to_string(run_dir.join("checkpoints/latest"))
        .ok()
        .and_then(|s| {
            s.trim()
                .strip_prefix("step-")
                .map(|n| n.parse().unwrap_or(0))
        })
        .unwrap_or(0)
}

#[test]
fn a_killed_worker_is_named_and_a_restart_resumes() {
    run_child_role();
    let test = "multiprocess::a_killed_worker_is_named_and_a_restart_resumes";
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let port = free_port();
    let mut kids: Vec<Child> = (0..2)
        .map(|n| spawn(test, "train", n, port, d, "kill"))
        .collect();
    let run_dir = d.join("run");
    let start = Instant::now();
    while latest_step(&run_dir) < 3 {
        for (n, k) in kids.iter_mut().enumerate() {
            if let Some(s) = k.try_wait().expect("try_wait") {
                panic!("worker {n} ended early ({s}):\n{}", stderr_of(d, "kill", n));
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no checkpoint 3"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    kids[1].kill().expect("kill worker 1");
    kids[1].wait().expect("reap worker 1");
    let killed_at = Instant::now();
    let status = wait(&mut kids[0], TIMEOUT + Duration::from_secs(30), "worker 0");
    let took = killed_at.elapsed();
    let err = stderr_of(d, "kill", 0);
    assert!(
        !status.success(),
        "worker 0 should fail when worker 1 dies:\n{err}"
    );
    assert!(
        err.contains("lost rank 1"),
        "the error should name rank 1:\n{err}"
    );
    assert!(
        took < TIMEOUT + Duration::from_secs(5),
        "worker 0 took {took:?} to notice (timeout {TIMEOUT:?})"
    );
    eprintln!(
        "worker 0 exited {took:?} after worker 1 was killed: {}",
        err.lines().find(|l| l.starts_with("error:")).unwrap_or("")
    );
    let stopped_at = latest_step(&run_dir);
    assert!((3..24).contains(&stopped_at), "stopped at {stopped_at}");

    // Restart both nodes with the same command: they resume from the last checkpoint.
    run_pair(test, "train", free_port(), d, "resume");
    let r0 = read_json(&d.join("train-0.json"));
    let r1 = read_json(&d.join("train-1.json"));
    assert_eq!(r0["finished"], json!(true));
    assert_eq!(r0["step"], json!(24));
    let resumed = r0["resumed_from"].as_u64().expect("resumed") as usize;
    assert!(resumed >= 3, "resumed from {resumed}");
    let params = floats(&r0["params"]);
    assert_eq!(params, floats(&r1["params"]), "replicas diverged");

    // The interrupted two-node run ends where one uninterrupted worker does.
    let solo_dir = tempfile::tempdir().expect("tempdir");
    let solo = train_run(&DistConfig::single(), &[FlexDevice], solo_dir.path()).expect("solo");
    let diff = assert_close(
        "resumed 2-process run vs uninterrupted 1 worker",
        &params,
        &solo.3,
        1e-4,
    );
    eprintln!("resumed 2-process run vs uninterrupted 1 worker: max |Δθ| {diff:e}");
}

#[test]
fn startup_errors_name_the_address() {
    // Node 0 on a taken coordinator port.
    let taken = TcpListener::bind("0.0.0.0:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let cfg = DistConfig::multi_node(2, 0, format!("127.0.0.1:{port}"));
    let e = launch::<Flex, _, _>(&cfg, &[FlexDevice], |_| Ok(())).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(&format!(":{port}")) && msg.contains("coordinator"),
        "{msg}"
    );
    drop(taken);

    // Node 1 with nobody listening: it gives up after the configured attempts.
    let port = free_port();
    let cfg = DistConfig {
        connect_retries: 3,
        retry_pause_secs: 0.05,
        ..DistConfig::multi_node(2, 1, format!("127.0.0.1:{port}"))
    };
    let start = Instant::now();
    let e = launch::<Flex, _, _>(&cfg, &[FlexDevice], |_| Ok(())).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("127.0.0.1:{port}")) && msg.contains("3 attempts"),
        "{msg}"
    );
    assert!(start.elapsed() < Duration::from_secs(10));
}
