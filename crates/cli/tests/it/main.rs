//! Tests of the `rlhf` binary from the outside: parity through the JSON commands, and bad input
//! exiting non-zero with one clear line.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures")
        .join(name);
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIP: {} not found (needs ../shared/fixtures)",
            dir.display()
        );
        None
    }
}

fn rlhf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rlhf"))
        .args(args)
        .output()
        .expect("run rlhf")
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "rlhf failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

fn reference(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap()).unwrap()
}

fn write_input(dir: &Path, v: &serde_json::Value) -> PathBuf {
    let p = dir.join("input.json");
    std::fs::write(&p, v.to_string()).unwrap();
    p
}

fn max_diff(a: &serde_json::Value, b: &serde_json::Value) -> f64 {
    let a = a.as_array().unwrap();
    let b = b.as_array().unwrap();
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs(),
            _ => max_diff(x, y),
        })
        .fold(0.0, f64::max)
}

#[test]
fn logprobs_command_matches_the_fixture() {
    let Some(dir) = fixture("qwen2") else { return };
    let r = reference(&dir);
    let tmp = tempfile::tempdir().unwrap();
    let input = write_input(
        tmp.path(),
        &serde_json::json!({"input_ids": r["input_ids"], "attention_mask": r["attention_mask"]}),
    );
    let out = json(&rlhf(&[
        "logprobs",
        "--model",
        dir.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
    ]));
    assert!(max_diff(&out["token_logprobs"], &r["token_logprobs"]) < 1e-4);
    assert!(max_diff(&out["sequence_logprob_sum"], &r["sequence_logprob_sum"]) < 1e-3);
}

#[test]
fn generate_command_reproduces_greedy_ids() {
    let Some(dir) = fixture("glm4") else { return };
    let r = reference(&dir);
    let tmp = tempfile::tempdir().unwrap();
    let input = write_input(
        tmp.path(),
        &serde_json::json!({"input_ids": r["generation"]["prompt_ids"]}),
    );
    let out = json(&rlhf(&[
        "generate",
        "--model",
        dir.to_str().unwrap(),
        "--prompt-ids",
        input.to_str().unwrap(),
        "--max-new-tokens",
        "8",
        "--greedy",
        "--no-eos",
    ]));
    assert_eq!(out["new_ids"], r["generation"]["new_ids"]);
}

#[test]
fn score_command_matches_the_reward_fixture() {
    let Some(dir) = fixture("llama_reward") else {
        return;
    };
    let r = reference(&dir);
    let tmp = tempfile::tempdir().unwrap();
    let input = write_input(
        tmp.path(),
        &serde_json::json!({"input_ids": r["input_ids"], "attention_mask": r["attention_mask"]}),
    );
    let out = json(&rlhf(&[
        "score",
        "--model",
        dir.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
    ]));
    assert!(
        max_diff(&out["rewards"], &r["rewards"]) < 1e-5,
        "{} vs {}",
        out["rewards"],
        r["rewards"]
    );
}

fn fails_with(args: &[&str], needle: &str) {
    let out = rlhf(args);
    assert!(!out.status.success(), "expected failure for {args:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line on stderr, got: {err}");
    assert!(
        lines[0].contains(needle),
        "`{}` should mention `{needle}`",
        lines[0]
    );
    assert!(out.stdout.is_empty(), "nothing on stdout");
}

