//! `rlhf eval alignbench --judge openai` and `rlhf eval pairwise --judge openai` against an
//! OpenAI-compatible stub on 127.0.0.1 started by the test (axum, port 0). Everything is
//! synthetic and local: our own nine questions, a judge config with our own definitions, and
//! answers written beforehand (so no model is loaded). The key is passed through
//! `OPENAI_API_KEY`, checked by the stub, and must appear in no output.
//!
//! The stub answers a pointwise prompt with the score listed for the question's `题目N` tag,
//! and a pairwise prompt like a position-biased judge: the answer containing `GOOD` when
//! exactly one does, else the first one shown (`[[A]]`). A prompt containing `JUDGE-FAIL`
//! gets HTTP 400 (not retried).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

const KEY: &str = "sk-cli-stub-7f3a9c-NEVER-PRINT";
const MODEL: &str = "stub-judge-1";

/// Question tag → (category, subcategory, score the stub gives).
const QUESTIONS: [(u32, &str, &str, u64); 9] = [
    (1, "基本任务", "翻译", 7),
    (2, "中文理解", "字词理解", 8),
    (3, "综合问答", "寻求建议", 6),
    (4, "文本写作", "实用文体写作", 5),
    (5, "角色扮演", "现实生活类", 9),
    (6, "专业能力", "物理", 4),
    (7, "数学计算", "初等数学", 3),
    (8, "逻辑推理", "推理", 6),
    (9, "数学计算", "初等数学", 9),
];

#[derive(Default)]
struct StubState {
    requests: AtomicUsize,
    rejected: AtomicUsize,
    prompts: Mutex<Vec<String>>,
}

/// The stub server; it stops when this is dropped.
struct Stub {
    addr: SocketAddr,
    state: Arc<StubState>,
    _runtime: tokio::runtime::Runtime,
}

fn reply(content: &str) -> Response {
    let body =
        json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]});
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> &'a str {
    let start = text.find(open).expect("open marker") + open.len();
    let end = text[start..].find(close).expect("close marker") + start;
    &text[start..end]
}

async fn chat(State(state): State<Arc<StubState>>, headers: HeaderMap, body: String) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let request: Value = serde_json::from_str(&body).unwrap();
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth != format!("Bearer {KEY}")
        || request["model"] != MODEL
        || request["temperature"].as_f64() != Some(0.0)
    {
        state.rejected.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::UNAUTHORIZED, "bad key or request").into_response();
    }
    let prompt = request["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    state.prompts.lock().unwrap().push(prompt.clone());
    if prompt.contains("JUDGE-FAIL") {
        return (StatusCode::BAD_REQUEST, "this judge refuses the item").into_response();
    }
    if prompt.contains("[助手A的回答开始]") {
        let first = between(&prompt, "[助手A的回答开始]\n", "\n[助手A的回答结束]");
        let second = between(&prompt, "[助手B的回答开始]\n", "\n[助手B的回答结束]");
        let verdict = match (first.contains("GOOD"), second.contains("GOOD")) {
            (false, true) => "[[B]]",
            _ => "[[A]]",
        };
        return reply(&format!("比较……\n{verdict}"));
    }
    let tag: u32 = between(&prompt, "题目", "：").parse().unwrap();
    let score = QUESTIONS.iter().find(|q| q.0 == tag).unwrap().3;
    reply(&format!(
        "分析：……\n{{'事实正确性': {score}, '满足用户需求': {score}, '综合得分': {score}}}"
    ))
}

fn start_stub() -> Stub {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let state = Arc::new(StubState::default());
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .with_state(state.clone());
    runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
    Stub {
        addr,
        state,
        _runtime: runtime,
    }
}

