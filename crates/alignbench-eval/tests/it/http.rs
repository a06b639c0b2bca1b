//! The OpenAI-compatible judge against a real local server (axum on 127.0.0.1, port 0).
//!
//! Each prompt starts with a script line such as `script: 429,ok`: the server answers the
//! n-th request for that prompt with the n-th step (the last step repeats). Steps: `ok`,
//! `hold` (a good reply after 100 ms), `429` (with `Retry-After: 1`), `500`, `badjson` (200
//! with a broken body), `empty` (200 without content), `noscore` (a reply without a score),
//! `slow` (a good reply after longer than the client timeout), `401` (echoing the key, as
//! some APIs do).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use rlhf_alignbench_eval::{
    ApiKey, CachedJudgment, Error, Judge, JudgeAllOptions, JudgeJob, JudgmentCache, OpenAiJudge,
    OpenAiJudgeConfig, RetryPolicy, judge_all,
};
use serde_json::{Value, json};

const KEY: &str = "sk-test-DO-NOT-LEAK-0123456789";
const CLIENT_TIMEOUT: Duration = Duration::from_millis(400);

#[derive(Default)]
struct Server {
    total: AtomicUsize,
    per_prompt: Mutex<HashMap<String, usize>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    bad_requests: Mutex<Vec<String>>,
}

impl Server {
    fn count(&self, prompt: &str) -> usize {
        self.per_prompt
            .lock()
            .unwrap()
            .get(prompt)
            .copied()
            .unwrap_or(0)
    }
}

fn reply(content: &str) -> Response {
    let body = json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": "stop"}],
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// Decrements the in-flight count when a handler ends, even if hyper drops it early.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn chat(State(server): State<Arc<Server>>, headers: HeaderMap, body: String) -> Response {
    server.total.fetch_add(1, Ordering::SeqCst);
    let now = server.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let _guard = InFlight(&server.in_flight);
    server.max_in_flight.fetch_max(now, Ordering::SeqCst);
    handle(&server, &headers, &body).await
}

async fn handle(server: &Server, headers: &HeaderMap, body: &str) -> Response {
    let request: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    };
    // Check the request shape AlignBench uses: one user message, temperature 0.
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let messages = request["messages"].as_array().cloned().unwrap_or_default();
    if auth != format!("Bearer {KEY}")
        || request["model"] != "gpt-4-test"
        || request["temperature"].as_f64() != Some(0.0)
        || messages.len() != 1
        || messages[0]["role"] != "user"
    {
        server.bad_requests.lock().unwrap().push(body.to_owned());
    }
    let prompt = messages
        .first()
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_owned();
    let attempt = {
        let mut map = server.per_prompt.lock().unwrap();
        let n = map.entry(prompt.clone()).or_insert(0);
        *n += 1;
        *n
    };
    let script = prompt
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("script: "))
        .unwrap_or("ok");
    let steps: Vec<&str> = script.split(',').collect();
    let step = steps[(attempt - 1).min(steps.len() - 1)];
    let score = prompt.len() % 9 + 1;
    let good = format!("分析：尚可。\n{{'事实正确性': {score}, '综合得分': {score}}}");
    match step {
        "ok" => {
            tokio::time::sleep(Duration::from_millis(20)).await;
            reply(&good)
        }
        "hold" => {
            tokio::time::sleep(Duration::from_millis(100)).await;
            reply(&good)
        }
        "429" => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            "rate limited",
        )
            .into_response(),
        "500" => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        "badjson" => (
            StatusCode::OK,
            [("content-type", "application/json")],
            "{\"choices\": [",
        )
            .into_response(),
        "empty" => (StatusCode::OK, axum::Json(json!({"choices": []}))).into_response(),
        "noscore" => reply("这个回答还可以，但我不打分。"),
        "slow" => {
            tokio::time::sleep(CLIENT_TIMEOUT * 4).await;
            reply(&good)
        }
        "401" => (
            StatusCode::UNAUTHORIZED,
            format!("Incorrect API key provided: {auth}"),
        )
            .into_response(),
        other => panic!("unknown step {other}"),
    }
}

