//! `rlhf score --input PAIRS`: a tiny reward model exported in HF layout (no tokenizer, so
//! byte-level ids), scored on a small JSONL and Parquet file; the summary and the per-pair
//! JSONL are checked against scores computed here row by row with HF's pooling rule.

use std::path::{Path, PathBuf};

use rlhf_core::backend::{Cpu, FlexDevice};
use rlhf_core::checkpoint::{LoadOptions, SaveDtype, load_scalar_model};
use rlhf_core::{ModelConfig, PadSide, ScalarModel, TokenBatch};
use serde_json::{Value, json};

use crate::{fails_with, json, rlhf};

/// A randomly initialised reward model with the byte vocabulary, exported to `dir`.
fn tiny_rm(dir: &Path) -> PathBuf {
    let cfg = ModelConfig::tiny_llama(rlhf_core::text::BYTE_VOCAB);
    let model = ScalarModel::<Cpu>::init(&cfg, 0.02, 11, &FlexDevice);
    let out = dir.join("rm");
    rlhf_reward::export_hf(&model, &cfg, &out, SaveDtype::F32, None).unwrap();
    out
}

/// (id, category, conversation as (role, text), chosen, rejected).
type Case = (
    &'static str,
    Option<&'static str>,
    Vec<(&'static str, &'static str)>,
    &'static str,
    &'static str,
);

fn cases() -> Vec<Case> {
    vec![
        (
            "p1",
            Some("math"),
            vec![("User", "2+2?")],
            "4",
            "5, I think",
        ),
        (
            "p2",
            Some("math"),
            vec![("User", "3*3?")],
            "9",
            "It is nine, because three threes make nine.",
        ),
        (
            "p3",
            Some("chat"),
            vec![
                ("User", "hi"),
                ("Assistant", "hello"),
                ("User", "how are you?"),
            ],
            "Fine, thanks.",
            "go away",
        ),
        ("p4", None, vec![("User", "name a colour")], "blue", "a"),
        ("p5", Some("chat"), vec![("User", "bye")], "Goodbye!", "..."),
    ]
}

/// The byte-level row the reward crate documents: BOS 1, the plain transcript
/// (`Role: text` lines, then `Assistant: `) and the reply as bytes + 3, EOS 2.
fn byte_row(conv: &[(&str, &str)], reply: &str) -> Vec<u32> {
    let mut text = String::new();
    for (role, content) in conv {
        text.push_str(&format!("{role}: {content}\n"));
    }
    text.push_str("Assistant: ");
    let mut ids = vec![1u32];
    ids.extend(text.bytes().chain(reply.bytes()).map(|b| u32::from(b) + 3));
    ids.push(2);
    ids
}