/// Synthetic questions and judge config (our own short texts) in `dir`.
fn write_bench(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let questions = dir.join("questions.jsonl");
    let lines: Vec<String> = QUESTIONS
        .iter()
        .map(|(id, category, sub, _)| {
            json!({
                "question_id": id, "category": category, "subcategory": sub,
                "question": format!("题目{id}：请回答第 {id} 个问题。"),
                "reference": format!("参考答案 {id}"),
            })
            .to_string()
        })
        .collect();
    std::fs::write(&questions, lines.join("\n") + "\n").unwrap();
    let config = dir.join("config");
    std::fs::create_dir_all(&config).unwrap();
    let files = [
        (
            "dimension_set.json",
            json!({
                "事实与解释型回答": ["事实正确性", "满足用户需求"],
                "逻辑推理型回答": ["事实正确性", "逻辑连贯性"],
                "生成型回答": ["事实正确性", "创造性"],
                "建议型回答": ["事实正确性", "满足用户需求"],
            }),
        ),
        (
            "subcategory_question_mapping.json",
            json!({
                "翻译": "生成型回答", "字词理解": "事实与解释型回答", "寻求建议": "建议型回答",
                "实用文体写作": "生成型回答", "现实生活类": "生成型回答",
                "物理": "事实与解释型回答", "初等数学": "逻辑推理型回答", "推理": "逻辑推理型回答",
            }),
        ),
        (
            "dimension_definition.json",
            json!({
                "事实正确性": "内容是否准确。", "满足用户需求": "是否回应了用户。",
                "逻辑连贯性": "前后是否一致。", "创造性": "是否有新意。",
            }),
        ),
        ("temperature.json", json!({"数学计算": 0.1})),
    ];
    for (name, v) in files {
        std::fs::write(config.join(name), v.to_string()).unwrap();
    }
    (questions, config)
}

fn write_answers(path: &Path, model: &str, answer: impl Fn(u32) -> String) {
    let lines: Vec<String> = QUESTIONS
        .iter()
        .map(|q| {
            json!({"question_id": q.0, "model_id": model, "answer": answer(q.0),
                   "decoding": {"greedy": true}})
            .to_string()
        })
        .collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// Runs `rlhf` with the key in the environment, no proxies and debug logging (so a leak in
/// any log line would show).
fn rlhf_with_key(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rlhf"));
    for var in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("OPENAI_API_KEY", KEY)
        .env("RUST_LOG", "debug")
        .args(args)
        .output()
        .expect("run rlhf")
}

/// Asserts success, that the key is in neither stream, and returns stdout as JSON.
fn ok_without_key(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "rlhf failed: {stderr}");
    assert!(
        !stdout.contains(KEY) && !stderr.contains(KEY),
        "the key was printed"
    );
    serde_json::from_str(&stdout).expect("stdout is JSON")
}

fn assert_no_key_in_files(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            assert!(!text.contains(KEY), "{} holds the key", path.display());
        }
    }
}

