//! Pairwise judging with an LLM judge against a local OpenAI-compatible stub (axum on
//! 127.0.0.1, port 0).
//!
//! The stub reads the two answers out of the prompt and answers like a judge with a position
//! bias: it prefers the answer containing `GOOD` when exactly one does, says `[[C]]` when both
//! contain `EQUAL`, and otherwise picks the first answer (`[[A]]`). Answers containing
//! `GARBLE` get a reply without a verdict, `FAIL` a 401, and `FLAKY` a reply without a
//! verdict on the first ask of a prompt only.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use rlhf_alignbench_eval::{
    ApiKey, CombineRule, JudgeAllOptions, JudgmentCache, OpenAiJudge, OpenAiJudgeConfig, Outcome,
    PairItem, Preference, RetryPolicy, VerdictFailure, evaluate_pairwise, evaluate_pairwise_llm,
};
use serde_json::{Value, json};

const KEY: &str = "sk-pairwise-test-NOT-A-REAL-KEY";

#[derive(Default)]
struct Stub {
    total: AtomicUsize,
    per_prompt: Mutex<HashMap<String, usize>>,
    with_reference: AtomicUsize,
    bad_requests: AtomicUsize,
}

fn block<'a>(prompt: &'a str, name: &str) -> &'a str {
    let open = format!("[助手{name}的回答开始]\n");
    let close = format!("\n[助手{name}的回答结束]");
    let start = prompt.find(&open).expect("answer block") + open.len();
    let end = prompt[start..].find(&close).expect("block end") + start;
    &prompt[start..end]
}

/// The stub judge's decision about the answers as shown (see the module docs).
fn stub_verdict(first: &str, second: &str) -> &'static str {
    match (first.contains("GOOD"), second.contains("GOOD")) {
        (true, false) => "[[A]]",
        (false, true) => "[[B]]",
        _ if first.contains("EQUAL") && second.contains("EQUAL") => "[[C]]",
        _ => "[[A]]",
    }
}

fn reply(content: &str) -> Response {
    let body =
        json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]});
    (StatusCode::OK, axum::Json(body)).into_response()
}

async fn chat(State(stub): State<Arc<Stub>>, headers: HeaderMap, body: String) -> Response {
    stub.total.fetch_add(1, Ordering::SeqCst);
    let request: Value = serde_json::from_str(&body).unwrap();
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth != format!("Bearer {KEY}") || request["model"] != "judge-test" {
        stub.bad_requests.fetch_add(1, Ordering::SeqCst);
    }
    let prompt = request["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    let asks = {
        let mut map = stub.per_prompt.lock().unwrap();
        let n = map.entry(prompt.clone()).or_insert(0);
        *n += 1;
        *n
    };
    if prompt.contains("[参考答案开始]") {
        stub.with_reference.fetch_add(1, Ordering::SeqCst);
    }
    let (first, second) = (block(&prompt, "A"), block(&prompt, "B"));
    let both = format!("{first}{second}");
    if both.contains("FAIL") {
        return (StatusCode::UNAUTHORIZED, "no").into_response();
    }
    if both.contains("GARBLE") || (both.contains("FLAKY") && asks == 1) {
        return reply("两个回答各有千秋，我无法决定。");
    }
    reply(&format!(
        "比较：……\n最终结论：{}",
        stub_verdict(first, second)
    ))
}

async fn start() -> (SocketAddr, Arc<Stub>) {
    let stub = Arc::new(Stub::default());
    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .with_state(stub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, stub)
}

fn judge(addr: SocketAddr) -> OpenAiJudge {
    let mut config = OpenAiJudgeConfig::new(format!("http://{addr}/v1"), "judge-test")
        .with_api_key(ApiKey::new(KEY));
    config.use_system_proxy = false;
    config.request_timeout = Duration::from_secs(5);
    config.retry = RetryPolicy {
        max_attempts: 2,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(10),
        max_retry_after: Duration::from_secs(1),
    };
    OpenAiJudge::new(config).unwrap()
}

fn item(id: &str, a: &str, b: &str) -> PairItem {
    PairItem {
        id: id.into(),
        category: if id.starts_with('m') {
            "数学"
        } else {
            "写作"
        }
        .into(),
        prompt: format!("问题 {id}"),
        answer_a: a.into(),
        answer_b: b.into(),
        reference: (id == "m1").then(|| "参考 180".to_owned()),
    }
}