#[test]
fn bad_input_exits_nonzero_with_one_clear_line() {
    let Some(dir) = fixture("llama") else { return };
    let model = dir.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope.json");
    fails_with(
        &[
            "logprobs",
            "--model",
            model,
            "--input",
            missing.to_str().unwrap(),
        ],
        "nope.json",
    );
    let oov = write_input(
        tmp.path(),
        &serde_json::json!({"input_ids": [[1, 5, 99999]]}),
    );
    fails_with(
        &[
            "logprobs",
            "--model",
            model,
            "--input",
            oov.to_str().unwrap(),
        ],
        "outside the vocabulary",
    );
    let ragged = write_input(
        tmp.path(),
        &serde_json::json!({"input_ids": [[1, 5, 6], [1, 5]]}),
    );
    fails_with(
        &[
            "logprobs",
            "--model",
            model,
            "--input",
            ragged.to_str().unwrap(),
        ],
        "row 1 has 2 tokens",
    );
    let bad_mask = write_input(
        tmp.path(),
        &serde_json::json!({"input_ids": [[1, 5, 6]], "attention_mask": [[1, 1]]}),
    );
    fails_with(
        &[
            "logprobs",
            "--model",
            model,
            "--input",
            bad_mask.to_str().unwrap(),
        ],
        "attention_mask row 0",
    );
    let good = write_input(tmp.path(), &serde_json::json!({"input_ids": [[1, 5, 6]]}));
    fails_with(
        &[
            "logprobs",
            "--model",
            "/nonexistent",
            "--input",
            good.to_str().unwrap(),
        ],
        "/nonexistent/config.json",
    );
    let weird = tmp.path().join("weird");
    std::fs::create_dir(&weird).unwrap();
    std::fs::write(weird.join("config.json"), r#"{"model_type":"gpt2","vocab_size":1,"hidden_size":1,"intermediate_size":1,"num_hidden_layers":1,"num_attention_heads":1}"#).unwrap();
    fails_with(
        &[
            "logprobs",
            "--model",
            weird.to_str().unwrap(),
            "--input",
            good.to_str().unwrap(),
        ],
        "unknown model_type `gpt2`",
    );
    fails_with(
        &["score", "--model", model, "--input", good.to_str().unwrap()],
        "missing tensor `score.weight`",
    );
    #[cfg(not(feature = "cuda"))]
    fails_with(
        &[
            "logprobs",
            "--model",
            model,
            "--input",
            good.to_str().unwrap(),
            "--device",
            "cuda",
        ],
        "without CUDA support",
    );
}

fn data_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("SKIP: {} not found (needs ../shared/data)", dir.display());
        None
    }
}

#[test]
fn data_import_stats_and_export_on_real_files() {
    let Some(data) = data_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("hh.parquet");
    let hh = data.join("hh-rlhf-harmless/pairs.jsonl.gz");
    let report = json(&rlhf(&[
        "data",
        "import",
        "--format",
        "hh",
        hh.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]));
    assert_eq!(report["records"], 1800);
    assert_eq!(report["kept"], 1796);
    assert_eq!(report["dropped"]["empty_response"], 4);
    let stats = json(&rlhf(&["data", "stats", out.to_str().unwrap()]));
    assert_eq!(stats["overall"]["comparisons"], 1796);
    for f in ["stats.json", "stats.md", "length_diff.svg"] {
        assert!(tmp.path().join(f).exists(), "{f} written");
    }
    let jsonl = tmp.path().join("hh.jsonl");
    let exported = json(&rlhf(&[
        "data",
        "export",
        out.to_str().unwrap(),
        "--out",
        jsonl.to_str().unwrap(),
    ]));
    assert_eq!(exported["written"], 1796);

    let oasst = data.join("oasst1-zh/oaast_rm_zh.json");
    let out2 = tmp.path().join("oasst.parquet");
    let r = json(&rlhf(&[
        "data",
        "import",
        "--format",
        "oasst",
        "--pairs",
        "all",
        oasst.to_str().unwrap(),
        "--out",
        out2.to_str().unwrap(),
    ]));
    assert_eq!(r["generated"], 1809);

    let ab = data.join("alignbench/data_v1.1_release.jsonl");
    let out3 = tmp.path().join("ab.jsonl");
    let r = json(&rlhf(&[
        "data",
        "import",
        "--format",
        "alignbench",
        ab.to_str().unwrap(),
        "--out",
        out3.to_str().unwrap(),
    ]));
    assert_eq!(r["kept"], 683);
}

#[test]
fn data_import_reports_bad_lines_and_strict_mode_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("bad.jsonl");
    std::fs::write(
        &input,
        "{\"prompt\": \"hi\", \"chosen\": \"a\", \"rejected\": \"b\"}\n{not json\n{\"prompt\": \"x\", \"chosen\": \"c\"}\n",
    )
    .unwrap();
    let out = tmp.path().join("o.parquet");
    let r = json(&rlhf(&[
        "data",
        "import",
        "--format",
        "trl",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]));
    assert_eq!(r["kept"], 1);
    let issues = r["issues"].to_string();
    assert!(
        issues.contains("\"line\":2") || issues.contains("line 2"),
        "{issues}"
    );
    fails_with(
        &[
            "data",
            "import",
            "--format",
            "trl",
            "--strict",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        "bad.jsonl",
    );
    fails_with(
        &[
            "data",
            "import",
            "--format",
            "hh",
            "/nonexistent.jsonl",
            "--out",
            out.to_str().unwrap(),
        ],
        "/nonexistent.jsonl",
    );
}