fn write_jsonl(path: &Path) {
    let lines: Vec<String> = cases()
        .into_iter()
        .map(|(id, cat, conv, c, r)| {
            let prompt: Vec<Value> = conv
                .iter()
                .map(|(role, text)| json!({"role": role.to_lowercase(), "content": text}))
                .collect();
            let mut v = json!({"id": id, "prompt": prompt, "chosen": c, "rejected": r});
            if let Some(cat) = cat {
                v["category"] = json!(cat);
            }
            v.to_string()
        })
        .collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

fn write_parquet(path: &Path) {
    use rlhf_prefdata::{Comparison, Message, Role};
    let rows: Vec<Comparison> = cases()
        .into_iter()
        .map(|(id, cat, conv, c, r)| {
            let (last, history) = conv.split_last().unwrap();
            let mut comparison = Comparison::new(id, "test", last.1, c, r);
            comparison.history = history
                .iter()
                .map(|(role, text)| {
                    let role = if *role == "User" {
                        Role::User
                    } else {
                        Role::Assistant
                    };
                    Message::new(role, *text)
                })
                .collect();
            comparison.category = cat.map(str::to_owned);
            comparison
        })
        .collect();
    rlhf_prefdata::write_comparisons(path, rows.iter(), Default::default()).unwrap();
}

/// (chosen, rejected) scores of every case, one row at a time.
fn expected_scores(model_dir: &Path) -> Vec<(f64, f64)> {
    let (model, _) =
        load_scalar_model::<Cpu>(model_dir, LoadOptions::default(), &FlexDevice).unwrap();
    let score = |row: Vec<u32>| -> f64 {
        let batch = TokenBatch::from_rows(&[row], 0, PadSide::Right);
        let r: Vec<f32> = model
            .rewards(&batch, Some(0), &FlexDevice)
            .into_data()
            .convert::<f32>()
            .into_vec()
            .unwrap();
        f64::from(r[0])
    };
    cases()
        .iter()
        .map(|(_, _, conv, c, r)| (score(byte_row(conv, c)), score(byte_row(conv, r))))
        .collect()
}

fn close(got: &Value, want: f64) {
    let g = got
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {got}"));
    assert!((g - want).abs() < 1e-4, "{g} vs {want}");
}

fn check_summary(v: &Value, want: &[(f64, f64)]) {
    let n = want.len() as f64;
    let correct = want.iter().filter(|(c, r)| c > r).count() as f64;
    let mean_c = want.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_r = want.iter().map(|p| p.1).sum::<f64>() / n;
    let all: Vec<f64> = want.iter().flat_map(|&(c, r)| [c, r]).collect();
    let mean = all.iter().sum::<f64>() / all.len() as f64;
    let std = (all.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / all.len() as f64).sqrt();
    assert_eq!(v["n"], want.len(), "{v}");
    close(&v["accuracy"], correct / n);
    close(&v["rewards_chosen"], mean_c);
    close(&v["rewards_rejected"], mean_r);
    close(&v["rewards_margins"], mean_c - mean_r);
    close(&v["score_mean"], mean);
    close(&v["score_std"], std);
    assert!(std > 0.0, "a random model gives different scores");
}

#[test]
fn score_pairs_summary_and_per_pair_lines_from_jsonl_and_parquet() {
    let tmp = tempfile::tempdir().unwrap();
    let rm = tiny_rm(tmp.path());
    let want = expected_scores(&rm);

    let input = tmp.path().join("pairs.jsonl");
    write_jsonl(&input);
    let out = tmp.path().join("scores.jsonl");
    let v = json(&rlhf(&[
        "score",
        "--model",
        rm.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--batch-pairs",
        "2",
    ]));
    check_summary(&v, &want);
    assert_eq!(v["out"], out.to_str().unwrap());

    let lines: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), cases().len());
    assert_eq!(want.len(), lines.len());
    for ((line, case), (c, r)) in lines.iter().zip(cases()).zip(&want) {
        assert_eq!(line["id"], case.0);
        assert_eq!(line["category"], json!(case.1));
        close(&line["chosen"], *c);
        close(&line["rejected"], *r);
        close(&line["margin"], c - r);
        // Reply bytes plus the EOS, before truncation.
        assert_eq!(line["chosen_len"], case.3.len() + 1);
        assert_eq!(line["rejected_len"], case.4.len() + 1);
    }

    // The same pairs from an `rlhf data` Parquet file give the same summary.
    let parquet = tmp.path().join("pairs.parquet");
    write_parquet(&parquet);
    let p = json(&rlhf(&[
        "score",
        "--model",
        rm.to_str().unwrap(),
        "--input",
        parquet.to_str().unwrap(),
    ]));
    check_summary(&p, &want);
    assert_eq!(p["out"], Value::Null);

    // The JSON-rows mode still prints one reward per row.
    let rows = tmp.path().join("rows.json");
    let ids: Vec<Vec<u32>> = cases()
        .iter()
        .take(2)
        .map(|(_, _, conv, c, _)| byte_row(conv, c))
        .collect();
    let width = ids.iter().map(Vec::len).max().unwrap();
    let mask: Vec<Vec<u32>> = ids
        .iter()
        .map(|r| (0..width).map(|i| u32::from(i < r.len())).collect())
        .collect();
    let padded: Vec<Vec<u32>> = ids
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.resize(width, 0);
            r
        })
        .collect();
    std::fs::write(
        &rows,
        json!({"input_ids": padded, "attention_mask": mask}).to_string(),
    )
    .unwrap();
    let r = json(&rlhf(&[
        "score",
        "--model",
        rm.to_str().unwrap(),
        "--input",
        rows.to_str().unwrap(),
    ]));
    let rewards = r["rewards"].as_array().unwrap();
    assert_eq!(rewards.len(), 2, "{r}");
    close(&rewards[0], want[0].0);
    close(&rewards[1], want[1].0);
    fails_with(
        &[
            "score",
            "--model",
            rm.to_str().unwrap(),
            "--input",
            rows.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        "--out",
    );
}

