//! `rlhf train-ppo --devices cpu,cpu`: two in-process CPU replicas train the same actor as one
//! device (random `tiny-llama` models, a few PPO iterations), and node 0 exports it.

use std::path::Path;

use super::{assert_safetensors_close, json, rlhf};

#[test]
fn train_ppo_runs_data_parallel_on_two_cpu_replicas() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let prompts = t.join("prompts.jsonl");
    let lines: Vec<String> = (0..6)
        .map(|i| {
            serde_json::json!({"id": format!("q{i}"), "prompt": format!("say {}{}", i, "!".repeat(i % 3))})
                .to_string()
        })
        .collect();
    std::fs::write(&prompts, lines.join("\n") + "\n").unwrap();
    let cfg = t.join("ppo.toml");
    std::fs::write(
        &cfg,
        format!(
            "init = \"tiny-llama\"\nprompts = \"{}\"\ntotal_steps = 2\nbatch_prompts = 4\n\
             mini_batch_size = 2\nmax_new_tokens = 6\nlearning_rate = 1e-3\n\
             critic_learning_rate = 1e-3\nntp_coef = 0.0\nsave_steps = 1\n",
            prompts.display()
        ),
    )
    .unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let run = |dir: &str, extra: &[&str]| {
        let mut args = vec![
            "train-ppo".to_string(),
            "--config".into(),
            s(&cfg),
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
    assert_eq!(two["last"]["scores"], one["last"]["scores"], "{two}\n{one}");
    let w = |d: &str| t.join(d).join("final/model.safetensors");
    let max = assert_safetensors_close(
        "train-ppo: data-parallel actor vs one device",
        &w("two"),
        &w("one"),
        1e-5,
    );
    eprintln!("train-ppo, 2 CPU replicas vs 1: max |Δθ| {max:e}");
}
