//! `rlhf train-dpo` and `rlhf dpo-pairs` from the outside: a random policy trained for a few
//! steps and exported, RM-labelled pairs from it, DPO from the exported checkpoint, a rerun
//! that finds the run finished, and a config with an unknown key refused by name.

use std::path::Path;

use super::{assert_safetensors_close, json, rlhf};

pub(super) fn write_pairs(path: &Path, n: usize) {
    let mut text = String::new();
    for i in 0..n {
        let good = if i % 2 == 0 {
            "yes #ok fine"
        } else {
            "sure #ok"
        };
        let bad = if i % 2 == 0 { "no =ok" } else { "nope =ok bad" };
        text.push_str(
            &serde_json::json!({
                "id": format!("p{i}"),
                "category": if i % 3 == 0 { "math" } else { "writing" },
                "prompt": format!("question {}", i % 7),
                "chosen": good,
                "rejected": bad,
            })
            .to_string(),
        );
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn train_dpo_then_rm_pairs_then_dpo_from_the_export() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let pairs = t.join("pairs.jsonl");
    write_pairs(&pairs, 24);
    let cfg = t.join("dpo.toml");
    std::fs::write(
        &cfg,
        "learning_rate = 1e-3\nmax_steps = 3\nbatch_pairs = 4\nmax_length = 64\n\
         logging_steps = 1\n[loss]\nloss_type = \"sigmoid\"\nbeta = 0.2\n",
    )
    .unwrap();
    let run = t.join("dpo1");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let out = json(&rlhf(&[
        "train-dpo",
        "--train",
        &s(&pairs),
        "--config",
        &s(&cfg),
        "--init",
        "tiny-llama",
        "--run-dir",
        &s(&run),
    ]));
    assert_eq!(out["status"], "Finished", "{out}");
    assert_eq!(out["step"], 3);
    assert!(
        out["last_eval"]["eval_rewards/accuracies"].is_number(),
        "{out}"
    );
    let policy = run.join("final");
    assert!(policy.join("config.json").is_file() && policy.join("model.safetensors").is_file());
    assert!(run.join("reference_logps.parquet").is_file());
    // A rerun of a finished run trains nothing more.
    let again = json(&rlhf(&[
        "train-dpo",
        "--train",
        &s(&pairs),
        "--config",
        &s(&cfg),
        "--init",
        "tiny-llama",
        "--run-dir",
        &s(&run),
    ]));
    assert_eq!(again["resumed_from"], 3, "{again}");

    // A reward model to label pairs with.
    let rm_cfg = t.join("rm.json");
    std::fs::write(
        &rm_cfg,
        r#"{"max_steps": 2, "batch_pairs": 4, "max_length": 64}"#,
    )
    .unwrap();
    let rm_run = t.join("rm");
    json(&rlhf(&[
        "train-reward",
        "--train",
        &s(&pairs),
        "--config",
        &s(&rm_cfg),
        "--init",
        "tiny-llama",
        "--run-dir",
        &s(&rm_run),
    ]));
    let gen_cfg = t.join("gen.json");
    std::fs::write(
        &gen_cfg,
        r#"{"k": 3, "max_new_tokens": 8, "min_margin": 0.0, "max_length": 64}"#,
    )
    .unwrap();
    let rm_pairs = t.join("rm_pairs.jsonl");
    let built = json(&rlhf(&[
        "dpo-pairs",
        "--policy",
        &s(&policy),
        "--rm",
        &s(&rm_run.join("final")),
        "--prompts",
        &s(&pairs),
        "--out",
        &s(&rm_pairs),
        "--config",
        &s(&gen_cfg),
    ]));
    assert_eq!(
        built["report"]["prompts"], 7,
        "one per distinct prompt: {built}"
    );
    let n = built["report"]["pairs"].as_u64().unwrap();
    assert!(n >= 1, "{built}");
    let lines = std::fs::read_to_string(&rm_pairs).unwrap();
    assert_eq!(lines.lines().count() as u64, n);
    let scores = std::fs::read_to_string(format!("{}.scores.jsonl", rm_pairs.display())).unwrap();
    for l in scores.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(v["chosen_score"].as_f64().unwrap() >= v["rejected_score"].as_f64().unwrap());
    }

    // DPO from the exported checkpoint on the RM-labelled pairs (all kept for training), with
    // LoRA adapters and bf16 mixed precision from the TOML config.
    let lora_cfg = t.join("dpo_lora.toml");
    std::fs::write(
        &lora_cfg,
        "learning_rate = 1e-3\nmax_steps = 3\nbatch_pairs = 4\nmax_length = 64\n\
         precision = \"bf16\"\n[lora]\nr = 4\nalpha = 8.0\ntarget_modules = [\"qkv\", \"o\"]\n",
    )
    .unwrap();
    let out = json(&rlhf(&[
        "train-dpo",
        "--train",
        &s(&rm_pairs),
        "--eval-fraction",
        "0",
        "--config",
        &s(&lora_cfg),
        "--model",
        &s(&policy),
        "--run-dir",
        &s(&t.join("dpo2")),
    ]));
    assert_eq!(out["status"], "Finished", "{out}");
    // 2 layers × (qkv [64, 128] + o [64, 64]) × r = 4.
    assert_eq!(
        out["lora_params"],
        2 * (4 * (64 + 128) + 4 * (64 + 64)),
        "{out}"
    );
    let fin = t.join("dpo2/final");
    assert!(fin.join("model.safetensors").is_file(), "merged HF export");
    let adapter: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fin.join("adapter/adapter_config.json")).unwrap())
            .unwrap();
    assert_eq!(adapter["r"], 4);
    assert!(fin.join("adapter/adapter_model.safetensors").is_file());
}

