//! [`RemoteScorer`] against a real local server (axum on 127.0.0.1, port 0, on a thread of its
//! own): it scores like the function it serves, splits batches, retries server errors, gives
//! up after `max_attempts` naming the url, times out, refuses malformed, short, null and NaN
//! replies; and a PPO run whose reward server dies mid-run stops with a checkpoint and, once
//! the server is back, resumes to the same end as an uninterrupted run.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use burn::backend::Flex;
use rlhf_core::backend::FlexDevice;
use rlhf_core::text::TextCodec;
use rlhf_policy_ppo::{
    PackedSequences, PpoConfig, PpoError, PpoState, RemoteRewardConfig, RemoteScorer, Scorer, train,
};
use rlhf_testkit::assert_close;
use rlhf_train::{TrainOptions, TrainStatus, latest_checkpoint, read_state};
use serde_json::{Value, json};

use crate::common::{DEV, data, flat_params, letters_scorer, models};

/// What the fake server does with one `/score` request.
#[derive(Clone, Debug)]
enum Step {
    /// Scores the rows (the letters reward of `common`).
    Ok,
    /// Answers with this status.
    Status(u16),
    /// Scores after sleeping this long.
    Sleep(Duration),
    /// Answers 200 with this body.
    Body(&'static str),
}

#[derive(Default)]
struct Fake {
    /// Steps for the next requests; then `Step::Ok`.
    script: Mutex<VecDeque<Step>>,
    /// Every `/score` request answers 500 while set.
    down: AtomicBool,
    /// Successful `/score` requests after which the server goes down (0: never).
    down_after: AtomicUsize,
    ok: AtomicUsize,
    requests: AtomicUsize,
    no_info: AtomicBool,
    bodies: Mutex<Vec<Value>>,
}

/// The letters reward of `common::letters_scorer`, as the server computes it.
fn letters(ids: &[u32]) -> f64 {
    let n = ids
        .iter()
        .filter(|&&t| (u32::from(b'a') + 3..=u32::from(b'z') + 3).contains(&t))
        .count();
    (n as f32 / ids.len().max(1) as f32) as f64
}

async fn score(State(fake): State<Arc<Fake>>, body: String) -> Response {
    fake.requests.fetch_add(1, Ordering::SeqCst);
    let request: Value = serde_json::from_str(&body).unwrap();
    fake.bodies.lock().unwrap().push(request.clone());
    let step = fake.script.lock().unwrap().pop_front().unwrap_or(Step::Ok);
    let limit = fake.down_after.load(Ordering::SeqCst);
    if fake.down.load(Ordering::SeqCst) || (limit > 0 && fake.ok.load(Ordering::SeqCst) >= limit) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "reward model unavailable",
        )
            .into_response();
    }
    let scores: Vec<f64> = request["response_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let ids: Vec<u32> = serde_json::from_value(r.clone()).unwrap();
            letters(&ids)
        })
        .collect();
    match step {
        Step::Ok => {}
        Step::Status(s) => {
            return (
                StatusCode::from_u16(s).unwrap(),
                format!("status {s} from the fake"),
            )
                .into_response();
        }
        Step::Sleep(d) => tokio::time::sleep(d).await,
        Step::Body(b) => return (StatusCode::OK, b).into_response(),
    }
    fake.ok.fetch_add(1, Ordering::SeqCst);
    axum::Json(json!({ "scores": scores })).into_response()
}

async fn info(State(fake): State<Arc<Fake>>) -> Response {
    if fake.no_info.load(Ordering::SeqCst) {
        return StatusCode::NOT_FOUND.into_response();
    }
    axum::Json(json!({"fingerprint": "fake-letters", "model": "fake", "vocab_size": 259}))
        .into_response()
}