async fn start() -> (SocketAddr, Arc<Server>) {
    let server = Arc::new(Server::default());
    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .with_state(server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, server)
}

fn judge(addr: SocketAddr, max_attempts: u32) -> OpenAiJudge {
    let mut config = OpenAiJudgeConfig::new(format!("http://{addr}/v1/"), "gpt-4-test")
        .with_api_key(ApiKey::new(KEY));
    config.request_timeout = CLIENT_TIMEOUT;
    config.connect_timeout = Duration::from_millis(200);
    config.use_system_proxy = false;
    config.retry = RetryPolicy {
        max_attempts,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        max_retry_after: Duration::from_secs(2),
    };
    OpenAiJudge::new(config).unwrap()
}

fn job(key: &str, script: &str) -> JudgeJob {
    JudgeJob {
        key: key.into(),
        prompt: format!("script: {script}\n请评价第 {key} 个回答。"),
    }
}

fn cache_lines(path: &std::path::Path) -> Vec<CachedJudgment> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_cache_every_judgment_once_and_rerun_makes_no_requests() {
    let (addr, server) = start().await;
    let judge = judge(addr, 4);
    let scripts = [
        ("1", "ok"),
        ("2", "429,ok"),
        ("3", "500,500,ok"),
        ("4", "badjson,ok"),
        ("5", "slow,ok"),
        ("6", "empty,500,ok"),
        ("7", "429,slow,badjson,ok"),
        ("8", "ok"),
    ];
    let jobs: Vec<JudgeJob> = scripts.iter().map(|(k, s)| job(k, s)).collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache/judgments.jsonl");
    let cache = JudgmentCache::open(&path).unwrap();
    let options = JudgeAllOptions {
        max_concurrency: 3,
        strict_reasks: 0,
    };

    let started = Instant::now();
    let outcomes = judge_all(&judge, &jobs, Some(&cache), &options).await;
    let elapsed = started.elapsed();
    for o in &outcomes {
        let text = o
            .result
            .as_ref()
            .unwrap_or_else(|e| panic!("job {}: {e}", o.key));
        assert!(!text.from_cache);
        assert!(!text.parsed.is_failure(), "{}", text.judgment);
    }
    // Requests per prompt = 1 + the retries its script forces.
    let expected_requests = [1, 2, 3, 2, 2, 3, 4, 1];
    for ((key, _), expected) in scripts.iter().zip(expected_requests) {
        let prompt = &jobs.iter().find(|j| j.key == *key).unwrap().prompt;
        assert_eq!(server.count(prompt), expected, "job {key}");
    }
    let total: usize = expected_requests.iter().sum();
    assert_eq!(server.total.load(Ordering::SeqCst), total);
    assert!(server.bad_requests.lock().unwrap().is_empty());
    // The 429s asked for one second; the client waited for it.
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");

    // Every judgment is in the cache file exactly once.
    let lines = cache_lines(&path);
    assert_eq!(lines.len(), jobs.len());
    let keys: HashSet<&str> = lines.iter().map(|l| l.key.as_str()).collect();
    assert_eq!(keys.len(), jobs.len());
    let hashes: HashSet<&str> = lines.iter().map(|l| l.hash.as_str()).collect();
    assert_eq!(hashes.len(), jobs.len());
    assert!(lines.iter().all(|l| l.judge_model == "gpt-4-test"));

    // A rerun (with the cache reopened from disk) makes no request at all.
    drop(cache);
    let cache = JudgmentCache::open(&path).unwrap();
    let again = judge_all(&judge, &jobs, Some(&cache), &options).await;
    assert_eq!(server.total.load(Ordering::SeqCst), total);
    for (a, b) in outcomes.iter().zip(&again) {
        let (a, b) = (a.result.as_ref().unwrap(), b.result.as_ref().unwrap());
        assert!(b.from_cache);
        assert_eq!(a.judgment, b.judgment);
    }
    assert_eq!(cache_lines(&path).len(), jobs.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_jobs_are_not_cached_and_a_rerun_only_asks_for_them() {
    let (addr, server) = start().await;
    let judge = judge(addr, 3);
    let jobs = vec![
        job("ok", "ok"),
        job("fatal-then-ok", "401,ok"),
        job("always-500", "500,500,500,ok"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("judgments.jsonl");
    let cache = JudgmentCache::open(&path).unwrap();
    let options = JudgeAllOptions::default();

    let outcomes = judge_all(&judge, &jobs, Some(&cache), &options).await;
    assert!(outcomes[0].result.is_ok());
    // 401 is not retried; its error never shows the key the server echoed back.
    let fatal = outcomes[1].result.as_ref().unwrap_err();
    assert!(
        matches!(fatal, Error::HttpStatus { status: 401, .. }),
        "{fatal}"
    );
    for text in [fatal.to_string(), format!("{fatal:?}")] {
        assert!(!text.contains(KEY), "{text}");
    }
    assert_eq!(server.count(&jobs[1].prompt), 1);
    // Retries are bounded by max_attempts.
    let exhausted = outcomes[2].result.as_ref().unwrap_err();
    assert!(
        matches!(exhausted, Error::RetriesExhausted { attempts: 3, .. }),
        "{exhausted}"
    );
    assert_eq!(server.count(&jobs[2].prompt), 3);
    assert_eq!(cache_lines(&path).len(), 1);

    // Simulate a crash in the middle of a cache write, then rerun.
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"{\"hash\": \"abc\", \"key\": \"tor").unwrap();
    }
    drop(cache);
    let cache = JudgmentCache::open(&path).unwrap();
    let before = server.total.load(Ordering::SeqCst);
    let again = judge_all(&judge, &jobs, Some(&cache), &options).await;
    assert!(again.iter().all(|o| o.result.is_ok()));
    assert!(again[0].result.as_ref().unwrap().from_cache);
    assert_eq!(server.count(&jobs[0].prompt), 1);
    assert_eq!(server.total.load(Ordering::SeqCst), before + 2);
    let lines = cache_lines(&path);
    assert_eq!(lines.len(), 3);
    let keys: Vec<&str> = lines.iter().map(|l| l.key.as_str()).collect();
    assert_eq!(keys.iter().collect::<HashSet<_>>().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_is_bounded_and_strict_mode_reasks() {
    let (addr, server) = start().await;
    let judge = judge(addr, 2);
    let jobs: Vec<JudgeJob> = (0..10).map(|i| job(&i.to_string(), "hold")).collect();
    let options = JudgeAllOptions {
        max_concurrency: 2,
        strict_reasks: 0,
    };
    let outcomes = judge_all(&judge, &jobs, None, &options).await;
    assert!(outcomes.iter().all(|o| o.result.is_ok()));
    assert_eq!(server.max_in_flight.load(Ordering::SeqCst), 2);

    // Compat mode keeps a reply that parses to −1; strict mode asks again.
    let one = |strict_reasks| JudgeAllOptions {
        max_concurrency: 1,
        strict_reasks,
    };
    let compat = judge_all(&judge, &[job("c", "noscore,ok")], None, &one(0)).await;
    assert!(compat[0].result.as_ref().unwrap().parsed.is_failure());
    let strict_job = job("s", "noscore,noscore,ok");
    let strict = judge_all(&judge, std::slice::from_ref(&strict_job), None, &one(3)).await;
    let text = strict[0].result.as_ref().unwrap();
    assert_eq!(text.asks, 3);
    assert!(!text.parsed.is_failure());
    assert_eq!(server.count(&strict_job.prompt), 3);
    assert_eq!(judge.model_id(), "gpt-4-test");
}

#[tokio::test]
async fn connection_refused_is_retried_then_reported() {
    // Bind then drop a listener to get a port with nothing behind it.
    let addr = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let judge = judge(addr, 2);
    let err = judge.judge("hello").await.unwrap_err();
    match err {
        Error::RetriesExhausted { attempts: 2, last } => {
            assert!(matches!(*last, Error::Transport(_)), "{last}");
        }
        other => panic!("{other}"),
    }
}