#[test]
fn an_unknown_config_key_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let pairs = tmp.path().join("pairs.jsonl");
    write_pairs(&pairs, 4);
    let cfg = tmp.path().join("dpo.toml");
    std::fs::write(&cfg, "learning_rat = 1e-3\n").unwrap();
    let out = rlhf(&[
        "train-dpo",
        "--train",
        pairs.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--init",
        "tiny-llama",
        "--run-dir",
        tmp.path().join("r").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("learning_rat") && err.contains("dpo.toml"),
        "{err}"
    );
    assert!(
        !tmp.path().join("r").exists(),
        "nothing may be written before the config is valid"
    );
}

#[test]
fn train_reward_runs_data_parallel_on_two_cpu_replicas() {
    data_parallel_equals_one_device(
        "train-reward",
        r#"{"max_steps": 2, "batch_pairs": 4, "max_length": 64}"#,
    );
}

#[test]
fn train_dpo_runs_data_parallel_on_two_cpu_replicas() {
    data_parallel_equals_one_device(
        "train-dpo",
        r#"{"max_steps": 2, "batch_pairs": 4, "max_length": 64, "learning_rate": 1e-3}"#,
    );
}

fn data_parallel_equals_one_device(command: &str, config: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let pairs = t.join("pairs.jsonl");
    write_pairs(&pairs, 16);
    let cfg = t.join("cfg.json");
    std::fs::write(&cfg, config).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let run = |dir: &str, extra: &[&str]| {
        let mut args = vec![
            command.to_string(),
            "--train".into(),
            s(&pairs),
            "--eval-fraction".into(),
            "0".into(),
            "--config".into(),
            s(&cfg),
            "--init".into(),
            "tiny-llama".into(),
            "--run-dir".into(),
            s(&t.join(dir)),
        ];
        args.extend(extra.iter().map(|x| x.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        json(&rlhf(&refs))
    };
    let one = run("one", &[]);
    let two = run("two", &["--devices", "cpu,cpu"]);
    assert_eq!(two["status"], "Finished", "{two}");
    assert_eq!(two["step"], one["step"]);
    let w = |d: &str| t.join(d).join("final/model.safetensors");
    assert_eq!(
        std::fs::metadata(w("one")).unwrap().len(),
        std::fs::metadata(w("two")).unwrap().len()
    );
    // Same global batch split over two replicas: the same parameters up to float error.
    // The two runs add the same gradient terms in a different order (two half-batch products
    // and an all-reduce, against one product over the batch); AdamW's first steps move each
    // parameter by about lr·g/|g|, which turns rounding-level gradient differences into
    // parameter differences of ~1e-5 at lr 1e-3. A wrong split or scaling differs by ~lr.
    assert_safetensors_close(
        "train-dpo: data-parallel parameters vs one device",
        &w("two"),
        &w("one"),
        5e-5,
    );
}