/// Starts the fake on 127.0.0.1 (its own thread and runtime, so tests stay synchronous).
fn start() -> (String, Arc<Fake>) {
    let fake = Arc::new(Fake::default());
    let app = Router::new()
        .route("/score", post(score))
        .route("/info", get(info))
        .with_state(fake.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    let addr: SocketAddr = rx.recv().unwrap();
    (format!("http://{addr}/score"), fake)
}

fn config(url: &str, max_attempts: u32) -> RemoteRewardConfig {
    RemoteRewardConfig {
        max_attempts,
        initial_backoff_secs: 0.01,
        max_backoff_secs: 0.05,
        request_timeout_secs: 2.0,
        connect_timeout_secs: 1.0,
        ..RemoteRewardConfig::new(url)
    }
}

fn dec(ids: &[u32]) -> rlhf_core::Result<String> {
    TextCodec::Bytes.decode(ids)
}

fn connect(cfg: RemoteRewardConfig) -> RemoteScorer {
    RemoteScorer::connect(cfg, dec).unwrap()
}

/// Two byte-level rows: prompts "hi" / "yo!", replies "abc" + EOS / "A1".
fn seqs() -> PackedSequences {
    let b = |s: &str| s.bytes().map(|c| u32::from(c) + 3).collect::<Vec<u32>>();
    let mut r0 = b("abc");
    r0.push(2);
    PackedSequences::new(&[b("hi"), b("yo!")], &[r0, b("A1")], 0)
}

fn score_err(s: &mut RemoteScorer) -> (String, String) {
    match Scorer::<Flex>::score(s, &seqs(), &FlexDevice).unwrap_err() {
        PpoError::Scorer {
            source_name,
            message,
        } => (source_name, message),
        e => panic!("{e}"),
    }
}

#[test]
fn remote_scores_equal_the_served_function_and_batches_are_split() {
    let (url, fake) = start();
    let mut s = connect(RemoteRewardConfig {
        batch_size: 1,
        ..config(&url, 2)
    });
    assert_eq!(Scorer::<Flex>::fingerprint(&s), "remote:fake-letters");
    assert_eq!(s.info().unwrap().vocab_size, Some(259));
    let got = Scorer::<Flex>::score(&mut s, &seqs(), &FlexDevice).unwrap();
    let want = Scorer::<Flex>::score(&mut letters_scorer(), &seqs(), &FlexDevice).unwrap();
    assert_close("remote vs local letters", &got, &want, 1e-7);
    assert_eq!(got[0], 0.75, "3 letters of 4 tokens (EOS included)");
    // One request per row, each with the protocol's four fields.
    let bodies = fake.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0]["prompts"], json!(["hi"]));
    assert_eq!(bodies[0]["responses"], json!(["abc"]));
    assert_eq!(bodies[1]["prompt_ids"], json!([[124, 114, 36]]));
    assert_eq!(bodies[1]["response_ids"], json!([[68, 52]]));
    assert_eq!((s.requests(), s.retries()), (3, 0), "/info and two batches");

    // Without ids, and with the prompts' conversations: text only.
    let b = |t: &str| t.bytes().map(|c| u32::from(c) + 3).collect::<Vec<u32>>();
    let mut s = connect(RemoteRewardConfig {
        send_ids: false,
        ..config(&url, 1)
    })
    .with_conversations([(b("hi"), vec![rlhf_core::tokenizer::Message::user("hello?")])]);
    fake.bodies.lock().unwrap().clear();
    // The fake scores ids, so it fails here; the body is what matters.
    let _ = Scorer::<Flex>::score(&mut s, &seqs(), &FlexDevice);
    let body = &fake.bodies.lock().unwrap()[0];
    assert_eq!(
        body["prompts"],
        json!([[{"role": "user", "content": "hello?"}], "yo!"])
    );
    assert!(body.get("prompt_ids").is_none() && body.get("response_ids").is_none());
}

#[test]
fn server_errors_are_retried_until_the_server_answers() {
    let (url, fake) = start();
    let mut s = connect(config(&url, 4));
    fake.script
        .lock()
        .unwrap()
        .extend([Step::Status(500), Step::Status(503), Step::Ok]);
    let got = Scorer::<Flex>::score(&mut s, &seqs(), &FlexDevice).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(fake.requests.load(Ordering::SeqCst), 3);
    assert_eq!(s.retries(), 2);
}

#[test]
fn a_server_that_keeps_failing_is_given_up_after_max_attempts() {
    let (url, fake) = start();
    let mut s = connect(config(&url, 3));
    fake.down.store(true, Ordering::SeqCst);
    let (source, message) = score_err(&mut s);
    assert_eq!(source, url);
    assert!(
        message.contains("after 3 attempts") && message.contains("HTTP 500"),
        "{message}"
    );
    assert!(message.contains("reward model unavailable"), "{message}");
    assert_eq!(fake.requests.load(Ordering::SeqCst), 3);
    // The error's one line names the url.
    let e = Scorer::<Flex>::score(&mut s, &seqs(), &FlexDevice).unwrap_err();
    assert!(
        e.to_string().starts_with(&format!("reward source {url}: ")),
        "{e}"
    );

    // A 4xx is not retried.
    fake.down.store(false, Ordering::SeqCst);
    fake.script.lock().unwrap().push_back(Step::Status(422));
    let before = fake.requests.load(Ordering::SeqCst);
    let (_, message) = score_err(&mut s);
    assert!(message.contains("HTTP 422 (not retried)"), "{message}");
    assert_eq!(fake.requests.load(Ordering::SeqCst), before + 1);
}