#[test]
fn eval_alignbench_with_an_openai_compatible_judge() {
    let stub = start_stub();
    let tmp = tempfile::tempdir().unwrap();
    let (questions, config) = write_bench(tmp.path());
    let answers = tmp.path().join("answers");
    std::fs::create_dir_all(&answers).unwrap();
    write_answers(&answers.join("tiny.jsonl"), "tiny", |id| {
        format!("回答{id}")
    });
    let out = tmp.path().join("report");
    let base_url = format!("http://{}/v1", stub.addr);
    let args = [
        "eval",
        "alignbench",
        "--model",
        tmp.path().join("no-model-needed").to_str().unwrap(),
        "--model-id",
        "tiny",
        "--questions",
        questions.to_str().unwrap(),
        "--config-dir",
        config.to_str().unwrap(),
        "--answers",
        answers.to_str().unwrap(),
        "--judge",
        "openai",
        "--judge-base-url",
        &base_url,
        "--judge-model",
        MODEL,
        "--judge-concurrency",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]
    .map(str::to_owned);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let v = ok_without_key(&rlhf_with_key(&args));
    assert_eq!(stub.state.rejected.load(Ordering::SeqCst), 0);
    assert_eq!(stub.state.requests.load(Ordering::SeqCst), 9);
    assert_eq!(v["generated"], 0, "{v}");
    assert_eq!(v["judged"], 9, "{v}");
    assert_eq!(v["judge_errors"], 0, "{v}");
    assert_eq!(v["judge"], MODEL);
    assert_eq!(v["comparable_with_gpt4"], true);
    // Every prompt carried its question's reference and answer.
    for p in stub.state.prompts.lock().unwrap().iter() {
        let tag = between(p, "题目", "：");
        assert!(p.contains(&format!("参考答案 {tag}\n")), "{p}");
        assert!(p.contains(&format!("\n回答{tag}\n")), "{p}");
    }

    // Category means, groups and overall from the stub's scores.
    let means: HashMap<String, f64> = v["summary"]["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let key = c["category"].as_str().unwrap().to_owned();
            (key, c["mean"].as_f64().unwrap())
        })
        .collect();
    assert_eq!(means.len(), 8, "{v}");
    let s = &v["summary"];
    // Math: (3 + 9) / 2 = 6, Logi 6 → reasoning 6; language (7+8+6+5+9+4)/6 = 6.5.
    assert!((s["reasoning"].as_f64().unwrap() - 6.0).abs() < 1e-9, "{s}");
    assert!((s["language"].as_f64().unwrap() - 6.5).abs() < 1e-9, "{s}");
    assert!((s["overall"].as_f64().unwrap() - 6.25).abs() < 1e-9, "{s}");
    assert_eq!(s["failures"], 0);

    for f in [
        "alignbench.md",
        "alignbench.json",
        "alignbench.svg",
        "scores.json",
        "summary.json",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let scores: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("scores.json")).unwrap()).unwrap();
    let by_id: HashMap<u64, f64> = scores["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|it| {
            (
                it["question_id"].as_u64().unwrap(),
                it["score"].as_f64().unwrap(),
            )
        })
        .collect();
    for (id, _, _, score) in QUESTIONS {
        assert_eq!(by_id[&u64::from(id)], score as f64, "question {id}");
    }
    let md = std::fs::read_to_string(out.join("alignbench.md")).unwrap();
    assert!(md.contains(MODEL), "{md}");
    assert!(!md.contains("NOT comparable"), "{md}");
    assert_no_key_in_files(&out);
    assert_no_key_in_files(&answers);

    // A rerun asks the judge nothing: every judgment is in the cache.
    let again = ok_without_key(&rlhf_with_key(&args));
    assert_eq!(stub.state.requests.load(Ordering::SeqCst), 9);
    assert_eq!(again["cached_judgments"], 9, "{again}");
    assert_eq!(again["summary"], v["summary"]);
}

/// `rlhf eval alignbench --judge openai` on `answers/<model>.jsonl` into `out`.
fn alignbench_args(
    stub: &Stub,
    tmp: &Path,
    model: &str,
    answers: &Path,
    out: &Path,
) -> Vec<String> {
    let (questions, config) = write_bench(tmp);
    [
        "eval",
        "alignbench",
        "--model",
        tmp.join("no-model-needed").to_str().unwrap(),
        "--model-id",
        model,
        "--questions",
        questions.to_str().unwrap(),
        "--config-dir",
        config.to_str().unwrap(),
        "--answers",
        answers.to_str().unwrap(),
        "--judge",
        "openai",
        "--judge-base-url",
        &format!("http://{}/v1", stub.addr),
        "--judge-model",
        MODEL,
        "--out",
        out.to_str().unwrap(),
    ]
    .map(str::to_owned)
    .to_vec()
}

#[test]
fn eval_alignbench_fails_when_nothing_is_judged_and_reports_failed_judgments() {
    let stub = start_stub();
    let tmp = tempfile::tempdir().unwrap();
    let answers = tmp.path().join("answers");
    std::fs::create_dir_all(&answers).unwrap();

    // The judge refuses one item: the run succeeds and every output counts the failure.
    write_answers(&answers.join("tiny.jsonl"), "tiny", |id| {
        if id == 9 {
            "JUDGE-FAIL".to_owned()
        } else {
            format!("回答{id}")
        }
    });
    let out = tmp.path().join("report");
    let args = alignbench_args(&stub, tmp.path(), "tiny", &answers, &out);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let v = ok_without_key(&rlhf_with_key(&args));
    assert_eq!(
        (&v["judged"], &v["judge_errors"]),
        (&json!(8), &json!(1)),
        "{v}"
    );
    assert_eq!(v["summary"]["judge_errors"], 1, "{v}");
    let rows: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("alignbench.json")).unwrap())
            .unwrap();
    assert_eq!(rows[0]["judge_errors"], 1, "{rows}");
    let md = std::fs::read_to_string(out.join("alignbench.md")).unwrap();
    assert!(md.contains("1 of 9 judgments failed"), "{md}");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["summary"]["judge_errors"], 1, "{summary}");

    // The judge refuses everything: non-zero exit, one line saying so, no "n/a" report.
    write_answers(&answers.join("broken.jsonl"), "broken", |_| {
        "JUDGE-FAIL".to_owned()
    });
    let bad_out = tmp.path().join("report-broken");
    let args = alignbench_args(&stub, tmp.path(), "broken", &answers, &bad_out);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let before = stub.state.requests.load(Ordering::SeqCst);
    let run = rlhf_with_key(&args);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "exit status: {stderr}");
    assert!(
        run.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&run.stdout)
    );
    assert!(!stderr.contains(KEY));
    let error: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(error.len(), 1, "{stderr}");
    assert!(error[0].contains("9 of 9"), "{}", error[0]);
    assert!(error[0].contains("HTTP 400"), "{}", error[0]);
    assert_eq!(stub.state.requests.load(Ordering::SeqCst) - before, 9);
    assert!(!bad_out.join("alignbench.md").exists());
    assert!(!bad_out.join("alignbench.json").exists());
}