fn items() -> Vec<PairItem> {
    vec![
        item("m1", "GOOD 180", "bad 170"),
        item("w1", "bad", "GOOD"),
        item("w2", "meh one", "meh two"),
        item("w3", "EQUAL x", "EQUAL y"),
        item("w4", "GARBLE 1", "GARBLE 2"),
        item("w5", "FAIL", "anything"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_orders_cancel_position_bias_and_failures_are_reported() {
    let (addr, stub) = start().await;
    let judge = judge(addr);
    let dir = tempfile::tempdir().unwrap();
    let cache = JudgmentCache::open(&dir.path().join("judgments.jsonl")).unwrap();
    let options = JudgeAllOptions {
        max_concurrency: 3,
        strict_reasks: 0,
    };
    let items = items();
    let run = |cache| {
        evaluate_pairwise_llm(
            &judge,
            "PPO",
            "SFT",
            &items,
            CombineRule::Consistent,
            cache,
            &options,
        )
    };
    let report = run(Some(&cache)).await.unwrap();

    // Every request carried the key and the model; only m1 has a reference, in both orders.
    assert_eq!(stub.bad_requests.load(Ordering::SeqCst), 0);
    assert_eq!(stub.with_reference.load(Ordering::SeqCst), 2);
    // 12 prompts; the 401s of w5 are not retried.
    assert_eq!(stub.total.load(Ordering::SeqCst), 12);

    let outcomes: Vec<(&str, Outcome)> = report
        .report
        .items
        .iter()
        .map(|i| (i.id.as_str(), i.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("m1", Outcome::Win),
            ("w1", Outcome::Loss),
            // Always "the first one": visible in the raw verdicts, cancelled in the outcome.
            ("w2", Outcome::Tie),
            ("w3", Outcome::Tie),
            // Unparseable verdicts vote for a tie.
            ("w4", Outcome::Tie),
        ]
    );
    let w2 = &report.verdicts[2];
    assert_eq!(
        (w2.ab.verdict, w2.ba.verdict),
        (Some(Preference::First), Some(Preference::First))
    );
    let w4 = &report.verdicts[4];
    assert_eq!(w4.ab.verdict, None);
    assert_eq!(w4.ab.failure, Some(VerdictFailure::NoVerdict));
    assert_eq!(report.parse_failures, 2);
    assert_eq!(report.position.first, 4);
    assert_eq!(report.position.second, 2);
    assert_eq!(report.position.tie, 2);
    assert_eq!(report.position.inconsistent_items, 1);
    assert_eq!(report.judge_errors.len(), 1);
    assert_eq!(report.judge_errors[0].id, "w5");
    assert!(report.judge_errors[0].error.contains("401"));
    assert!(!report.judge_errors[0].error.contains(KEY));
    let t = &report.report.tally.overall;
    assert_eq!((t.wins, t.ties, t.losses), (1, 3, 1));
    assert_eq!(report.report.tally.categories["数学"].wins, 1);
    assert_eq!(report.judge_model, "judge-test");
    assert_eq!(report.cached, 0);

    // The LLM path combines verdicts exactly like the score-function path.
    let tallied: Vec<PairItem> = items[..5].to_vec();
    let reference = evaluate_pairwise("PPO", "SFT", &tallied, CombineRule::Consistent, |q| {
        let both = format!("{}{}", q.first, q.second);
        Ok(if both.contains("GARBLE") {
            Preference::Tie
        } else {
            match stub_verdict(&q.first, &q.second) {
                "[[A]]" => Preference::First,
                "[[B]]" => Preference::Second,
                _ => Preference::Tie,
            }
        })
    })
    .unwrap();
    assert_eq!(reference, report.report);

    // The report serialises with the tally at the top level.
    let v = serde_json::to_value(&report).unwrap();
    assert_eq!(v["tally"]["overall"]["wins"], 1);
    assert_eq!(v["parse_failures"], 2);

    // A rerun reads every judgment from the cache and asks only for the failed item.
    let again = run(Some(&cache)).await.unwrap();
    assert_eq!(stub.total.load(Ordering::SeqCst), 14);
    assert_eq!(again.cached, 10);
    assert_eq!(again.report, report.report);
    assert_eq!(
        std::fs::read_to_string(cache.path())
            .unwrap()
            .lines()
            .count(),
        10
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_mode_reasks_unparseable_verdicts_and_sum_rule_applies() {
    let (addr, stub) = start().await;
    let judge = judge(addr);
    let items = vec![
        item("f1", "FLAKY GOOD", "FLAKY plain"),
        item("w2", "meh one", "meh two"),
    ];
    let options = JudgeAllOptions {
        max_concurrency: 1,
        strict_reasks: 2,
    };
    let report = evaluate_pairwise_llm(&judge, "A", "B", &items, CombineRule::Sum, None, &options)
        .await
        .unwrap();
    // f1: each order needs a second ask; w2: one ask per order.
    assert_eq!(stub.total.load(Ordering::SeqCst), 6);
    let duplicate = vec![items[0].clone(), items[0].clone()];
    let err = evaluate_pairwise_llm(
        &judge,
        "A",
        "B",
        &duplicate,
        CombineRule::Sum,
        None,
        &options,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("f1"), "{err}");
    assert_eq!(stub.total.load(Ordering::SeqCst), 6, "nothing asked");
    assert_eq!(report.parse_failures, 0);
    assert_eq!(report.report.items[0].outcome, Outcome::Win);
    // Pure position bias is a tie under the sum rule too.
    assert_eq!(report.report.items[1].outcome, Outcome::Tie);
}
