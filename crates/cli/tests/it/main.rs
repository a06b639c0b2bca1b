//! Tests of the `rlhf` binary from the outside: parity through the JSON commands, and bad input
//! exiting non-zero with one clear line.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod annotate;
mod data;
mod dpo;
mod eval_openai;
mod gpu_check;
mod pipeline;
mod ppo;
mod progress;
mod score_pairs;
mod serve_rm;

/// `../shared/fixtures/<name>`, or `None` (with a `SKIP:` line) in a user's clone without
/// `../shared`; a test failure under `CI=true` or `RLHF_REQUIRE_SHARED=1`.
fn fixture(name: &str) -> Option<PathBuf> {
    rlhf_testkit::shared_path(format!("fixtures/{name}"))
}

/// The tensor names of a safetensors file (sorted) and all their values, concatenated in that
/// order; every tensor must be F32.
fn safetensors_f32(path: &Path) -> (Vec<String>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(str::to_string).collect();
    names.sort();
    let mut values = Vec::new();
    for n in &names {
        let t = st.tensor(n).unwrap();
        assert_eq!(
            t.dtype(),
            safetensors::Dtype::F32,
            "{}: {n}",
            path.display()
        );
        values.extend(
            t.data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        );
    }
    (names, values)
}

/// Asserts two safetensors files hold the same tensors (names and sizes) with values less than
/// `tol` apart and all finite (`rlhf_testkit::assert_close`); returns the largest difference.
fn assert_safetensors_close(what: &str, got: &Path, want: &Path, tol: f32) -> f32 {
    let (gn, g) = safetensors_f32(got);
    let (wn, w) = safetensors_f32(want);
    assert_eq!(gn, wn, "{what}: tensor names differ");
    rlhf_testkit::assert_close(what, &g, &w, tol)
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

/// The numbers of a JSON number or (nested) array in order, and the array lengths met on the
/// way (two values of different shapes give different lengths).
fn numbers(v: &serde_json::Value, out: &mut Vec<f64>, shape: &mut Vec<usize>) {
    match v {
        serde_json::Value::Array(a) => {
            shape.push(a.len());
            for x in a {
                numbers(x, out, shape);
            }
        }
        // JSON has no NaN: serde_json writes it as `null`, which fails here.
        _ => out.push(
            v.as_f64()
                .unwrap_or_else(|| panic!("not a number or an array: {v}")),
        ),
    }
}

/// Asserts two JSON numbers or (nested) arrays have the same shape and differ by less than
/// `tol` everywhere (`rlhf_testkit::assert_close_f64`: no NaN, no infinity, nothing empty).
fn assert_json_close(what: &str, got: &serde_json::Value, want: &serde_json::Value, tol: f64) {
    let (mut g, mut gs, mut w, mut ws) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    numbers(got, &mut g, &mut gs);
    numbers(want, &mut w, &mut ws);
    assert_eq!(gs, ws, "{what}: array lengths differ");
    rlhf_testkit::assert_close_f64(what, &g, &w, tol);
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
    assert_json_close(
        "token_logprobs",
        &out["token_logprobs"],
        &r["token_logprobs"],
        1e-4,
    );
    assert_json_close(
        "sequence_logprob_sum",
        &out["sequence_logprob_sum"],
        &r["sequence_logprob_sum"],
        1e-3,
    );
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
    assert_json_close(
        &format!("rewards {} vs {}", out["rewards"], r["rewards"]),
        &out["rewards"],
        &r["rewards"],
        1e-5,
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

/// `../shared/data`, or `None` (with a `SKIP:` line) in a user's clone; a test failure under
/// `CI=true` or `RLHF_REQUIRE_SHARED=1`.
fn data_dir() -> Option<PathBuf> {
    rlhf_testkit::shared_path("data")
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
            "--force",
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

// ---------------------------------------------------------------------------------------
// rlhf eval

/// Runs `rlhf eval alignbench` with the overlap judge on the first `limit` v1.1 questions.
fn eval_alignbench(model: &Path, answers: &Path, out: &Path, limit: usize) -> serde_json::Value {
    eval_alignbench_with(model, answers, out, limit, "overlap")
}

fn eval_alignbench_with(
    model: &Path,
    answers: &Path,
    out: &Path,
    limit: usize,
    judge: &str,
) -> serde_json::Value {
    let data = data_dir().expect("checked by the caller");
    let questions = data.join("alignbench/data_v1.1_release.jsonl");
    let config = data.join("alignbench/config");
    let limit = limit.to_string();
    let args = [
        "eval",
        "alignbench",
        "--model",
        model.to_str().unwrap(),
        "--model-id",
        "tiny",
        "--questions",
        questions.to_str().unwrap(),
        "--config-dir",
        config.to_str().unwrap(),
        "--answers",
        answers.to_str().unwrap(),
        "--limit",
        &limit,
        "--max-new-tokens",
        "12",
        "--batch-size",
        "3",
        "--judge",
        judge,
        "--out",
        out.to_str().unwrap(),
    ];
    json(&rlhf(&args))
}

fn check_alignbench_run(model: &Path, tmp: &Path) {
    let answers = tmp.join("answers");
    let out = tmp.join("report");
    let first = eval_alignbench(model, &answers, &out, 4);
    assert_eq!(first["generated"], 4, "{first}");
    assert_eq!(first["judged"], 4, "{first}");
    assert_eq!(first["comparable_with_gpt4"], false);
    for f in [
        "alignbench.md",
        "alignbench.json",
        "alignbench.svg",
        "scores.json",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let md = std::fs::read_to_string(out.join("alignbench.md")).unwrap();
    assert!(md.contains("NOT comparable with GPT-4"), "{md}");
    let scores: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("scores.json")).unwrap()).unwrap();
    let items = scores["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    for it in items {
        let s = it["score"].as_f64().unwrap();
        assert!((1.0..=10.0).contains(&s), "score {s}");
    }
    for c in first["summary"]["categories"].as_array().unwrap() {
        if let Some(m) = c["mean"].as_f64() {
            assert!((1.0..=10.0).contains(&m), "category mean {m}");
        }
    }
    // A rerun generates nothing and judges from the cache.
    let answers_file = answers.join("tiny.jsonl");
    let before = std::fs::read_to_string(&answers_file).unwrap();
    assert_eq!(before.lines().count(), 4);
    let second = eval_alignbench(model, &answers, &out, 4);
    assert_eq!(second["generated"], 0, "{second}");
    assert_eq!(second["cached_judgments"], 4, "{second}");
    assert_eq!(std::fs::read_to_string(&answers_file).unwrap(), before);
    assert_eq!(second["summary"], first["summary"]);

    // Side by side: the same run twice under two names.
    let side = tmp.join("side");
    let run_a = format!("SFT={}", out.display());
    let run_b = format!("PPO={}", out.display());
    let table = json(&rlhf(&[
        "eval",
        "report",
        "--run",
        &run_a,
        "--run",
        &run_b,
        "--out",
        side.to_str().unwrap(),
    ]));
    let rows = table["rows"]
        .as_array()
        .or_else(|| table.as_array())
        .unwrap();
    assert_eq!(rows.len(), 2, "{table}");
    let md = std::fs::read_to_string(side.join("alignbench.md")).unwrap();
    assert!(md.contains("SFT") && md.contains("PPO"), "{md}");
    assert!(side.join("alignbench.svg").is_file());

    // Lengths table (with --tokenizer when the model has one).
    let data = data_dir().unwrap();
    let questions = data.join("alignbench/data_v1.1_release.jsonl");
    let len_out = tmp.join("lengths");
    let mut args = vec![
        "eval",
        "lengths",
        "--answers",
        answers_file.to_str().unwrap(),
        "--questions",
        questions.to_str().unwrap(),
        "--out",
        len_out.to_str().unwrap(),
    ];
    let has_tok = model.join("tokenizer.json").is_file();
    if has_tok {
        args.extend(["--tokenizer", model.to_str().unwrap()]);
    }
    let lengths = json(&rlhf(&args));
    let rows = lengths[0]["rows"].as_array().unwrap();
    let overall = rows.iter().find(|r| r["category"] == "overall").unwrap();
    assert_eq!(overall["chars"]["n"], 4, "{lengths}");
    assert_eq!(overall["tokens"].is_null(), !has_tok, "{lengths}");
    assert!(len_out.join("lengths.md").is_file());
    assert!(len_out.join("lengths.json").is_file());
}

#[test]
fn eval_alignbench_resumes_and_reports_with_the_byte_codec() {
    let (Some(model), Some(_)) = (fixture("llama"), data_dir()) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    check_alignbench_run(&model, tmp.path());
    // The reward-model judge on the same answers: nothing regenerated, scores in 1..10.
    let Some(rm) = fixture("llama_reward") else {
        return;
    };
    let judge = format!("rm:{}", rm.display());
    let out = tmp.path().join("report_rm");
    let v = eval_alignbench_with(&model, &tmp.path().join("answers"), &out, 4, &judge);
    assert_eq!(v["generated"], 0, "{v}");
    assert_eq!(v["judged"], 4, "{v}");
    assert!(
        v["judge"]
            .as_str()
            .unwrap()
            .contains("not comparable with GPT-4"),
        "{v}"
    );
    let scores: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("scores.json")).unwrap()).unwrap();
    for it in scores["items"].as_array().unwrap() {
        let s = it["score"].as_f64().unwrap();
        assert!((1.0..=10.0).contains(&s), "score {s}");
    }
}

#[test]
fn eval_alignbench_with_a_trained_tokenizer_and_chat_template() {
    use rlhf_core::tokenizer::{BpeTrainingConfig, train_bpe};
    let (Some(fixture_dir), Some(data)) = (fixture("llama"), data_dir()) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let model = copy_fixture_weights(&fixture_dir, tmp.path());
    let questions = data.join("alignbench/data_v1.1_release.jsonl");
    let corpus: Vec<String> = std::fs::read_to_string(&questions)
        .unwrap()
        .lines()
        .take(200)
        .map(str::to_owned)
        .collect();
    let cfg = BpeTrainingConfig {
        vocab_size: 400,
        min_frequency: 2,
        special_tokens: vec!["<pad>".into(), "<s>".into(), "</s>".into()],
    };
    let tok = train_bpe(corpus.iter(), &cfg).unwrap();
    assert!(tok.vocab_size() <= 512, "vocab {}", tok.vocab_size());
    let template = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";
    tok.save_dir(&model, Some(template)).unwrap();
    check_alignbench_run(&model, tmp.path());
}

#[test]
fn eval_pairwise_and_tabulate() {
    let (Some(model), Some(data)) = (fixture("llama"), data_dir()) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let questions = data.join("alignbench/data_v1.1_release.jsonl");
    let _ = eval_alignbench(&model, &tmp.path().join("a"), &tmp.path().join("ra"), 3);
    // Model B: hand-written answers, one of them the reference itself.
    let refs: Vec<serde_json::Value> = std::fs::read_to_string(&questions)
        .unwrap()
        .lines()
        .take(3)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let b = tmp.path().join("b.jsonl");
    let lines: Vec<String> = refs
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let answer = if i == 0 { q["reference"].clone() } else { "不知道".into() };
            serde_json::json!({"question_id": q["question_id"], "model_id": "ref", "answer": answer})
                .to_string()
        })
        .collect();
    std::fs::write(&b, lines.join("\n") + "\n").unwrap();
    let out = tmp.path().join("pw");
    let a_file = tmp.path().join("a/tiny.jsonl");
    let v = json(&rlhf(&[
        "eval",
        "pairwise",
        "--a",
        a_file.to_str().unwrap(),
        "--b",
        b.to_str().unwrap(),
        "--questions",
        questions.to_str().unwrap(),
        "--judge",
        "overlap",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert_eq!(v["items"], 3, "{v}");
    let overall = &v["tally"]["overall"];
    assert!(overall["losses"].as_u64().unwrap() >= 1, "{v}");
    let total: u64 = ["wins", "ties", "losses"]
        .iter()
        .map(|k| overall[k].as_u64().unwrap())
        .sum();
    assert_eq!(total, 3);
    for f in ["pairwise.md", "pairwise.json", "rating_sheet.csv"] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    // A rater says "tie" everywhere (columns are found by name; prompt and answers left out).
    let filled = tmp.path().join("filled.csv");
    let mut text = String::from("item_id,category,verdict\n");
    for q in &refs {
        text.push_str(&format!(
            "{},{},tie\n",
            q["question_id"],
            q["category"].as_str().unwrap()
        ));
    }
    std::fs::write(&filled, text).unwrap();
    let t = json(&rlhf(&[
        "eval",
        "tabulate",
        "--sheet",
        filled.to_str().unwrap(),
    ]));
    assert_eq!(t["tally"]["overall"]["ties"], 3, "{t}");
    assert_eq!(t["net_win_rate"], 0.0);
}

/// `generate --prompt` on a model whose tokenizer has no chat template (every model the
/// embedded default trains) feeds the same prompt ids the trainers and the evaluation build
/// (`TextCodec::encode_prompt`: BOS + the plain `User: … Assistant: ` transcript), not the raw
/// text; `--raw` keeps the raw text.
#[test]
fn generate_prompt_without_a_template_uses_the_trainers_transcript() {
    use rlhf_core::text::TextCodec;
    use rlhf_core::tokenizer::{BpeTrainingConfig, Message, train_bpe};
    let Some(fixture_dir) = fixture("llama") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let model = copy_fixture_weights(&fixture_dir, tmp.path());
    let cfg = BpeTrainingConfig {
        vocab_size: 300,
        min_frequency: 1,
        special_tokens: vec!["<pad>".into(), "<s>".into(), "</s>".into()],
    };
    let corpus = ["User: where does Deran live?\nAssistant: Deran lives in Selvale."];
    let tok = train_bpe(corpus.iter(), &cfg).unwrap();
    tok.save_dir(&model, None).unwrap();
    assert!(!tok.has_chat_template());
    let prompt = "where does Deran live?";
    let ids = TextCodec::Tokenizer(&tok)
        .encode_prompt(&[Message::user(prompt)])
        .unwrap();
    let input = write_input(tmp.path(), &serde_json::json!({ "input_ids": [ids] }));
    let m = model.to_str().unwrap();
    let common = ["--max-new-tokens", "6", "--greedy", "--no-eos"];
    let by_text = json(&rlhf(
        &[
            &["generate", "--model", m, "--prompt", prompt][..],
            &common[..],
        ]
        .concat(),
    ));
    let by_ids = json(&rlhf(
        &[
            &[
                "generate",
                "--model",
                m,
                "--prompt-ids",
                input.to_str().unwrap(),
            ][..],
            &common[..],
        ]
        .concat(),
    ));
    assert_eq!(by_text["new_ids"], by_ids["new_ids"]);
    let raw_ids = tok.encode(prompt, true).unwrap();
    assert_ne!(
        raw_ids, ids,
        "the raw text and the transcript must differ for this test"
    );
}

/// `config.json` and `model.safetensors` of a fixture copied to `<dir>/model` (so a test can
/// add its own tokenizer beside them); that directory.
fn copy_fixture_weights(
    fixture_dir: &std::path::Path,
    dir: &std::path::Path,
) -> std::path::PathBuf {
    let model = dir.join("model");
    std::fs::create_dir_all(&model).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture_dir.join(f), model.join(f)).unwrap();
    }
    model
}