#[test]
fn eval_pairwise_with_an_openai_compatible_judge() {
    let stub = start_stub();
    let tmp = tempfile::tempdir().unwrap();
    let (questions, _) = write_bench(tmp.path());
    // A is better on 1–3, B on 4, and 5–9 are alike (the stub then picks the first shown);
    // on 9 the answers are the same text, so both orders are one prompt, asked once.
    let a = tmp.path().join("ppo.jsonl");
    let b = tmp.path().join("sft.jsonl");
    write_answers(&a, "ppo", |id| match id {
        1..=3 => "GOOD answer".to_owned(),
        9 => "same".to_owned(),
        _ => format!("plain a{id}"),
    });
    write_answers(&b, "sft", |id| match id {
        4 => "GOOD answer".to_owned(),
        9 => "same".to_owned(),
        _ => format!("plain b{id}"),
    });
    let out = tmp.path().join("pw");
    let base_url = format!("http://{}/v1", stub.addr);
    let v = ok_without_key(&rlhf_with_key(&[
        "eval",
        "pairwise",
        "--a",
        a.to_str().unwrap(),
        "--b",
        b.to_str().unwrap(),
        "--questions",
        questions.to_str().unwrap(),
        "--judge",
        "openai",
        "--judge-base-url",
        &base_url,
        "--judge-model",
        MODEL,
        "--out",
        out.to_str().unwrap(),
    ]));
    assert_eq!(stub.state.rejected.load(Ordering::SeqCst), 0);
    assert_eq!(stub.state.requests.load(Ordering::SeqCst), 17);
    // Every pairwise prompt showed the question's reference.
    for p in stub.state.prompts.lock().unwrap().iter() {
        let tag = between(p, "题目", "：");
        assert!(
            p.contains(&format!("[参考答案开始]\n参考答案 {tag}\n")),
            "{p}"
        );
    }
    assert_eq!(v["items"], 9, "{v}");
    assert_eq!(v["judge"], MODEL);
    assert_eq!(v["comparable_with_gpt4"], true);
    let overall = &v["tally"]["overall"];
    assert_eq!(
        (&overall["wins"], &overall["ties"], &overall["losses"]),
        (&json!(3), &json!(5), &json!(1)),
        "{v}"
    );
    assert_eq!(v["parse_failures"], 0);
    assert_eq!(v["judge_errors"], 0);
    // The position bias on the five look-alike items shows in the raw verdicts only.
    assert_eq!(v["position"]["first"], 14, "{v}");
    assert_eq!(v["position"]["second"], 4, "{v}");
    assert_eq!(v["position"]["inconsistent_items"], 5, "{v}");
    for f in [
        "pairwise.md",
        "pairwise.json",
        "rating_sheet.csv",
        "judgments.jsonl",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("pairwise.json")).unwrap()).unwrap();
    assert_eq!(report["verdicts"].as_array().unwrap().len(), 9);
    assert_eq!(report["tally"], v["tally"]);
    let md = std::fs::read_to_string(out.join("pairwise.md")).unwrap();
    assert!(md.contains("| overall | 3 | 5 | 1 |"), "{md}");
    assert_no_key_in_files(&out);
}