#[test]
fn score_pairs_bad_input_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let rm = tiny_rm(tmp.path());
    let model = rm.to_str().unwrap();
    let run = |input: &Path, needles: &[&str]| {
        for needle in needles {
            fails_with(
                &[
                    "score",
                    "--model",
                    model,
                    "--input",
                    input.to_str().unwrap(),
                ],
                needle,
            );
        }
    };
    run(&tmp.path().join("nope.jsonl"), &["nope.jsonl"]);
    run(&tmp.path().join("nope.parquet"), &["nope.parquet"]);

    let bad = tmp.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"prompt\": \"q\", \"chosen\": \"a\", \"rejected\": \"b\"}\n{\"prompt\": 3}\n",
    )
    .unwrap();
    run(&bad, &["bad.jsonl", "line 2"]);

    let empty_reply = tmp.path().join("empty_reply.jsonl");
    std::fs::write(
        &empty_reply,
        "{\"id\": \"x7\", \"prompt\": \"q\", \"chosen\": \"\", \"rejected\": \"b\"}\n",
    )
    .unwrap();
    run(&empty_reply, &["empty_reply.jsonl", "x7", "non-empty"]);

    let garbage = tmp.path().join("garbage.parquet");
    std::fs::write(&garbage, b"not a parquet file").unwrap();
    run(&garbage, &["garbage.parquet"]);

    let blank = tmp.path().join("blank.jsonl");
    std::fs::write(&blank, "\n\n").unwrap();
    run(&blank, &["blank.jsonl", "no preference pairs"]);
}

// The default `--max-length` is the model's max_position_embeddings: a pair longer than the
// model's 512 positions is truncated to fit (it used to panic inside burn with the old default
// of 1024), and an explicit longer limit is refused with the model's maximum.
#[test]
fn score_pairs_truncates_to_the_models_positions_by_default() {
    let tmp = tempfile::tempdir().unwrap();
    let rm = tiny_rm(tmp.path());
    let long = "x".repeat(700);
    let input = tmp.path().join("long.jsonl");
    std::fs::write(
        &input,
        json!({"id": "long", "prompt": long, "chosen": "yes", "rejected": "no"}).to_string() + "\n",
    )
    .unwrap();
    let args = |extra: &[&str]| -> Vec<String> {
        [
            "score",
            "--model",
            rm.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
        ]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect()
    };
    let run = |extra: &[&str]| {
        let a = args(extra);
        rlhf(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let by_default = json(&run(&[]));
    assert_eq!(by_default["n"], 1, "{by_default}");
    let explicit = json(&run(&["--max-length", "512"]));
    assert_eq!(by_default["rewards_chosen"], explicit["rewards_chosen"]);
    assert!(by_default["rewards_chosen"].as_f64().unwrap().is_finite());
    let a = args(&["--max-length", "1024"]);
    fails_with(
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
        "--max-length 1024 exceeds the model's max_position_embeddings (512",
    );
}