#[test]
fn a_server_slower_than_the_timeout_is_a_timeout_error() {
    let (url, fake) = start();
    let mut s = connect(RemoteRewardConfig {
        request_timeout_secs: 0.3,
        ..config(&url, 2)
    });
    fake.script.lock().unwrap().extend([
        Step::Sleep(Duration::from_secs(2)),
        Step::Sleep(Duration::from_secs(2)),
    ]);
    let started = std::time::Instant::now();
    let (_, message) = score_err(&mut s);
    assert!(
        message.contains("after 2 attempts") && message.contains("no reply within the timeouts"),
        "{message}"
    );
    assert!(message.contains("whole request 300ms"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn malformed_short_null_and_nan_replies_are_clear_errors() {
    let (url, fake) = start();
    let mut s = connect(config(&url, 2));
    let cases = [
        // Broken JSON is retried (a cut connection), then reported with the body's start.
        (
            vec![
                Step::Body("{\"scores\": [0.5,"),
                Step::Body("{\"scores\": [0.5,"),
            ],
            2,
            "malformed response",
        ),
        (
            vec![Step::Body("{\"scores\": [0.5]}")],
            1,
            "returned 1 scores for 2 rows, expected one per row",
        ),
        (
            vec![Step::Body("{\"scores\": [0.5, null]}")],
            1,
            "scores[1] is null, expected a finite number",
        ),
        (
            vec![Step::Body("{\"scores\": [NaN, 1.0]}")],
            1,
            "NaN or Infinity",
        ),
        (
            vec![Step::Body("{\"score\": [1, 2]}")],
            1,
            "expected a JSON object {\"scores\": [number, ...]}",
        ),
    ];
    for (script, requests, needle) in cases {
        let before = fake.requests.load(Ordering::SeqCst);
        fake.script.lock().unwrap().extend(script);
        let (source, message) = score_err(&mut s);
        assert_eq!(source, url);
        assert!(
            message.contains(needle),
            "`{message}` should say `{needle}`"
        );
        assert_eq!(
            fake.requests.load(Ordering::SeqCst) - before,
            requests,
            "{needle}"
        );
    }
}

#[test]
fn info_is_required_unless_the_fingerprint_is_configured() {
    let (url, fake) = start();
    fake.no_info.store(true, Ordering::SeqCst);
    let e = RemoteScorer::connect(config(&url, 1), dec)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("GET ")
            && e.contains("/info")
            && e.contains("HTTP 404")
            && e.contains("remote_rm.fingerprint"),
        "{e}"
    );
    let s = connect(RemoteRewardConfig {
        fingerprint: Some("my-rm-v1".into()),
        ..config(&url, 1)
    });
    assert_eq!(Scorer::<Flex>::fingerprint(&s), "remote:my-rm-v1");

    // Nothing listening: the connection error is retried, then reported.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let e = RemoteScorer::connect(config(&format!("http://{addr}/score"), 2), dec)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("after 2 attempts") && e.contains("transport error"),
        "{e}"
    );
    // A bad config never reaches the network.
    let e = RemoteScorer::connect(config("localhost:8000/score", 1), dec)
        .unwrap_err()
        .to_string();
    assert!(e.contains("remote_rm.url"), "{e}");
}

fn ppo_config() -> PpoConfig {
    PpoConfig {
        total_steps: 4,
        batch_prompts: 4,
        mini_batch_size: 2,
        max_new_tokens: 6,
        learning_rate: 1e-3,
        critic_learning_rate: 2e-3,
        ntp_coef: 0.0,
        save_steps: Some(10),
        seed: 3,
        ..PpoConfig::default()
    }
}

#[test]
fn ppo_stops_with_a_checkpoint_when_the_reward_server_dies_and_resumes_when_it_is_back() {
    let (url, fake) = start();
    let d = data(6, 0);
    let cfg = ppo_config();
    let tmp = tempfile::tempdir().unwrap();
    let quiet = |dir| TrainOptions {
        progress: false,
        ..TrainOptions::new(dir)
    };
    let remote = || {
        let mut m = models(1);
        m.reward = Box::new(connect(config(&url, 2)));
        m
    };
    // Uninterrupted: the reference cache's requests, then one per step.
    let straight = train(remote(), &d, &dec, &cfg, &quiet(tmp.path().join("a")), &DEV).unwrap();
    assert_eq!(straight.status, TrainStatus::Finished);
    let before_steps = fake.ok.load(Ordering::SeqCst) - cfg.total_steps;
    assert!(
        before_steps >= 1,
        "the reference rewards were scored remotely"
    );

    // The server dies after the rollouts of steps 1 and 2.
    fake.ok.store(0, Ordering::SeqCst);
    fake.down_after.store(before_steps + 2, Ordering::SeqCst);
    let run = tmp.path().join("b");
    let err = train(remote(), &d, &dec, &cfg, &quiet(run.clone()), &DEV).unwrap_err();
    match &err {
        PpoError::Scorer {
            source_name,
            message,
        } => {
            assert_eq!(source_name, &url);
            assert!(message.contains("after 2 attempts"), "{message}");
        }
        e => panic!("{e}"),
    }
    let ckpt = latest_checkpoint(&run).unwrap().expect("a checkpoint");
    let st: PpoState = read_state(&ckpt).unwrap();
    assert_eq!(st.step, 2, "the checkpoint of the last finished step");

    // Back up: the run resumes from the checkpoint (the reference cache is reused, its
    // fingerprint unchanged) and ends where the uninterrupted run did.
    fake.down_after.store(0, Ordering::SeqCst);
    let resumed = train(remote(), &d, &dec, &cfg, &quiet(run.clone()), &DEV).unwrap();
    assert_eq!(resumed.resumed_from, Some(2));
    assert_eq!(resumed.status, TrainStatus::Finished);
    assert_close(
        "resumed actor vs uninterrupted",
        &flat_params(&resumed.actor),
        &flat_params(&straight.actor),
        1e-6,
    );
}
