//! A server killed with SIGKILL in the middle of a session loses no confirmed vote, and the
//! annotators carry on with the restarted server (same session cookies, retried votes
//! recorded once).
//!
//! The server runs in a child process: this test binary re-executes itself with
//! `restart::child_server_process --exact` and the session given in environment variables.

use std::collections::HashSet;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::json;

use crate::support::*;

const ENV_DIR: &str = "RLHF_ANNOTATE_CHILD_DIR";
const ENV_PAIRS: &str = "RLHF_ANNOTATE_CHILD_PAIRS";
const PER_PAIR: usize = 2;

/// Not a test of its own: the body of the child server process (a no-op in a normal run).
#[test]
fn child_server_process() {
    let (Ok(dir), Ok(pairs)) = (std::env::var(ENV_DIR), std::env::var(ENV_PAIRS)) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = rlhf_annotate::AnnotationServer::bind(config(
            Path::new(&pairs),
            Path::new(&dir),
            PER_PAIR,
        ))
        .await
        .unwrap();
        println!("LISTENING {}", server.local_addr());
        std::io::stdout().flush().unwrap();
        server.run_until(std::future::pending()).await.unwrap();
    });
}

fn spawn_server(dir: &Path, pairs: &Path) -> (Child, SocketAddr) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "restart::child_server_process",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ENV_DIR, dir)
        .env(ENV_PAIRS, pairs)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("child server exited before listening")
            .unwrap();
        // libtest prints "test restart::child_server_process ... " first, on the same line.
        if let Some((_, a)) = line.split_once("LISTENING ") {
            break a.trim().parse().unwrap();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    (child, addr)
}

fn kill(mut child: Child) {
    child.kill().unwrap(); // SIGKILL: no graceful shutdown, no flushing
    child.wait().unwrap();
}

struct Shared {
    base: RwLock<String>,
    confirmed: Mutex<HashSet<String>>,
    count: AtomicUsize,
}

async fn annotate(shared: Arc<Shared>, name: String, token: String, target: usize) -> usize {
    let mut c = Client::new(&shared.base.read().unwrap());
    assert_eq!(c.login(&name, &token).await.status, 200);
    let mut mine = 0;
    let mut k = 0;
    while mine < target {
        c.base = shared.base.read().unwrap().clone();
        let next = match c.next().await {
            Ok(a) => a,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        assert_eq!(
            next.status, 200,
            "{name}: the session must survive a restart: {next:?}"
        );
        let id = next.body["pair"]["pair_id"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} ran out of pairs"))
            .to_owned();
        k += 1;
        let vote_id = format!("{name}-{k}");
        let choice = ["left", "right"][k % 2];
        let body = json!({"pair_id": id, "choice": choice, "vote_id": vote_id});
        // Retry the same vote (same vote_id) until the server answers.
        loop {
            c.base = shared.base.read().unwrap().clone();
            match c.vote(&body).await {
                Ok(a) if a.status == 200 => {
                    shared.confirmed.lock().unwrap().insert(vote_id.clone());
                    shared.count.fetch_add(1, Ordering::SeqCst);
                    mine += 1;
                    break;
                }
                // The vote died with the server and the pair filled up meanwhile.
                Ok(a) if a.status == 409 => break,
                Ok(a) => panic!("{name}: unexpected answer {a:?}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
    mine
}

fn journal_ids(dir: &Path) -> Vec<String> {
    journal_votes(dir)
        .into_iter()
        .map(|v| v.vote_id.expect("the clients always send a vote_id"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_session_loses_no_confirmed_vote() {
    let tmp = tempfile::tempdir().unwrap();
    let pairs_path = write_fixture(tmp.path(), 200);
    let dir = tmp.path().join("session");
    let acc = accounts(&dir, &["r1", "r2", "r3", "r4", "r5"]);
    let (child, addr) = {
        let (d, p) = (dir.clone(), pairs_path.clone());
        tokio::task::spawn_blocking(move || spawn_server(&d, &p))
            .await
            .unwrap()
    };
    let shared = Arc::new(Shared {
        base: RwLock::new(format!("http://{addr}")),
        confirmed: Mutex::new(HashSet::new()),
        count: AtomicUsize::new(0),
    });
    let target = 60;
    let tasks: Vec<_> = acc
        .into_iter()
        .map(|(n, t)| tokio::spawn(annotate(shared.clone(), n, t, target)))
        .collect();

    // Kill the server while the annotators are voting.
    while shared.count.load(Ordering::SeqCst) < 100 {
        if tasks.iter().any(|t| t.is_finished()) {
            for t in tasks {
                t.await.unwrap();
            }
            panic!("an annotator stopped before the kill");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::task::spawn_blocking(move || kill(child))
        .await
        .unwrap();
    let at_kill: HashSet<String> = shared.confirmed.lock().unwrap().clone();
    let contents = rlhf_annotate::read_journal(&dir.join("votes.jsonl")).unwrap();
    let on_disk: HashSet<String> = journal_ids(&dir).into_iter().collect();
    let lost: Vec<&String> = at_kill.difference(&on_disk).collect();
    assert!(
        lost.is_empty(),
        "confirmed votes missing after SIGKILL: {lost:?}"
    );
    println!(
        "restart: killed after {} confirmed votes; journal had {} votes (torn tail {} bytes)",
        at_kill.len(),
        on_disk.len(),
        contents.torn_tail
    );

    // Restart on the same directory; the clients carry on with their old cookies.
    let (child, addr) = {
        let (d, p) = (dir.clone(), pairs_path.clone());
        tokio::task::spawn_blocking(move || spawn_server(&d, &p))
            .await
            .unwrap()
    };
    *shared.base.write().unwrap() = format!("http://{addr}");
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(total, 5 * target);
    tokio::task::spawn_blocking(move || kill(child))
        .await
        .unwrap();

    // Exactly the confirmed votes are in the journal, each once, N per pair respected.
    let ids = journal_ids(&dir);
    let unique: HashSet<String> = ids.iter().cloned().collect();
    assert_eq!(unique.len(), ids.len(), "a vote was recorded twice");
    let confirmed = shared.confirmed.lock().unwrap().clone();
    assert_eq!(unique, confirmed);
    let votes = journal_votes(&dir);
    let mut pairs_seen = HashSet::new();
    for v in &votes {
        assert!(
            pairs_seen.insert((v.annotator.clone(), v.pair_id.clone())),
            "{} voted {} twice",
            v.annotator,
            v.pair_id
        );
    }
    let mut per_pair = std::collections::HashMap::new();
    for v in &votes {
        *per_pair.entry(v.pair_id.clone()).or_insert(0usize) += 1;
    }
    assert!(per_pair.values().all(|&n| n <= PER_PAIR));
}
