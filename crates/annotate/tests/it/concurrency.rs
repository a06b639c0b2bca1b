//! Many annotators at once: no vote lost, none doubled, N per pair respected, and the journal
//! replays to the same state.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::*;

const CLIENTS: usize = 20;
const VOTES_EACH: usize = 200;
const PER_PAIR: usize = 4;
/// 10% more room than the 4,000 votes need, so the last annotators are never left with only
/// pairs they have already judged.
const PAIRS: usize = 1_100;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_clients_two_hundred_votes_each_nothing_lost_or_doubled() {
    let tmp = tempfile::tempdir().unwrap();
    let pairs_path = write_fixture(tmp.path(), PAIRS);
    let dir = tmp.path().join("session");
    let names: Vec<String> = (0..CLIENTS).map(|i| format!("ann{i:02}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let acc = accounts(&dir, &refs);
    let server = start(config(&pairs_path, &dir, PER_PAIR)).await;
    let base = server.base();

    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for (i, (name, token)) in acc.into_iter().enumerate() {
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = Client::new(&base);
            assert_eq!(c.login(&name, &token).await.status, 200);
            let mut confirmed = Vec::new();
            let mut latencies = Vec::new();
            for k in 0..VOTES_EACH {
                let next = c.next().await.unwrap();
                let id = next.body["pair"]["pair_id"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{name} ran out of pairs after {k}: {next:?}"))
                    .to_owned();
                let choice = ["left", "right", "tie"][(i * 7 + k * 13) % 3];
                let t = Instant::now();
                let r = c
                    .vote(
                        &json!({"pair_id": id, "choice": choice, "vote_id": format!("{name}-{k}")}),
                    )
                    .await
                    .unwrap();
                latencies.push(t.elapsed());
                assert_eq!(r.status, 200, "{name}: {r:?}");
                assert_eq!(r.body["replayed"], false);
                confirmed.push((name.clone(), id));
            }
            (confirmed, latencies)
        }));
    }
    let mut confirmed = Vec::new();
    let mut latencies = Vec::new();
    for t in tasks {
        let (c, l) = t.await.unwrap();
        confirmed.extend(c);
        latencies.extend(l);
    }
    let wall = t0.elapsed();
    let stats = server.stop().await;

    // Every confirmed vote is in the journal exactly once, and nothing else is.
    let votes = journal_votes(&dir);
    assert_eq!(confirmed.len(), CLIENTS * VOTES_EACH);
    assert_eq!(votes.len(), confirmed.len());
    let in_journal: HashSet<(String, String)> = votes
        .iter()
        .map(|v| (v.annotator.clone(), v.pair_id.clone()))
        .collect();
    assert_eq!(
        in_journal.len(),
        votes.len(),
        "an (annotator, pair) appears twice"
    );
    let confirmed_set: HashSet<(String, String)> = confirmed.into_iter().collect();
    assert_eq!(confirmed_set, in_journal);
    let mut per_pair: HashMap<&str, usize> = HashMap::new();
    for v in &votes {
        *per_pair.entry(v.pair_id.as_str()).or_default() += 1;
    }
    assert!(
        per_pair.values().all(|&n| n <= PER_PAIR),
        "a pair got more than N votes"
    );
    let seqs: Vec<u64> = votes.iter().map(|v| v.seq).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "seq has gaps");

    // A restart replays exactly that state.
    let server = start(config(&pairs_path, &dir, PER_PAIR)).await;
    let info_votes = {
        let mut c = Client::new(&server.base());
        let tok = rlhf_annotate::add_annotator(&dir, "late", false).unwrap();
        c.login("late", &tok).await;
        c.me().await.unwrap().body["progress"]["remaining"]
            .as_u64()
            .unwrap() as usize
    };
    let full = per_pair.values().filter(|&&n| n == PER_PAIR).count();
    assert_eq!(info_votes, PAIRS - full, "pairs still open after replay");
    server.stop().await;

    latencies.sort();
    let n = latencies.len();
    println!(
        "concurrency: {CLIENTS} clients x {VOTES_EACH} votes = {n} votes in {:.2} s ({:.0} votes/s, \
         each vote preceded by a GET /api/next); vote latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; \
         journal: {} lines in {} fsyncs ({:.1} lines per fsync)",
        wall.as_secs_f64(),
        n as f64 / wall.as_secs_f64(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies[n - 1].as_secs_f64() * 1e3,
        stats.lines,
        stats.syncs,
        stats.lines as f64 / stats.syncs.max(1) as f64
    );
    assert_eq!(stats.lines as usize, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_vote_sent_concurrently_is_recorded_once() {
    let tmp = tempfile::tempdir().unwrap();
    let pairs_path = write_fixture(tmp.path(), 3);
    let dir = tmp.path().join("session");
    let acc = accounts(&dir, &["alice"]);
    let server = start(config(&pairs_path, &dir, 3)).await;
    let mut c = Client::new(&server.base());
    c.login(&acc[0].0, &acc[0].1).await;

    // Ten different votes on one pair at once: exactly one wins.
    let answers = futures_join(
        (0..10)
            .map(|i| {
                let c = c.clone();
                async move {
                    c.vote(
                        &json!({"pair_id": "p0002", "choice": "left", "vote_id": format!("x{i}")}),
                    )
                    .await
                    .unwrap()
                    .status
                }
            })
            .collect(),
    )
    .await;
    assert_eq!(
        answers.iter().filter(|&&s| s == 200).count(),
        1,
        "{answers:?}"
    );
    assert_eq!(
        answers.iter().filter(|&&s| s == 409).count(),
        9,
        "{answers:?}"
    );

    // Ten retries of one vote (same vote_id) at once: all confirmed, one line.
    let answers = futures_join(
        (0..10)
            .map(|_| {
                let c = c.clone();
                async move {
                    c.vote(&json!({"pair_id": "p0000", "choice": "tie", "vote_id": "same"}))
                        .await
                        .unwrap()
                        .status
                }
            })
            .collect(),
    )
    .await;
    assert!(answers.iter().all(|&s| s == 200), "{answers:?}");
    server.stop().await;
    let votes = journal_votes(&dir);
    assert_eq!(votes.len(), 2);
}

async fn futures_join<F: std::future::Future<Output = u16> + Send + 'static>(
    fs: Vec<F>,
) -> Vec<u16> {
    let handles: Vec<_> = fs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}
