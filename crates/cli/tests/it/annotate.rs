//! `rlhf annotate` end to end: candidate pairs from the tiny Llama fixture (with a trained
//! tokenizer and a chat template), an account, the server as a child process driven over raw
//! HTTP, the export, and `rlhf data stats` on the export.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::{fails_with, fixture, rlhf};

fn run_json(args: &[&str]) -> Value {
    let out = rlhf(args);
    assert!(
        out.status.success(),
        "rlhf {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

/// One HTTP/1.1 request on a fresh connection: (status, session cookie if set, JSON body).
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Option<String>, Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let cookie = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().split(';').next().unwrap().to_owned());
    (
        status,
        cookie,
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

fn tiny_chat_model(fixture_dir: &Path, model: &Path) {
    use rlhf_core::tokenizer::{BpeTrainingConfig, train_bpe};
    std::fs::create_dir_all(model).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture_dir.join(f), model.join(f)).unwrap();
    }
    let corpus: Vec<String> = [
        "Explain why the sky is blue in two sentences.",
        "Light scatters off molecules of the air; blue light scatters the most.",
        "Name a colour. Blue. Why that one? Because it is calm.",
        "hi hello thanks please help explain why what how",
    ]
    .iter()
    .cycle()
    .take(40)
    .map(|s| (*s).to_owned())
    .collect();
    let cfg = BpeTrainingConfig {
        vocab_size: 300,
        min_frequency: 2,
        special_tokens: vec!["<pad>".into(), "<s>".into(), "</s>".into()],
    };
    let tok = train_bpe(corpus.iter(), &cfg).unwrap();
    assert!(tok.vocab_size() <= 512);
    let template = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";
    tok.save_dir(model, Some(template)).unwrap();
}

#[test]
fn annotate_pairs_serve_export_and_stats() {
    let Some(fixture_dir) = fixture("llama") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    tiny_chat_model(&fixture_dir, &model);
    let prompts = tmp.path().join("prompts.jsonl");
    std::fs::write(
        &prompts,
        [
            json!({"id": "q1", "prompt": "Explain why the sky is blue.", "category": "science"}),
            json!({"id": "q2", "prompt": "hi"}),
            json!({"id": "q3", "prompt": "Why that one?", "history": [
                {"role": "user", "content": "Name a colour."},
                {"role": "assistant", "content": "Blue."}]}),
        ]
        .map(|v| v.to_string())
        .join("\n"),
    )
    .unwrap();
    let pairs = tmp.path().join("pairs.parquet");
    let (m, p, o) = (
        model.to_str().unwrap(),
        prompts.to_str().unwrap(),
        pairs.to_str().unwrap(),
    );
    let v = run_json(&[
        "annotate",
        "pairs",
        "--model",
        m,
        "--prompts",
        p,
        "--out",
        o,
        "--max-new-tokens",
        "6",
        "--seed",
        "3",
        "--batch-size",
        "2",
    ]);
    assert_eq!(v["pairs"], 3, "{v}");
    assert!(v["flagged_prompts"].as_u64().unwrap() >= 1, "{v}");
    let rows = rlhf_annotate::read_pairs(&pairs).unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[2].history.len(), 2);
    assert_eq!(rows[0].category.as_deref(), Some("science"));
    assert!(rows[1].is_flagged(), "\"hi\" is of unclear intent");
    assert!(rows[0].generator.as_deref().unwrap().contains("seed=3"));

    // Without a tokenizer: one clear line.
    fails_with(
        &[
            "annotate",
            "pairs",
            "--model",
            fixture_dir.to_str().unwrap(),
            "--prompts",
            p,
            "--out",
            o,
        ],
        "tokenizer.json",
    );

    // An account, then the server as a child process on an ephemeral port.
    let session = tmp.path().join("session");
    let s = session.to_str().unwrap();
    let acc = run_json(&["annotate", "add-annotator", "--out", s, "--name", "alice"]);
    let token = acc["token"].as_str().unwrap().to_owned();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rlhf"))
        .args([
            "annotate",
            "serve",
            "--pairs",
            o,
            "--out",
            s,
            "--addr",
            "127.0.0.1:0",
            "--per-pair",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("server exited").unwrap();
        if let Some((_, rest)) = line.split_once("open http://") {
            break rest.split('/').next().unwrap().to_owned();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));

    let json_ct = ("content-type", "application/json");
    let body = json!({"name": "alice", "token": token}).to_string();
    let (status, cookie, login) = http(&addr, "POST", "/api/login", &[json_ct], &body);
    assert_eq!(status, 200, "{login}");
    let cookie = cookie.unwrap();
    let csrf = login["csrf"].as_str().unwrap().to_owned();
    let auth = [
        ("cookie", cookie.as_str()),
        ("x-csrf-token", csrf.as_str()),
        json_ct,
    ];
    for choice in ["left", "right", "tie"] {
        let (status, _, next) = http(&addr, "GET", "/api/next", &auth, "");
        assert_eq!(status, 200, "{next}");
        let id = next["pair"]["pair_id"].as_str().unwrap();
        let vote = json!({"pair_id": id, "choice": choice}).to_string();
        let (status, _, r) = http(&addr, "POST", "/api/vote", &auth, &vote);
        assert_eq!(status, 200, "{r}");
    }
    let (_, _, done) = http(&addr, "GET", "/api/next", &auth, "");
    assert_eq!(done["pair"], Value::Null);
    child.kill().unwrap(); // votes are fsynced before they are confirmed
    child.wait().unwrap();

    let prefs = tmp.path().join("prefs.parquet");
    let rep = run_json(&[
        "annotate",
        "export",
        "--dir",
        s,
        "--out",
        prefs.to_str().unwrap(),
    ]);
    assert_eq!(rep["votes_live"], 3, "{rep}");
    assert_eq!(rep["tie_majority"], 1, "{rep}");
    assert_eq!(rep["majority_pairs"], 2, "{rep}");
    assert!(tmp.path().join("prefs.report.md").is_file());
    let stats_dir = tmp.path().join("stats");
    run_or_fail(&[
        "data",
        "stats",
        prefs.to_str().unwrap(),
        "--out-dir",
        stats_dir.to_str().unwrap(),
    ]);
    assert!(stats_dir.join("stats.json").is_file());
}

fn run_or_fail(args: &[&str]) {
    let out = rlhf(args);
    assert!(
        out.status.success(),
        "rlhf {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
